"""The claims' verdicts on hand-made runs, one for each verdict (benchmark/report/claims.py)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.report import (
    MIN_SEEDS_FOR_VERDICT,
    RunLog,
    caveats,
    claims,
    compare,
    decomposition,
    term_verdicts,
)
from tests.report.helpers import _claim_runs, _headline, _log, _three_seeds


def test_caveats_say_when_fine_tuning_lost_ground() -> None:
    lost = compare(
        {"sac": [_log("sac", 0, [0.30, 0.27])], "random": [_log("random", 0, [0.30, 0.25])]}
    )
    assert lost.arms["random"].seeds[0].samples_to_random_final == 0.0
    notes = caveats(lost)
    assert len(notes) == 2
    assert notes[0].startswith("sac and random ended below")
    assert "seed(s) [0]" in notes[1]
    gained = compare(
        {"sac": [_log("sac", 0, [0.30, 0.36])], "random": [_log("random", 0, [0.30, 0.33])]}
    )
    assert caveats(gained) == []


def test_two_paired_seeds_give_no_verdict() -> None:
    # SAC's AUC is higher for both seeds (the old percentile bootstrap said "supported"), its
    # final metric lower: two seeds cannot decide either way.
    runs = {
        "sac": [_log("sac", 0, [0.30, 0.50, 0.45]), _log("sac", 1, [0.30, 0.55, 0.48])],
        "random": [_log("random", 0, [0.30, 0.35, 0.50]), _log("random", 1, [0.30, 0.36, 0.52])],
    }
    assert compare(runs).difference["auc"].per_seed[0] > 0
    verdict = _headline(runs)
    assert verdict == "inconclusive (n = 2 paired seeds; a verdict needs at least 3)"
    assert MIN_SEEDS_FOR_VERDICT == 3


def test_three_seeds_with_both_intervals_above_zero_support_the_claim() -> None:
    comparison = compare(_three_seeds(0.05, 0.04))
    assert comparison.difference["auc"].ci_low > 0
    assert comparison.difference["final_metric"].ci_low > 0
    assert comparison.difference["auc"].n == 3
    assert _headline(_three_seeds(0.05, 0.04)) == "supported (n = 3 paired seeds)"


def test_the_headline_is_contradicted_only_when_both_intervals_are_below_zero() -> None:
    assert _headline(_three_seeds(-0.05, -0.04)) == "contradicted (n = 3 paired seeds)"
    split = _headline(_three_seeds(0.08, -0.04))
    assert split == (
        "inconclusive (n = 3 paired seeds; AUC interval above 0, final-metric interval below 0)"
    )


def test_every_verdict_states_its_n() -> None:
    runs = {arm: logs[:2] for arm, logs in _three_seeds(0.05, 0.04).items()}  # two seeds each
    for claim, _, verdict in claims(runs, compare(runs)):
        assert "(n = " in verdict, claim
        assert not verdict.startswith(("supported", "contradicted")), claim
    stopping = next(v for c, _, v in claims(runs, compare(runs)) if "stopped early" in c)
    assert stopping == "inconclusive (n = 2 sac seeds; a verdict needs at least 3)"


def test_runs_without_hardness_say_it_was_not_measured() -> None:
    runs = _three_seeds(0.05, 0.04)
    comparison = compare(runs)
    assert np.isnan(comparison.arms["sac"].stats["hardness"].mean)
    row = next(r for r in claims(runs, comparison) if "harder" in r[0])
    assert "sac n/a" in row[1]
    assert row[2] == "not measured (n = 3 sac seeds; no hardness recorded)"


@pytest.mark.parametrize("sac_better", [True, False])
def test_every_claim_gives_its_verdict_on_hand_made_runs(sac_better: bool) -> None:
    """claims() on runs built so that each claim holds (or fails) clearly, with 3 seeds."""
    runs = _claim_runs(sac_better)
    rows = claims(runs, compare(runs))

    def verdict(start: str) -> str:
        (found,) = [v for claim, _, v in rows if claim.startswith(start)]
        return found

    yes = "supported" if sac_better else "contradicted"
    assert verdict("The random arm completes about 40% fewer") == f"{yes} (n = 3 paired seeds)"
    assert verdict("The RL agent yields more valid samples") == f"{yes} (n = 3 paired seeds)"
    assert verdict("With SAC every spatial term ends equal") == f"{yes} (n = 3 sac seeds)"
    assert verdict("With random placement some terms get") == f"{yes} (n = 3 random seeds)"
    assert verdict("Single-term prompts score higher") == f"{yes} (n = 3 sac seeds)"
    assert verdict("Validation mirrors test") == "supported (n = 3 sac seeds)"
    assert verdict("SAC's gain stagnates") == f"{yes} (n = 3 sac seeds)"
    assert verdict("RLS3 (SAC) reaches a higher test metric").startswith("inconclusive (n = 3")


def test_a_random_arm_with_somewhat_fewer_iterations_partly_supports_the_claim() -> None:
    runs = _claim_runs(True)
    for log in runs["random"]:
        log.summary["iterations"] = 9 + log.seed % 2 * 0.5  # 5-10% fewer, not ~40%
    row = next(r for r in claims(runs, compare(runs)) if "fewer iterations" in r[0])
    assert row[2] == "partly (n = 3 paired seeds; fewer, not ~40%)"


def _five_arms(gains: dict[str, float]) -> dict[str, list[RunLog]]:
    """Three paired seeds of every arm, each ``gains[arm]`` above random at every iteration (a
    small per-seed jitter)."""
    runs: dict[str, list[RunLog]] = {}
    for arm, gain in gains.items():
        runs[arm] = [
            _log(arm, seed, [0.3 + gain + j, 0.4 + gain + 2 * j, 0.45 + gain + j])
            for seed, j in enumerate((0.0, 0.004, -0.004))
        ]
    return runs


def test_the_decomposition_has_one_row_per_effect_each_with_its_verdict() -> None:
    gains = {
        "sac": 0.10,
        "random": 0.0,
        "sac-dense": 0.10,
        "sac-nofeedback": 0.06,
        "random-hardest": -0.05,
    }
    runs = _five_arms(gains)
    rows = decomposition(compare(runs, margin=0.02))
    assert [(r.effect, r.difference) for r in rows] == [
        ("feasibility", "sac-nofeedback - random"),
        ("the VLM's feedback", "sac - sac-nofeedback"),
        ("hard-sample selection without RL", "random-hardest - random"),
        ("dense reward", "sac-dense - sac"),
        ("the paper's headline", "sac - random"),
    ]
    verdicts = {r.effect: r.verdict for r in rows}
    assert verdicts == {
        "feasibility": "supported (n = 3 paired seeds)",
        "the VLM's feedback": "supported (n = 3 paired seeds)",
        "hard-sample selection without RL": "contradicted (n = 3 paired seeds)",
        "dense reward": "equivalent within ±0.02 (n = 3 paired seeds)",
        "the paper's headline": "supported (n = 3 paired seeds)",
    }
    feasibility = rows[0]
    assert feasibility.final_metric.mean == pytest.approx(0.06)
    assert feasibility.auc.mean == pytest.approx(0.06)
    assert feasibility.final_metric.poi == 1.0
    assert rows[3].final_metric.poi == 0.5  # sac-dense's runs are sac's
    assert all(r.n == 3 for r in rows)


def test_a_decomposition_without_the_ablation_arms_is_not_measured() -> None:
    rows = decomposition(compare(_three_seeds(0.05, 0.04), margin=0.02))
    absent = "not measured (n = 0 paired seeds; no seed ran both arms)"
    assert [r.verdict for r in rows] == [absent] * 4 + ["supported (n = 3 paired seeds)"]
    assert np.isnan(rows[0].final_metric.mde) and rows[0].n == 0


def test_sac_minus_random_per_term_gets_a_verdict_with_n() -> None:
    verdicts = term_verdicts(compare(_claim_runs(True), margin=0.02))
    assert verdicts.by_term["above"] == "supported (n = 3 paired seeds)"  # +0.2 each seed
    assert verdicts.by_term["behind"] == "equivalent within ±0.02 (n = 3 paired seeds)"
    assert verdicts.by_n_terms == dict.fromkeys(
        ("1", "2", "3"), "equivalent within ±0.02 (n = 3 paired seeds)"
    )
    # runs that recorded no per-term scores
    older = term_verdicts(compare(_three_seeds(0.05, 0.04), margin=0.02))
    assert set(older.by_term.values()) == {
        "not measured (n = 0 paired seeds; no such scores recorded)"
    }


def _with_control(runs: dict[str, list[RunLog]], gaps: dict[str, list[float]]) -> None:
    """Give each run a test/control column: its test metric minus ``gaps[arm][seed]`` at the
    end, and the base model's metric at iteration 0 (no gain there)."""
    for arm, logs in runs.items():
        for log, gap in zip(logs, gaps[arm], strict=True):
            for i, row in enumerate(log.iterations):
                row["test/control"] = row["test/metric"] - (gap * i / (len(log.iterations) - 1))


