"""Algorithm 1 of the paper (spec sections 2 and 6): one run of one arm, one model, one seed.

``Run.iterate`` is the algorithm, in the paper's order and line numbers:

- line 2, an iteration: a seeded reset (``_begin_iteration``);
- lines 3-10, E episodes, each until T0 valid samples: ``_generate`` acts (6), steps the simulator
  and observes r(s, a) (7), updates SAC one gradient step (8), and pauses on the last step (10);
- lines 11-14, ``_vlm_feedback``: prompts from the metadata (11), VLM inference on the episode's
  N samples (12), the reward beta * J2 back to the agent (13: the episode's transitions enter
  SAC's replay buffer with it), a fraction eta of the samples into the batch (14);
- lines 16-23: fine-tune K (``_finetune``, validation every F), validate and test, clear the batch.
  Every test also scores the image-shuffled control (``datasets.shuffled_images``: each test
  question asked of another test sample's image, the probe's fixed derangement, shared by every
  arm and seed): ``test/control``, and ``test/grounded_gain`` = test metric - control, the part of
  the metric that needs the image. Every external set of the profile (``datasets.external``,
  ``benchmark/external.py``: photographs with a true caption and alternatives) is scored at the
  same points with the family's metric: ``external/<name>/metric`` and per term.

Arms (spec section 6) are records (``benchmark/arms.py``) and the loop reads their fields, never
their names: how the agent acts (the seed's pre-trained SAC, or uniform actions), whether it
learns, the VLM reward's form (none, the paper's beta * J2 on the episode's last step, or dense:
each valid step its own sample's share; ``extrinsic_rewards``) and how line 14 draws the batch
(uniformly, or the eta * N hardest samples; ``batch_draw``). SAC learns with the loop's own
discount (``loop.gamma``), so an episode-end reward reaches the placements that produced its
samples.

The sac arm stops early on validation (patience after min_iterations); its total generated
samples (environment steps, valid or not) become the budget of every other arm with the same
model and seed, which stops the moment it has spent it. Its last iteration, cut short there,
fine-tunes only on a batch of at least ``loop.min_batch_fraction`` of a full one (E * eta * T0):
K epochs over a handful of samples overfit them. A smaller remainder was generated and counts
in the budget; the iteration's row then has batch size 0 and the model is unchanged.

Every episode logs its samples' *hardness* under the VLM as it stood before the iteration's
fine-tuning (the per-sample quantity J2 squares): whether an arm finds the VLM's weak spots.

At the end of every iteration the run saves, atomically, everything it needs to continue
(``benchmark/checkpoint.py``): the VLM, SAC with its replay buffer, every RNG state (CUDA's too,
where there is one) and the logs; then it writes its run files and logs to MLflow
(``benchmark/tracking.py``).
``run`` on a run directory that holds a checkpoint continues after its last completed iteration;
each iteration starts from a reset seeded by (seed, iteration), so a resumed run ends with the
same results as an uninterrupted one. A checkpoint made from other inputs (the run's own params,
``run_params``; datasets, base model, agent, or the code itself: ``code_digest``) is discarded
and the run starts afresh.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from benchmark import layout
from benchmark.agents import load_sac
from benchmark.arms import Arm, arm_of
from benchmark.captions import TERMS, describe_sample, term_key
from benchmark.checkpoint import Checkpoint, RunState
from benchmark.config import ARMS, BUDGET_ARMS, Profile
from benchmark.datasets import Dataset, derangement, read_dataset, shuffled_images
from benchmark.external import ExternalSet, read_external, score
from benchmark.families import MODELS
from benchmark.fileio import atomic_write_csv, atomic_write_json
from benchmark.provenance import code_digest, files_digest, torch_threads
from benchmark.records import EpisodeRow, InnerValidation, IterationRow, LossRow, RunSummary
from benchmark.samples import Sample
from benchmark.sim.backends import make_env, profile_env_kwargs
from benchmark.tracking import RunTracker, flatten, metric_rows, run_tags, tracking_uri
from benchmark.vlm import vlm_loader
from benchmark.vlm.base import VLM, subset_metrics

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


# ---------------------------------------------------------------------------- an episode


@dataclass
class Transition:
    """One environment step, held until the episode's VLM reward is known (SB3's vec-env form)."""

    obs: np.ndarray  # the observation the action was chosen on
    buffer_action: np.ndarray  # the action as SAC stores it (scaled to [-1, 1])
    new_obs: np.ndarray  # the next observation (after an episode's end: the reset's)
    intrinsic: float  # r(s, a) of eq. 2: +1 feasible, -1 not
    done: bool
    info: dict[str, Any]


@dataclass
class Episode:
    """Lines 4-10: the steps of one episode and the valid samples' images and metadata."""

    transitions: list[Transition] = field(default_factory=list)
    valid_steps: list[int] = field(default_factory=list)  # indices of the valid transitions
    budget_spent: bool = False  # closed early: the run's budget of generated samples ran out


