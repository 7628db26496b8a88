"""Algorithm 1 end to end on the smoke profile: real simulator, real CLIP, real SAC, real MLflow."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from benchmark.agents import pretrain_sac
from benchmark.config import load_params
from benchmark.datasets import build_dataset
from benchmark.loop import run_dir, run_from_params
from benchmark.tracking import tracking_uri
from benchmark.vlm.pretrain import pretrain_config
from benchmark.vlm.pretrain import run as pretrain_vlm

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Datasets, a pre-trained SAC and a base CLIP for seed 0, as the pipeline makes them."""
    root = tmp_path_factory.mktemp("project")
    p = load_params(ROOT / "params.yaml", "smoke").active
    build_dataset("validation", p.datasets.validation, 1, p.sim.image_size, root / "datasets")
    build_dataset("test", p.datasets.test, 2, p.sim.image_size, root / "datasets")
    env_kwargs = {"t0": p.loop.t0, "max_steps": 8 * p.loop.t0}
    pretrain_sac(
        p.agent, 0, root / "results" / "agents" / "seed0", env_kwargs=env_kwargs, eval_steps=50
    )
    config = pretrain_config("clip", samples=48, epochs=1, test_samples=16, seed=0)
    pretrain_vlm(config, root / "results" / "vlm" / "clip" / "base")
    return root


@pytest.fixture(scope="module")
def finished(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sac then the random run of seed 0, uninterrupted, in a copy of the project."""
    root = tmp_path_factory.mktemp("finished")
    shutil.copytree(project, root, dirs_exist_ok=True)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    params = load_params(ROOT / "params.yaml", "smoke")
    for arm in ("sac", "random"):
        run_from_params(
            params, "clip", arm, 0, results=root / "results", datasets=root / "datasets"
        )
    return root


def test_the_random_arm_spends_exactly_the_sac_arms_budget(finished: Path) -> None:
    sac = json.loads((run_dir(finished / "results", "clip", "sac", 0) / "summary.json").read_text())
    rnd = json.loads(
        (run_dir(finished / "results", "clip", "random", 0) / "summary.json").read_text()
    )
    assert sac["finished"] and rnd["finished"] and rnd["stopped"] == "budget"
    assert rnd["generated_samples"] == sac["generated_samples"] == rnd["budget"]
    assert sac["iterations"] >= 2


def test_the_finetuning_batch_is_e_eta_t0(finished: Path) -> None:
    p = load_params(ROOT / "params.yaml", "smoke").active
    expected = p.loop.episodes * round(p.loop.eta * p.loop.t0)
    rows = _rows(run_dir(finished / "results", "clip", "sac", 0) / "metrics.csv")
    assert [int(r["batch_size"]) for r in rows[1:]] == [expected] * (len(rows) - 1)
    episodes = _rows(run_dir(finished / "results", "clip", "sac", 0) / "episodes.csv")
    assert {int(e["valid"]) for e in episodes} == {p.loop.t0}


def test_j2_reaches_sac_only_at_the_last_step_of_each_episode(finished: Path) -> None:
    """What SAC stored in its replay buffer: +-1 everywhere but the episodes' last steps."""
    from stable_baselines3 import SAC

    checkpoint = run_dir(finished / "results", "clip", "sac", 0) / "checkpoint" / "sac"
    model = SAC.load(checkpoint / "model.zip", device="cpu")
    model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
    buffer = model.replay_buffer
    episodes = _rows(run_dir(finished / "results", "clip", "sac", 0) / "episodes.csv")
    loop_steps = sum(int(e["steps"]) for e in episodes)
    end = buffer.pos
    rewards = buffer.rewards[end - loop_steps : end, 0]
    dones = buffer.dones[end - loop_steps : end, 0]
    last = np.cumsum([int(e["steps"]) for e in episodes]) - 1
    assert np.flatnonzero(dones).tolist() == last.tolist()
    middle = np.delete(rewards, last)
    assert set(np.unique(middle)) <= {-1.0, 1.0}
    for e, i in zip(episodes, last, strict=True):
        j2 = float(e["j2"])
        assert j2 > 0
        assert rewards[i] == pytest.approx(float(e["reward_last"]), rel=1e-5)
        intrinsic = rewards[i] - 10.0 * j2  # beta = 10 in the smoke profile
        assert min(abs(intrinsic - 1.0), abs(intrinsic + 1.0)) < 1e-3
    assert np.sum(rewards) == pytest.approx(
        sum(float(e["reward_total"]) for e in episodes), rel=1e-4
    )


def test_mlflow_holds_both_runs_with_every_metric_and_the_files_match(finished: Path) -> None:
    client = MlflowClient(tracking_uri(finished / "results"))
    experiment = client.get_experiment_by_name("rls3-clip")
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"sac-seed0", "random-seed0"}
    for name, run in runs.items():
        arm = name.split("-")[0]
        tags = run.data.tags
        assert (tags["arm"], tags["seed"], tags["model"], tags["profile"]) == (
            arm,
            "0",
            "clip",
            "smoke",
        )
        assert tags["git_commit"] and tags["dataset.test"] and tags["dataset.validation"]
        assert run.data.params["loop.t0"] == "8"
        keys = set(run.data.metrics)
        for key in (
            "generated_samples", "valid_samples", "valid_rate", "val/metric", "test/metric",
            "episode/j1", "episode/j2", "finetune/loss", "test/n_terms/1", "test/term/left",
            "batch_terms_cum/behind",
        ):  # fmt: skip
            assert key in keys, f"{name}: {key} missing"
        rows = _rows(run_dir(finished / "results", "clip", arm, 0) / "metrics.csv")
        history = client.get_metric_history(run.info.run_id, "test/metric")
        assert sorted((m.step, m.value) for m in history) == [
            (int(r["generated_samples"]), pytest.approx(float(r["test/metric"]))) for r in rows
        ]
        losses = _rows(run_dir(finished / "results", "clip", arm, 0) / "finetune_loss.csv")
        logged = client.get_metric_history(run.info.run_id, "finetune/loss")
        assert [m.value for m in sorted(logged, key=lambda m: m.step)] == pytest.approx(
            [float(r["loss"]) for r in losses]
        )


