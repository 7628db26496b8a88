"""Algorithm 1 end to end on the smoke profile: real simulator, real CLIP, real SAC, real MLflow."""

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from benchmark.agents import pretrain_sac
from benchmark.arms import ARMS, BUDGET_ARMS, arm_of
from benchmark.cli import INTERRUPTED, main
from benchmark.config import ClipPretrainConfig, load_params
from benchmark.datasets import build_dataset
from benchmark.external import read_external
from benchmark.layout import run_dir
from benchmark.loop import run_from_params, run_params
from benchmark.pretrain import run as pretrain_vlm
from benchmark.sim.backends import profile_env_kwargs
from benchmark.tracking import tracking_uri
from tests.external_sets import write_whatsup
from tests.pipeline import checkpoint_state, wait_for_iteration

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
    for split, size, seed in (
        ("validation", p.datasets.validation, 1),
        ("test", p.datasets.test, 2),
    ):
        build_dataset(split, size, seed, root / "datasets", sim=p.sim, t0=p.loop.t0)
    env_kwargs = profile_env_kwargs(p.sim, p.loop.t0)  # as `rls3 pretrain-agent` does
    pretrain_sac(
        p.agent, 0, root / "results" / "agents" / "seed0", env_kwargs=env_kwargs, eval_steps=50
    )
    config = ClipPretrainConfig(samples=48, epochs=1, test_samples=16, seed=0)
    pretrain_vlm(
        "clip",
        config,
        p.sim,
        p.loop.t0,
        p.clip.evaluate,
        root / "results" / "vlm" / "clip" / "base",
    )
    return root


