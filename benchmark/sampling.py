"""Sampling (SPEC sections 3 and 4): valid samples of a uniform random policy in the placement
environment, each with its image, its metadata and a seeded caption. The fixed datasets, the
built-in models' base training and the learnability probe all draw their samples here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from benchmark.captions import describe_sample
from benchmark.vlm.base import Sample, progress

if TYPE_CHECKING:
    from benchmark.config import SimParams


def collect_samples(
    environment: str,
    n: int,
    seed: int,
    *,
    image_size: int = 64,
    t0: int = 32,
    swap_prob: float = 0.25,
    sim: SimParams | None = None,
) -> list[Sample]:
    """``n`` valid samples of a uniform random policy in ``PlacementEnv(environment)``, seeded.

    The same seed gives the same images and captions (the simulator and the caption draw are
    both seeded from ``seed``). ``swap_prob`` is the environment's object swap probability;
    ``sim`` (a ``SimParams``) picks the backend, embedded if None.
    """
    from benchmark.sim.backends import make_env  # the simulator is only needed here

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    env = make_env(
        environment,  # type: ignore[arg-type]
        sim=sim,
        t0=t0,
        image_size=image_size,
        swap_prob=swap_prob,
    )
    rng = np.random.default_rng(seed)
    samples: list[Sample] = []
    try:
        env.reset(seed=seed)
        env.action_space.seed(seed)
        with progress(total=n, desc=f"samples ({environment})") as bar:
            while len(samples) < n:
                _, _, terminated, truncated, info = env.step(env.action_space.sample())
                if info["valid"]:
                    meta = info["sample"]
                    samples.append(Sample(info["image"], describe_sample(meta, rng), meta))
                    bar.update(1)
                if terminated or truncated:
                    env.reset()
    finally:
        env.close()
    return samples
