"""A run's checkpoint (spec section 6, "resume"): what a killed run needs to continue after its
last completed iteration, written atomically at the end of every iteration.

It holds the VLM, SAC with its replay buffer (the arms that learn), every RNG state (NumPy's and
Python's global ones, the run's own generators, torch's CPU and CUDA generators), the run's state
and logs (``RunState``), and the inputs the run was made from (``inputs.json``: params, datasets,
base model, agent and ``code_digest``). A checkpoint made from other inputs is not resumed.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from stable_baselines3 import SAC

from benchmark.captions import TERMS
from benchmark.fileio import atomic_directory, atomic_write_json
from benchmark.vlm.base import VLM


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


def torch_rng_states() -> dict[str, torch.Tensor]:
    """The CPU generator's state and, where there is CUDA, every device's."""
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            states[f"cuda:{i}"] = torch.cuda.get_rng_state(i)
    return states


def restore_torch_rng(states: dict[str, torch.Tensor]) -> None:
    """Set what ``torch_rng_states`` saved; a CUDA state without CUDA here is an error."""
    torch.set_rng_state(states["cpu"])
    for key, state in states.items():
        if key.startswith("cuda:"):
            if not torch.cuda.is_available():
                raise RuntimeError(
                    f"the checkpoint holds the RNG state of {key}, and there is no CUDA here: "
                    "a run resumes on the kind of machine it started on"
                )
            torch.cuda.set_rng_state(state, int(key.split(":")[1]))


def rng_states(
    captions: np.random.Generator, actions: np.random.Generator | None
) -> dict[str, Any]:
    """Every host RNG a run draws from, as JSON: its captions and actions generators (None: the
    arm has none) and NumPy's and Python's global ones."""
    np_state: Any = np.random.get_state()
    return {
        "captions": captions.bit_generator.state,
        "random_arm": actions.bit_generator.state if actions is not None else None,
        "numpy_global": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }


class Checkpoint:
    """The checkpoint directory of one run, made from ``inputs``."""

    def __init__(self, path: Path, inputs: dict[str, Any]) -> None:
        self.path = path
        self.inputs = inputs

    @property
    def exists(self) -> bool:
        """True when an iteration was completed and saved here."""
        return (self.path / "state.json").is_file()

    def made_from_other_inputs(self) -> bool:
        """True if the checkpoint was made from other inputs than this run's."""
        held = self.path / "inputs.json"
        return not held.is_file() or json.loads(held.read_text()) != self.inputs

    def state(self) -> RunState:
        """The saved ``RunState``."""
        return RunState(**json.loads((self.path / "state.json").read_text()))

    def restore_rngs(
        self, captions: np.random.Generator, actions: np.random.Generator | None
    ) -> None:
        """Set every RNG to its saved state (``rng_states``, torch's included)."""
        states = json.loads((self.path / "rng.json").read_text())
        captions.bit_generator.state = states["captions"]
        if actions is not None:
            actions.bit_generator.state = states["random_arm"]
        kind, keys, *rest = states["numpy_global"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
        restore_torch_rng(load_file(self.path / "torch_rng.safetensors"))

    def save(
        self,
        state: RunState,
        vlm: VLM,
        sac: SAC | None,
        captions: np.random.Generator,
        actions: np.random.Generator | None,
    ) -> None:
        """Write the whole checkpoint at once (a kill leaves the previous one whole)."""
        with atomic_directory(self.path) as tmp:
            vlm.save(tmp / "vlm")
            if sac is not None:
                (tmp / "sac").mkdir()
                sac.save(tmp / "sac" / "model.zip")
                sac.save_replay_buffer(tmp / "sac" / "replay_buffer.pkl")
            atomic_write_json(tmp / "rng.json", rng_states(captions, actions))
            save_file(torch_rng_states(), tmp / "torch_rng.safetensors")
            atomic_write_json(tmp / "state.json", asdict(state))
            atomic_write_json(tmp / "inputs.json", self.inputs)
