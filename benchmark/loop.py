"""Algorithm 1 of the paper (SPEC sections 2 and 6): one run of one arm, one model, one seed.

Reading guide, against the paper's Algorithm 1:

- lines 2-3 (for each iteration, for each of E episodes): ``run`` and ``_run_episode``;
- lines 5-8 (act, observe r(s, a), until T0 valid samples): ``SacArm.step`` / ``RandomArm.step``
  through the ``VLMFeedback`` wrapper;
- lines 9-13 (pause on the last step, prompts from metadata, VLM inference, beta * J2 back to the
  agent): ``VLMFeedback._end_episode``, before SAC stores and learns from that transition;
- lines 14-16 (sample eta of the episode into the batch of size E * eta * T0): ``_end_episode``;
- lines 17-19 (fine-tune K, validate, test, clear the batch): ``_finetune_and_evaluate``.

The sac arm stops early on validation (patience after min_iterations); its total generated
samples (environment steps, valid or not) become the budget of the random arm with the same
model and seed, which stops the moment it has spent it.

At the end of every iteration the run saves, atomically, everything it needs to continue: the
VLM, SAC with its replay buffer, every RNG state and the logs. ``run`` on a run directory that
holds a checkpoint continues after its last completed iteration; each iteration starts from a
reset seeded by (seed, iteration), so a resumed run ends with the same results as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from benchmark.agents import load_sac
from benchmark.captions import TERMS, describe_sample, term_key
from benchmark.config import ARMS, MODELS, Profile
from benchmark.datasets import Dataset, read_dataset
from benchmark.fileio import atomic_directory, atomic_write_csv, atomic_write_json
from benchmark.sim.env import PlacementEnv
from benchmark.tracking import RunTracker, flatten, git_commit, tracking_uri
from benchmark.vlm.base import VLM, Sample, subset_metrics

PHASES = (
    "simulation",
    "captioning",
    "vlm_inference",
    "sac",
    "finetuning",
    "evaluation",
    "logging",
)


class Timers:
    """Wall time per phase of the loop (``rls3 perf loop``); nested phases are not subtracted."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start


def run_dir(results: str | Path, model: str, arm: str, seed: int) -> Path:
    """Where a run keeps its files: ``results/runs/{model}/{arm}/seed{seed}``."""
    return Path(results) / "runs" / model / arm / f"seed{seed}"


# ---------------------------------------------------------------------------- VLM feedback


@dataclass
class EpisodeLog:
    iteration: int
    episode: int
    steps: int  # generated samples (env steps) of the episode
    valid: int  # valid samples of the episode
    generated_total: int  # cumulative generated samples at the episode's end
    j1: float  # intrinsic return: the sum of the +1/-1 feasibility rewards
    j2: float  # the VLM's J2 over the episode's samples (eq. 3)
    extrinsic: float  # beta * J2, added to the last step's reward
    reward_total: float  # every reward the agent received in the episode (J1 + beta * J2)
    reward_last: float  # the last step's reward (its +1/-1 plus beta * J2)
    batch_added: int  # samples drawn into the fine-tuning batch