@pytest.fixture(scope="module")
def finished(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every arm's run of seed 0, uninterrupted, in a copy of the project."""
    root = tmp_path_factory.mktemp("finished")
    shutil.copytree(project, root, dirs_exist_ok=True)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    params = load_params(ROOT / "params.yaml", "smoke")
    for arm in ARMS:
        run_from_params(
            params, "clip", arm, 0, results=root / "results", datasets=root / "datasets"
        )
    return root


def _summary(root: Path, arm: str) -> dict:
    return json.loads((run_dir(root / "results", "clip", arm, 0) / "summary.json").read_text())


def test_every_other_arm_spends_exactly_the_sac_arms_budget(finished: Path) -> None:
    sac = _summary(finished, "sac")
    assert sac["finished"] and sac["iterations"] >= 2
    assert set(BUDGET_ARMS) == set(ARMS) - {"sac"}
    for arm in BUDGET_ARMS:
        run = _summary(finished, arm)
        assert run["finished"] and run["stopped"] == "budget"
        assert run["generated_samples"] == sac["generated_samples"] == run["budget"]
        assert run["loop_gamma"] == (0.99 if arm_of(arm).learns else None)


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
    assert buffer is not None
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
    assert set(runs) == {f"{arm}-seed0" for arm in ARMS}
    for name, run in runs.items():
        arm = name.rsplit("-", 1)[0]
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
            "batch_terms_cum/behind", "batch_terms/behind", "hardness", "error_rate",
            "episode/hardness", "test/control", "test/grounded_gain",
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


def test_every_run_scores_the_same_image_shuffled_control_at_every_test(
    project: Path, finished: Path, tmp_path: Path
) -> None:
    """The control is the probe's derangement of the test set: the same for every arm and seed,
    no test sample paired with its own image; each metrics.csv row holds it, and the grounded
    gain is the test metric minus it."""
    from benchmark.datasets import derangement, read_dataset
    from benchmark.loop import RunConfig, read_inputs
    from benchmark.vlm import vlm_loader

    params = load_params(ROOT / "params.yaml", "smoke")
    p = params.active
    loader = vlm_loader("clip", p.clip.vlm_config(), 0)
    base, agents = project / "results" / "vlm" / "clip" / "base", project / "results" / "agents"
    test = read_dataset(finished / "datasets" / "test").samples
    expected = derangement(len(test), p.clip.probe.seed)
    assert sorted(expected.tolist()) == list(range(len(test)))
    assert (expected != np.arange(len(test))).all()
    runs = [
        read_inputs(
            RunConfig("clip", arm, 0, "smoke", p, finished / "results", finished / "datasets"),
            base,
            agents / "seed0",
        )
        for arm in ARMS
    ]
    shutil.copytree(project / "datasets", tmp_path / "datasets")  # another seed, a fresh run
    other = RunConfig("clip", "sac", 1, "smoke", p, tmp_path / "results", tmp_path / "datasets")
    runs.append(read_inputs(other, base, agents / "seed0"))
    for run in runs:
        assert (run.control_donors == expected).all()
        for i, sample in enumerate(run.control):
            assert sample.record == test[i].record
            assert np.array_equal(sample.image, test[int(expected[i])].image)
            assert not np.array_equal(sample.image, test[i].image)
    for arm in ARMS:
        d = run_dir(finished / "results", "clip", arm, 0)
        rows = _rows(d / "metrics.csv")
        for r in rows:
            gain = float(r["test/metric"]) - float(r["test/control"])
            assert float(r["test/grounded_gain"]) == pytest.approx(gain)
        final = loader(d / "checkpoint" / "vlm")  # the model the last row scored
        control = final.metric(final.evaluate(runs[0].control))
        assert float(rows[-1]["test/control"]) == pytest.approx(control)
        assert float(rows[-1]["test/metric"]) == pytest.approx(final.metric(final.evaluate(test)))


def test_a_random_run_without_its_sac_budget_says_which_run_to_do_first(
    project: Path, tmp_path
) -> None:
    params = load_params(ROOT / "params.yaml", "smoke")
    with pytest.raises(FileNotFoundError, match="rls3 run --model clip --arm sac --seed 0"):
        run_from_params(
            params, "clip", "random", 0, results=tmp_path, datasets=project / "datasets"
        )


def _sac_run_command(params: Path, root: Path) -> tuple[list[str], dict[str, str], Path]:
    """`rls3 run` of the smoke sac run of seed 0 in ``root``: its command, environment and the
    state file of its checkpoint."""
    cmd = [
        sys.executable, "-m", "benchmark.cli", "run", "--params", str(params),
        "--profile", "smoke", "--model", "clip", "--arm", "sac", "--seed", "0",
        "--results", str(root / "results"), "--datasets", str(root / "datasets"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return cmd, env, run_dir(root / "results", "clip", "sac", 0) / "checkpoint" / "state.json"


def _resume_and_compare(cmd: list[str], env: dict[str, str], root: Path, finished: Path) -> Path:
    """Run ``cmd`` again (it resumes), then compare the sac run's files in ``root`` with the
    uninterrupted run's; the resumed run's directory."""
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    resumed = run_dir(root / "results", "clip", "sac", 0)
    reference = run_dir(finished / "results", "clip", "sac", 0)
    for name in ("metrics.csv", "episodes.csv", "finetune_loss.csv"):
        assert (resumed / name).read_text() == (reference / name).read_text(), name
    return resumed


def test_a_killed_run_resumes_and_ends_with_the_same_metrics(
    project: Path, finished: Path, tmp_path: Path
) -> None:
    """SIGKILL a real `rls3 run` after its first checkpoint, rerun it, compare every metric."""
    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    cmd, env, state = _sac_run_command(ROOT / "params.yaml", tmp_path)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_iteration(proc, state)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = checkpoint_state(state)
    assert killed["iteration"] >= 1 and killed["stopped"] is None

    resumed = _resume_and_compare(cmd, env, tmp_path, finished)
    # The MLflow run was reopened, not duplicated, and holds each step once.
    client = MlflowClient(tracking_uri(tmp_path / "results"))
    experiment = client.get_experiment_by_name("rls3-clip")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "test/metric")]
    assert len(steps) == len(set(steps)) == len(_rows(resumed / "metrics.csv"))


def test_ctrl_c_stops_a_run_with_one_line_and_keeps_its_last_iteration(
    project: Path, tmp_path: Path
) -> None:
    """SIGINT (Ctrl-C) a real `rls3 run` after its first checkpoint: it exits 130 with one line
    on stderr saying how to resume, not a traceback, and its checkpoint stays a resumable one
    (the resume itself is the SIGKILL test's). The run is given 30 iterations, so that the
    signal finds it running (the smoke run stops after its second). It starts with SIGINT's
    default action, as a command typed at a terminal does: a suite started in the background
    (`make test &`) ignores SIGINT, and so, rightly, would the run it starts."""
    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    smoke = data["profiles"]["smoke"]
    smoke["loop"]["max_iterations"] = 30
    smoke["clip"]["early_stopping"]["patience"] = 30
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    cmd, env, state = _sac_run_command(params, tmp_path)
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for_iteration(proc, state)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == f"rls3: {INTERRUPTED}"
    stopped = checkpoint_state(state)
    assert stopped["iteration"] >= 1 and stopped["stopped"] is None


# ---------------------------------------------------------------------------- the VLM's reward


def _buffer_rewards(root: Path, arm: str) -> tuple[np.ndarray, list[dict[str, str]]]:
    """The rewards the loop stored in SAC's replay buffer, and the run's episodes."""
    from stable_baselines3 import SAC

    checkpoint = run_dir(root / "results", "clip", arm, 0) / "checkpoint" / "sac"
    model = SAC.load(checkpoint / "model.zip", device="cpu")
    model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
    episodes = _rows(run_dir(root / "results", "clip", arm, 0) / "episodes.csv")
    steps = sum(int(e["steps"]) for e in episodes)
    buffer = model.replay_buffer
    assert buffer is not None
    return buffer.rewards[buffer.pos - steps : buffer.pos, 0], episodes


def test_sac_dense_rewards_every_valid_step_and_sums_to_beta_j2(finished: Path) -> None:
    rewards, episodes = _buffer_rewards(finished, "sac-dense")
    start = 0
    for e in episodes:
        steps = rewards[start : start + int(e["steps"])]
        start += int(e["steps"])
        invalid = steps == -1.0  # an infeasible step earns its -1 and nothing else
        assert (~invalid).sum() == int(e["valid"])
        extrinsic = steps[~invalid] - 1.0  # a valid step: +1 and its own share of beta * J2
        assert (extrinsic > 0).all() and len(set(np.round(extrinsic, 4))) > 1
        assert extrinsic.sum() == pytest.approx(10.0 * float(e["j2"]), rel=1e-4)  # beta = 10
        assert float(e["extrinsic"]) == pytest.approx(10.0 * float(e["j2"]), rel=1e-5)


def test_the_dense_shares_follow_each_samples_hardness() -> None:
    from benchmark.loop import extrinsic_rewards

    hardness = [0.5, 1.5, 1.0]
    dense = extrinsic_rewards(arm_of("sac-dense"), 10.0, hardness, [0, 2, 3], 4)
    assert dense.tolist() == pytest.approx([10 * 1.0 * 0.5 / 3, 0.0, 10 * 1.0 * 1.5 / 3, 10 / 3])
    assert dense.sum() == pytest.approx(10.0 * np.mean(hardness) ** 2)  # beta * J2, eq. 3
    sparse = extrinsic_rewards(arm_of("sac"), 10.0, hardness, [0, 2, 3], 4)
    assert sparse.tolist() == pytest.approx([0.0, 0.0, 0.0, 10.0])
    for arm in ("sac-nofeedback", "random", "random-hardest"):  # no VLM reward
        assert not extrinsic_rewards(arm_of(arm), 10.0, hardness, [0, 2, 3], 4).any()


def test_the_hardest_draw_takes_the_eta_n_highest_and_the_uniform_draw_what_the_rng_says() -> None:
    from benchmark.loop import batch_draw

    hardness = [0.3, 2.0, 0.9, 2.0, 0.1, 1.2]
    rng = np.random.default_rng(5)
    hardest = batch_draw(arm_of("random-hardest"), 0.5, hardness, rng)
    assert hardest == [1, 3, 5]  # the three highest; the tie at 2.0 keeps both
    uniform = batch_draw(arm_of("random"), 0.5, hardness, np.random.default_rng(5))
    assert uniform == sorted(np.random.default_rng(5).choice(6, size=3, replace=False).tolist())
    # both consume the same draw: the caption stream after line 14 is the same for every arm
    after = np.random.default_rng(5)
    after.choice(6, size=3, replace=False)
    assert rng.random() == after.random()


def _fresh_run(project: Path, tmp: Path, finished: Path, arm: str):
    """A fresh ``Run`` of ``arm`` (seed 0, smoke) in a copy of ``project`` that holds the
    finished sac run's summary (the budget); its iteration 0 done."""
    from benchmark.loop import RunConfig, open_run, read_inputs
    from benchmark.vlm import vlm_loader

    if not (tmp / "datasets").exists():
        shutil.copytree(project, tmp, dirs_exist_ok=True)
        summary = run_dir(tmp / "results", "clip", "sac", 0) / "summary.json"
        summary.parent.mkdir(parents=True)
        shutil.copy(run_dir(finished / "results", "clip", "sac", 0) / "summary.json", summary)
    params = load_params(ROOT / "params.yaml", "smoke")
    p = params.active
    cfg = RunConfig("clip", arm, 0, "smoke", p, tmp / "results", tmp / "datasets")
    loader = vlm_loader("clip", p.clip.vlm_config(), 0)
    base, agent = tmp / "results" / "vlm" / "clip" / "base", tmp / "results" / "agents" / "seed0"
    run = open_run(cfg, read_inputs(cfg, base, agent), loader)
    run.begin()
    return run


def test_random_hardest_draws_the_eta_n_hardest_samples_under_the_vlm_before_fine_tuning(
    project: Path, finished: Path, tmp_path: Path
) -> None:
    """The batch of a real random-hardest episode: its eta * N samples with the highest loss
    under the VLM as it stood before the iteration's fine-tuning, recomputed independently."""
    import copy

    from benchmark.captions import describe_sample
    from benchmark.samples import Sample

    run = _fresh_run(project, tmp_path, finished, "random-hardest")
    try:
        run._begin_iteration(1)
        for _ in range(2):  # two episodes of iteration 1, before any fine-tuning
            episode = run._generate()
            rng = copy.deepcopy(run.rng)  # the caption stream _vlm_feedback will use
            samples = [
                Sample(t.info["image"], describe_sample(t.info["sample"], rng), t.info["sample"])
                for t in (episode.transitions[i] for i in episode.valid_steps)
            ]
            hardness = np.array(run.vlm.hardness(run.vlm.evaluate(samples)))
            batch = run._vlm_feedback(1, episode)
            n = round(run.loop.eta * len(samples))
            assert len(batch) == n and 0 < n < len(samples)

            def key(sample: Sample) -> tuple[bytes, str]:
                return sample.image.tobytes(), repr(sample.record)

            order = np.argsort(-hardness, kind="stable")
            assert {key(b) for b in batch} == {key(samples[i]) for i in order[:n]}
            assert hardness[order[:n]].min() >= hardness[order[n:]].max()
            assert run.episodes[-1].hardness == pytest.approx(hardness.mean())
    finally:
        run.vec_env.close()


def test_sac_nofeedback_acts_and_learns_as_sac_until_the_episode_ends_and_gets_no_vlm_reward(
    project: Path, finished: Path, tmp_path: Path
) -> None:
    """The first loop episode of sac and of sac-nofeedback, from the same agent and the same
    random state: the same actions and the same network after every update; at the episode's
    end sac stores beta * J2 on its last step and sac-nofeedback its +-1 alone."""
    import torch

    def first_episode(arm: str):
        run = _fresh_run(project, tmp_path / arm, finished, arm)
        run._begin_iteration(1)
        torch.manual_seed(11)
        np.random.seed(11)  # SB3's replay buffer samples with NumPy's global state
        episode = run._generate()
        actor = [p.detach().clone() for p in run.arm.model.actor.parameters()]
        run._vlm_feedback(1, episode)
        buffer = run.arm.model.replay_buffer
        stored = buffer.rewards[buffer.pos - len(episode.transitions) : buffer.pos, 0].copy()
        run.vec_env.close()
        return episode, actor, stored, run.episodes[-1]

    sac, nofeedback = first_episode("sac"), first_episode("sac-nofeedback")
    actions = [
        np.asarray([t.buffer_action for t in e.transitions]) for e in (sac[0], nofeedback[0])
    ]
    assert actions[0].shape == actions[1].shape and np.array_equal(actions[0], actions[1])
    for a, b in zip(sac[1], nofeedback[1], strict=True):
        assert torch.equal(a, b)
    intrinsic = np.array([t.intrinsic for t in sac[0].transitions])
    assert np.array_equal(nofeedback[2], intrinsic.astype(np.float32))  # +-1 only
    assert nofeedback[3].extrinsic == 0.0 and nofeedback[3].j2 > 0  # J2 measured, not given
    assert sac[2][-1] == pytest.approx(intrinsic[-1] + 10.0 * sac[3].j2, rel=1e-5)  # beta 10


def test_sac_nofeedback_stores_only_feasibility_rewards(finished: Path) -> None:
    rewards, episodes = _buffer_rewards(finished, "sac-nofeedback")
    assert set(np.unique(rewards)) <= {-1.0, 1.0}
    assert all(float(e["extrinsic"]) == 0.0 and float(e["j2"]) > 0 for e in episodes)


def test_every_episode_logs_the_hardness_j2_squares(finished: Path) -> None:
    for arm in ARMS:
        episodes = _rows(run_dir(finished / "results", "clip", arm, 0) / "episodes.csv")
        for e in episodes:
            assert float(e["hardness"]) > 0 and 0 <= float(e["error_rate"]) <= 1
            assert float(e["j2"]) == pytest.approx(float(e["hardness"]) ** 2, rel=1e-6)
        rows = _rows(run_dir(finished / "results", "clip", arm, 0) / "metrics.csv")
        assert np.isnan(float(rows[0]["hardness"]))  # iteration 0: the base model, no samples
        for row in rows[1:]:
            mine = [e for e in episodes if int(e["iteration"]) == int(row["iteration"])]
            weights = [int(e["valid"]) for e in mine]
            expected = np.average([float(e["hardness"]) for e in mine], weights=weights)
            assert float(row["hardness"]) == pytest.approx(expected)
            terms = sum(int(row[f"batch_terms/{k}"]) for k in ("left", "right", "above", "below",
                        "in_front_of", "behind"))  # fmt: skip
            assert (terms > 0) == (int(row["batch_size"]) > 0)  # a batch too small: none


@pytest.mark.slow
def test_the_loop_discount_carries_j2_back_to_the_first_placements(
    project: Path, one_torch_thread: None
) -> None:
    """Two copies of the loop's SAC learn from one real episode that differs only in J2: with
    the loop's discount the critic's value of the episode's first placement moves with J2; with
    gamma 0 (beta * J2 credited to the last placement alone) it does not."""
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv

    from benchmark.agents import load_sac
    from benchmark.loop import Episode, SacArm, Timers, Transition, extrinsic_rewards
    from benchmark.sim.env import PlacementEnv

    loop = load_params(ROOT / "params.yaml", "smoke").active.loop
    env = DummyVecEnv([lambda: PlacementEnv("train", t0=loop.t0, render_images=False)])
    env.seed(3)
    obs, rng, episode = env.reset(), np.random.default_rng(0), Episode()
    while not episode.transitions or not episode.transitions[-1].done:
        action = rng.uniform(-1, 1, (1, 3)).astype(np.float32)
        new_obs, reward, done, info = env.step(action)
        assert isinstance(obs, np.ndarray) and isinstance(new_obs, np.ndarray)
        if info[0]["valid"]:
            episode.valid_steps.append(len(episode.transitions))
        episode.transitions.append(
            Transition(obs, action, new_obs, float(reward[0]), bool(done[0]), info[0])
        )
        obs = new_obs
    intrinsic = np.array([t.intrinsic for t in episode.transitions])
    first = episode.transitions[0]

    def first_value(gamma: float, j2: float) -> float:
        torch.manual_seed(0)
        model = load_sac(project / "results" / "agents" / "seed0", env)
        arm = SacArm(model, gamma, Timers())
        assert model.replay_buffer is not None
        model.replay_buffer.reset()  # this episode alone
        hardness = [np.sqrt(j2)] * len(episode.valid_steps)
        extrinsic = extrinsic_rewards(
            arm_of("sac"), loop.beta, hardness, episode.valid_steps, len(intrinsic)
        )
        arm.store(episode, intrinsic + extrinsic)
        model.train(gradient_steps=1000, batch_size=64)
        with torch.no_grad():
            q = model.critic(torch.as_tensor(first.obs), torch.as_tensor(first.buffer_action))
        return float(torch.min(*q))

    moved = {g: first_value(g, 5.0) - first_value(g, 0.0) for g in (0.0, loop.gamma)}
    assert abs(moved[0.0]) < 0.05  # beta * J2 = 50 more on the last step: the first's value stays
    assert moved[loop.gamma] > 2.0  # ... and with the loop's discount it rises


# ---------------------------------------------------------------------------- correctness


def test_a_run_starts_afresh_when_its_code_changed(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished run whose code changed since its checkpoint runs again, not its old summary."""
    import benchmark.provenance

    shutil.copytree(finished, tmp_path / "project", dirs_exist_ok=True)
    code = tmp_path / "benchmark"
    shutil.copytree(ROOT / "benchmark", code, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(benchmark.provenance, "CODE_ROOT", code)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    params = load_params(ROOT / "params.yaml", "smoke")
    results, datasets = tmp_path / "project" / "results", tmp_path / "project" / "datasets"
    old = json.loads((run_dir(results, "clip", "sac", 0) / "summary.json").read_text())
    same = run_from_params(params, "clip", "sac", 0, results=results, datasets=datasets)
    assert same["mlflow_run_id"] == old["mlflow_run_id"]  # same code: the finished run stands
    with (code / "vlm" / "clip.py").open("a") as f:
        f.write("\n# a change to the code the runs depend on\n")
    again = run_from_params(params, "clip", "sac", 0, results=results, datasets=datasets)
    assert again["mlflow_run_id"] != old["mlflow_run_id"]  # a new run, from iteration 0
    held = run_dir(results, "clip", "sac", 0) / "checkpoint" / "inputs.json"
    assert json.loads(held.read_text())["code"] == benchmark.provenance.code_digest(code)


def test_a_run_scores_each_external_set_at_every_test_and_a_changed_set_starts_it_afresh(
    project: Path, tmp_path: Path
) -> None:
    """A What'sUp-layout set of renders: every metrics.csv row and MLflow hold its score, which
    is what ``rls3 eval`` gives on the same checkpoint; its content hash is an input, so one
    changed image starts the finished run afresh."""
    root = tmp_path / "project"
    shutil.copytree(project, root)
    annotations = write_whatsup(tmp_path / "whatsup" / "data")
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["profile"] = "smoke"
    data["profiles"]["smoke"]["datasets"]["external"] = [
        {"name": "whatsup", "path": str(annotations), "format": "whatsup"}
    ]
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(data))
    params = load_params(params_file)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    results, datasets = root / "results", root / "datasets"
    first = run_from_params(params, "clip", "sac", 0, results=results, datasets=datasets)
    spec = params.active.datasets.external[0]
    assert first["external_hashes"] == {"whatsup": read_external(spec).content_hash}
    directory = run_dir(results, "clip", "sac", 0)
    rows = _rows(directory / "metrics.csv")
    assert len(rows) == first["iterations"] + 1  # the base model's row, then one an iteration
    scores = [float(r["external/whatsup/metric"]) for r in rows]
    assert all(0 <= s <= 1 for s in scores)
    client = MlflowClient(tracking_uri(results))
    history = client.get_metric_history(first["mlflow_run_id"], "external/whatsup/metric")
    assert sorted(m.value for m in history) == pytest.approx(sorted(scores))
    out = tmp_path / "eval.json"
    checkpoint = directory / "checkpoint" / "vlm"
    assert main(["eval", "--params", str(params_file), "--model", "clip", "--base",
                 str(checkpoint), "--set", "whatsup", "--json", str(out)]) == 0  # fmt: skip
    evaluated = json.loads(out.read_text())["scores"]
    last = {k.removeprefix("external/whatsup/"): float(v) for k, v in rows[-1].items()
            if k.startswith("external/whatsup/") and v != ""}  # fmt: skip
    assert evaluated == last  # the same scores, per term too
    same = run_from_params(params, "clip", "sac", 0, results=results, datasets=datasets)
    assert same["mlflow_run_id"] == first["mlflow_run_id"]  # unchanged: the finished run stands
    image = sorted((annotations.parent / "controlled_images").iterdir())[0]
    image.write_bytes(image.read_bytes() + b"\0")
    again = run_from_params(params, "clip", "sac", 0, results=results, datasets=datasets)
    assert again["mlflow_run_id"] != first["mlflow_run_id"]  # a new run, from iteration 0
    assert again["external_hashes"] != first["external_hashes"]


def test_the_runs_random_streams_are_independent(finished: Path) -> None:
    from benchmark.loop import RandomArm, RunConfig, derive_seed, open_run, read_inputs
    from benchmark.vlm import vlm_loader

    params = load_params(ROOT / "params.yaml", "smoke")
    cfg = RunConfig("clip", "random", 0, "smoke", params.active, finished / "results",
                    finished / "datasets")  # fmt: skip
    loader = vlm_loader("clip", params.active.clip.vlm_config(), 0)
    base, agent = finished / "results" / "vlm" / "clip" / "base", finished / "results" / "agents"
    run = open_run(cfg, read_inputs(cfg, base, agent / "seed0"), loader)
    assert isinstance(run.arm, RandomArm)
    assert run.rng.bit_generator.state != run.arm.rng.bit_generator.state
    assert not np.allclose(run.rng.random(8), run.arm.rng.random(8))
    run.tracker.finish()
    # derived seeds: (seed, purpose, iteration, done) never collide where seed * 1000 +
    # iteration * 10 + done did (iteration 1, done 10 and iteration 2, done 0)
    keys = [(s, 2, i, d) for s in range(3) for i in range(1, 30) for d in range(0, 40, 5)]
    assert len({derive_seed(*k) for k in keys}) == len(keys)


def test_a_budget_arm_spends_its_whole_budget_however_many_iterations_it_takes(
    project: Path, tmp_path: Path
) -> None:
    """No hidden cap: with max_iterations 1 the random arm still spends a budget that takes it
    well past 10 iterations (the old cap was max_iterations * 10)."""
    import yaml

    from benchmark.config import parse_params

    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["profiles"]["smoke"]["loop"]["max_iterations"] = 1
    params = parse_params({**data, "profile": "smoke"})
    sac = run_dir(tmp_path / "results", "clip", "sac", 0)
    sac.mkdir(parents=True)
    (sac / "summary.json").write_text(json.dumps({"finished": True, "generated_samples": 300}))
    summary = run_from_params(
        params, "clip", "random", 0, results=tmp_path / "results", datasets=tmp_path / "datasets"
    )
    assert summary["stopped"] == "budget" and summary["generated_samples"] == 300
    assert summary["iterations"] > 10


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_a_last_iteration_cut_short_by_the_budget_fine_tunes_only_on_a_large_enough_batch(
    project: Path, tmp_path: Path, fraction: float
) -> None:
    """A budget that ends inside an iteration: with min_batch_fraction 0 its remainder is
    fine-tuned on; with 1 it is generated and counted, but the model stays as it was."""
    import yaml

    from benchmark.config import parse_params

    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["profiles"]["smoke"]["loop"]["min_batch_fraction"] = fraction
    params = parse_params({**data, "profile": "smoke"})
    sac = run_dir(tmp_path / "results", "clip", "sac", 0)
    sac.mkdir(parents=True)
    (sac / "summary.json").write_text(json.dumps({"finished": True, "generated_samples": 45}))
    summary = run_from_params(
        params, "clip", "random", 0, results=tmp_path / "results", datasets=tmp_path / "datasets"
    )
    assert summary["generated_samples"] == 45
    rows = _rows(run_dir(tmp_path / "results", "clip", "random", 0) / "metrics.csv")
    full = params.active.loop.episodes * round(params.active.loop.eta * params.active.loop.t0)
    assert all(int(r["batch_size"]) == full for r in rows[1:-1])
    last, before = rows[-1], rows[-2]
    assert int(last["valid_samples"]) > int(before["valid_samples"])  # it generated samples
    if fraction == 0.0:
        assert 0 < int(last["batch_size"]) < full and last["finetune_loss_mean"] != "nan"
    else:
        assert int(last["batch_size"]) == 0 and last["finetune_loss_mean"] == "nan"
        assert last["test/metric"] == before["test/metric"]  # the model as it was


# ---------------------------------------------------------------------------- the unity backend


def test_the_loop_runs_on_the_unity_backend_and_resumes_after_its_player_died(
    project: Path, finished: Path, tmp_path: Path
) -> None:
    """`rls3 run` with sim.backend: unity on the embedded player (launched by mlagents-envs).
    The player is killed after the first checkpoint: the run stops with a message that says so;
    run again, it resumes there, and every metric equals the embedded backend's run."""
    import psutil
    import yaml

    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    player = str(ROOT / "unity_build" / "RLS3Embedded.x86_64")
    data["profiles"]["smoke"]["sim"] |= {
        "backend": "unity",
        "unity": {"build": player, "base_port": None, "timeout_s": 30},
    }
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    cmd, env, state = _sac_run_command(params, tmp_path)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    wait_for_iteration(proc, state)
    players = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "benchmark.sim.unity_player" in " ".join(p.cmdline())
    ]
    assert len(players) == 1
    players[0].kill()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "the Unity player" in stderr and "stopped serving" in stderr
    assert "run the same command again to resume" in stderr
    stopped_at = checkpoint_state(state)
    assert stopped_at["iteration"] >= 1 and stopped_at["stopped"] is None

    _resume_and_compare(cmd, env, tmp_path, finished)


def test_a_runs_inputs_hold_its_own_params_and_no_others() -> None:
    """What a finished run is kept for (its inputs record) and what MLflow logs: the blocks its
    DVC stage lists. Another family's, base training's and the grid's params leave it as it is;
    its own K does not; the agent's block only where the arm starts from the agent, early
    stopping only where the arm sets its own budget."""
    replace = dataclasses.replace
    profile = load_params().active
    random = run_params(profile, "clip", "random")
    unrelated = replace(
        profile,
        paligemma=replace(profile.paligemma, k=profile.paligemma.k + 1),
        clip=replace(profile.clip, pretrain=replace(profile.clip.pretrain, epochs=9)),
        grid=replace(profile.grid, retries=profile.grid.retries + 1),
        agent=replace(profile.agent, learning_rate=0.5),
    )
    assert run_params(unrelated, "clip", "random") == random
    own = replace(profile, clip=replace(profile.clip, k=profile.clip.k + 1))
    assert run_params(own, "clip", "random") != random
    assert random["clip.k"] == str(profile.clip.k) and random["loop.eta"] == str(profile.loop.eta)
    sac, dense = run_params(profile, "clip", "sac"), run_params(profile, "clip", "sac-dense")
    assert "agent.learning_rate" in sac and "agent.learning_rate" in dense
    assert "agent.learning_rate" not in random
    assert "clip.early_stopping.patience" in sac
    assert not any(k.startswith("clip.early_stopping") for k in {*random, *dense})
    assert not any(k.startswith(("paligemma.", "grid.", "clip.pretrain.")) for k in sac)
