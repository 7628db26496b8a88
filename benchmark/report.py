"""The benchmark report (SPEC section 8; the paper's section 6, Figs. 5-9), from the runs alone.

``write_report(results, model, out)`` reads every finished run of one model under
``results/runs/{model}/{arm}/seed{S}`` (the files ``rls3 run`` writes) for the three arms: ``sac``
(RLS3), ``random`` (random placement) and ``sac-dense`` (beyond the paper, its open question 2:
the same pre-trained SAC with a per-step dense VLM reward). ``random`` and ``sac-dense`` run on
the sac run's budget (same seed); results without sac-dense runs are reported with two arms. It
writes:

- ``REPORT.md``: the setting, the statistical comparison of the arms across seeds, valid rate and
  iterations per arm, the paper's qualitative claims beside what this run found, the figures;
- ``figures/*.png``: efficiency curves (Fig. 5), per-term scores before/after with cumulative term
  counts (Fig. 6), score by number of terms (Fig. 7), the concatenated fine-tuning loss (Fig. 8),
  validation with the early-stopping point (Fig. 9), valid rate and iterations per arm, the
  hardness of each arm's generated samples and the term distribution of its fine-tuning data;
- ``comparison.json`` (every number of the comparison; ``null``: not measured), ``metrics.json``
  (DVC metrics) and ``plots/*.csv`` (DVC plots) with the same figures.

The comparison, per seed and then as a mean over seeds with a Student-t confidence interval
(mean ± t_{0.975, n-1} · sd / √n; one seed gives none): the final test metric; the area under the
efficiency curve, divided by the budget (the mean test metric over the generated samples, so 0..1
like the metric); the generated samples each arm needed to reach the random arm's final metric
(same seed); the mean hardness of the generated samples and the VLM's error rate on them; valid
rate and iterations. Arms are compared by paired per-seed differences. A claim gets "supported"
or "contradicted" only from at least ``MIN_SEEDS_FOR_VERDICT`` seeds and an interval that
excludes 0; otherwise it is "inconclusive", and every verdict states its n.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import platform
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from benchmark.captions import TERMS, term_key
from benchmark.config import ARMS
from benchmark.fileio import atomic_write_csv, atomic_write_json, atomic_write_text

CONFIDENCE = 0.95
INTERVAL = f"Student t, {CONFIDENCE:.0%}, n-1 degrees of freedom, over seeds"
MIN_SEEDS_FOR_VERDICT = 3
METRIC_NAME = {"clip": "accuracy (caption above both negatives)", "paligemma": "rubric score 1-5"}
HARDNESS_NAME = {
    "clip": "per-sample contrastive loss (eq. 1)",
    "paligemma": "6 - rubric score",
}
COLOURS = {"sac": "tab:blue", "random": "tab:orange", "sac-dense": "tab:green"}
LINE_STYLES = {"sac": "-", "random": ":", "sac-dense": "--"}
# each arm's cumulative term counts in the Fig. 6 tick labels: (sac) [random] {sac-dense}
BRACKETS = {"sac": "({:.0f})", "random": "[{:.0f}]", "sac-dense": "{{{:.0f}}}"}
# paired per-seed differences: name -> (arm, arm subtracted); the key in metrics.json
DIFFERENCES = {
    "sac - random": ("sac", "random"),
    "sac-dense - random": ("sac-dense", "random"),
    "sac-dense - sac": ("sac-dense", "sac"),
}
METRICS_KEY = {
    "sac - random": "sac_minus_random",
    "sac-dense - random": "sac_dense_minus_random",
    "sac-dense - sac": "sac_dense_minus_sac",
}
STAT_KEYS = (
    "final_metric",
    "initial_metric",
    "auc",
    "samples_to_random_final",
    "hardness",
    "error_rate",
    "valid_rate",
    "iterations",
    "generated_samples",
    "left_right_share",
)
DIFF_KEYS = (
    "final_metric",
    "auc",
    "hardness",
    "error_rate",
    "valid_rate",
    "iterations",
    "left_right_share",
)
NULL_MEANS = (
    "In `comparison.json` and `metrics.json` a `null` means not measured: e.g. no paired "
    "random run for that seed, a metric the arm never reached, runs that did not record it, or "
    "a single seed (which gives no interval)."
)


@dataclass
class RunLog:
    """One finished run's files."""

    arm: str
    seed: int
    summary: dict[str, Any]
    iterations: list[dict[str, float]]
    losses: list[dict[str, float]]

    def column(self, key: str) -> np.ndarray:
        return np.array([row.get(key, np.nan) for row in self.iterations], dtype=float)

    @property
    def generated(self) -> np.ndarray:
        return self.column("generated_samples")

    @property
    def test(self) -> np.ndarray:
        return self.column("test/metric")