class VLMFeedback(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """Turns the VLM's failures into the agent's reward (eq. 4: I = J1 + beta * J2).

    Collects an episode's valid samples; at its last step captions them, has the VLM evaluate
    them, and adds beta * J2 to that step's reward; then draws a fraction eta of them into the
    fine-tuning batch.
    """

    def __init__(
        self,
        env: PlacementEnv,
        vlm: VLM,
        beta: float,
        eta: float,
        rng: np.random.Generator,
        timers: Timers,
    ) -> None:
        super().__init__(env)
        self.vlm, self.beta, self.eta = vlm, beta, eta
        self.rng, self.timers = rng, timers
        self.batch: list[Sample] = []
        self.episodes: list[EpisodeLog] = []
        self.iteration = 0
        self.generated = 0  # cumulative generated samples of the run
        self._open_episode()

    def _open_episode(self) -> None:
        self.samples: list[Sample] = []
        self.steps = 0
        self.j1 = 0.0
        self.received = 0.0

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self._open_episode()
        return self.env.reset(**kwargs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        with self.timers("simulation"):
            obs, intrinsic, terminated, truncated, info = self.env.step(action)
        reward = float(intrinsic)
        self.j1 += reward
        self.steps += 1
        self.generated += 1
        if info["valid"]:
            with self.timers("captioning"):
                record = describe_sample(info["sample"], self.rng)
            self.samples.append(Sample(info["image"], record, info["sample"]))
        if terminated or truncated:
            reward += self._end_episode(last_intrinsic=reward)
        else:
            self.received += reward
        return obs, reward, terminated, truncated, info

    def _end_episode(self, last_intrinsic: float = 0.0) -> float:
        """Lines 9-15: caption, evaluate, J2 back to the agent, eta of the samples to the batch."""
        j2 = 0.0
        if self.samples:
            with self.timers("vlm_inference"):
                j2 = float(self.vlm.j2(self.vlm.evaluate(self.samples)))
        n_batch = round(self.eta * len(self.samples))
        chosen = sorted(self.rng.choice(len(self.samples), size=n_batch, replace=False).tolist())
        self.batch.extend(self.samples[i] for i in chosen)
        self.episodes.append(
            EpisodeLog(
                self.iteration,
                len(self.episodes),
                self.steps,
                len(self.samples),
                self.generated,
                self.j1,
                j2,
                self.beta * j2,
                self.received + last_intrinsic + self.beta * j2,
                last_intrinsic + self.beta * j2,
                n_batch,
            )
        )
        self._open_episode()
        return self.beta * j2

    def end_early(self) -> None:
        """The random arm's budget ran out mid-episode: close the episode as it stands."""
        if self.steps:
            self._end_episode()


# ---------------------------------------------------------------------------- the two arms


class SacArm:
    """SAC acting and learning every step, with stable-baselines3's own pieces."""

    def __init__(self, model: SAC, timers: Timers) -> None:
        self.model, self.timers = model, timers
        # Logger, progress bookkeeping and the first observation, as SB3's learn() sets them.
        model._setup_learn(total_timesteps=10**12, reset_num_timesteps=False)

    @property
    def vec_env(self) -> DummyVecEnv:
        return self.model.get_env()  # type: ignore[return-value]

    def begin(self, obs: np.ndarray) -> None:
        self.model._last_obs = obs

    def step(self) -> bool:
        """Lines 6-8 and SAC's update: act, observe, store the transition, one gradient step.

        The environment step (simulation, and at the episode's end the VLM's reward) is timed
        by ``VLMFeedback``; the rest is SAC's.
        """
        m = self.model
        with self.timers("sac"):
            actions, buffer_actions = m._sample_action(m.learning_starts, None, 1)
        new_obs, rewards, dones, infos = self.vec_env.step(actions)
        with self.timers("sac"):
            m.num_timesteps += 1
            m._update_info_buffer(infos, dones)
            m._store_transition(m.replay_buffer, buffer_actions, new_obs, rewards, dones, infos)  # type: ignore[arg-type]
            m._update_current_progress_remaining(m.num_timesteps, m._total_timesteps)
            m._on_step()
            if m.num_timesteps > m.learning_starts:
                m.train(gradient_steps=1, batch_size=m.batch_size)
        return bool(dones[0])


class RandomArm:
    """Uniform actions, no learning, the same episodic batching."""

    def __init__(self, vec_env: DummyVecEnv, seed: int) -> None:
        self.vec_env = vec_env
        self.rng = np.random.default_rng(seed)

    def begin(self, obs: np.ndarray) -> None:
        pass

    def step(self) -> bool:
        _, _, dones, _ = self.vec_env.step(self.rng.uniform(-1.0, 1.0, (1, 3)).astype(np.float32))
        return bool(dones[0])


# ---------------------------------------------------------------------------- the run


@dataclass
class RunState:
    """What a checkpoint holds besides the models (JSON)."""

    iteration: int = 0  # completed iterations
    generated: int = 0
    valid: int = 0
    finetune_step: int = 0
    best_val: float | None = None
    stale: int = 0  # iterations since validation last improved by more than min_delta
    stopped: str | None = None  # why the run ended, once it has
    run_id: str | None = None
    seconds: float = 0.0  # wall time of the completed iterations (a killed one is not counted)
    term_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TERMS, 0))
    iterations: list[dict[str, Any]] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    losses: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RunConfig:
    model: str
    arm: str
    seed: int
    profile_name: str
    profile: Profile
    results: Path = Path("results")
    datasets: Path = Path("datasets")