@pytest.mark.parametrize(
    ("gaps", "expected"),
    [
        ({"sac": [0.2, 0.25, 0.3], "random": [0.1, 0.12, 0.14]}, "supported (n = 3 per-arm seeds;"),
        ({"sac": [0.2, 0.25, 0.3], "random": [0.05, -0.05, 0.0]}, "inconclusive (n = 3 per-arm"),
        ({"sac": [0.2, 0.25, 0.3], "random": [-0.1, -0.12, -0.11]}, "contradicted (n = 3 per-arm"),
    ],
)
def test_the_grounded_claim_wants_every_arm_above_its_control(
    gaps: dict[str, list[float]], expected: str
) -> None:
    runs = _three_seeds(0.05, 0.04)
    _with_control(runs, gaps)
    comparison = compare(runs)
    for arm in ("sac", "random"):
        stat = comparison.arms[arm].stats["grounded_gain"]
        assert stat.mean == pytest.approx(np.mean(gaps[arm]))
        assert stat.n == 3
    diff = comparison.differences["sac - random"]["grounded_gain"]
    assert diff.per_seed == pytest.approx(np.subtract(gaps["sac"], gaps["random"]))
    (verdict,) = [v for c, _, v in claims(runs, comparison) if c.startswith("Every arm's gain")]
    assert verdict.startswith(expected)
    if "inconclusive" in verdict:
        assert verdict.endswith("includes 0: random)")


