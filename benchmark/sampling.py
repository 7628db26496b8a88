"""Sampling (spec sections 3 and 4): valid samples of a uniform random policy in the placement
environment, each with its image, its metadata and a seeded caption. The fixed datasets, the
built-in models' base training and the learnability probe all draw their samples here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from benchmark.captions import CaptionRecord, describe_sample, n_terms_counts, term_counts
from benchmark.samples import Sample, progress

if TYPE_CHECKING:
    from benchmark.config import SimParams


def collect_samples(
    environment: str,
    n: int,
    seed: int,
    *,
    sim: SimParams,
    t0: int,
    swap_prob: float | None = None,
) -> list[Sample]:
    """``n`` valid samples of a uniform random policy in ``environment``, seeded.

    The environment is the profile's: its ``sim`` block (backend, image size, swap probability,
    scene period, step cap) and the loop's ``t0``, as the runs see it; ``swap_prob``, where
    given, replaces the sim block's (base training decorrelates objects from scenes). The same
    seed gives the same images and captions (the simulator and the caption draw are both seeded
    from ``seed``).
    """
    from benchmark.sim.backends import make_env, profile_env_kwargs  # only needed here

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    kwargs = profile_env_kwargs(sim, t0)
    if swap_prob is not None:
        kwargs["swap_prob"] = swap_prob
    env = make_env(environment, sim=sim, **kwargs)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    samples: list[Sample] = []
    try:
        steps = valid_steps(env, seed)
        with progress(total=n, desc=f"samples ({environment})") as bar:
            while len(samples) < n:
                info, _ = next(steps)
                meta = info["sample"]
                samples.append(Sample(info["image"], describe_sample(meta, rng), meta))
                bar.update(1)
    finally:
        env.close()
    return samples


def valid_steps(env: gym.Env, seed: int) -> Iterator[tuple[dict[str, Any], int]]:
    """The ``info`` of each valid step of a uniform random policy in ``env`` (seeded: the reset
    and the action draws), with the steps taken so far; an episode's end resets."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        if info["valid"]:
            yield info, steps
        if terminated or truncated:
            env.reset()


def caption_statistics(environment: str, n: int, seed: int) -> dict[str, Any]:
    """``rls3 captions stats``: the terms of ``n`` random-policy captions (no images rendered):
    how often each term and each number of terms occurs, and the valid rate."""
    from benchmark.sim.env import PlacementEnv

    if n < 1:
        raise ValueError(f"--samples must be >= 1, got {n}")
    env = PlacementEnv(environment, t0=64, render_images=False)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    records: list[CaptionRecord] = []
    steps, taken = valid_steps(env, seed), 0
    try:
        while len(records) < n:
            info, taken = next(steps)
            records.append(describe_sample(info["sample"], rng))
    finally:
        env.close()
    by_term, by_n = term_counts(records), n_terms_counts(records)
    return {
        "environment": environment,
        "seed": seed,
        "samples": n,
        "steps": taken,
        "valid_rate": n / taken,
        "term_counts": by_term,
        "term_shares": {t: c / n for t, c in by_term.items()},  # share of samples with the term
        "n_terms_counts": {str(k): c for k, c in by_n.items()},
        "n_terms_shares": {str(k): c / n for k, c in by_n.items()},
    }
