"""What the built-in models' base trainings share (spec section 5): their samples, drawn in the
profile's environment with every step's object swapped (``swap_prob = 1``, which decorrelates
the objects from the scenes they appear in), the test samples they are measured on, batches of
one scene at a time, the localisation targets read from the metadata, the localisation
measurement, and the optimiser's schedule. Each family's base training is its own module
(``vlm.clip.pretrain``, ``vlm.paligemma.pretrain``); the stage is ``benchmark.pretrain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmark.config import ClipPretrainConfig, PaligemmaPretrainConfig, SimParams
from benchmark.samples import Sample
from benchmark.sampling import collect_samples
from benchmark.sim.camera import image_objects
from benchmark.sim.scenes import object_names
from benchmark.vlm.locnet import LocNet

BUILTIN_IMAGE_SIZES = (32, 64, 224)  # px: the sizes the built-in models are made for


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    losses: list[float],
    bar: Any,
) -> None:
    """One AdamW step on the schedule; the loss is recorded and shown on the bar."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    losses.append(float(loss.detach()))
    bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)


def one_cycle(
    optimizer: torch.optim.Optimizer, lr: float, steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """10% warm-up to ``lr``, then cosine decay: from-scratch training needs the warm-up.
    (OneCycleLR divides by zero when the warm-up ends exactly on step 0, at 10 steps: 15% then.)"""
    steps = max(2, steps)
    pct = 0.15 if steps == 10 else 0.1
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=pct
    )


def collect_train(
    config: ClipPretrainConfig | PaligemmaPretrainConfig, sim: SimParams, t0: int
) -> list[Sample]:
    """Train-environment samples in the profile's environment, at the base training's swap
    rate (objects decorrelated from scenes)."""
    if sim.image_size not in BUILTIN_IMAGE_SIZES:
        raise ValueError(
            f"sim.image_size = {sim.image_size}: the built-in models train at one of "
            f"{list(BUILTIN_IMAGE_SIZES)} px"
        )
    return collect_samples(
        "train", config.samples, config.seed, sim=sim, t0=t0, swap_prob=config.swap_prob
    )


def collect_test(
    config: ClipPretrainConfig | PaligemmaPretrainConfig, sim: SimParams, t0: int
) -> list[Sample]:
    """Test-environment samples as the benchmark draws them (the profile's swap rate), seed + 1."""
    return collect_samples("test", config.test_samples, config.seed + 1, sim=sim, t0=t0)


def scene_batches(
    samples: Sequence[Sample], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch of minibatches, each drawn from a single scene, in random order.

    Within one scene the background cannot tell the captions apart, only the objects can; in
    mixed batches the model first learns the scenes, a shortcut that does not transfer to the
    test environment's scenes.
    """
    scenes = np.array([s.metadata["scene"] if s.metadata else "" for s in samples])
    batches: list[np.ndarray] = []
    for scene in np.unique(scenes):
        idx = rng.permutation(np.flatnonzero(scenes == scene))
        batches.extend(idx[i : i + batch_size] for i in range(0, len(idx), batch_size))
    return [batches[int(i)] for i in rng.permutation(len(batches))]


DEPTH_CENTRE_M = 2.0  # localisation targets: depth - 2 m (the scenes' objects lie 1-3.2 m away)


def object_targets(
    samples: Sequence[Sample], names: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each object of ``names`` is in each sample's image, from the metadata alone.

    Returns centres (N, C, 2) in [-1, 1] (x right, y down), depths (N, C) in metres minus
    ``DEPTH_CENTRE_M``, and presence (N, C): 1 for an active object whose centre projects into
    the image in front of the camera.
    """
    centres = torch.zeros(len(samples), len(names), 2)
    depths = torch.zeros(len(samples), len(names))
    present = torch.zeros(len(samples), len(names))
    for i, s in enumerate(samples):
        if s.metadata is None:
            raise ValueError("localisation targets need each sample's metadata")
        size = s.image.shape[0]
        for obj in image_objects(s.metadata, size):
            if obj.depth <= 0 or not (0 <= obj.x < size and 0 <= obj.y < size):
                continue
            c = names.index(obj.name)
            centres[i, c] = torch.tensor([obj.x / size * 2 - 1, obj.y / size * 2 - 1])
            depths[i, c] = obj.depth - DEPTH_CENTRE_M
            present[i, c] = 1.0
    return centres, depths, present


@torch.inference_mode()
def measure_localisation(
    trunk: LocNet, images: torch.Tensor, samples: Sequence[Sample]
) -> dict[str, float]:
    """How well ``trunk`` finds the objects of ``samples`` (``images``, preprocessed): centre
    error (px at 64 px) and presence accuracy, and left/right of every pair of present objects
    read from the two predicted x's (what the relation needs; chance 1/2)."""
    trunk.eval()
    centres, _, present = object_targets(samples, object_names())
    logits, predicted = [], []
    for b in images.split(256):
        p, c, _ = trunk.pool(*trunk.maps(b))
        logits.append(p)
        predicted.append(c)
    presence, where = torch.cat(logits).cpu(), torch.cat(predicted).cpu()
    mask = present.bool()
    error = (where - centres).norm(dim=2)[mask].mean() * 32
    pairs = correct = 0
    for i in range(len(samples)):
        idx = torch.nonzero(mask[i]).flatten().tolist()
        for a in idx:
            for b in idx:
                gap = centres[i, a, 0] - centres[i, b, 0]
                if a < b and abs(gap) > 2 / 64:  # at least a pixel apart
                    pairs += 1
                    correct += int((where[i, a, 0] - where[i, b, 0]) * gap > 0)
    return {
        "centre_error_px": float(error),
        "presence_accuracy": float(((presence > 0) == mask).float().mean()),
        "left_right_accuracy": correct / max(pairs, 1),
    }
