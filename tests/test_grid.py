"""``rls3 grid`` on a real local Ray cluster: ``ray start --head`` on 127.0.0.1 with 2 CPUs,
started and stopped here; the smoke grid joins it by ``--address``. No mock: the runs are the
real loop, and their files are compared with the same runs made one after another by
``dvc repro``.

The head is started and stopped as ``tests/ray_heads.py`` does it (its own directory and token,
nothing from ``~/.ray``); the checks of token authentication that need no pipeline are in
``tests/test_ray_auth.py``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from benchmark.arms import ARMS, BUDGET_ARMS
from benchmark.slots import run_stage
from tests.pipeline import (
    checkpoint_state,
    dvc,
    environment,
    wait_for_iteration,
)
from tests.ray_heads import Head, head_processes, running_head

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


@pytest.fixture(scope="module")
def cluster() -> Iterator[Head]:
    """A one-node Ray cluster with 2 CPUs on 127.0.0.1, with Ray's token authentication.
    (Ray advertises the machine's own address for a node asked to be 127.0.0.1, and its GCS
    listens on every interface: the token keeps others out.) The token is the head's own, in
    a file of its directory: the driver (a subprocess, which inherits this environment)
    finds it through RAY_AUTH_TOKEN_PATH, set for this module only; the grid turns token mode
    on itself."""
    with running_head(Path.home(), token=True) as head, pytest.MonkeyPatch.context() as patch:
        assert head.token is not None
        patch.delenv("RAY_AUTH_TOKEN", raising=False)
        patch.setenv("RAY_AUTH_TOKEN_PATH", str(head.token))
        yield head


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
def test_the_grid_on_a_ray_cluster_retries_a_killed_worker_and_equals_the_sequential_runs(
    sequential: Path, cluster: Head, tmp_path: Path
) -> None:
    """`rls3 grid --engine ray --address` joins the cluster; the Ray worker that runs the sac
    task is SIGKILLed after its first checkpoint: Ray retries the task, the run resumes there,
    the budget arms run on the budget passed on from it, and every file equals the sequential
    run's. DVC then records the grid's runs without redoing them, and a second repro does
    nothing. (One grid for both: each is minutes of the suite.)"""
    repo = _fresh_copy(sequential, tmp_path / "repo")
    cmd = [sys.executable, "-m", "benchmark.cli", *_grid_args(repo, cluster.address)]
    # from the project's directory, as on a cluster: Ray puts the driver's directory first on
    # its workers' path, so the runs use the copy's code (the one its checkpoints record)
    proc = subprocess.Popen(
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
            p for p in head_processes(cluster)
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
    counts = [
        tuple(map(int, m))
        for m in re.findall(r"grid: (\d+) queued, (\d+) running, (\d+) done", stdout)
    ]
    assert counts and all(sum(c) == len(ARMS) for c in counts)  # every view: every run
    assert [c[2] for c in counts] == sorted(c[2] for c in counts)  # done never goes back
    assert counts[-1] == (0, 0, len(ARMS)) and any(c[1] >= 1 for c in counts)
    assert "attempt 2" in stdout
    resumed = checkpoint_state(state)
    assert resumed["iteration"] > killed_at >= 1
    _same_runs(repo, sequential)
    # the sac task ran twice; the budget arms once, on the budget Ray passed on from it
    report = json.loads((repo / "results" / "grid" / "clip.json").read_text())
    assert report["runs"]["sac/seed0"]["attempts"] == 2
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
