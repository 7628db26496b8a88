"""``rls3 grid`` on a real local Ray cluster: ``ray start --head`` on 127.0.0.1 with 2 CPUs,
started and stopped here; the smoke grid joins it by ``--address``. No mock: the runs are the
real loop, and their files are compared with the same runs made one after another by
``dvc repro``.

Every Ray head here has its own temporary directory and, in token mode, its own random token in
a file there (RAY_AUTH_TOKEN_PATH): nothing is read from or written to ``~/.ray``. Each head is
stopped by its processes (found by a variable in their environment), not by ``ray stop``, which
would stop every Ray process of the machine."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from benchmark.arms import ARMS, BUDGET_ARMS
from benchmark.cli import main
from benchmark.grid import (
    AUTH_VARIABLES,
    GridError,
    check_cluster,
    gcs_status,
    joined_cluster,
    local_instance,
)
from benchmark.sim.unity import free_port
from tests.pipeline import (
    ROOT,
    VENV_BIN,
    checkpoint_state,
    dvc,
    environment,
    run_stage,
    wait_for_iteration,
)

pytestmark = pytest.mark.integration
RUN_FILES = ("metrics.csv", "episodes.csv", "finetune_loss.csv", "iterations.jsonl")


@pytest.fixture(scope="module")
def sequential(smoke_pipeline: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke pipeline after its `dvc repro` (the session's, copied as it is now): its runs
    were made one after another."""
    repo = tmp_path_factory.mktemp("sequential") / "repo"
    shutil.copytree(smoke_pipeline[0], repo, symlinks=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["profile"] == "smoke" and params["profiles"]["smoke"]["clip"]["k"] == 1
    return repo


HEAD_MARK = "RLS3_TEST_RAY_HEAD"  # in the environment of every process of a head started here


@dataclass
class Head:
    """A one-node Ray cluster started by ``ray start --head`` here."""

    address: str  # 127.0.0.1:PORT
    temp: Path  # its --temp-dir; also holds its token file
    home: Path  # the HOME it was started with
    token: Path | None  # the file with its token (RAY_AUTH_TOKEN_PATH); None: no authentication


def _clean_environment(home: Path) -> dict[str, str]:
    """The project's environment with ``home`` as HOME and none of Ray's auth variables."""
    env = {**environment(ROOT), "HOME": str(home)}
    for name in AUTH_VARIABLES:
        env.pop(name, None)
    return env


def _start_head(home: Path, *, token: bool, cpus: int = 2) -> Head:
    """``ray start --head`` on a free port of 127.0.0.1, in token mode with a new random token in
    a file of its own temporary directory (``token``), or without authentication."""
    temp = Path(tempfile.mkdtemp(prefix="/tmp/ray-"))  # Ray's socket paths must stay short
    env = {**_clean_environment(home), HEAD_MARK: str(temp)}
    token_file = None
    if token:
        token_file = temp / "auth_token"
        token_file.write_text(secrets.token_hex(32))
        token_file.chmod(0o600)
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file))
    else:
        env["RAY_AUTH_MODE"] = "disabled"
    port = free_port()
    start = [
        str(VENV_BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1",
        "--port", str(port), "--num-cpus", str(cpus), "--num-gpus", "0",
        "--include-dashboard", "false", "--ray-client-server-port", str(free_port()),
        "--temp-dir", str(temp / "ray"), "--disable-usage-stats",
    ]  # fmt: skip
    done = subprocess.run(start, capture_output=True, text=True, env=env, timeout=180)
    head = Head(f"127.0.0.1:{port}", temp, home, token_file)
    if done.returncode != 0:
        _stop_head(head)
        raise AssertionError(done.stdout[-3000:] + done.stderr[-3000:])
    return head


def _head_processes(head: Head) -> set[psutil.Process]:
    """The processes of ``head`` (and no other Ray's on this machine): those with its mark in
    their environment, and their descendants (its agents and workers rewrite their title over
    their environment)."""
    procs: set[psutil.Process] = set()
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(HEAD_MARK) == str(head.temp):
                procs.add(proc)
                procs.update(proc.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return procs


def _stop_head(head: Head) -> None:
    """Stop every process of ``head`` (and only those), then remove its directory. They are
    found before any is stopped: the agents and workers outlive a stopped raylet, and the
    agents ignore SIGTERM."""
    procs = _head_processes(head)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    shutil.rmtree(head.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Head]:
    """A one-node Ray cluster with 2 CPUs on 127.0.0.1, with Ray's token authentication.
    (Ray advertises the machine's own address for a node asked to be 127.0.0.1, and its GCS
    listens on every interface: the token keeps others out.) The token is the head's own, in
    a file of its directory: the drivers (``main`` here, and the subprocesses, which inherit
    this environment) find it through RAY_AUTH_TOKEN_PATH, set for this module only; the
    grid turns token mode on itself."""
    head = _start_head(Path.home(), token=True)
    assert head.token is not None
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("RAY_AUTH_TOKEN", raising=False)
            patch.setenv("RAY_AUTH_TOKEN_PATH", str(head.token))
            yield head
    finally:
        _stop_head(head)


@pytest.fixture(scope="module")
def token_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """A one-node cluster (1 CPU) in token mode, started with an empty HOME."""
    head = _start_head(tmp_path_factory.mktemp("head-home"), token=True, cpus=1)
    try:
        yield head
    finally:
        _stop_head(head)


@pytest.fixture(scope="module")
def open_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """A one-node cluster (1 CPU) without authentication (RAY_AUTH_MODE=disabled)."""
    head = _start_head(tmp_path_factory.mktemp("open-home"), token=False, cpus=1)
    try:
        yield head
    finally:
        _stop_head(head)


def _fresh_copy(sequential: Path, dst: Path) -> Path:
    """The sequential project without clip's seed-0 runs and the MLflow store: the grid makes
    them again (the smoke profile has one seed; the other slots hold skip markers)."""
    shutil.copytree(sequential, dst, symlinks=True)
    for arm in ARMS:
        shutil.rmtree(dst / "results" / "runs" / "clip" / arm / "seed0")
    (dst / "results" / "mlflow.db").unlink()
    return dst


def _grid_args(repo: Path, address: str) -> list[str]:
    return [
        "grid", "--params", str(repo / "params.yaml"), "--model", "clip", "--engine", "ray",
        "--address", address, "--results", str(repo / "results"),
        "--datasets", str(repo / "datasets"),
    ]  # fmt: skip


def _same_runs(repo: Path, sequential: Path) -> None:
    for arm in ARMS:
        made, reference = (
            r / "results" / "runs" / "clip" / arm / "seed0" for r in (repo, sequential)
        )
        for name in RUN_FILES:
            if (reference / name).exists():
                assert (made / name).read_bytes() == (reference / name).read_bytes(), (arm, name)
        summary = json.loads((made / "summary.json").read_text())
        assert summary["finished"]


@pytest.mark.slow
def test_the_grid_on_a_ray_cluster_equals_the_sequential_runs(
    sequential: Path,
    cluster: Head,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _fresh_copy(sequential, tmp_path / "repo")
    # from the project's directory, as on a cluster: Ray puts the driver's directory first on
    # its workers' path, so the runs use the copy's code (the one its checkpoints record)
    monkeypatch.chdir(repo)
    assert main(_grid_args(repo, cluster.address)) == 0
    out = capsys.readouterr().out
    counts = [
        tuple(map(int, m))
        for m in re.findall(r"grid: (\d+) queued, (\d+) running, (\d+) done", out)
    ]
    assert counts and all(sum(c) == len(ARMS) for c in counts)  # every view: every run
    assert [c[2] for c in counts] == sorted(c[2] for c in counts)  # done never goes back
    assert counts[-1] == (0, 0, len(ARMS)) and any(c[1] >= 1 for c in counts)
    _same_runs(repo, sequential)
    # the budget arms ran on the budget Ray passed on from the sac run
    report = json.loads((repo / "results" / "grid" / "clip.json").read_text())
    sac = report["runs"]["sac/seed0"]["summary"]
    for arm in BUDGET_ARMS:
        run = report["runs"][f"{arm}/seed0"]
        assert (
            run["summary"]["budget"]
            == sac["generated_samples"]
            == run["summary"]["generated_samples"]
        )
        assert run["attempts"] == 1
    # DVC then records the grid's runs (each `rls3 run` finds its run finished), and a second
    # repro does nothing
    run_dirs = [repo / "results" / "runs" / "clip" / arm / "seed0" for arm in ARMS]
    written = [(d / "metrics.csv").stat().st_mtime_ns for d in run_dirs]
    recorded = dvc(repo, "repro", "report@clip")
    assert recorded.returncode == 0, recorded.stdout[-3000:] + recorded.stderr[-3000:]
    ran = set(re.findall(r"Running stage '([^']+)'", recorded.stdout))
    runs = {run_stage(arm, "clip", 0) for arm in ARMS}
    assert ran == {"check", "report@clip", *runs}
    assert [(d / "metrics.csv").stat().st_mtime_ns for d in run_dirs] == written  # not redone
    _same_runs(repo, sequential)
    again = dvc(repo, "repro", "report@clip")
    assert again.returncode == 0
    assert set(re.findall(r"Running stage '([^']+)'", again.stdout)) == {"check"}


def test_a_killed_worker_is_retried_and_its_run_resumes(
    sequential: Path, cluster: Head, tmp_path: Path
) -> None:
    """SIGKILL the Ray worker that runs the sac task after its first checkpoint: Ray retries
    the task, the run resumes there, and every file equals the sequential run's."""
    repo = _fresh_copy(sequential, tmp_path / "repo")
    cmd = [sys.executable, "-m", "benchmark.cli", *_grid_args(repo, cluster.address)]
    proc = subprocess.Popen(  # from the copy: its workers run the copy's code
        cmd,
        cwd=repo,
        env=environment(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = repo / "results" / "runs" / "clip" / "sac" / "seed0" / "checkpoint" / "state.json"
    try:
        wait_for_iteration(proc, state)
        workers = [  # this cluster's only: another Ray on the machine may run grids too
            p for p in _head_processes(cluster)
            if (p.cmdline() or [""])[0].startswith("ray::run_task")
        ]  # fmt: skip
        assert len(workers) == 1  # the budget arms wait for the sac run
        killed_at = checkpoint_state(state)["iteration"]
        workers[0].kill()
        stdout, stderr = proc.communicate(timeout=600)
    finally:  # a failed check leaves no driver behind
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    report = json.loads((repo / "results" / "grid" / "clip.json").read_text())
    assert report["runs"]["sac/seed0"]["attempts"] == 2
    assert "attempt 2" in stdout
    resumed = checkpoint_state(state)
    assert resumed["iteration"] > killed_at >= 1
    _same_runs(repo, sequential)


# --- token authentication: the heads, the grid's pre-flight, the local engine ---------------

_DRIVER = """
import sys
import ray
ray.init(address=sys.argv[1], log_to_driver=False)
print("answer", ray.get(ray.remote(lambda: 6 * 7).remote()))
ray.shutdown()
"""


def _driver(address: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A Ray driver in a subprocess that joins ``address`` and runs one task."""
    return subprocess.run(
        [sys.executable, "-c", _DRIVER, address],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _grid_cli(address: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    """``rls3 grid --engine ray`` in a subprocess (its environment: ``env``)."""
    cmd = [
        sys.executable, "-m", "benchmark.cli", "grid", "--params", str(ROOT / "params.yaml"),
        "--model", "clip", "--engine", "ray", "--address", address, *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``rls3: error:`` line a refused grid prints (and nothing else)."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rls3: error: "), done.stderr
    return lines[0]


def test_a_token_cluster_needs_nothing_from_home(token_head: Head, tmp_path: Path) -> None:
    """The head was started with an empty HOME and its token in its own directory: a driver
    with an empty HOME joins it with RAY_AUTH_TOKEN_PATH and runs a task; without the token, or
    with another one, it is refused; neither HOME gains a file."""
    home = tmp_path / "home"
    home.mkdir()
    assert token_head.token is not None
    env = _clean_environment(home)
    token_env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_head.token)}
    joined = _driver(token_head.address, token_env)
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert "answer 42" in joined.stdout
    # without a token, Ray's driver refuses to try (in token mode) ...
    refused = _driver(token_head.address, {**env, "RAY_AUTH_MODE": "token"})
    assert refused.returncode != 0
    assert "AuthenticationError" in refused.stderr
    assert "no authentication token was found" in refused.stderr
    # ... and the head's GCS refuses a call without the token or with another one
    assert gcs_status(token_head.address) == "UNAUTHENTICATED"
    wrong = {"authorization": f"Bearer {secrets.token_hex(32)}"}
    assert gcs_status(token_head.address, wrong) == "UNAUTHENTICATED"
    right = {"authorization": f"Bearer {token_head.token.read_text()}"}
    assert gcs_status(token_head.address, right) == "OK"
    assert list(home.iterdir()) == [] and list(token_head.home.iterdir()) == []


def test_grid_names_the_fix_for_an_address_where_nothing_listens(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    done = _grid_cli(f"127.0.0.1:{port}", _clean_environment(tmp_path))
    line = _one_error_line(done)
    assert f"nothing answers at 127.0.0.1:{port} (" in line and "Connection refused)" in line
    assert f"`RAY_AUTH_MODE=token ray start --head --port {port}`" in line


def test_grid_asks_for_the_token_of_a_token_cluster(token_head: Head, tmp_path: Path) -> None:
    """No token on this machine, another token, a token file that is not there: one line each,
    naming the fix; Ray's own driver would print a traceback, or wait 20 s for the last two."""
    env = _clean_environment(tmp_path)  # an empty HOME: no ~/.ray/auth_token
    line = _one_error_line(_grid_cli(token_head.address, env))
    assert f"the Ray cluster at {token_head.address} asks for a token" in line
    assert "`ray get-auth-token --generate`" in line and "RAY_AUTH_TOKEN_PATH" in line
    other = tmp_path / "other_token"
    other.write_text(secrets.token_hex(32))
    line = _one_error_line(
        _grid_cli(token_head.address, {**env, "RAY_AUTH_TOKEN_PATH": str(other)})
    )
    assert f"refused this machine's token (RAY_AUTH_TOKEN_PATH={other})" in line
    missing = tmp_path / "missing"
    line = _one_error_line(
        _grid_cli(token_head.address, {**env, "RAY_AUTH_TOKEN_PATH": str(missing)})
    )
    assert f"RAY_AUTH_TOKEN_PATH={missing} cannot be read or is empty" in line
    assert list(tmp_path.iterdir()) == [other]


def test_grid_refuses_a_cluster_without_authentication_unless_insecure(
    open_head: Head, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused with one line naming --insecure; with it, the driver joins (in disabled mode: no
    token needed, none sent), warns once, runs a task, and leaves Ray's variables as they were."""
    line = _one_error_line(_grid_cli(open_head.address, _clean_environment(tmp_path)))
    assert f"the Ray cluster at {open_head.address} runs without authentication" in line
    assert "RAY_AUTH_MODE=token" in line and "--insecure" in line
    with pytest.raises(GridError, match="runs without authentication"):
        check_cluster(open_head.address)
    check = check_cluster(open_head.address, insecure=True)
    assert not check.authenticated and check.warning and "--insecure" in check.warning
    before = {name: os.environ.get(name) for name in AUTH_VARIABLES}
    import ray

    with joined_cluster(open_head.address, insecure=True) as gcs:
        assert os.environ["RAY_AUTH_MODE"] == "disabled"
        assert ray.get(ray.remote(lambda: 6 * 7).remote()) == 42
        assert gcs.endswith(open_head.address.rpartition(":")[2])
    assert {name: os.environ.get(name) for name in AUTH_VARIABLES} == before
    err = capsys.readouterr().err
    assert err.count("rls3: warning: joining the Ray cluster at") == 1


def _reachable_addresses(port: int) -> set[str]:
    """HOST:PORT for every address other machines could use to reach ``port`` here: the
    non-loopback addresses it listens on (every interface's, for 0.0.0.0 or ::)."""
    listening = {
        c.laddr.ip
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }
    assert listening, f"nothing listens on port {port}"
    local = {
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family in (socket.AF_INET, socket.AF_INET6)
    }
    hosts: set[str] = set()
    for ip in listening:
        candidates = local if ipaddress.ip_address(ip).is_unspecified else {ip}
        for host in candidates:
            address = ipaddress.ip_address(host.split("%")[0])
            if not (address.is_loopback or address.is_link_local):
                hosts.add(f"[{host}]:{port}" if address.version == 6 else f"{host}:{port}")
    return hosts


def test_the_local_engine_lets_no_one_in_without_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measured with Ray 2.60: the GCS of a ``ray.init`` instance listens on every interface
    (0.0.0.0), whatever node address it is given. ``local_instance`` (``rls3 grid --engine
    local``) runs it in token mode with a fresh token kept in the environment: from every
    non-loopback address, a call without the token, or with another one, is refused; the
    instance's own tasks run; HOME gets no ~/.ray/auth_token; Ray's variables are restored."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    before = {name: os.environ.get(name) for name in AUTH_VARIABLES}
    temp = tempfile.mkdtemp(prefix="/tmp/ray-")  # its session files, not /tmp/ray
    import ray

    try:
        with local_instance(1, temp) as gcs:
            token = os.environ["RAY_AUTH_TOKEN"]
            assert os.environ["RAY_AUTH_MODE"] == "token"
            assert re.fullmatch(r"[0-9a-f]{64}", token)
            port = int(gcs.rpartition(":")[2])
            # every address the GCS can be reached at from elsewhere, and the one Ray gives
            # other nodes (here: the machine's address; the GCS listens on 0.0.0.0)
            for address in _reachable_addresses(port) | {gcs}:
                assert gcs_status(address) == "UNAUTHENTICATED", address
                other = {"authorization": f"Bearer {secrets.token_hex(32)}"}
                assert gcs_status(address, other) == "UNAUTHENTICATED", address
                assert gcs_status(address, {"authorization": f"Bearer {token}"}) == "OK"
            assert ray.get(ray.remote(lambda: 6 * 7).remote()) == 42  # workers hold the token
        assert {name: os.environ.get(name) for name in AUTH_VARIABLES} == before
        assert list(home.iterdir()) == []
        assert not any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == port
            for c in psutil.net_connections("tcp")
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)