def _budget(cfg: RunConfig) -> int | None:
    """The random arm's budget: the sac run's total generated samples (same model and seed)."""
    if cfg.arm != "random":
        return None
    summary = run_dir(cfg.results, cfg.model, "sac", cfg.seed) / "summary.json"
    done = summary.is_file() and json.loads(summary.read_text()).get("finished")
    if not done:
        raise FileNotFoundError(
            f"the random arm needs the sac run's budget, and {summary} does not record a "
            f"finished run; run `rls3 run --model {cfg.model} --arm sac --seed {cfg.seed}` first"
        )
    return int(json.loads(summary.read_text())["generated_samples"])


def files_digest(path: Path) -> str:
    """SHA-256 over a file, or over a directory's files (relative names and bytes, sorted)."""
    digest = hashlib.sha256()
    root = path if path.is_dir() else path.parent
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(str(f.relative_to(root)).encode())
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class Run:
    """One (model, arm, seed) run: set up or resume, iterate, checkpoint, log."""

    def __init__(
        self, cfg: RunConfig, load_vlm: Any, base_vlm_path: Path, agent_path: Path
    ) -> None:
        if cfg.model not in MODELS or cfg.arm not in ARMS:
            raise ValueError(f"model must be one of {MODELS} and arm one of {ARMS}")
        self.cfg = cfg
        p = cfg.profile
        self.loop, self.stopping = p.loop, p.model(cfg.model).early_stopping
        self.k = p.model(cfg.model).k
        self.dir = run_dir(cfg.results, cfg.model, cfg.arm, cfg.seed)
        self.checkpoint = self.dir / "checkpoint"
        self.budget = _budget(cfg)
        self.timers = Timers()
        self.validation: Dataset = read_dataset(cfg.datasets / "validation")
        self.test: Dataset = read_dataset(cfg.datasets / "test")
        self.inputs = {
            "profile": cfg.profile_name,
            "params": flatten(asdict(p)),
            "budget": self.budget,
            "datasets": [self.validation.content_hash, self.test.content_hash],
            "base_vlm": files_digest(base_vlm_path),
            "agent": files_digest(agent_path / "model.zip") if cfg.arm == "sac" else None,
        }
        resuming = (self.checkpoint / "state.json").is_file()
        if resuming and self._inputs_changed():
            self._discard()
            resuming = False
        self.state = (
            RunState(**json.loads((self.checkpoint / "state.json").read_text()))
            if resuming
            else RunState()
        )
        self.vlm: VLM = load_vlm(self.checkpoint / "vlm" if resuming else base_vlm_path)
        env = PlacementEnv(
            "train",
            t0=self.loop.t0,
            max_steps=p.sim.max_steps_factor * self.loop.t0,
            image_size=p.sim.image_size,
            swap_prob=p.sim.swap_prob,
            scene_period=p.sim.scene_period,
        )
        self.feedback = VLMFeedback(
            env,
            self.vlm,
            self.loop.beta,
            self.loop.eta,
            np.random.default_rng(cfg.seed),
            self.timers,
        )
        vec_env = DummyVecEnv([lambda: self.feedback])
        self.arm: SacArm | RandomArm
        if cfg.arm == "sac":
            sac = load_sac(self.checkpoint / "sac" if resuming else agent_path, vec_env)
            self.arm = SacArm(sac, self.timers)
        else:
            self.arm = RandomArm(vec_env, cfg.seed)
        if resuming:
            self._restore_rngs()
        self.feedback.generated = self.state.generated
        self.tracker = RunTracker(tracking_uri(cfg.results), cfg.model, cfg.arm, cfg.seed)
        self._clock = time.perf_counter()

    # ------------------------------------------------------------------ Algorithm 1
    def run(self) -> dict[str, Any]:
        """Iterate until early stopping, the budget or max_iterations; returns the summary."""
        s = self.state
        self._start_tracking()
        if s.iteration == 0 and not s.iterations:
            self._evaluate_and_record(losses=[], batch=[])  # the starting point, iteration 0
            self._checkpoint()
        while s.stopped is None:
            self.iterate()
        self.tracker.finish()
        return self.summary()

    def iterate(self) -> None:
        """One iteration (lines 2-19), then the stopping rule and the checkpoint."""
        s = self.state
        iteration = s.iteration + 1
        self.feedback.iteration = iteration
        self._begin_iteration(iteration)
        for _ in range(self.loop.episodes):  # line 3
            if not self._run_episode():
                break
        batch, self.feedback.batch = self.feedback.batch, []  # line 16, then cleared
        with self.timers("finetuning"):
            losses = self._finetune(batch) if batch else []
        s.iteration = iteration
        self._evaluate_and_record(losses, batch)
        s.stopped = self._stop_reason()
        self._checkpoint()

    def _begin_iteration(self, iteration: int) -> None:
        """A reset seeded by (seed, iteration): a resumed run restarts exactly here."""
        vec_env = self.arm.vec_env
        vec_env.seed(self.cfg.seed * 100_003 + iteration)
        obs = vec_env.reset()
        assert isinstance(obs, np.ndarray)  # a Box observation space
        self.arm.begin(obs)

    def _run_episode(self) -> bool:
        """Lines 4-15: one episode until T0 valid samples; False when the budget is spent."""
        while True:
            if self.budget is not None and self.feedback.generated >= self.budget:
                self.feedback.end_early()
                return False
            if self.arm.step():
                return True

    def _finetune(self, batch: list[Sample]) -> list[float]:
        """Line 17: K epochs (CLIP) or steps (PaliGemma); validation every F of them."""
        every = self.loop.validate_every or self.k
        losses: list[float] = []
        done = 0
        while done < self.k:
            chunk = min(every, self.k - done)
            losses += self.vlm.finetune(
                batch, chunk, seed=self.cfg.seed * 1000 + self.state.iteration * 10 + done
            )
            done += chunk
            if done < self.k:
                with self.timers("evaluation"):
                    val = self.vlm.metric(self.vlm.evaluate(self.validation.samples))
                self.state.losses.append(
                    {"finetune_step": self.state.finetune_step + len(losses), "val_inner": val}
                )
        return losses

    def _evaluate_and_record(self, losses: list[float], batch: list[Sample]) -> None:
        """Lines 18-19: validation and test; the iteration's row of every log."""
        s = self.state
        with self.timers("evaluation"):
            val = self.vlm.metric(self.vlm.evaluate(self.validation.samples))
            test_results = self.vlm.evaluate(self.test.samples)
            test = self.vlm.metric(test_results)
            per_subset = subset_metrics(self.vlm, self.test.samples, test_results)
        episodes = [e for e in self.feedback.episodes]
        self.feedback.episodes = []
        s.generated = self.feedback.generated
        s.valid += sum(e.valid for e in episodes)
        for sample in batch:
            for term in sample.record.terms:
                s.term_counts[term] += 1
        for loss in losses:
            s.finetune_step += 1
            s.losses.append(
                {"finetune_step": s.finetune_step, "iteration": s.iteration, "loss": loss}
            )
        s.episodes += [asdict(e) for e in episodes]
        if s.best_val is None or val > s.best_val + self.stopping.min_delta:
            s.best_val, s.stale = val, 0
        else:
            s.stale += 1
        row = {
            "iteration": s.iteration,
            "generated_samples": s.generated,
            "valid_samples": s.valid,
            "valid_rate": s.valid / s.generated if s.generated else 0.0,
            "episodes": len(episodes),
            "batch_size": len(batch),
            "finetune_loss_mean": float(np.mean(losses)) if losses else float("nan"),
            "val/metric": val,
            "test/metric": test,
            **per_subset,
            **{f"batch_terms_cum/{term_key(t)}": c for t, c in s.term_counts.items()},
        }
        s.iterations.append(row)

    def _stop_reason(self) -> str | None:
        s = self.state
        if self.budget is not None and s.generated >= self.budget:
            return "budget"
        if (
            self.cfg.arm == "sac"
            and s.iteration >= self.stopping.min_iterations
            and s.stale >= self.stopping.patience
        ):
            return "early_stopping"
        if s.iteration >= self.loop.max_iterations * (1 if self.budget is None else 10):
            return "max_iterations"
        return None

    # ------------------------------------------------------------------ persistence
    def _inputs_changed(self) -> bool:
        """True if the checkpoint was made from other inputs than this run's."""
        held = self.checkpoint / "inputs.json"
        return not held.is_file() or json.loads(held.read_text()) != self.inputs

    def _discard(self) -> None:
        """Remove the run directory and its MLflow run: a fresh start.

        DVC keeps a run directory between ``dvc repro`` calls (``persist``) so that a killed
        stage resumes; a checkpoint made with other params, datasets, base model or agent
        would silently mix two experiments, so it is removed instead.
        """
        old = json.loads((self.checkpoint / "state.json").read_text()).get("run_id")
        print(f"{self.dir}: its inputs changed since the checkpoint; starting afresh")
        if old is not None:
            with contextlib.suppress(Exception):  # a store that no longer holds it
                tracker = RunTracker(
                    tracking_uri(self.cfg.results), self.cfg.model, self.cfg.arm, self.cfg.seed
                )
                tracker.client.delete_run(old)
        shutil.rmtree(self.dir)

    def _rng_states(self) -> dict[str, Any]:
        np_state: Any = np.random.get_state()
        return {
            "feedback": self.feedback.rng.bit_generator.state,
            "random_arm": self.arm.rng.bit_generator.state
            if isinstance(self.arm, RandomArm)
            else None,
            "numpy_global": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        }

    def _restore_rngs(self) -> None:
        states = json.loads((self.checkpoint / "rng.json").read_text())
        self.feedback.rng.bit_generator.state = states["feedback"]
        if isinstance(self.arm, RandomArm):
            self.arm.rng.bit_generator.state = states["random_arm"]
        kind, keys, *rest = states["numpy_global"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
        torch.set_rng_state(load_file(self.checkpoint / "torch_rng.safetensors")["cpu"])

    def _checkpoint(self) -> None:
        """Save everything a resume needs (atomically), then the run files, then MLflow."""
        now = time.perf_counter()
        self.state.seconds += now - self._clock
        self._clock = now
        with self.timers("logging"):
            with atomic_directory(self.checkpoint) as tmp:
                self.vlm.save(tmp / "vlm")
                if isinstance(self.arm, SacArm):
                    (tmp / "sac").mkdir()
                    self.arm.model.save(tmp / "sac" / "model.zip")
                    self.arm.model.save_replay_buffer(tmp / "sac" / "replay_buffer.pkl")
                atomic_write_json(tmp / "rng.json", self._rng_states())
                save_file({"cpu": torch.get_rng_state()}, tmp / "torch_rng.safetensors")
                atomic_write_json(tmp / "state.json", asdict(self.state))
                atomic_write_json(tmp / "inputs.json", self.inputs)
            self._write_run_files()
            self._log_to_mlflow()

    def _write_run_files(self) -> None:
        s = self.state
        atomic_write_csv(self.dir / "metrics.csv", s.iterations)
        atomic_write_csv(self.dir / "episodes.csv", s.episodes)
        atomic_write_csv(self.dir / "finetune_loss.csv", [r for r in s.losses if "loss" in r])
        atomic_write_json(self.dir / "summary.json", self.summary())

    def summary(self) -> dict[str, Any]:
        s = self.state
        return {
            "model": self.cfg.model,
            "arm": self.cfg.arm,
            "seed": self.cfg.seed,
            "profile": self.cfg.profile_name,
            "k": self.k,
            "finetune": dict(self.cfg.profile.model(self.cfg.model).finetune),
            "finished": s.stopped is not None,
            "stopped": s.stopped,
            "iterations": s.iteration,
            "generated_samples": s.generated,
            "valid_samples": s.valid,
            "valid_rate": s.valid / s.generated if s.generated else 0.0,
            "budget": self.budget,
            "initial_test_metric": s.iterations[0]["test/metric"] if s.iterations else None,
            "final_test_metric": s.iterations[-1]["test/metric"] if s.iterations else None,
            "best_val_metric": s.best_val,
            "seconds": round(s.seconds, 1),
            "mlflow_run_id": s.run_id,
            "dataset_hashes": {
                "validation": self.validation.content_hash,
                "test": self.test.content_hash,
            },
        }

    def _start_tracking(self) -> None:
        cfg = self.cfg
        tags = {
            "arm": cfg.arm,
            "seed": str(cfg.seed),
            "model": cfg.model,
            "profile": cfg.profile_name,
            "git_commit": git_commit(),
            "dataset.validation": self.validation.content_hash,
            "dataset.test": self.test.content_hash,
        }
        params = flatten(asdict(cfg.profile))
        self.state.run_id = self.tracker.start(self.state.run_id, tags, params)

    def _log_to_mlflow(self) -> None:
        """Every logged row, re-sent idempotently (the tracker skips (key, step) it holds)."""
        s = self.state
        rows: list[tuple[str, float, int]] = []
        for it in s.iterations:
            step = int(it["generated_samples"])
            rows += [(k, float(v), step) for k, v in it.items() if isinstance(v, int | float)]
        for ep in s.episodes:
            step = int(ep["generated_total"])
            rows += [("episode/j1", ep["j1"], step), ("episode/j2", ep["j2"], step)]
            rows += [("episode/valid_rate", ep["valid"] / max(ep["steps"], 1), step)]
        for r in s.losses:
            if "loss" in r:
                rows.append(("finetune/loss", r["loss"], int(r["finetune_step"])))
            else:
                rows.append(("val/metric_inner", r["val_inner"], int(r["finetune_step"])))
        self.tracker.log([r for r in rows if np.isfinite(r[1])])
        self.tracker.set_tags({"stopped": s.stopped or "running"})


def vlm_loader(model: str, finetune: dict[str, Any], seed: int) -> Any:
    """A function path -> VLM for ``model``, with the profile's fine-tuning config and seed."""
    if model == "clip":
        from benchmark.vlm.clip import ClipVLM, ClipVLMConfig

        clip_config = ClipVLMConfig(**{**finetune, "seed": seed})
        return lambda path: ClipVLM.load(path, config=clip_config)
    from benchmark.vlm.paligemma import PaligemmaVLM, PaligemmaVLMConfig

    pg_config = PaligemmaVLMConfig(**{**finetune, "seed": seed})
    return lambda path: PaligemmaVLM.load(path, config=pg_config)


def run_from_params(
    params: Any,
    model: str,
    arm: str,
    seed: int,
    *,
    results: str | Path = "results",
    datasets: str | Path = "datasets",
) -> dict[str, Any]:
    """``rls3 run``: one run with the active profile, resuming if it was interrupted."""
    results, datasets = Path(results), Path(datasets)
    profile = params.active
    cfg = RunConfig(model, arm, seed, params.profile, profile, results, datasets)
    _budget(cfg)  # a random run without its sac run: say which run to do first
    base = results / "vlm" / model / "base"
    if not base.exists():
        raise FileNotFoundError(
            f"no base {model} model at {base}; run `rls3 pretrain-vlm --model {model}` first"
        )
    agent = results / "agents" / f"seed{seed}"
    loader = vlm_loader(model, profile.model(model).finetune, seed)
    return Run(cfg, loader, base, agent).run()


def perf_loop(
    params: Any, model: str, seed: int, *, results: str | Path, datasets: str | Path
) -> dict[str, Any]:
    """``rls3 perf loop``: the wall time of one sac iteration split by phase.

    Runs in a scratch results directory that links the project's base model and agent, so the
    project's own runs are untouched. The starting evaluation (iteration 0) is not timed.
    """
    import tempfile

    results = Path(results).resolve()
    with tempfile.TemporaryDirectory(prefix="rls3-perf-") as tmp:
        scratch = Path(tmp)
        for part in ("vlm", "agents"):
            if (results / part).exists():
                (scratch / part).symlink_to(results / part)
        cfg = RunConfig(model, "sac", seed, params.profile, params.active, scratch, Path(datasets))
        base = scratch / "vlm" / model / "base"
        if not base.exists():
            raise FileNotFoundError(f"no base {model} model at {results / 'vlm' / model / 'base'}")
        loader = vlm_loader(model, params.active.model(model).finetune, seed)
        run = Run(cfg, loader, base, scratch / "agents" / f"seed{seed}")
        run._start_tracking()
        run._evaluate_and_record(losses=[], batch=[])
        run._checkpoint()
        run.timers.seconds = dict.fromkeys(PHASES, 0.0)
        start = time.perf_counter()
        run.iterate()
        wall = time.perf_counter() - start
        run.tracker.finish()
    phases = dict(run.timers.seconds)
    return {
        "wall": wall,
        "phases": phases,
        "overhead": wall - sum(phases.values()),
        "generated": run.state.generated,
        "profile": params.profile,
        "model": model,
    }


def format_perf(report: dict[str, Any]) -> str:
    """The split as a table; the target is loop overhead under 5% of the wall time."""
    wall = report["wall"]
    lines = [
        f"one {report['profile']} iteration, {report['model']}, sac arm: {wall:.1f} s, "
        f"{report['generated']} generated samples",
        f"{'phase':<16} {'seconds':>8} {'share':>7}",
    ]
    for phase, seconds in report["phases"].items():
        lines.append(f"{phase:<16} {seconds:>8.2f} {seconds / wall:>7.1%}")
    share = report["overhead"] / wall
    verdict = "ok" if share < 0.05 else "OVER"
    lines.append(
        f"{'loop overhead':<16} {report['overhead']:>8.2f} {share:>7.1%}  target < 5%: {verdict}"
    )
    return "\n".join(lines)