def test_a_random_run_without_its_sac_budget_says_which_run_to_do_first(
    project: Path, tmp_path
) -> None:
    params = load_params(ROOT / "params.yaml", "smoke")
    with pytest.raises(FileNotFoundError, match="rls3 run --model clip --arm sac --seed 0"):
        run_from_params(
            params, "clip", "random", 0, results=tmp_path, datasets=project / "datasets"
        )


def test_a_killed_run_resumes_and_ends_with_the_same_metrics(
    project: Path, finished: Path, tmp_path: Path
) -> None:
    """SIGKILL a real `rls3 run` after its first checkpoint, rerun it, compare every metric."""
    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    cmd = [
        sys.executable, "-m", "benchmark.cli", "run", "--params", str(ROOT / "params.yaml"),
        "--profile", "smoke", "--model", "clip", "--arm", "sac", "--seed", "0",
        "--results", str(tmp_path / "results"), "--datasets", str(tmp_path / "datasets"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    state = run_dir(tmp_path / "results", "clip", "sac", 0) / "checkpoint" / "state.json"
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["iteration"] >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["iteration"]
    assert killed_at >= 1 and json.loads(state.read_text())["stopped"] is None

    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    resumed = run_dir(tmp_path / "results", "clip", "sac", 0)
    reference = run_dir(finished / "results", "clip", "sac", 0)
    for name in ("metrics.csv", "episodes.csv", "finetune_loss.csv"):
        assert (resumed / name).read_text() == (reference / name).read_text(), name
    # The MLflow run was reopened, not duplicated, and holds each step once.
    client = MlflowClient(tracking_uri(tmp_path / "results"))
    runs = client.search_runs([client.get_experiment_by_name("rls3-clip").experiment_id])
    assert len(runs) == 1
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "test/metric")]
    assert len(steps) == len(set(steps)) == len(_rows(resumed / "metrics.csv"))