def extrinsic_rewards(
    arm: Arm, beta: float, hardness: Sequence[float], valid_steps: Sequence[int], steps: int
) -> np.ndarray:
    """Line 13: the VLM's reward of each step of an episode (eq. 4's beta * J2 part).

    J2 = h^2 (eq. 3), h the mean per-sample hardness of the episode's N valid samples (CLIP:
    the NegCLIP loss, PaliGemma: 6 - S_PG). Reward form ``episode_end`` (the paper's): beta * J2
    on the last step. ``dense``: each valid step i gets beta * h * h_i / N, its own hardness h_i
    scaled so that the episode's sum is exactly beta * h^2 = beta * J2. ``none``: nothing (the
    agent's reward is its feasibility alone).
    """
    rewards = np.zeros(steps)
    weight = arm.weight(beta)
    if not hardness or weight == 0.0:
        return rewards
    mean = float(np.mean(hardness))
    if arm.reward == "dense":
        rewards[list(valid_steps)] = weight * mean * np.asarray(hardness) / len(hardness)
    else:
        rewards[-1] = weight * mean**2
    return rewards


def batch_draw(
    arm: Arm, eta: float, hardness: Sequence[float], rng: np.random.Generator
) -> list[int]:
    """Line 14: the indices of the episode's N samples that join the fine-tuning batch.

    round(eta * N) of them: a uniform draw without replacement (the paper's), or, for an arm
    that draws ``hardest``, the samples with the highest hardness under the VLM as it stood
    before this iteration's fine-tuning (ties: the earlier sample). The uniform draw is made
    either way, so that every arm of a seed consumes the caption stream alike.
    """
    n = len(hardness)
    size = round(eta * n)
    chosen = rng.choice(n, size=size, replace=False) if n else np.zeros(0, dtype=int)
    if arm.draw == "hardest":
        chosen = np.argsort(-np.asarray(hardness, dtype=float), kind="stable")[:size]
    return sorted(int(i) for i in chosen)


# ---------------------------------------------------------------------------- the arms