def test_runs_without_the_control_say_it_was_not_measured() -> None:
    runs = _three_seeds(0.05, 0.04)
    comparison = compare(runs)
    assert np.isnan(comparison.arms["sac"].stats["grounded_gain"].mean)
    (row,) = [r for r in claims(runs, comparison) if r[0].startswith("Every arm's gain")]
    assert row[2] == "not measured (n = 0 per-arm seeds; no control recorded)"
    assert "sac n/a" in row[1]


def _with_external(runs: dict[str, list[RunLog]], gains: dict[str, list[float]]) -> None:
    """Each run scores an external set 'photos': 0.5 for the base model, then 0.5 + gain."""
    for arm, logs in runs.items():
        for log, gain in zip(logs, gains[arm], strict=True):
            for i, row in enumerate(log.iterations):
                row["external/photos/metric"] = 0.5 + (gain if i == len(log.iterations) - 1 else 0)


@pytest.mark.parametrize(
    ("gains", "expected"),
    [
        ({"sac": [0.10, 0.12, 0.11], "random": [0.05, 0.07, 0.06]}, "supported (n = 3 per-arm"),
        ({"sac": [0.10, 0.12, 0.11], "random": [0.05, -0.05, 0.0]}, "inconclusive (n = 3 per-arm"),
        ({"sac": [0.10, 0.12, 0.11], "random": [-0.1, -0.12, -0.11]}, "contradicted (n = 3 per"),
    ],
)
def test_the_external_claim_wants_every_arms_gain_there_above_zero(
    gains: dict[str, list[float]], expected: str
) -> None:
    runs = _three_seeds(0.05, 0.04)
    _with_external(runs, gains)
    comparison = compare(runs)
    assert comparison.external is not None
    for arm in ("sac", "random"):
        stats = comparison.external["photos"][arm].stats
        assert stats["gain"].mean == pytest.approx(np.mean(gains[arm]))
        assert stats["initial"].mean == pytest.approx(0.5) and stats["gain"].n == 3
        test = [log.test[-1] - log.test[0] for log in runs[arm]]
        assert stats["test_gain"].mean == pytest.approx(np.mean(test))
    (row,) = [r for r in claims(runs, comparison) if "carry over to photos" in r[0]]
    assert row[2].startswith(expected)
    if "contradicted" in row[2]:
        assert row[2].endswith("below 0: random)")


def test_runs_without_external_sets_have_no_external_block_or_claim() -> None:
    runs = _three_seeds(0.05, 0.04)
    comparison = compare(runs)
    assert comparison.external is None
    assert "external" not in comparison.to_json()
    assert not [r for r in claims(runs, comparison) if "carry over" in r[0]]
