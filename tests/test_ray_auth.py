"""Ray's token authentication, without a pipeline: heads started with an empty HOME and their
own token (``tests/ray_heads.py``), the grid's pre-flight check of a cluster (one clear line for a
missing token, an unreachable address, a cluster without authentication), and the local engine's
instance, which lets no one in without its token."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from benchmark.grid import (
    AUTH_VARIABLES,
    GridError,
    check_cluster,
    gcs_status,
    joined_cluster,
    local_instance,
)
from benchmark.sim.unity import free_port
from tests.pipeline import ROOT
from tests.ray_heads import Head, clean_environment, running_head

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def token_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """A one-node cluster (1 CPU) in token mode, started with an empty HOME."""
    with running_head(tmp_path_factory.mktemp("head-home"), token=True, cpus=1) as head:
        yield head


@pytest.fixture(scope="module")
def open_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """A one-node cluster (1 CPU) without authentication (RAY_AUTH_MODE=disabled)."""
    with running_head(tmp_path_factory.mktemp("open-home"), token=False, cpus=1) as head:
        yield head


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
    env = clean_environment(home)
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
    done = _grid_cli(f"127.0.0.1:{port}", clean_environment(tmp_path))
    line = _one_error_line(done)
    assert f"nothing answers at 127.0.0.1:{port} (" in line and "Connection refused)" in line
    assert f"`RAY_AUTH_MODE=token ray start --head --port {port}`" in line


def test_grid_asks_for_the_token_of_a_token_cluster(token_head: Head, tmp_path: Path) -> None:
    """No token on this machine, another token, a token file that is not there: one line each,
    naming the fix; Ray's own driver would print a traceback, or wait 20 s for the last two."""
    env = clean_environment(tmp_path)  # an empty HOME: no ~/.ray/auth_token
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
    line = _one_error_line(_grid_cli(open_head.address, clean_environment(tmp_path)))
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
