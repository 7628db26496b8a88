"""A run's checkpoint: saved whole, restoring every RNG, and refused when its inputs changed."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.checkpoint import Checkpoint, RunState, restore_torch_rng, torch_rng_states
from benchmark.vlm import load_vlm


def _draws(captions: np.random.Generator, actions: np.random.Generator) -> tuple[float, ...]:
    """One draw from each RNG a checkpoint holds."""
    return (
        captions.random(),
        actions.random(),
        np.random.random(),
        random.random(),
        torch.rand(1).item(),
    )


def test_a_checkpoint_restores_the_state_and_every_rng(tmp_path: Path) -> None:
    inputs = {"params": {"a": 1}, "code": "abc"}
    ckpt = Checkpoint(tmp_path / "checkpoint", inputs)
    assert not ckpt.exists
    captions, actions = np.random.default_rng(1), np.random.default_rng(2)
    np.random.seed(3)
    random.seed(4)
    torch.manual_seed(5)
    state = RunState(iteration=2, generated=70, best_val=0.5, iterations=[{"iteration": 1}])
    ckpt.save(state, load_vlm("clip"), None, captions, actions)
    expected = _draws(captions, actions)
    again = Checkpoint(tmp_path / "checkpoint", inputs)
    assert again.exists and again.state() == state and not again.made_from_other_inputs()
    assert (tmp_path / "checkpoint" / "vlm").is_dir()
    captions, actions = np.random.default_rng(9), np.random.default_rng(9)
    again.restore_rngs(captions, actions)
    drawn = _draws(captions, actions)
    assert drawn == expected
    assert Checkpoint(tmp_path / "checkpoint", {**inputs, "code": "abd"}).made_from_other_inputs()


def test_checkpoints_hold_the_cuda_rng_where_there_is_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's CUDA RNG API, as a CUDA machine answers it (this machine has none)."""
    cuda = {0: torch.arange(16, dtype=torch.uint8), 1: torch.arange(16, 32, dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda i: cuda[i].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: cuda.__setitem__(i, s))
    states = torch_rng_states()
    assert set(states) == {"cpu", "cuda:0", "cuda:1"}
    saved = {k: v.clone() for k, v in states.items()}
    cuda[0], cuda[1] = torch.zeros(16, dtype=torch.uint8), torch.zeros(16, dtype=torch.uint8)
    restore_torch_rng(saved)
    assert torch.equal(cuda[0], saved["cuda:0"]) and torch.equal(cuda[1], saved["cuda:1"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"cuda:0.*no CUDA here"):
        restore_torch_rng(saved)
