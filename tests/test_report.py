"""The report's statistics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.report import (
    RunLog,
    bootstrap_ci,
    caveats,
    compare,
    normalised_auc,
    samples_to_reach,
)


def test_the_auc_is_the_trapezoid_area_over_the_budget() -> None:
    generated = np.array([0.0, 100.0, 300.0])
    metric = np.array([0.2, 0.4, 0.4])
    # (0.2 + 0.4) / 2 * 100 + 0.4 * 200 = 30 + 80 = 110; over 300 samples
    assert normalised_auc(generated, metric) == pytest.approx(110 / 300)


def test_a_flat_curve_has_its_value_as_auc() -> None:
    assert normalised_auc(np.array([0.0, 50.0, 90.0]), np.full(3, 0.3)) == pytest.approx(0.3)


def test_samples_to_reach_is_the_first_iteration_at_or_above_the_target() -> None:
    generated = np.array([0.0, 64.0, 130.0, 200.0])
    metric = np.array([0.25, 0.30, 0.41, 0.40])
    assert samples_to_reach(generated, metric, 0.41) == 130.0
    assert samples_to_reach(generated, metric, 0.25) == 0.0
    assert np.isnan(samples_to_reach(generated, metric, 0.5))


def test_bootstrap_mean_and_interval() -> None:
    mean, low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert 1.0 <= low < 2.5 < high <= 4.0
    # one value: the interval collapses onto it; NaNs are dropped
    assert bootstrap_ci([0.7, float("nan")]) == pytest.approx((0.7, 0.7, 0.7))
    assert all(np.isnan(v) for v in bootstrap_ci([]))


def test_bootstrap_interval_narrows_with_more_seeds() -> None:
    rng = np.random.default_rng(0)
    few = bootstrap_ci(list(rng.normal(0, 1, 3)))
    many = bootstrap_ci(list(rng.normal(0, 1, 300)))
    assert many[2] - many[1] < few[2] - few[1]


def _log(arm: str, seed: int, tests: list[float]) -> RunLog:
    rows = [{"generated_samples": 100.0 * i, "test/metric": t} for i, t in enumerate(tests)]
    summary = {"valid_rate": 0.8, "iterations": len(tests) - 1, "stopped": "budget"}
    return RunLog(arm, seed, summary, rows, [])


def test_caveats_say_when_fine_tuning_lost_ground() -> None:
    lost = compare(
        {"sac": [_log("sac", 0, [0.30, 0.27])], "random": [_log("random", 0, [0.30, 0.25])]}
    )
    assert lost["arms"]["random"]["seeds"][0]["samples_to_random_final"] == 0.0
    notes = caveats(lost)
    assert len(notes) == 2
    assert notes[0].startswith("sac and random ended below")
    assert "seed(s) [0]" in notes[1]
    gained = compare(
        {"sac": [_log("sac", 0, [0.30, 0.36])], "random": [_log("random", 0, [0.30, 0.33])]}
    )
    assert caveats(gained) == []
