"""``make bench`` (``rls3 bench``): the runs side by side by default, with the files that one run
after another gives (a real smoke pipeline, real Ray, real DVC)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from benchmark.arms import ARMS, BUDGET_ARMS
from benchmark.slots import run_stage
from tests.pipeline import rls3

pytestmark = pytest.mark.integration
RUN_FILES = ("metrics.csv", "episodes.csv", "finetune_loss.csv")


def _made_here(path: str) -> bool:
    """Whether ``path`` is an agent or a run, which this bench made again."""
    return path.startswith(("results/agents/", "results/runs/"))


@pytest.mark.slow
def test_the_runs_side_by_side_give_the_files_of_one_run_at_a_time(
    smoke_pipeline: tuple[Path, str], tmp_path: Path
) -> None:
    """The session's smoke pipeline made every run one after another (`dvc repro`). A copy
    without clip's runs, its agent and its MLflow store (a new one, as in a fresh clone) gets
    `rls3 bench --model clip`, the default local engine (a Ray instance with a CPU per core):
    the agent is pre-trained beside the base model's stage, sac runs, then the other arms may
    run side by side; every run file is the same, and DVC records it all (`dvc commit`, no
    stage run twice): `make bench` again finds every stage up to date."""
    sequential = smoke_pipeline[0]
    repo = tmp_path / "repo"
    shutil.copytree(sequential, repo, symlinks=True)
    for arm in ARMS:
        shutil.rmtree(repo / "results" / "runs" / "clip" / arm / "seed0")
    shutil.rmtree(repo / "results" / "agents" / "seed0")
    (repo / "results" / "mlflow.db").unlink()
    done = rls3(repo, "bench", "--model", "clip")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rls3 grid --engine local" in done.stdout
    # pre-trained once, ahead of DVC, which records it (`dvc commit`) without running its stage,
    # as it records the grid's runs: no stage of the agent or of a used run slot ran under DVC
    assert len(re.findall(r"SAC seed 0: \d+ steps in", done.stdout)) == 1
    assert "holds the agent of these inputs" not in done.stdout
    ran = set(re.findall(r"Running stage '([^']+)'", done.stdout))
    assert not ran & {"agent@0", *(run_stage(arm, "clip", 0) for arm in ARMS)}, ran
    assert "report@clip" in ran
    # and records what `dvc repro` recorded after running them: the same deps, params and outs
    # (the hash of an agent's or a run's may differ: its timings, its own MLflow run)
    locks = [yaml.safe_load((r / "dvc.lock").read_text())["stages"] for r in (repo, sequential)]
    for stage in ["agent@0", *(run_stage(arm, "clip", 0) for arm in ARMS)]:
        made, before = (lock[stage] for lock in locks)
        assert made["cmd"] == before["cmd"] and made["params"] == before["params"], stage
        assert [d["path"] for d in made["deps"]] == [d["path"] for d in before["deps"]], stage
        assert [d for d in made["deps"] if not _made_here(d["path"])] == [
            d for d in before["deps"] if not _made_here(d["path"])
        ], stage
        assert [o["path"] for o in made["outs"]] == [o["path"] for o in before["outs"]], stage
    # the budget arms waited for the sac run's budget, then were free to run at once (smoke
    # runs last a second or two, so whether they overlapped is up to the workers' start-up)
    runs = json.loads((repo / "results" / "grid" / "clip.json").read_text())["runs"]
    sac = runs["sac/seed0"]
    assert sac["finished"] <= min(runs[f"{arm}/seed0"]["started"] for arm in BUDGET_ARMS)
    assert all(runs[f"{arm}/seed0"]["attempts"] == 1 for arm in ARMS)
    made, before = (
        json.loads((r / "results" / "agents" / "seed0" / "pretrain.json").read_text())
        for r in (repo, sequential)
    )
    assert made["inputs"] == before["inputs"]
    assert made["valid_rate_after"] == before["valid_rate_after"]
    for arm in ARMS:
        runs = [r / "results" / "runs" / "clip" / arm / "seed0" for r in (repo, sequential)]
        for name in RUN_FILES:
            assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), (arm, name)
    bench = json.loads((repo / "results/report/clip/bench.json").read_text())
    assert bench["engine"] == "local"
    # the bench states what its bits depend on, and is byte-identical to the pipeline's
    reference = sequential / "results" / "report" / "clip"
    assert (
        bench["fingerprint"]
        == json.loads((reference / "run_files.json").read_text())["fingerprint"]
    )
    checked = rls3(
        repo, "bench", "--model", "clip", "--check-reference", "--reference", str(reference)
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "(byte identity): passed" in checked.stdout
    # `make bench` again, on the finished pipeline: DVC recorded the agent and the grid's runs,
    # so `dvc status` finds every stage up to date but the check; no agent is pre-trained and no
    # Ray started, and bench.json records that short time
    again = rls3(repo, "bench", "--model", "clip")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "rls3 bench: every stage of report@clip is up to date; no grid to run" in again.stdout
    assert "rls3 grid" not in again.stdout and "SAC seed" not in again.stdout
    assert "rls3 bench: `dvc repro report@clip`" in again.stdout
    assert set(re.findall(r"Running stage '([^']+)'", again.stdout)) == {"check"}
    record = json.loads((repo / "results/report/clip/bench.json").read_text())
    assert record["command"] == "make bench MODEL=clip"
    assert 0 < record["wall_seconds"] < 600 and record["machine"]
    # the machine's speed at the bench's start and end, on the runs' one thread
    for when in ("start", "end"):
        speed = record["speed"][when]
        assert speed["threads"] == 1 and 0 < speed["mlp_step_ms"] < speed["text_step_ms"]
    assert f"report: {Path('results/report/clip/REPORT.md')}" in again.stdout


def test_recording_a_stage_dvc_yaml_lacks_fails_with_its_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bench's recording of the stages it made is DVC's: a name dvc.yaml does not define is
    an error naming it, with nothing written."""
    from benchmark.bench import _record
    from tests.pipeline import ROOT

    monkeypatch.chdir(ROOT)
    lock = (ROOT / "dvc.lock").read_bytes()
    assert _record(["run_sac@clip-0", "run_sac@clip-99"]) == 1
    err = capsys.readouterr().err
    assert "recording 2 stages failed" in err and "run_sac@clip-99" in err, err
    assert (ROOT / "dvc.lock").read_bytes() == lock