def _read_csv(path: Path) -> list[dict[str, float]]:
    if not path.is_file() or path.stat().st_size == 0:
        return []
    with path.open(newline="") as f:
        return [
            {k: float(v) if v not in ("", None) else np.nan for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def complete_episode_hardness(
    iterations: list[dict[str, float]], episodes: list[dict[str, float]]
) -> list[dict[str, float]]:
    """``iterations`` with hardness and error rate over each iteration's complete episodes.

    J2 and the hardness come from one evaluation of an episode's samples as one contrastive
    group; an episode cut short (a budget arm's last, or one truncated at max_steps) has fewer
    samples, so fewer negatives and a lower loss that is not comparable. A complete episode has
    as many valid samples as the run's fullest (T0). An iteration without one gets NaN.
    """
    if not episodes or "hardness" not in episodes[0]:
        return iterations
    full = max(e["valid"] for e in episodes)
    rows = []
    for row in iterations:
        mine = [e for e in episodes if e["iteration"] == row["iteration"] and e["valid"] == full]
        row = dict(row)
        if row["iteration"] >= 1:
            for key in ("hardness", "error_rate"):
                row[key] = float(np.mean([e[key] for e in mine])) if mine else np.nan
        rows.append(row)
    return rows


def load_runs(results: str | Path, model: str) -> dict[str, list[RunLog]]:
    """The finished runs of ``model`` by arm, sorted by seed (unused seed slots left out).

    Every arm of ``ARMS`` is a key; an arm without runs (e.g. sac-dense in older results) has [].
    """
    runs: dict[str, list[RunLog]] = {arm: [] for arm in ARMS}
    for arm in ARMS:
        for d in sorted((Path(results) / "runs" / model / arm).glob("seed*")):
            summary_path = d / "summary.json"
            if not summary_path.is_file():
                continue
            summary = json.loads(summary_path.read_text())
            if summary.get("skipped") or not summary.get("finished"):
                continue
            runs[arm].append(
                RunLog(
                    arm,
                    int(summary["seed"]),
                    summary,
                    complete_episode_hardness(
                        _read_csv(d / "metrics.csv"), _read_csv(d / "episodes.csv")
                    ),
                    _read_csv(d / "finetune_loss.csv"),
                )
            )
        runs[arm].sort(key=lambda r: r.seed)
    if not runs["sac"]:
        raise FileNotFoundError(
            f"no finished sac runs of {model} under {Path(results) / 'runs' / model}; "
            f"run `rls3 run --model {model} --arm sac --seed 0` (or `dvc repro`) first"
        )
    return runs


def _all_arms(runs: Mapping[str, list[RunLog]]) -> dict[str, list[RunLog]]:
    """``runs`` with every arm of ``ARMS`` as a key ([] where it has no runs)."""
    return {arm: list(runs.get(arm, [])) for arm in ARMS}


# ---------------------------------------------------------------------------- statistics
def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def _quiet(fn: Callable[..., Any], values: Any, axis: int | None = None) -> Any:
    """``fn`` (np.nanmean, np.nanmin, ...) without the all-NaN warnings: NaN there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(np.asarray(values, dtype=float), axis=axis)


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t CI, mean ± t_{0.975, n-1} · sd / √n (NaNs dropped).

    One value gives no interval (NaN bounds); none gives NaN throughout.
    """
    x = _finite(values)
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(x.mean())
    if x.size < 2:
        return (mean, np.nan, np.nan)
    t = float(scipy_stats.t.ppf((1 + CONFIDENCE) / 2, x.size - 1))
    half = t * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """Mean, t interval and n (the finite values it rests on) of per-seed ``values``."""
    mean, low, high = t_interval(values)
    return {"mean": mean, "ci_low": low, "ci_high": high, "n": int(_finite(values).size)}


def normalised_auc(generated: np.ndarray, metric: np.ndarray) -> float:
    """Area under the efficiency curve (trapezoids) over its budget: the mean metric, 0..1."""
    if generated.size < 2 or generated[-1] <= generated[0]:
        return float(metric[-1]) if metric.size else np.nan
    area = float(np.sum(np.diff(generated) * (metric[1:] + metric[:-1]) / 2))
    return area / float(generated[-1] - generated[0])


def samples_to_reach(generated: np.ndarray, metric: np.ndarray, target: float) -> float:
    """The generated samples at the first iteration whose metric reaches ``target`` (NaN: never)."""
    hits = np.nonzero(metric >= target - 1e-12)[0]
    return float(generated[hits[0]]) if hits.size else np.nan


def fine_tuning_mean(run: RunLog, key: str) -> float:
    """Mean of ``key`` over iterations 1.. (row 0 is the base model); NaN if never recorded."""
    return float(_quiet(np.nanmean, run.column(key)[1:]))


def left_right_share(run: RunLog) -> float:
    """Share of 'left'/'right' among the terms of all the run's fine-tuning batches."""
    counts = {t: run.column(f"batch_terms_cum/{term_key(t)}")[-1:] for t in TERMS}
    last = {t: float(c[0]) if c.size else np.nan for t, c in counts.items()}
    total = sum(last.values())
    return (last["left"] + last["right"]) / total if total > 0 else np.nan


def seed_row(run: RunLog, random_final: float) -> dict[str, Any]:
    """One run's comparison figures; ``random_final``: the random arm's final metric, same seed."""
    return {
        "seed": run.seed,
        "final_metric": float(run.test[-1]),
        "initial_metric": float(run.test[0]),
        "auc": normalised_auc(run.generated, run.test),
        "samples_to_random_final": samples_to_reach(run.generated, run.test, random_final),
        "generated_samples": float(run.generated[-1]),
        "valid_rate": float(run.summary["valid_rate"]),
        "iterations": float(run.summary["iterations"]),
        "hardness": fine_tuning_mean(run, "hardness"),
        "error_rate": fine_tuning_mean(run, "error_rate"),
        "left_right_share": left_right_share(run),
        "stopped": run.summary.get("stopped"),
    }


def paired_difference(per_arm: dict[str, Any], a: str, b: str, key: str) -> dict[str, Any]:
    """``a`` minus ``b`` in ``key``, per seed both ran: mean, t interval, n and the differences."""
    value = {arm: {x["seed"]: x[key] for x in per_arm[arm]["seeds"]} for arm in (a, b)}
    seeds = sorted(value[a].keys() & value[b].keys())
    diffs = [value[a][s] - value[b][s] for s in seeds]
    return {**summarise(diffs), "per_seed": diffs}


def compare(runs: Mapping[str, list[RunLog]]) -> dict[str, Any]:
    """Per-seed values, means and t intervals per arm, and the arms' paired differences.

    ``difference`` is ``differences["sac - random"]`` (the paper's comparison).
    """
    runs = _all_arms(runs)
    random_final = {r.seed: float(r.test[-1]) for r in runs["random"]}
    per_arm: dict[str, Any] = {}
    for arm in ARMS:
        rows = [seed_row(r, random_final.get(r.seed, np.nan)) for r in runs[arm]]
        stats = {key: summarise([x[key] for x in rows]) for key in STAT_KEYS}
        per_arm[arm] = {"seeds": rows, "stats": stats, "n_seeds": len(rows)}
    differences = {
        name: {key: paired_difference(per_arm, a, b, key) for key in DIFF_KEYS}
        for name, (a, b) in DIFFERENCES.items()
    }
    paired = {
        name: sorted({r.seed for r in runs[a]} & {r.seed for r in runs[b]})
        for name, (a, b) in DIFFERENCES.items()
    }
    return {
        "interval": INTERVAL,
        "min_seeds_for_verdict": MIN_SEEDS_FOR_VERDICT,
        "arms": per_arm,
        "difference": differences["sac - random"],
        "differences": differences,
        "paired_seeds": paired["sac - random"],
        "paired": paired,
    }


def json_ready(value: Any) -> Any:
    """``value`` as strict JSON allows: non-finite floats become None (null), numpy scalars
    Python ones, tuples lists; recursively."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_ready(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def caveats(comparison: dict[str, Any]) -> list[str]:
    """Plain-words warnings about what the comparison figures cannot show in this run."""
    notes = []
    arms = comparison["arms"]
    below = [
        arm
        for arm in ARMS
        if arm in arms
        and arms[arm]["seeds"]
        and arms[arm]["stats"]["final_metric"]["mean"]
        < arms[arm]["stats"]["initial_metric"]["mean"]
    ]
    if below:
        notes.append(
            f"{' and '.join(below)} ended below the base model's test metric on average: "
            "fine-tuning lost ground in this run, so a lead of one arm is a smaller loss, "
            "not a gain."
        )
    at_start = [
        x["seed"] for x in arms["random"]["seeds"] if x["final_metric"] <= x["initial_metric"]
    ]
    if at_start:
        notes.append(
            f"Random's final metric is at or below its start for seed(s) {at_start}: there "
            '"generated samples to reach random\'s final metric" is 0 for every arm and '
            "says nothing."
        )
    return notes


def mean_curve(logs: Sequence[RunLog], key: str, grid: np.ndarray) -> np.ndarray:
    """Each seed's ``key`` against generated samples, interpolated on ``grid``; seeds x grid.

    Beyond a seed's last iteration its last value holds (its run has ended there).
    """
    return np.array([np.interp(grid, r.generated, r.column(key)) for r in logs])


def per_iteration(logs: Sequence[RunLog], key: str) -> np.ndarray:
    """Seeds x iterations 1.. of ``key`` (row 0, the base model, left out); NaN past a run's end."""
    values = [r.column(key)[1:] for r in logs]
    out = np.full((len(logs), max((v.size for v in values), default=0)), np.nan)
    for i, v in enumerate(values):
        out[i, : v.size] = v
    return out


def batch_term_counts(run: RunLog) -> np.ndarray:
    """Iterations 1.. x ``TERMS``: each term's count in that iteration's fine-tuning batch.

    Runs without the ``batch_terms/`` columns: the increments of the cumulative counts.
    """
    columns = []
    for t in TERMS:
        counts = run.column(f"batch_terms/{term_key(t)}")[1:]
        if not np.isfinite(counts).any():
            counts = np.diff(np.nan_to_num(run.column(f"batch_terms_cum/{term_key(t)}")))
        columns.append(np.nan_to_num(counts))
    return np.stack(columns, axis=1)


def batch_term_shares(logs: Sequence[RunLog]) -> np.ndarray:
    """Iterations 1.. x ``TERMS``: each term's share of the batches' terms, summed over seeds."""
    counts = [batch_term_counts(r) for r in logs]
    total = np.zeros((max((c.shape[0] for c in counts), default=0), len(TERMS)))
    for c in counts:
        total[: c.shape[0]] += c
    per_iteration_total = total.sum(axis=1, keepdims=True)
    shares = np.full_like(total, np.nan)
    np.divide(total, per_iteration_total, out=shares, where=per_iteration_total > 0)
    return shares


# ---------------------------------------------------------------------------- claims
def _n_seeds(n: int, unit: str) -> str:
    """E.g. "n = 3 paired seeds", "n = 1 sac seed"."""
    return f"n = {n} {unit} seed{'' if n == 1 else 's'}"


def _verdict(word: str, n: int, unit: str, why: str = "") -> str:
    """E.g. "inconclusive (n = 3 paired seeds; the interval includes 0)"."""
    return f"{word} ({_n_seeds(n, unit)}{'; ' + why if why else ''})"


def gate(n: int, unit: str) -> str | None:
    """The verdict when ``n`` seeds are too few for one; None when they are enough."""
    if n == 0:
        return _verdict(
            "not measured", 0, unit, "no seed ran both arms" if unit == "paired" else ""
        )
    if n < MIN_SEEDS_FOR_VERDICT:
        return _verdict(
            "inconclusive", n, unit, f"a verdict needs at least {MIN_SEEDS_FOR_VERDICT}"
        )
    return None


def _side(d: Mapping[str, float]) -> str:
    if d["ci_low"] > 0:
        return "above 0"
    if d["ci_high"] < 0:
        return "below 0"
    return "includes 0"


def interval_verdict(differences: Mapping[str, Mapping[str, Any]]) -> str:
    """Supported if every paired difference's interval lies above 0, contradicted if every one
    lies below; otherwise, or with fewer than ``MIN_SEEDS_FOR_VERDICT`` paired seeds,
    inconclusive. The verdict states n (the fewest paired seeds among the differences)."""
    n = min(int(d["n"]) for d in differences.values())
    too_few = gate(n, "paired")
    if too_few:
        return too_few
    sides = {name: _side(d) for name, d in differences.items()}
    if all(s == "above 0" for s in sides.values()):
        return _verdict("supported", n, "paired")
    if all(s == "below 0" for s in sides.values()):
        return _verdict("contradicted", n, "paired")
    where = ", ".join(f"{name} interval {side}" for name, side in sides.items())
    return _verdict("inconclusive", n, "paired", where)


def descriptive_verdict(n: int, unit: str, verdict: str) -> str:
    """``verdict`` (from one arm's own runs) with its n, given only from enough seeds."""
    return gate(n, unit) or _verdict(verdict, n, unit)


def _signed(stat: Mapping[str, Any], digits: int = 3, percent: bool = False) -> str:
    """A difference as "+0.022 [+0.018, +0.027]"; "n/a" when not measured."""
    return _fmt(stat, digits, signed=True, percent=percent)


def _claim_efficiency(comparison: dict[str, Any]) -> tuple[str, str, str]:
    diff = comparison["differences"]["sac - random"]
    auc, fin = diff["auc"], diff["final_metric"]
    return (
        "RLS3 (SAC) reaches a higher test metric than random placement for the same "
        "generated samples (Fig. 5)",
        f"SAC - random, area under the efficiency curve / budget: {_signed(auc)}; "
        f"final metric: {_signed(fin)}",
        interval_verdict({"AUC": auc, "final-metric": fin}),
    )


def _claim_iterations(comparison: dict[str, Any]) -> tuple[str, str, str]:
    arms = comparison["arms"]
    sac = {x["seed"]: x["iterations"] for x in arms["sac"]["seeds"]}
    rnd = {x["seed"]: x["iterations"] for x in arms["random"]["seeds"]}
    seeds = sorted(sac.keys() & rnd.keys())
    change = summarise([rnd[s] / sac[s] - 1 if sac[s] else np.nan for s in seeds])
    n = change["n"]
    verdict = gate(n, "paired")
    if verdict is None:
        side = _side(change)
        if side == "includes 0":
            verdict = _verdict("inconclusive", n, "paired", "the interval includes 0")
        elif side == "above 0":
            verdict = _verdict("contradicted", n, "paired")
        elif change["mean"] <= -0.2:
            verdict = _verdict("supported", n, "paired")
        else:
            verdict = _verdict("partly", n, "paired", "fewer, not ~40%")
    return (
        "The random arm completes about 40% fewer iterations for the same budget "
        "(more invalid samples)",
        f"iterations: SAC {_fmt(arms['sac']['stats']['iterations'], 1)}, random "
        f"{_fmt(arms['random']['stats']['iterations'], 1)}; per seed random / SAC - 1: "
        f"{_signed(change, 0, percent=True)}",
        verdict,
    )


def _claim_valid_rate(comparison: dict[str, Any]) -> tuple[str, str, str]:
    arms, diff = comparison["arms"], comparison["differences"]["sac - random"]["valid_rate"]
    return (
        "The RL agent yields more valid samples than random placement",
        f"valid rate: SAC {_fmt(arms['sac']['stats']['valid_rate'], 1, percent=True)}, random "
        f"{_fmt(arms['random']['stats']['valid_rate'], 1, percent=True)}; SAC - random "
        f"{_signed(diff, 1, percent=True)}",
        interval_verdict({"valid rate": diff}),
    )


def _claims_terms(runs: dict[str, list[RunLog]]) -> list[tuple[str, str, str]]:
    out = []
    for arm in ("sac", "random"):
        logs = runs[arm]
        if not logs:
            continue
        worse, measured = [], False
        for term in TERMS:
            key = f"test/term/{term_key(term)}"
            before = _quiet(np.nanmean, [r.column(key)[0] for r in logs])
            after = _quiet(np.nanmean, [r.column(key)[-1] for r in logs])
            measured |= bool(np.isfinite(before) and np.isfinite(after))
            if after < before - 0.01:
                worse.append(f"{term} ({before:.2f} -> {after:.2f})")
        claim = (
            "With SAC every spatial term ends equal or better (Fig. 6)"
            if arm == "sac"
            else "With random placement some terms get worse (Fig. 6: left, above)"
        )
        found = "terms whose mean over seeds fell by more than 0.01: " + (
            ", ".join(worse) if worse else "none"
        )
        ok = (not worse) if arm == "sac" else bool(worse)
        verdict = (
            descriptive_verdict(len(logs), arm, "supported" if ok else "contradicted")
            if measured
            else _verdict("not measured", len(logs), arm, "no per-term scores recorded")
        )
        out.append((claim, found, verdict))
    return out


def _claim_left_right(comparison: dict[str, Any]) -> tuple[str, str, str]:
    arms, diff = comparison["arms"], comparison["differences"]["sac - random"]["left_right_share"]
    return (
        "SAC's fine-tuning data favour 'left'/'right' more than random's (Fig. 6 counts)",
        "share of left/right among the batches' terms: SAC "
        f"{_fmt(arms['sac']['stats']['left_right_share'], 1, percent=True)}, random "
        f"{_fmt(arms['random']['stats']['left_right_share'], 1, percent=True)}; SAC - random "
        f"{_signed(diff, 1, percent=True)}",
        interval_verdict({"share": diff}),
    )


def _claim_n_terms(runs: dict[str, list[RunLog]]) -> tuple[str, str, str]:
    sac = runs["sac"]
    finals = {
        n: float(_quiet(np.nanmean, [r.column(f"test/n_terms/{n}")[-1] for r in sac]))
        for n in (1, 2, 3)
    }
    return (
        "Single-term prompts score higher than multi-term ones (Fig. 7)",
        f"final SAC test metric by number of terms: 1: {finals[1]:.3f}, 2: {finals[2]:.3f}, "
        f"3: {finals[3]:.3f}",
        descriptive_verdict(
            len(sac),
            "sac",
            "supported" if finals[1] > max(finals[2], finals[3]) else "contradicted",
        )
        if all(np.isfinite(v) for v in finals.values())
        else _verdict("not measured", len(sac), "sac", "no scores by number of terms recorded"),
    )


def _claim_validation(runs: dict[str, list[RunLog]]) -> tuple[str, str, str]:
    sac = runs["sac"]
    val = np.concatenate([r.column("val/metric") for r in sac])
    test = np.concatenate([r.test for r in sac])
    ok = np.isfinite(val) & np.isfinite(test)
    val, test = val[ok], test[ok]
    corr = (
        float(np.corrcoef(val, test)[0, 1])
        if val.size > 2 and np.std(val) and np.std(test)
        else np.nan
    )
    if np.isnan(corr):
        verdict = _verdict("inconclusive", len(sac), "sac", "no correlation measurable")
    else:
        verdict = descriptive_verdict(
            len(sac), "sac", "supported" if corr > 0.5 else "contradicted"
        )
    return (
        "Validation mirrors test, so early stopping on it is sound (Fig. 9)",
        f"Pearson correlation of validation and test over SAC iterations: {corr:.2f}",
        verdict,
    )


def _claim_early_stopping(runs: dict[str, list[RunLog]]) -> tuple[str, str, str]:
    sac = runs["sac"]
    stopped = sum(r.summary.get("stopped") == "early_stopping" for r in sac)
    return (
        "SAC's gain stagnates and the run is stopped early",
        f"SAC runs stopped by early stopping: {stopped} of {len(sac)}",
        descriptive_verdict(
            len(sac),
            "sac",
            "supported" if stopped == len(sac) else ("partly" if stopped else "contradicted"),
        ),
    )


def _claim_hardness(comparison: dict[str, Any]) -> tuple[str, str, str]:
    arms, diffs = comparison["arms"], comparison["differences"]
    mean = {arm: _fmt(arms[arm]["stats"]["hardness"]) for arm in ARMS if arms[arm]["seeds"]}
    found = "mean hardness over iterations: " + ", ".join(f"{a} {v}" for a, v in mean.items())
    found += f"; SAC - random {_signed(diffs['sac - random']['hardness'])}"
    if arms["sac-dense"]["seeds"]:
        found += f"; sac-dense - random {_signed(diffs['sac-dense - random']['hardness'])}"
    measured = any(np.isfinite(x["hardness"]) for x in arms["sac"]["seeds"])
    return (
        "The RL agent generates samples the VLM finds harder than random placement does",
        found,
        interval_verdict({"hardness": diffs["sac - random"]["hardness"]})
        if measured
        else _verdict("not measured", len(arms["sac"]["seeds"]), "sac", "no hardness recorded"),
    )


def _claim_dense(comparison: dict[str, Any]) -> tuple[str, str, str]:
    diffs = comparison["differences"]
    auc, fin = diffs["sac-dense - random"]["auc"], diffs["sac-dense - random"]["final_metric"]
    vs_sac = diffs["sac-dense - sac"]
    return (
        "Beyond the paper (open question 2): a dense per-step VLM reward (sac-dense) reaches "
        "a higher test metric than random placement for the same generated samples",
        f"sac-dense - random, AUC / budget: {_signed(auc)}; final metric: {_signed(fin)}. "
        f"sac-dense - SAC, AUC / budget: {_signed(vs_sac['auc'])}; final metric: "
        f"{_signed(vs_sac['final_metric'])}",
        interval_verdict({"AUC": auc, "final-metric": fin}),
    )


def claims(
    runs: Mapping[str, list[RunLog]], comparison: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """The paper's qualitative claims, each with what this run measured and a verdict with n."""
    runs = _all_arms(runs)
    out = [
        _claim_efficiency(comparison),
        _claim_iterations(comparison),
        _claim_valid_rate(comparison),
        *_claims_terms(runs),
    ]
    if runs["random"]:
        out.append(_claim_left_right(comparison))
    out += [
        _claim_n_terms(runs),
        _claim_validation(runs),
        _claim_early_stopping(runs),
        _claim_hardness(comparison),
    ]
    if runs["sac-dense"]:
        out.append(_claim_dense(comparison))
    return out


# ---------------------------------------------------------------------------- figures
def _figure(
    path: Path, draw: Any, size: tuple[float, float] = (7.0, 4.2), ncols: int | None = None
) -> Path:
    """Draw on a fresh figure and save it as PNG (written atomically).

    ``draw(fig, ax)`` gets one axes, or with ``ncols`` a row of that many.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols or 1, figsize=size, squeeze=False)
    draw(fig, axes[0, 0] if ncols is None else axes[0])
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _present(runs: Mapping[str, list[RunLog]]) -> list[str]:
    """The arms of ``ARMS`` that have runs, in order."""
    return [arm for arm in ARMS if runs.get(arm)]


def _grid(runs: dict[str, list[RunLog]]) -> np.ndarray:
    end = max(float(r.generated[-1]) for logs in runs.values() for r in logs)
    return np.linspace(0.0, end, 200)


def fig_efficiency(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 5: test metric against cumulative generated samples; mean and min-max over seeds."""
    grid = _grid(runs)

    def draw(fig: Any, ax: Any) -> None:
        for arm, logs in runs.items():
            if not logs:
                continue
            c = COLOURS[arm]
            for r in logs:
                ax.plot(r.generated, r.test, "o", ms=3, color=c, alpha=0.45)
            curves = mean_curve(logs, "test/metric", grid)
            ax.plot(grid, curves.mean(0), color=c, label=f"{arm} (mean of {len(logs)} seeds)")
            ax.fill_between(grid, curves.min(0), curves.max(0), color=c, alpha=0.15)
        ax.set_xlabel("cumulative generated samples (environment steps)")
        ax.set_ylabel(f"test {METRIC_NAME[model]}")
        ax.set_title(f"{model}: efficiency (dots: iterations; band: min-max over seeds)")
        ax.legend()
        ax.grid(alpha=0.3)

    return _figure(path, draw)


def fig_terms(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 6: per-term test metric before and after, with cumulative term counts."""
    keys = [f"test/term/{term_key(t)}" for t in TERMS]
    before = np.array([np.nanmean([r.column(k)[0] for r in runs["sac"]]) for k in keys])
    bars = [("before", before, np.zeros_like(before), "tab:gray")]
    labels = list(TERMS)
    for arm, logs in runs.items():
        if not logs:
            continue
        after = np.array([[r.column(k)[-1] for k in keys] for r in logs])
        bars.append((f"after, {arm}", np.nanmean(after, 0), np.nanstd(after, 0), COLOURS[arm]))
        counts = [
            np.mean([r.column(f"batch_terms_cum/{term_key(t)}")[-1] for r in logs]) for t in TERMS
        ]
        labels = [
            f"{lab}\n{BRACKETS[arm].format(c)}" for lab, c in zip(labels, counts, strict=True)
        ]
    legend = " ".join(BRACKETS[arm].format(0).replace("0", arm) for arm in _present(runs))

    def draw(fig: Any, ax: Any) -> None:
        x = np.arange(len(TERMS))
        width = 0.8 / len(bars)
        for i, (name, mean, std, colour) in enumerate(bars):
            ax.bar(
                x + (i - (len(bars) - 1) / 2) * width,
                mean,
                width,
                yerr=std,
                label=name,
                color=colour,
                capsize=2,
            )
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel(f"test {METRIC_NAME[model]}")
        ax.set_title(
            f"{model}: per-term score (mean ± std over seeds); cumulative term counts: {legend}",
            fontsize=9,
        )
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)

    return _figure(path, draw, (8.0, 4.4))


def fig_n_terms(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 7: test metric by number of spatial terms against iteration."""

    def draw(fig: Any, ax: Any) -> None:
        for arm in _present(runs):
            logs, style = runs[arm], LINE_STYLES[arm]
            for n, colour in zip((1, 2, 3), ("tab:green", "tab:purple", "tab:brown"), strict=True):
                length = min(len(r.iterations) for r in logs)
                values = np.nanmean([r.column(f"test/n_terms/{n}")[:length] for r in logs], 0)
                ax.plot(
                    np.arange(length),
                    values,
                    style,
                    marker="o",
                    ms=3,
                    color=colour,
                    label=f"{n} term{'s' if n > 1 else ''}, {arm}",
                )
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("iteration (0: the base model)")
        ax.set_ylabel(f"test {METRIC_NAME[model]}")
        ax.set_title(f"{model}: score by number of spatial terms (mean over seeds)")
        ax.legend(fontsize=8, ncol=2)
        ax.grid(alpha=0.3)

    return _figure(path, draw)


def fig_loss(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 8: the fine-tuning loss of every step, iterations concatenated."""

    def draw(fig: Any, ax: Any) -> None:
        for arm, logs in runs.items():
            for i, r in enumerate(logs):
                if not r.losses:
                    continue
                steps = [row["finetune_step"] for row in r.losses]
                ax.plot(
                    steps,
                    [row["loss"] for row in r.losses],
                    color=COLOURS[arm],
                    alpha=0.8 if i == 0 else 0.35,
                    lw=1,
                    label=f"{arm}" if i == 0 else None,
                )
        first = runs["sac"][0]
        for row in first.iterations[1:]:
            step = sum(1 for x in first.losses if x["iteration"] <= row["iteration"])
            ax.axvline(step, color="gray", lw=0.5, alpha=0.4)
        ax.set_xlabel("fine-tuning step (grey lines: iteration ends, sac seed 0)")
        ax.set_ylabel("training loss")
        ax.set_title(f"{model}: concatenated fine-tuning loss (one line per seed)")
        ax.legend()
        ax.grid(alpha=0.3)

    return _figure(path, draw)


def fig_validation(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 9: validation metric against iteration for the sac arm, early-stopping points marked."""

    def draw(fig: Any, ax: Any) -> None:
        logs = runs["sac"]
        length = max(len(r.iterations) for r in logs)
        padded = np.full((len(logs), length), np.nan)
        for i, r in enumerate(logs):
            padded[i, : len(r.iterations)] = r.column("val/metric")
        mean, std = np.nanmean(padded, 0), np.nanstd(padded, 0)
        x = np.arange(length)
        ax.plot(x, mean, color=COLOURS["sac"], marker="o", ms=3, label="sac, mean over seeds")
        ax.fill_between(x, mean - std, mean + std, color=COLOURS["sac"], alpha=0.2, label="± std")
        for r in logs:
            val = r.column("val/metric")
            best = int(np.nanargmax(val))
            ax.plot(
                best,
                val[best],
                "*",
                ms=11,
                color="tab:red",
                alpha=0.7,
                label="best validation (the model early stopping would keep)"
                if r is logs[0]
                else None,
            )
            end = len(r.iterations) - 1
            how = r.summary.get("stopped")
            ax.axvline(end, color="tab:red", ls="--", lw=1)
            ax.annotate(
                f"seed {r.seed}: {how}",
                (end, float(r.column("val/metric")[-1])),
                fontsize=7,
                rotation=90,
                va="bottom",
                ha="right",
            )
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("iteration (red line: where each seed's run stopped)")
        ax.set_ylabel(f"validation {METRIC_NAME[model]}")
        ax.set_title(f"{model}: validation curve and early-stopping points")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)

    return _figure(path, draw)


def fig_valid_rate(comparison: dict[str, Any], model: str, path: Path) -> Path:
    """Valid rate and iterations per arm (one dot per seed, bar: mean)."""

    def draw(fig: Any, ax: Any) -> None:
        ax2 = ax.twinx()
        present = [arm for arm in ARMS if comparison["arms"][arm]["seeds"]]
        for i, arm in enumerate(present):
            rows = comparison["arms"][arm]["seeds"]
            rates = [x["valid_rate"] for x in rows]
            iters = [x["iterations"] for x in rows]
            ax.bar(i - 0.2, np.mean(rates), 0.4, color=COLOURS[arm], alpha=0.7)
            ax.plot([i - 0.2] * len(rates), rates, "k.", ms=5)
            ax2.bar(i + 0.2, np.mean(iters), 0.4, color=COLOURS[arm], alpha=0.35, hatch="//")
            ax2.plot([i + 0.2] * len(iters), iters, "k.", ms=5)
        ax.set_xticks(range(len(present)), present)
        ax.set_xlabel("per arm: left bar valid rate, right bar (hatched) iterations")
        ax.set_ylabel("valid rate (valid / generated samples)")
        ax2.set_ylabel("iterations completed")
        ax.set_ylim(0, 1)
        ax.set_title(f"{model}: valid rate and iterations per arm (dots: seeds)")

    return _figure(path, draw)


def fig_hardness(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Each arm's mean hardness of its generated samples against iteration; min-max over seeds."""

    def draw(fig: Any, ax: Any) -> None:
        drawn = False
        for arm in _present(runs):
            values = per_iteration(runs[arm], "hardness")
            if not np.isfinite(values).any():
                continue
            x = np.arange(1, values.shape[1] + 1)
            c = COLOURS[arm]
            n = len(runs[arm])
            mean = _quiet(np.nanmean, values, 0)
            ax.plot(x, mean, color=c, marker="o", ms=3, label=f"{arm} (mean of {n} seeds)")
            low, high = _quiet(np.nanmin, values, 0), _quiet(np.nanmax, values, 0)
            ax.fill_between(x, low, high, color=c, alpha=0.15)
            drawn = True
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(
                0.5, 0.5, "hardness not recorded by these runs", ha="center", transform=ax.transAxes
            )
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("iteration")
        ax.set_ylabel(
            f"hardness: {HARDNESS_NAME[model]}\nhigher = harder for the VLM,\n"
            "under the VLM before that iteration's fine-tuning",
            fontsize=9,
        )
        ax.set_title(
            f"{model}: hardness of each arm's generated samples (band: min-max over seeds)",
            fontsize=10,
        )
        ax.grid(alpha=0.3)

    return _figure(path, draw)


def fig_term_distribution(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Per arm: each spatial term's share of every iteration's fine-tuning batch (stacked)."""
    present = _present(runs)

    def draw(fig: Any, axes: Any) -> None:
        import matplotlib

        colours = matplotlib.colormaps["Set2"]
        length = max(batch_term_shares(runs[arm]).shape[0] for arm in present)
        for ax, arm in zip(axes, present, strict=True):
            shares = np.nan_to_num(batch_term_shares(runs[arm]))
            x = np.arange(1, shares.shape[0] + 1)
            bottom = np.zeros(shares.shape[0])
            for j, term in enumerate(TERMS):
                ax.bar(x, shares[:, j], 0.85, bottom=bottom, color=colours(j), label=term)
                bottom += shares[:, j]
            if not bottom.any():
                ax.text(0.5, 0.5, "no batch term counts", ha="center", transform=ax.transAxes)
            ax.set_title(f"{arm} ({len(runs[arm])} seeds)", fontsize=10)
            ax.set_xlabel("iteration")
            ax.set_ylim(0, 1)
            ax.set_xlim(0.4, length + 0.6)
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].set_ylabel("share of the batch's spatial terms")
        handles, labels = axes[0].get_legend_handles_labels()
        axes[-1].legend(
            handles[::-1], labels[::-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0)
        )
        fig.suptitle(
            f"{model}: spatial terms in each iteration's fine-tuning batch "
            "(summed over seeds, share per iteration)",
            fontsize=10,
        )

    return _figure(path, draw, (3.6 * len(present) + 1.6, 4.0), ncols=len(present))


# ---------------------------------------------------------------------------- the report
def machine() -> str:
    """The machine in words: CPU model and cores, memory, GPU if any."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, {gpu}; {platform.system()} {platform.release()}"


def _number(value: Any) -> float:
    """``value`` as a float; None (a null read back from comparison.json) as NaN."""
    return np.nan if value is None else float(value)


def _fmt(
    stat: Mapping[str, Any] | None, digits: int = 3, signed: bool = False, percent: bool = False
) -> str:
    """``mean [ci_low, ci_high]``; "n/a" when not measured; a lone seed's mean says so."""
    stat = stat or {}
    scale, unit = (100.0, "%") if percent else (1.0, "")
    spec = f"{'+' if signed else ''}.{digits}f"

    def f(key: str) -> str:
        return f"{_number(stat[key]) * scale:{spec}}{unit}"

    if not np.isfinite(_number(stat.get("mean"))):
        return "n/a"
    if "ci_low" not in stat:
        return f("mean")
    if not np.isfinite(_number(stat["ci_low"])):
        return f"{f('mean')} (n = {stat.get('n', 1)}: no interval)"
    return f"{f('mean')} [{f('ci_low')}, {f('ci_high')}]"


def _stage_seconds(results: Path, model: str, runs: dict[str, list[RunLog]]) -> dict[str, float]:
    """Compute time recorded by the stages' own outputs (process start-up not included)."""
    seconds: dict[str, float] = {}
    base = results / "vlm" / model / "base_metrics.json"
    if base.is_file():
        seconds["base model"] = float(json.loads(base.read_text()).get("train_seconds", 0.0))
    agents = 0.0
    for r in runs["sac"]:
        pre = results / "agents" / f"seed{r.seed}" / "pretrain.json"
        if pre.is_file():
            agents += float(json.loads(pre.read_text()).get("seconds", 0.0))
    seconds["SAC pre-training"] = agents
    for arm in _present(runs):
        seconds[f"{arm} runs"] = sum(float(r.summary.get("seconds", 0.0)) for r in runs[arm])
    return seconds


def _rounded(value: float, digits: int = 5) -> float | int | None:
    """``value`` rounded for metrics.json; counts stay ints, non-finite numbers None."""
    if isinstance(value, int | np.integer):
        return int(value)
    return round(float(value), digits) if np.isfinite(value) else None


def hardness_rows(runs: Mapping[str, list[RunLog]]) -> list[dict[str, Any]]:
    """The DVC plot of hardness: per iteration 1.., each arm's mean over seeds (None: none)."""
    means = {
        arm: _quiet(np.nanmean, per_iteration(runs[arm], "hardness"), 0) for arm in _present(runs)
    }
    length = max((m.size for m in means.values()), default=0)
    return [
        {
            "iteration": i + 1,
            **{
                f"{arm}_hardness": _rounded(m[i]) if i < m.size else None
                for arm, m in means.items()
            },
        }
        for i in range(length)
    ]


def _plots(runs: dict[str, list[RunLog]], out: Path) -> None:
    """The DVC plots: mean efficiency curve, validation curve, fine-tuning loss (seed 0),
    hardness."""
    grid = _grid(runs)
    rows = [{"generated_samples": round(float(g), 1)} for g in grid]
    for arm in _present(runs):
        mean = mean_curve(runs[arm], "test/metric", grid).mean(0)
        for row, v in zip(rows, mean, strict=True):
            row[f"{arm}_test_metric"] = round(float(v), 5)
    atomic_write_csv(out / "efficiency.csv", rows)
    sac = runs["sac"]
    length = min(len(r.iterations) for r in sac)
    val = np.mean([r.column("val/metric")[:length] for r in sac], 0)
    test = np.mean([r.test[:length] for r in sac], 0)
    atomic_write_csv(
        out / "validation.csv",
        [
            {
                "iteration": i,
                "sac_val_metric": round(float(v), 5),
                "sac_test_metric": round(float(t), 5),
            }
            for i, (v, t) in enumerate(zip(val, test, strict=True))
        ],
    )
    loss_rows: list[dict[str, Any]] = []
    for arm in _present(runs):
        loss_rows += [
            {"arm": arm, "finetune_step": int(x["finetune_step"]), "loss": round(x["loss"], 5)}
            for x in runs[arm][0].losses
        ]
    atomic_write_csv(out / "finetune_loss.csv", loss_rows)
    hardness = hardness_rows(runs)
    if hardness:
        atomic_write_csv(out / "hardness.csv", hardness)
    else:
        atomic_write_text(out / "hardness.csv", "iteration\n")


def _dvc_metrics(model: str, comparison: dict[str, Any]) -> dict[str, Any]:
    """The comparison as a flat-ish JSON for ``dvc metrics show`` (None: not measured)."""
    metrics: dict[str, Any] = {"model": model, "interval": INTERVAL}
    for arm in ARMS:
        a = comparison["arms"][arm]
        metrics[arm] = {"n_seeds": a["n_seeds"]}
        for key, stat in a["stats"].items():
            for part, value in stat.items():
                metrics[arm][f"{key}_{part}"] = _rounded(value)
    for name, differences in comparison["differences"].items():
        metrics[METRICS_KEY[name]] = {
            f"{key}_{part}": _rounded(v)
            for key, stat in differences.items()
            for part, v in stat.items()
            if part != "per_seed"
        }
    return metrics


def write_report(results: str | Path, model: str, out: str | Path) -> Path:
    """Read the runs of ``model``; write REPORT.md, figures/, plots/, comparison.json and
    metrics.json to ``out``."""
    results, out = Path(results), Path(out)
    runs = load_runs(results, model)
    comparison = compare(runs)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    fig = out / "figures"
    figures = {
        "Fig. 5, efficiency": fig_efficiency(runs, model, fig / "fig5_efficiency.png"),
        "Fig. 6, per-term scores": fig_terms(runs, model, fig / "fig6_terms.png"),
        "Fig. 7, score by number of terms": fig_n_terms(runs, model, fig / "fig7_n_terms.png"),
        "Fig. 8, fine-tuning loss": fig_loss(runs, model, fig / "fig8_loss.png"),
        "Fig. 9, validation and early stopping": fig_validation(
            runs, model, fig / "fig9_validation.png"
        ),
        "Valid rate and iterations per arm": fig_valid_rate(
            comparison, model, fig / "valid_rate_iterations.png"
        ),
        "Hardness of the generated samples": fig_hardness(runs, model, fig / "fig_hardness.png"),
        "Term distribution of the fine-tuning data": fig_term_distribution(
            runs, model, fig / "fig_term_distribution.png"
        ),
    }
    _plots(runs, out / "plots")
    atomic_write_json(out / "metrics.json", json_ready(_dvc_metrics(model, comparison)))
    atomic_write_json(out / "comparison.json", json_ready(comparison))
    text = _markdown(results, model, runs, comparison, figures, out)
    atomic_write_text(out / "REPORT.md", text)
    return out / "REPORT.md"


def _finetune_line(model: str, summary: dict[str, Any]) -> str:
    """K and the fine-tuning config as the runs recorded them; a locked image tower said so."""
    if "finetune" not in summary:
        return "not recorded by these runs."
    unit = "epochs" if model == "clip" else "steps"
    cfg = ", ".join(f"{k} {v}" for k, v in summary["finetune"].items())
    line = f"K = {summary['k']} {unit}; {cfg}."
    if summary["finetune"].get("lock_image"):
        line += (
            " **The image trunk is locked** (locked-image tuning, LiT: its features are computed"
            " once per fine-tuning round; the projection and the text tower train). The paper"
            " fine-tunes the whole CLIP (`lock_image: false`, the paper profile)."
        )
    return line


def _base_line(results: Path, model: str) -> str:
    """Which weights the runs started from: the built-in model, or a recorded checkpoint."""
    path = results / "vlm" / model / "base_metrics.json"
    if not path.is_file():
        return "not recorded (no `base_metrics.json`)."
    info = json.loads(path.read_text())
    weights = info.get("weights")
    if weights is None:
        minutes = float(info.get("train_seconds", 0.0)) / 60
        return (
            f"the built-in {model}, base-trained without spatial words ({minutes:.1f} min; "
            f"`{path.relative_to(results)}`)."
        )
    arch = f" (open_clip {weights['arch']})" if weights.get("arch") else ""
    return (
        f"real weights{arch}, `{weights['path']}`: {weights['bytes'] / 1e9:.2f} GB, "
        f"SHA-256 `{weights['sha256'][:16]}`; no base training."
    )


def _setting(
    results: Path, model: str, runs: dict[str, list[RunLog]], comparison: dict[str, Any]
) -> list[str]:
    """The header: profile, seeds, test metric, fine-tuning, machine, date, compute time."""
    first = runs["sac"][0].summary
    n = {arm: comparison["arms"][arm]["n_seeds"] for arm in ARMS}
    seconds = _stage_seconds(results, model, runs)
    paired = "; ".join(
        f"{name}: {seeds}"
        for name, seeds in comparison["paired"].items()
        if n["sac-dense"] or "sac-dense" not in name
    )
    dense = (
        f"{n['sac-dense']} sac-dense (beyond the paper, its open question 2: the same "
        "pre-trained SAC with a per-step dense VLM reward)"
        if n["sac-dense"]
        else "no sac-dense runs (the dense-reward arm: left out)"
    )
    lines = [
        f"# RLS3 benchmark report: {model}",
        "",
        f"- Profile: `{first['profile']}`; seeds: {n['sac']} sac, {n['random']} random, {dense}. "
        f"Paired seeds: {paired}.",
        f"- Test metric: {METRIC_NAME[model]}, on the fixed test set (test environment, "
        f"content hash `{first['dataset_hashes']['test'][:12]}`).",
        f"- Hardness of a generated sample: {HARDNESS_NAME[model]}, under the VLM before that "
        "iteration's fine-tuning (higher: harder for the VLM); an iteration's is the mean over "
        "its complete episodes (T0 samples, evaluated as one group as for J2: a budget arm's "
        "last, shorter episode has fewer negatives and a lower loss, and is left out).",
        f"- Fine-tuning per iteration: {_finetune_line(model, first)}",
        f"- Base model: {_base_line(results, model)}",
    ]
    if "loop_gamma" in first:
        lines.append(
            f"- Discount of the agent's updates in the loop: gamma = {first['loop_gamma']}."
        )
    lines += [
        f"- Machine: {machine()}.",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC (report written).",
        "- Compute time recorded by the stages (process start-up and DVC not included): "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
        + f"; total {sum(seconds.values()) / 60:.1f} min. The end-to-end wall time of the "
        "`make bench` that wrote this report is in `bench.json` beside it when there is one.",
    ]
    return lines


# the comparison table's rows: label, key, digits, whether the arms' difference is shown
TABLE_ROWS = (
    ("test metric before fine-tuning", "initial_metric", 3, False),
    ("final test metric", "final_metric", 3, True),
    ("area under the efficiency curve / budget", "auc", 3, True),
    ("generated samples to reach random's final metric", "samples_to_random_final", 0, False),
    ("hardness of the generated samples", "hardness", 3, True),
    ("VLM error rate on the generated samples", "error_rate", 3, True),
    ("valid rate", "valid_rate", 3, True),
    ("iterations", "iterations", 1, True),
)


def _comparison_table(comparison: dict[str, Any]) -> list[str]:
    """Means with intervals per arm that has runs, and the paired differences against random."""
    arms = comparison["arms"]
    present = [arm for arm in ARMS if arms[arm]["seeds"]]
    shown = [
        name
        for name in ("sac - random", "sac-dense - random")
        if all(arm in present for arm in DIFFERENCES[name])
    ]
    lines = [
        f"Mean over seeds with a {CONFIDENCE:.0%} confidence interval in brackets: Student t, "
        "mean ± t_{0.975, n-1} · sd / √n over the n seeds (n - 1 degrees of freedom); a single "
        "seed gives no interval. Differences are paired: per seed, then over the seeds both arms "
        f"ran. The claims below get a verdict only from at least {MIN_SEEDS_FOR_VERDICT} paired "
        "seeds and an interval that excludes 0. " + NULL_MEANS,
        "",
        "| figure | " + " | ".join(present + shown) + " |",
        "| --- " * (1 + len(present) + len(shown)) + "|",
    ]
    for label, key, digits, differ in TABLE_ROWS:
        cells = [_fmt(arms[arm]["stats"][key], digits) for arm in present]
        cells += [
            _fmt(comparison["differences"][name][key], digits, signed=True) if differ else ""
            for name in shown
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _per_seed_table(comparison: dict[str, Any]) -> list[str]:
    def value(x: float, spec: str) -> str:
        return "n/a" if not np.isfinite(x) else f"{x:{spec}}"

    lines = [
        "| arm | seed | before | final | AUC/budget | samples to random's final | generated | "
        "valid rate | iterations | hardness | error rate | stopped |",
        "| --- " * 12 + "|",
    ]
    for arm in ARMS:
        for x in comparison["arms"][arm]["seeds"]:
            reach = value(x["samples_to_random_final"], ".0f").replace("n/a", "never")
            lines.append(
                f"| {arm} | {x['seed']} | {x['initial_metric']:.3f} | {x['final_metric']:.3f} | "
                f"{x['auc']:.3f} | {reach} | {x['generated_samples']:.0f} | "
                f"{x['valid_rate']:.1%} | {x['iterations']:.0f} | {value(x['hardness'], '.3f')} | "
                f"{value(x['error_rate'], '.3f')} | {x['stopped']} |"
            )
    return lines


def _markdown(
    results: Path,
    model: str,
    runs: dict[str, list[RunLog]],
    comparison: dict[str, Any],
    figures: dict[str, Path],
    out: Path,
) -> str:
    lines = _setting(results, model, runs, comparison)
    lines += ["", "## Comparison of the arms", "", *_comparison_table(comparison)]
    for note in caveats(comparison):
        lines += ["", f"**Note:** {note}"]
    lines += ["", "Per seed:", "", *_per_seed_table(comparison)]
    lines += [
        "",
        "## The paper's claims beside this run",
        "",
        f"A verdict needs at least {MIN_SEEDS_FOR_VERDICT} seeds (paired seeds where arms are "
        "compared) and, for a comparison, an interval that excludes 0; n is stated with each.",
        "",
        "| claim (RLS3, ICCPS 2025) | found here | verdict |",
        "| --- | --- | --- |",
    ]
    for claim, found, verdict in claims(runs, comparison):
        lines.append(f"| {claim} | {found} | {verdict} |")
    lines += ["", "## Figures", ""]
    for title, path in figures.items():
        lines += [f"### {title}", "", f"![{title}]({path.relative_to(out).as_posix()})", ""]
    budget = "random and sac-dense arms' budget is" if runs["sac-dense"] else "random arm's is"
    lines += [
        "## How to read and regenerate",
        "",
        "- Every number above comes from the run files under `results/runs/` (also in MLflow: "
        "`make ui`). `dvc repro` regenerates them; `dvc metrics show` and `dvc plots show` give "
        "the same figures.",
        f"- Budgets: the {budget} the sac run's generated samples (same seed); "
        "x axes count generated samples (environment steps, valid or not).",
        f"- {NULL_MEANS}",
        "",
    ]
    return "\n".join(lines)


def write_index(report_dir: str | Path, models: Sequence[str]) -> Path:
    """``results/report/REPORT.md``: the headline comparison of every model, linking each report."""
    report_dir = Path(report_dir)
    lines = [
        "# RLS3 benchmark: all models",
        "",
        "| model | seeds (sac / random / sac-dense) | sac final | random final | sac-dense final "
        "| AUC/budget, sac - random | report |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model in models:
        comparison = json.loads((report_dir / model / "comparison.json").read_text())
        arms, diff = comparison["arms"], comparison["difference"]
        n = " / ".join(str(arms.get(arm, {}).get("n_seeds", 0)) for arm in ARMS)
        finals = " | ".join(
            _fmt(arms.get(arm, {}).get("stats", {}).get("final_metric")) for arm in ARMS
        )
        lines.append(
            f"| {model} | {n} | {finals} | {_fmt(diff['auc'], signed=True)} | "
            f"[{model}/REPORT.md]({model}/REPORT.md) |"
        )
    lines.append("")
    return atomic_write_text(report_dir / "REPORT.md", "\n".join(lines))