class SacArm:
    """SAC acting and learning every step, with stable-baselines3's own pieces.

    Act (line 6) and update (line 8) each step; the episode's transitions enter the replay buffer
    at its end (line 13), when the VLM's reward is known, so the dense arm can reward every step.
    """

    def __init__(self, model: SAC, gamma: float, timers: Timers, *, learns: bool = True) -> None:
        self.model, self.timers, self.learns = model, timers, learns
        model.gamma = gamma  # the loop's discount (params ``loop.gamma``), not pre-training's
        # Logger, progress bookkeeping and the first observation, as SB3's learn() sets them.
        model._setup_learn(total_timesteps=10**12, reset_num_timesteps=False)

    @property
    def vec_env(self) -> DummyVecEnv:
        return self.model.get_env()  # type: ignore[return-value]

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Line 6: (env action, buffer action) on ``obs``, SAC's own sampling."""
        m = self.model
        with self.timers("sac"):
            m._last_obs = obs
            return m._sample_action(m.learning_starts, None, 1)

    def update(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Line 8: SB3's per-step bookkeeping and one gradient step (an arm that learns)."""
        m = self.model
        if not self.learns:
            return
        with self.timers("sac"):
            m.num_timesteps += 1
            m._update_info_buffer(infos, dones)
            m._update_current_progress_remaining(m.num_timesteps, m._total_timesteps)
            m._on_step()
            if m.num_timesteps > m.learning_starts:
                m.train(gradient_steps=1, batch_size=m.batch_size)

    def store(self, episode: Episode, rewards: np.ndarray) -> None:
        """The episode's transitions, with their rewards, into SAC's replay buffer."""
        m = self.model
        with self.timers("sac"):
            for t, reward in zip(episode.transitions, rewards, strict=True):
                m._last_obs = t.obs
                m._store_transition(
                    m.replay_buffer,  # type: ignore[arg-type]
                    t.buffer_action,
                    t.new_obs,
                    np.array([reward], dtype=np.float32),
                    np.array([t.done]),
                    [t.info],
                )


class RandomArm:
    """Uniform actions, no learning, the same episodic batching."""

    def __init__(self, vec_env: DummyVecEnv, rng: np.random.Generator) -> None:
        self.vec_env = vec_env
        self.rng = rng

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        action = self.rng.uniform(-1.0, 1.0, (1, 3)).astype(np.float32)
        return action, action

    def update(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        pass

    def store(self, episode: Episode, rewards: np.ndarray) -> None:
        pass


# ---------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class RunConfig:
    model: str
    arm: str
    seed: int
    profile_name: str
    profile: Profile
    results: Path = layout.RESULTS
    datasets: Path = layout.DATASETS


def budget_of(cfg: RunConfig) -> int | None:
    """A budget arm's budget: the sac run's total generated samples (same model and seed)."""
    if cfg.arm not in BUDGET_ARMS:
        return None
    summary = layout.run_dir(cfg.results, cfg.model, "sac", cfg.seed) / "summary.json"
    done = summary.is_file() and json.loads(summary.read_text()).get("finished")
    if not done:
        raise FileNotFoundError(
            f"the {cfg.arm} arm needs the sac run's budget, and {summary} does not record a "
            f"finished run; run `rls3 run --model {cfg.model} --arm sac --seed {cfg.seed}` first"
        )
    return int(json.loads(summary.read_text())["generated_samples"])


def derive_seed(*keys: int) -> int:
    """A 32-bit seed from a tuple of ints via NumPy's SeedSequence: distinct tuples give
    independent seeds (no arithmetic such as ``seed * 1000 + iteration`` that can collide)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


# Purposes of derived seeds (the first key after the run's seed).
RESET_SEEDS, FINETUNE_SEEDS = 1, 2


def run_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators of a run: (captions and the eta-draw, the random arm's actions).

    Spawned children of ``SeedSequence(seed)``; every arm of a seed gets the same caption stream.
    """
    captions, actions = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(captions), np.random.default_rng(actions)


@dataclass(frozen=True)
class RunInputs:
    """What a run is made from, read once and written nowhere: the fixed validation and test
    sets, the image-shuffled control, the external sets, the budget, and ``record``, the
    inputs a checkpoint must have been made from to be resumed (``inputs.json``)."""

    validation: Dataset
    test: Dataset
    control_donors: np.ndarray
    control: list[Sample]
    external: list[ExternalSet]
    budget: int | None
    base_vlm: Path
    agent: Path
    record: dict[str, Any]

    @property
    def external_hashes(self) -> dict[str, str]:
        return {e.name: e.content_hash for e in self.external}


def run_params(profile: Profile, model: str, arm: str) -> dict[str, str]:
    """The params a run of ``model`` and ``arm`` depends on, flat (``loop.eta``), and no others:
    its DVC stage lists the same keys (tests/test_pipeline.py holds each stage to the keys its
    command reads). The run's inputs record holds these, so a changed param of the other family,
    of base training or of the grid leaves a finished run as it is; MLflow logs the same.
    The agent's block where the arm starts from the pre-trained agent, early stopping where the
    arm sets its own budget."""
    block, spec = profile.model(model), arm_of(arm)
    own: dict[str, Any] = {
        "k": block.k,
        "seeds": block.seeds,
        "evaluate": asdict(block.evaluate),
        "finetune": asdict(block.finetune),
        "probe": {"seed": block.probe.seed},  # the image-shuffled control's derangement
    }
    if spec.budget == "own":
        own["early_stopping"] = asdict(block.early_stopping)
    params: dict[str, Any] = {
        "sim": asdict(profile.sim),
        "loop": asdict(profile.loop),
        "threads": profile.threads,
        "datasets": {"external": [asdict(s) for s in profile.datasets.external]},
        **({"agent": asdict(profile.agent)} if spec.uses_agent else {}),
        model: own,
    }
    return flatten(params)


def read_inputs(cfg: RunConfig, base_vlm: Path, agent: Path, root: Path | None = None) -> RunInputs:
    """Read what the run of ``cfg`` is made from (``root``: where the params' relative paths,
    the external sets', start). Reads only: nothing is created, changed or deleted."""
    if cfg.model not in MODELS or cfg.arm not in ARMS:
        raise ValueError(f"model must be one of {MODELS} and arm one of {ARMS}")
    p = cfg.profile
    budget = budget_of(cfg)
    validation = read_dataset(cfg.datasets / "validation")
    test = read_dataset(cfg.datasets / "test")
    # the image-shuffled control: the probe's derangement, the same for every arm and seed
    donors = derangement(len(test.samples), p.model(cfg.model).probe.seed)
    # the external sets (photographs), scored beside the test set; their content is an input
    external = [read_external(s, root) for s in p.datasets.external]
    hashes = {e.name: e.content_hash for e in external}
    record = {
        "profile": cfg.profile_name,
        "params": run_params(p, cfg.model, cfg.arm),
        "budget": budget,
        "datasets": [validation.content_hash, test.content_hash],
        **({"external": hashes} if hashes else {}),
        "base_vlm": files_digest(base_vlm),
        "agent": files_digest(agent / "model.zip") if arm_of(cfg.arm).uses_agent else None,
        "code": code_digest(),
    }
    return RunInputs(
        validation,
        test,
        donors,
        shuffled_images(test.samples, donors),
        external,
        budget,
        base_vlm,
        agent,
        record,
    )


def checkpoint_of(cfg: RunConfig, inputs: RunInputs) -> Checkpoint:
    """The run's checkpoint directory, to be matched against ``inputs``."""
    return Checkpoint(layout.run_dir(cfg.results, cfg.model, cfg.arm, cfg.seed) / "checkpoint",
                      inputs.record)  # fmt: skip


def discard(cfg: RunConfig, checkpoint: Checkpoint) -> None:
    """Remove a run made from other inputs: its directory and its MLflow run, so that a fresh
    start never mixes two experiments. DVC keeps a run directory between ``dvc repro`` calls
    (``persist``) so that a killed stage resumes; this is the step that removes one."""
    old = checkpoint.state().run_id if checkpoint.exists else None
    directory = layout.run_dir(cfg.results, cfg.model, cfg.arm, cfg.seed)
    print(f"{directory}: its inputs changed since the checkpoint; starting afresh")
    if old is not None:
        with contextlib.suppress(Exception):  # a store that no longer holds it
            tracker = RunTracker(tracking_uri(cfg.results), cfg.model, cfg.arm, cfg.seed)
            tracker.client.delete_run(old)
    shutil.rmtree(directory)


def summary(cfg: RunConfig, inputs: RunInputs, state: RunState) -> dict[str, Any]:
    """A run's ``summary.json``: what it was, how it ended, its headline figures."""
    s = state
    p = cfg.profile
    block = p.model(cfg.model)
    return RunSummary(
        model=cfg.model,
        arm=cfg.arm,
        seed=cfg.seed,
        profile=cfg.profile_name,
        k=block.k,
        loop_gamma=p.loop.gamma if arm_of(cfg.arm).learns else None,
        evaluate=asdict(block.evaluate),
        finetune=asdict(block.finetune),
        finished=s.stopped is not None,
        stopped=s.stopped,
        iterations=s.iteration,
        generated_samples=s.generated,
        valid_samples=s.valid,
        valid_rate=s.valid / s.generated if s.generated else 0.0,
        budget=inputs.budget,
        initial_test_metric=s.iterations[0]["test/metric"] if s.iterations else None,
        final_test_metric=s.iterations[-1]["test/metric"] if s.iterations else None,
        best_val_metric=s.best_val,
        seconds=round(s.seconds, 1),
        mlflow_run_id=s.run_id,
        dataset_hashes={
            "validation": inputs.validation.content_hash,
            "test": inputs.test.content_hash,
        },
        external_hashes=inputs.external_hashes if inputs.external else None,
    ).to_dict()


class Run:
    """One (model, arm, seed) run, started afresh (``Run.start``) or resumed from its checkpoint
    (``Run.resume``); ``run`` iterates Algorithm 1 to its end, checkpointing every iteration.
    ``open_run`` picks between the two, after discarding a run made from other inputs."""

    def __init__(
        self,
        cfg: RunConfig,
        inputs: RunInputs,
        checkpoint: Checkpoint,
        state: RunState,
        vlm: VLM,
        vec_env: DummyVecEnv,
        arm: SacArm | RandomArm,
        rng: np.random.Generator,
        action_rng: np.random.Generator | None,
        timers: Timers,
    ) -> None:
        """The run's parts, made by ``start`` or ``resume``; nothing here reads or writes."""
        self.cfg = cfg
        self.spec: Arm = arm_of(cfg.arm)
        p = cfg.profile
        self.loop, self.stopping = p.loop, p.model(cfg.model).early_stopping
        self.k = p.model(cfg.model).k
        self.dir = layout.run_dir(cfg.results, cfg.model, cfg.arm, cfg.seed)
        self.inputs = inputs
        self.budget = inputs.budget
        self.full_batch = self.loop.episodes * round(self.loop.eta * self.loop.t0)  # E*eta*T0
        self.validation, self.test = inputs.validation, inputs.test
        self.control_donors, self.control = inputs.control_donors, inputs.control
        self.external, self.external_hashes = inputs.external, inputs.external_hashes
        self.checkpoint = checkpoint
        self.state = state
        self.vlm = vlm
        # each set's images at the model's input size, once (the family's own resize)
        self.external_images = [[vlm.fit_image(im) for im in e.images()] for e in self.external]
        self.vec_env = vec_env
        self.arm = arm
        self.rng = rng  # captions and eta-draws
        self.action_rng = action_rng  # the random arm's actions (None: SAC draws its own)
        self.timers = timers
        self.generated = state.generated  # cumulative generated samples (env steps)
        self.episodes: list[EpisodeRow] = []  # the current iteration's
        self._mlflow: RunTracker | None = None  # opened on first use (``tracker``)
        self._clock = time.perf_counter()

    @classmethod
    def _make(
        cls,
        cfg: RunConfig,
        inputs: RunInputs,
        checkpoint: Checkpoint,
        state: RunState,
        vlm: VLM,
        sac_path: Path,
    ) -> Run:
        """The simulator and the arm's policy around ``vlm`` (SAC from ``sac_path``)."""
        p = cfg.profile
        env = make_env("train", sim=p.sim, **profile_env_kwargs(p.sim, p.loop.t0))
        rng, action_rng = run_streams(cfg.seed)
        vec_env = DummyVecEnv([lambda: env])
        timers = Timers()
        spec = arm_of(cfg.arm)
        arm: SacArm | RandomArm
        if spec.acts == "sac":
            arm = SacArm(load_sac(sac_path, vec_env), p.loop.gamma, timers, learns=spec.learns)
        else:
            arm = RandomArm(vec_env, action_rng)
        actions = action_rng if isinstance(arm, RandomArm) else None
        return cls(cfg, inputs, checkpoint, state, vlm, vec_env, arm, rng, actions, timers)

    @classmethod
    def start(cls, cfg: RunConfig, inputs: RunInputs, load_vlm: Any) -> Run:
        """A fresh run from the base model and the seed's agent; its directory must not hold
        a checkpoint (``resume`` it, or ``discard`` it first)."""
        checkpoint = checkpoint_of(cfg, inputs)
        if checkpoint.exists:
            raise FileExistsError(f"{checkpoint.path} exists: resume the run, or discard it")
        vlm = load_vlm(inputs.base_vlm)
        return cls._make(cfg, inputs, checkpoint, RunState(), vlm, inputs.agent)

    @classmethod
    def resume(cls, cfg: RunConfig, inputs: RunInputs, load_vlm: Any) -> Run:
        """The run from its last completed iteration, every RNG as it was; the checkpoint must
        have been made from ``inputs``."""
        checkpoint = checkpoint_of(cfg, inputs)
        if not checkpoint.exists or checkpoint.made_from_other_inputs():
            raise ValueError(f"{checkpoint.path} holds no checkpoint of these inputs to resume")
        vlm = load_vlm(checkpoint.path / "vlm")
        run = cls._make(cfg, inputs, checkpoint, checkpoint.state(), vlm, checkpoint.path / "sac")
        checkpoint.restore_rngs(run.rng, run.action_rng)
        return run

    @property
    def tracker(self) -> RunTracker:
        """The run's MLflow run; the store is opened on first use."""
        if self._mlflow is None:
            cfg = self.cfg
            self._mlflow = RunTracker(tracking_uri(cfg.results), cfg.model, cfg.arm, cfg.seed)
        return self._mlflow

    # ------------------------------------------------------------------ Algorithm 1
    def run(self) -> dict[str, Any]:
        """Iterate until early stopping, the budget or max_iterations; returns the summary."""
        try:
            self.begin()
            while self.state.stopped is None:
                self.iterate()
            self.tracker.finish()
        finally:
            self.vec_env.close()  # a unity backend's player stops with it
        return self.summary()

    def begin(self) -> None:
        """Start (or resume) the MLflow run; a new run evaluates its starting point, iteration 0."""
        self._start_tracking()
        if self.state.iteration == 0 and not self.state.iterations:
            self._evaluate_and_record(losses=[], batch=[])
            self._checkpoint()

    def iterate(self) -> None:
        """One iteration of Algorithm 1 (lines 2-23), then the stopping rule and the checkpoint."""
        s = self.state
        iteration = s.iteration + 1
        self._begin_iteration(iteration)  # line 2
        batch: list[Sample] = []
        cut_short = False
        for _ in range(self.loop.episodes):  # line 3
            episode = self._generate()  # lines 4-10
            if episode.transitions:
                batch += self._vlm_feedback(iteration, episode)  # lines 11-14
            if episode.budget_spent:
                cut_short = True
                break
        if cut_short and len(batch) < self.loop.min_batch_fraction * self.full_batch:
            batch = []  # generated (and counted in the budget), too few to fine-tune on
        with self.timers("finetuning"):  # lines 16-22
            losses = self._finetune(batch) if batch else []
        s.iteration = iteration
        self._evaluate_and_record(losses, batch)  # line 23: the batch is cleared with it
        s.stopped = self._stop_reason()
        self._checkpoint()

    def _begin_iteration(self, iteration: int) -> None:
        """A reset seeded by (seed, iteration): a resumed run restarts exactly here."""
        self.vec_env.seed(derive_seed(self.cfg.seed, RESET_SEEDS, iteration))
        obs = self.vec_env.reset()
        assert isinstance(obs, np.ndarray)  # a Box observation space
        self.obs: np.ndarray = obs

    def _generate(self) -> Episode:
        """Lines 4-10: act, observe r(s, a), update SAC, until T0 valid samples (or the budget)."""
        episode = Episode()
        while True:
            if self.budget is not None and self.generated >= self.budget:
                episode.budget_spent = True
                return episode
            obs = self.obs
            actions, buffer_actions = self.arm.act(obs)  # line 6
            with self.timers("simulation"):
                new_obs, rewards, dones, infos = self.vec_env.step(actions)  # line 7
            assert isinstance(new_obs, np.ndarray)
            self.obs = new_obs
            self.arm.update(dones, infos)  # line 8
            self.generated += 1
            if infos[0]["valid"]:
                episode.valid_steps.append(len(episode.transitions))
            step = Transition(
                obs, buffer_actions, self.obs, float(rewards[0]), bool(dones[0]), infos[0]
            )
            episode.transitions.append(step)
            if dones[0]:  # line 10: pause on the episode's last step
                return episode

    def _vlm_feedback(self, iteration: int, episode: Episode) -> list[Sample]:
        """Lines 11-14: prompts from the metadata, VLM inference on the episode's N samples,
        its reward back to the agent, and a fraction eta of the samples for the batch."""
        with self.timers("captioning"):  # line 11
            samples = [
                Sample(
                    t.info["image"], describe_sample(t.info["sample"], self.rng), t.info["sample"]
                )
                for t in (episode.transitions[i] for i in episode.valid_steps)
            ]
        hardness: list[float] = []
        errors: list[bool] = []
        j2 = 0.0
        if samples:
            with self.timers("vlm_inference"):  # line 12
                results = self.vlm.evaluate(samples)
            hardness, errors = self.vlm.hardness(results), self.vlm.errors(results)
            j2 = float(self.vlm.j2(results))
        intrinsic = np.array([t.intrinsic for t in episode.transitions])
        extrinsic = extrinsic_rewards(  # line 13: beta * J2 back to the agent
            self.spec, self.loop.beta, hardness, episode.valid_steps, len(intrinsic)
        )
        self.arm.store(episode, intrinsic + extrinsic)
        chosen = batch_draw(self.spec, self.loop.eta, hardness, self.rng)  # line 14
        n_batch = len(chosen)
        self.episodes.append(
            EpisodeRow(
                iteration,
                len(self.episodes),
                len(intrinsic),
                len(samples),
                self.generated,
                float(intrinsic.sum()),
                j2,
                float(extrinsic.sum()),
                float(intrinsic.sum() + extrinsic.sum()),
                float(intrinsic[-1] + extrinsic[-1]),
                n_batch,
                float(np.mean(hardness)) if samples else float("nan"),
                float(np.mean(errors)) if samples else float("nan"),
            )
        )
        return [samples[i] for i in chosen]

    def _finetune(self, batch: list[Sample]) -> list[float]:
        """Line 17: K epochs (CLIP) or steps (PaliGemma); validation every F of them."""
        every = self.loop.validate_every or self.k
        losses: list[float] = []
        done = 0
        while done < self.k:
            chunk = min(every, self.k - done)
            seed = derive_seed(self.cfg.seed, FINETUNE_SEEDS, self.state.iteration + 1, done)
            losses += self.vlm.finetune(batch, chunk, seed=seed)
            done += chunk
            if done < self.k:
                with self.timers("evaluation"):
                    val = self.vlm.metric(self.vlm.evaluate(self.validation.samples))
                step = self.state.finetune_step + len(losses)
                self.state.losses.append(InnerValidation(step, val).to_row())
        return losses

    def _evaluate_and_record(self, losses: list[float], batch: list[Sample]) -> None:
        """Lines 18-19: validation and test; the iteration's row of every log."""
        s = self.state
        with self.timers("evaluation"):
            val = self.vlm.metric(self.vlm.evaluate(self.validation.samples))
            test_results = self.vlm.evaluate(self.test.samples)
            test = self.vlm.metric(test_results)
            control = self.vlm.metric(self.vlm.evaluate(self.control))
            per_subset = subset_metrics(self.vlm, self.test.samples, test_results)
            external = {
                f"external/{e.name}/{key}": value
                for e, images in zip(self.external, self.external_images, strict=True)
                for key, value in score(self.vlm, e, images).items()
            }
        episodes, self.episodes = self.episodes, []
        s.generated = self.generated
        s.valid += sum(e.valid for e in episodes)
        batch_terms = dict.fromkeys(TERMS, 0)
        for sample in batch:
            for term in sample.record.terms:
                batch_terms[term] += 1
                s.term_counts[term] += 1
        valid = sum(e.valid for e in episodes)

        def per_sample(key: str) -> float:  # the iteration's mean over its valid samples
            total = sum(getattr(e, key) * e.valid for e in episodes if e.valid)
            return total / valid if valid else float("nan")

        for loss in losses:
            s.finetune_step += 1
            s.losses.append(LossRow(s.finetune_step, s.iteration, loss).to_row())
        s.episodes += [e.to_row() for e in episodes]
        if self.spec.budget != "own":  # a budget arm: its best validation metric, no patience
            s.best_val = val if s.best_val is None else max(s.best_val, val)
        elif s.best_val is None or val > s.best_val + self.stopping.min_delta:
            s.best_val, s.stale = val, 0
        else:
            s.stale += 1
        row = IterationRow(
            iteration=s.iteration,
            generated_samples=s.generated,
            valid_samples=s.valid,
            valid_rate=s.valid / s.generated if s.generated else 0.0,
            episodes=len(episodes),
            batch_size=len(batch),
            finetune_loss_mean=float(np.mean(losses)) if losses else float("nan"),
            hardness=per_sample("hardness"),
            error_rate=per_sample("error_rate"),
            val_metric=val,
            test_metric=test,
            test_control=control,
            test_grounded_gain=test - control,
            subsets=per_subset,
            external=external,
            batch_terms={f"batch_terms/{term_key(t)}": c for t, c in batch_terms.items()},
            batch_terms_cum={f"batch_terms_cum/{term_key(t)}": c for t, c in s.term_counts.items()},
        )
        s.iterations.append(row.to_row())

    def _stop_reason(self) -> str | None:
        s = self.state
        if self.budget is not None and s.generated >= self.budget:
            return "budget"
        if (
            self.spec.budget == "own"
            and s.iteration >= self.stopping.min_iterations
            and s.stale >= self.stopping.patience
        ):
            return "early_stopping"
        if self.budget is None and s.iteration >= self.loop.max_iterations:
            return "max_iterations"
        return None  # a budget arm runs until its budget is spent: every iteration spends some

    # ------------------------------------------------------------------ persistence
    def _checkpoint(self) -> None:
        """Save everything a resume needs (atomically), then the run files, then MLflow."""
        now = time.perf_counter()
        self.state.seconds += now - self._clock
        self._clock = now
        with self.timers("logging"):
            sac = self.arm.model if isinstance(self.arm, SacArm) else None
            self.checkpoint.save(self.state, self.vlm, sac, self.rng, self.action_rng)
            self._write_run_files()
            self._log_to_mlflow()

    def _write_run_files(self) -> None:
        s = self.state
        atomic_write_csv(self.dir / "metrics.csv", s.iterations)
        atomic_write_csv(self.dir / "episodes.csv", s.episodes)
        atomic_write_csv(self.dir / "finetune_loss.csv", [r for r in s.losses if "loss" in r])
        atomic_write_json(self.dir / "summary.json", self.summary())

    def summary(self) -> dict[str, Any]:
        return summary(self.cfg, self.inputs, self.state)

    def _start_tracking(self) -> None:
        cfg = self.cfg
        tags = run_tags(
            cfg.model,
            cfg.arm,
            cfg.seed,
            cfg.profile_name,
            [self.validation.content_hash, self.test.content_hash],
        )
        params = run_params(cfg.profile, cfg.model, cfg.arm)
        self.state.run_id = self.tracker.start(self.state.run_id, tags, params)

    def _log_to_mlflow(self) -> None:
        """Every logged row, re-sent idempotently (the tracker skips (key, step) it holds)."""
        s = self.state
        self.tracker.log(metric_rows(s.iterations, s.episodes, s.losses))
        self.tracker.set_tags({"stopped": s.stopped or "running"})


def open_run(cfg: RunConfig, inputs: RunInputs, load_vlm: Any) -> Run:
    """The run of ``cfg`` made from ``inputs`` (``read_inputs``), step by step: a checkpoint
    made from other inputs discarded, then the run resumed from its checkpoint, or started
    afresh."""
    checkpoint = checkpoint_of(cfg, inputs)
    if checkpoint.exists and checkpoint.made_from_other_inputs():
        discard(cfg, checkpoint)
    if checkpoint.exists:
        return Run.resume(cfg, inputs, load_vlm)
    return Run.start(cfg, inputs, load_vlm)


def run_from_params(
    params: Any,
    model: str,
    arm: str,
    seed: int,
    *,
    results: str | Path = layout.RESULTS,
    datasets: str | Path = layout.DATASETS,
    root: Path | None = None,
) -> dict[str, Any]:
    """``rls3 run``: one run with the active profile, resuming if it was interrupted; ``root``:
    where the params' relative paths (external sets) start (default: the working directory).
    A run finished from these same inputs loads nothing (no model, no simulator, no tracking
    store): its summary is returned, which is what DVC's recording of a grid's runs costs."""
    results, datasets = Path(results), Path(datasets)
    profile = params.active
    cfg = RunConfig(model, arm, seed, params.profile, profile, results, datasets)
    budget_of(cfg)  # a random run without its sac run: say which run to do first
    base = layout.base_model(results, model)
    if not base.exists():
        raise FileNotFoundError(
            f"no base {model} model at {base}; run `rls3 pretrain-vlm --model {model}` first"
        )
    agent = layout.agent(results, seed)
    inputs = read_inputs(cfg, base, agent, root)
    checkpoint = checkpoint_of(cfg, inputs)
    if checkpoint.exists and not checkpoint.made_from_other_inputs():
        state = checkpoint.state()
        if state.stopped is not None:
            return summary(cfg, inputs, state)
    loader = vlm_loader(model, profile.model(model).vlm_config(), seed)
    with torch_threads(profile.threads):  # the run's sums, whichever engine started it
        return open_run(cfg, inputs, loader).run()
