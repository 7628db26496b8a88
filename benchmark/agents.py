"""The two data-generation arms (spec section 6; the paper's section 5.1).

``sac``: stable-baselines3's SAC, pre-trained on the intrinsic (feasibility) reward alone for P
steps, then updated every step inside the loop. ``random``: uniform actions, no learning, the
same episodic batching. SAC's own ``save``/``load`` (a zip of state dicts) and
``save_replay_buffer`` hold its state; those files are the pipeline's own outputs, never
downloaded, so reading them is safe.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from benchmark.config import AgentParams, Profile, SimParams
from benchmark.fileio import atomic_directory, atomic_write_json
from benchmark.sim.backends import make_env, profile_env_kwargs


def quiet(model: SAC) -> SAC:
    """``model`` with a logger that writes nothing: SB3's default makes an empty
    ``$TMPDIR/SB3-<date>`` directory at every ``learn`` (the run files hold the progress)."""
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def make_sac(env: Any, params: AgentParams, seed: int) -> SAC:
    """A fresh SAC on ``env`` with one gradient step per environment step."""
    return quiet(
        SAC(
            "MlpPolicy",
            env,
            learning_rate=params.learning_rate,
            buffer_size=params.buffer_size,
            learning_starts=params.learning_starts,
            batch_size=params.batch_size,
            gamma=params.gamma,
            train_freq=1,
            gradient_steps=1,
            policy_kwargs={"net_arch": list(params.hidden)},
            seed=seed,
            device="cpu",  # small MLPs: the GPU would only add transfer latency
            verbose=0,
        )
    )


def valid_rate(policy: Any, env: gym.Env, steps: int, seed: int) -> float:
    """Share of valid steps of ``policy`` (``predict``-style, deterministic) on ``env``."""
    obs, _ = env.reset(seed=seed)
    valid = 0
    for _ in range(steps):
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        valid += float(reward) > 0
        if terminated or truncated:
            obs, _ = env.reset()
    return valid / steps


class RandomAgent:
    """The baseline arm: uniform actions in [-1, 1]^3 from its own seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def predict(self, obs: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, None]:
        return self.rng.uniform(-1.0, 1.0, 3).astype(np.float32), None


@dataclass
class PretrainReport:
    seed: int
    steps: int
    seconds: float
    valid_rate_before: float  # the uniform random policy's, same evaluation env and seed
    valid_rate_after: float  # the pre-trained SAC's, deterministic actions
    history: list[dict[str, float]] = field(default_factory=list)
    inputs: dict[str, Any] | None = None  # what it was made from (``agent_inputs``)


class _Progress(BaseCallback):
    """Evaluate the valid rate every ``every`` steps (a learning curve for the report)."""

    def __init__(self, every: int, evaluate: Any, history: list[dict[str, float]]) -> None:
        super().__init__()
        self.every, self.evaluate, self.history = every, evaluate, history

    def _on_step(self) -> bool:
        if self.every and self.num_timesteps % self.every == 0:
            rate = self.evaluate(self.model)
            self.history.append({"step": float(self.num_timesteps), "valid_rate": rate})
        return True


def pretrain_sac(
    params: AgentParams,
    seed: int,
    out_dir: str | Path,
    *,
    env_kwargs: dict[str, Any] | None = None,
    sim: SimParams | None = None,
    eval_steps: int = 500,
    eval_every: int = 0,
    inputs: dict[str, Any] | None = None,
) -> PretrainReport:
    """Pre-train SAC for P steps on the intrinsic reward alone; save it under ``out_dir``.

    Writes ``model.zip`` (SB3), ``replay_buffer.pkl`` and ``pretrain.json`` (the valid rates
    before and after, measured on the train environment with a separate seed) atomically.
    ``env_kwargs`` are the environment's arguments; ``sim`` picks its backend (embedded if None).
    """
    kwargs = {"render_images": False, **(env_kwargs or {})}
    torch.manual_seed(seed)
    env = make_env("train", sim=sim, **kwargs)
    probe = make_env("train", sim=sim, **kwargs)
    eval_seed = 10_000 + seed

    def evaluate(policy: Any) -> float:
        return valid_rate(policy, probe, eval_steps, eval_seed)

    try:
        before = evaluate(RandomAgent(seed))
        model = make_sac(env, params, seed)
        history: list[dict[str, float]] = []
        start = time.perf_counter()
        if params.pretrain_steps:
            model.learn(params.pretrain_steps, callback=_Progress(eval_every, evaluate, history))
        seconds = time.perf_counter() - start
        after = evaluate(model)
        report = PretrainReport(
            seed, params.pretrain_steps, seconds, before, after, history, inputs
        )
        with atomic_directory(out_dir) as tmp:
            model.save(tmp / "model.zip")
            model.save_replay_buffer(tmp / "replay_buffer.pkl")
            atomic_write_json(tmp / "pretrain.json", report.__dict__)
    finally:
        env.close()
        probe.close()
    return report


def agent_inputs(profile: Profile, seed: int) -> dict[str, Any]:
    """What the pre-trained agent of ``seed`` is made from: its params, the simulator's, the
    torch threads, the seed and the code (``AGENT_CODE_PATHS``), as JSON would hold them."""
    from benchmark.provenance import AGENT_CODE_PATHS, code_digest

    made_from = {
        "seed": seed,
        "agent": asdict(profile.agent),
        "sim": asdict(profile.sim),
        "t0": profile.loop.t0,
        "threads": profile.threads,
        "code": code_digest(paths=AGENT_CODE_PATHS),
    }
    return dict(json.loads(json.dumps(made_from)))


def pretrain_agent(profile: Profile, seed: int, out_dir: str | Path) -> tuple[PretrainReport, bool]:
    """``rls3 pretrain-agent``: SAC pre-trained for ``seed`` with the profile's settings under
    ``out_dir``, unless ``out_dir`` already holds the agent made from the same inputs
    (``agent_inputs``); returns its report and whether it was made now.

    So agents pre-trained ahead of ``dvc repro`` (``make bench`` does, beside the base model's
    training) are recorded by the agent stage in seconds, as finished runs are.
    """
    out_dir = Path(out_dir)
    inputs = agent_inputs(profile, seed)
    record = out_dir / "pretrain.json"
    if (out_dir / "model.zip").is_file() and record.is_file():
        done = json.loads(record.read_text())
        if done.get("inputs") == inputs:
            return PretrainReport(**done), False
    from benchmark.provenance import torch_threads

    env_kwargs = profile_env_kwargs(profile.sim, profile.loop.t0)
    with torch_threads(profile.threads):  # SAC's small networks gain nothing from more
        report = pretrain_sac(
            profile.agent, seed, out_dir, env_kwargs=env_kwargs, sim=profile.sim, inputs=inputs
        )
    return report, True


def load_sac(path: str | Path, env: Any) -> SAC:
    """The SAC saved by ``pretrain_sac`` (or a loop checkpoint), with its replay buffer."""
    path = Path(path)
    if not (path / "model.zip").is_file():
        raise FileNotFoundError(f"no SAC model at {path}; run `rls3 pretrain-agent --seed S` first")
    model = quiet(SAC.load(path / "model.zip", env=env, device="cpu"))
    model.load_replay_buffer(path / "replay_buffer.pkl")
    return model
