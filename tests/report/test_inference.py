"""Equivalence, minimum detectable difference and probability of improvement against hand
computations on hand-made cases (benchmark/report/stats.py).

Student t with 2 degrees of freedom has a closed form: its CDF is 1/2 + t / (2 sqrt(2 + t^2)) and
its q-quantile (2q - 1) / sqrt(2 q (1 - q)); three paired seeds give 2 degrees of freedom.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from rliable import metrics as rliable_metrics
from scipy import optimize, stats

from benchmark.report import (
    compare,
    detectable_difference,
    equivalence_p,
    interval_verdict,
    probability_of_improvement,
    seeds_for_margin,
)
from tests.report.helpers import _shifted

MARGIN = 0.02


def _t2_upper_tail(t: float) -> float:
    """P(T > t), T Student t with 2 degrees of freedom."""
    return 0.5 - t / (2 * math.sqrt(2 + t * t))


def _t2_quantile(q: float) -> float:
    return (2 * q - 1) / math.sqrt(2 * q * (1 - q))


def _interval90(differences: list[float]) -> tuple[float, float]:
    """The 90% paired interval of three differences, by hand."""
    mean = sum(differences) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 2)
    half = _t2_quantile(0.95) * sd / math.sqrt(3)
    return mean - half, mean + half


EQUIVALENT = [0.0, 0.01, -0.01]  # mean 0, sd 0.01: 90% interval ±0.01686, inside ±0.02
TOO_WIDE = [0.0, 0.02, -0.02]  # mean 0, sd 0.02: ±0.03372
SHIFTED = [0.012, 0.022, 0.002]  # sd 0.01 as EQUIVALENT, mean 0.012: [-0.00486, +0.02886]


def test_the_90_percent_intervals_of_the_cases_by_hand() -> None:
    assert _t2_quantile(0.95) == pytest.approx(2.919986, abs=1e-6)
    assert _interval90(EQUIVALENT) == pytest.approx((-0.016859, 0.016859), abs=1e-6)
    assert _interval90(TOO_WIDE) == pytest.approx((-0.033717, 0.033717), abs=1e-6)
    assert _interval90(SHIFTED) == pytest.approx((-0.004859, 0.028859), abs=1e-6)


def test_equivalence_inside_the_margin() -> None:
    # t = (0 + 0.02) / (0.01 / sqrt 3) = 2 sqrt 3 for both one-sided tests
    p = equivalence_p(EQUIVALENT, [0.0] * 3, MARGIN)
    assert p == pytest.approx(_t2_upper_tail(2 * math.sqrt(3)), abs=1e-9)
    assert p == pytest.approx(0.037090, abs=1e-6)
    assert p < 0.05
    assert all(-MARGIN < bound < MARGIN for bound in _interval90(EQUIVALENT))


def test_no_equivalence_when_the_interval_is_too_wide() -> None:
    # t = 0.02 / (0.02 / sqrt 3) = sqrt 3
    p = equivalence_p(TOO_WIDE, [0.0] * 3, MARGIN)
    assert p == pytest.approx(_t2_upper_tail(math.sqrt(3)), abs=1e-9)
    assert p == pytest.approx(0.112702, abs=1e-6)


def test_no_equivalence_when_the_interval_is_shifted() -> None:
    # the upper test: t = (0.012 - 0.02) / (0.01 / sqrt 3) = -0.8 sqrt 3; the lower passes
    p = equivalence_p(SHIFTED, [0.0] * 3, MARGIN)
    assert p == pytest.approx(_t2_upper_tail(0.8 * math.sqrt(3)), abs=1e-9)
    assert p == pytest.approx(0.150073, abs=1e-6)
    # the same differences as two arms' values: only the paired differences count
    assert equivalence_p([0.5 + d for d in SHIFTED], [0.5, 0.5, 0.5], MARGIN) == pytest.approx(p)


def test_equivalence_edge_cases() -> None:
    assert np.isnan(equivalence_p([0.01], [0.0], MARGIN))  # one pair: no test
    assert equivalence_p([0.01] * 3, [0.0] * 3, MARGIN) == 0.0  # no spread, inside
    assert equivalence_p([0.03] * 3, [0.0] * 3, MARGIN) == 1.0  # no spread, outside
    assert equivalence_p([0.0, 0.01, -0.01, float("nan")], [0.0] * 4, MARGIN) == pytest.approx(
        0.037090, abs=1e-6
    )


@pytest.mark.parametrize(
    ("differences", "verdict"),
    [
        (EQUIVALENT, "equivalent within ±0.02 (n = 3 paired seeds)"),
        (
            TOO_WIDE,
            "inconclusive (n = 3 paired seeds; AUC interval includes 0 (not within ±0.02), "
            "final-metric interval includes 0 (not within ±0.02))",
        ),
        (
            SHIFTED,
            "inconclusive (n = 3 paired seeds; AUC interval includes 0 (not within ±0.02), "
            "final-metric interval includes 0 (not within ±0.02))",
        ),
        ([0.03, 0.04, 0.035], "supported (n = 3 paired seeds)"),
        ([-0.03, -0.04, -0.035], "contradicted (n = 3 paired seeds)"),
    ],
)
def test_the_four_verdicts(differences: list[float], verdict: str) -> None:
    diff = compare(_shifted(differences), margin=MARGIN).differences["sac - random"]
    assert diff["final_metric"].per_seed == pytest.approx(differences)
    assert diff["auc"].per_seed == pytest.approx(differences)
    assert interval_verdict({"AUC": diff["auc"], "final-metric": diff["final_metric"]}) == verdict


def test_no_margin_no_equivalence() -> None:
    diff = compare(_shifted(EQUIVALENT)).differences["sac - random"]
    assert diff["final_metric"].equivalence_p is None
    assert "equivalence_p" not in diff["final_metric"].to_json()
    assert interval_verdict({"final-metric": diff["final_metric"]}) == (
        "inconclusive (n = 3 paired seeds; final-metric interval includes 0)"
    )


def _power(effect: float, n: int) -> float:
    """Power of the two-sided paired t test at alpha 0.05 for a standardised ``effect``, from
    the noncentral t distribution."""
    critical = stats.t.ppf(0.975, n - 1)
    shift = effect * math.sqrt(n)
    return float(stats.nct.sf(critical, n - 1, shift) + stats.nct.sf(critical, n - 1, -shift))


@pytest.mark.parametrize("n", [3, 5, 10])
def test_the_minimum_detectable_difference_is_the_80_percent_power_effect_times_the_sd(
    n: int,
) -> None:
    differences = list(np.linspace(-0.01, 0.03, n))
    sd = float(np.std(differences, ddof=1))
    effect = optimize.brentq(lambda d: _power(d, n) - 0.8, 0.1, 4.0)
    assert detectable_difference(differences) == pytest.approx(effect * sd, rel=1e-4)


def test_known_detectable_effects_and_too_few_pairs() -> None:
    # standardised effects at 80% power, alpha 0.05 two-sided (paired t): n = 10 about 0.996
    assert detectable_difference([0.0, 1.0] * 5) / np.std([0.0, 1.0] * 5, ddof=1) == (
        pytest.approx(0.996, abs=1e-3)
    )
    assert np.isnan(detectable_difference([0.1]))
    assert np.isnan(detectable_difference([]))


@pytest.mark.parametrize(("sd", "margin"), [(0.051, 0.02), (0.051, 0.025), (0.01, 0.02)])
def test_the_seeds_for_a_margin_are_where_the_power_first_reaches_80_percent(
    sd: float, margin: float
) -> None:
    differences = [0.05 + sd * z for z in (-1.0, 0.0, 1.0)]  # sd exactly ``sd``
    n = 2
    while _power(margin / sd, n) < 0.8:  # the noncentral t, not statsmodels
        n += 1
    assert seeds_for_margin(differences, margin) == n
    # the MDE at those seeds is the margin or less, one seed fewer it is more
    assert detectable_difference(list(np.linspace(-sd, sd, n) * _scale(n))) <= margin + 1e-12
    assert detectable_difference(list(np.linspace(-sd, sd, n - 1) * _scale(n - 1))) > margin


def _scale(n: int) -> float:
    """The factor that gives ``np.linspace(-1, 1, n)`` a standard deviation of 1."""
    return float(1.0 / np.std(np.linspace(-1.0, 1.0, n), ddof=1))


def test_seeds_for_a_margin_known_answers_and_edges() -> None:
    sd = 0.051
    differences = [0.05 - sd, 0.05, 0.05 + sd]
    assert seeds_for_margin(differences, 0.02) == 53  # the CLIP reference's paired sd
    assert seeds_for_margin(differences, 0.025) == 35
    assert seeds_for_margin([0.04, 0.04, 0.04], 0.02) == 2  # no spread
    assert np.isnan(seeds_for_margin([0.04], 0.02))  # one pair: no sd
    assert np.isnan(seeds_for_margin(differences, None))
    assert np.isnan(seeds_for_margin(differences, 0.0))
    assert seeds_for_margin(differences, 1e-7) == np.inf  # beyond the search


def test_the_seeds_for_a_margin_go_with_the_margin() -> None:
    runs = _shifted([0.0, 0.02, -0.02])
    diff = compare(runs, margin=MARGIN).differences["sac - random"]
    assert diff["final_metric"].seeds_for_margin == seeds_for_margin([0.0, 0.02, -0.02], MARGIN)
    assert diff["auc"].seeds_for_margin is not None
    assert "seeds_for_margin" not in diff["valid_rate"].to_json()  # not the model's metric
    plain = compare(runs).differences["sac - random"]
    assert "seeds_for_margin" not in plain["final_metric"].to_json()


def test_probability_of_improvement_known_answers() -> None:
    above = probability_of_improvement([0.6, 0.7, 0.8], [0.1, 0.2, 0.3])
    assert (above["poi"], above["poi_ci_low"], above["poi_ci_high"]) == (1.0, 1.0, 1.0)
    below = probability_of_improvement([0.1, 0.2], [0.6, 0.7, 0.8])
    assert (below["poi"], below["poi_ci_high"]) == (0.0, 0.0)
    same = probability_of_improvement([0.4, 0.5, 0.6], [0.4, 0.5, 0.6])
    assert same["poi"] == 0.5
    assert same["poi_ci_low"] < 0.5 < same["poi_ci_high"]
    # by hand, every pair of runs: 1 beats 0; 2 beats 0 and ties both 2s; 3 beats all three
    hand = probability_of_improvement([1.0, 2.0, 3.0], [2.0, 2.0, 0.0])
    assert hand["poi"] == pytest.approx((1 + 2 + 3) / 9)
    # all pairs, not only paired seeds: 3 runs against 1 (1 < 2 < 3, 5)
    uneven = probability_of_improvement([1.0, 3.0, 5.0], [2.0])
    assert uneven["poi"] == pytest.approx(2 / 3)
    assert (uneven["poi_runs_x"], uneven["poi_runs_y"]) == (3, 1)
    assert np.isnan(probability_of_improvement([], [0.1])["poi"])


def test_the_bootstrap_is_rliables_stratified_bootstrap_with_a_fixed_seed() -> None:
    """The interval against rliable's procedure written out: per resample, each arm's runs drawn
    with replacement from ``np.random.RandomState(seed)`` (X's, then Y's, as rliable's
    ``StratifiedIndependentBootstrap`` draws them), rliable's statistic on them, then the 2.5th
    and 97.5th percentiles."""
    runs_x, runs_y = [0.50, 0.47, 0.55, 0.52], [0.49, 0.45, 0.50, 0.53]
    x, y = np.array(runs_x), np.array(runs_y)
    reps, seed = 300, 11
    rng = np.random.RandomState(seed)
    replicates = []
    for _ in range(reps):
        xb = x[rng.choice(x.size, (x.size, 1), replace=True)]
        yb = y[rng.choice(y.size, (y.size, 1), replace=True)]
        replicates.append(rliable_metrics.probability_of_improvement(xb, yb))
    low, high = np.percentile(replicates, [2.5, 97.5])
    ours = probability_of_improvement(runs_x, runs_y, reps=reps, seed=seed)
    assert ours["poi"] == pytest.approx(
        rliable_metrics.probability_of_improvement(x[:, None], y[:, None])
    )
    assert (ours["poi_ci_low"], ours["poi_ci_high"]) == pytest.approx((low, high), abs=1e-12)
    assert probability_of_improvement(runs_x, runs_y, reps=reps, seed=seed) == ours  # reproducible
    assert probability_of_improvement(runs_x, runs_y, reps=reps, seed=seed + 1) != ours
