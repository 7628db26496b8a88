"""The comparison of the arms across seeds: per-seed figures, means with Student-t intervals
(scipy.stats), paired per-seed differences, and the per-iteration curves the figures draw."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from benchmark.captions import TERMS, term_key
from benchmark.config import ARMS
from benchmark.report.runs import RunLog, all_arms

CONFIDENCE = 0.95
INTERVAL = f"Student t, {CONFIDENCE:.0%}, n-1 degrees of freedom, over seeds"
MIN_SEEDS_FOR_VERDICT = 3
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


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def quiet_nan(fn: Callable[..., Any], values: Any, axis: int | None = None) -> Any:
    """``fn`` (np.nanmean, np.nanmin, ...) without the all-NaN warnings: NaN there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(np.asarray(values, dtype=float), axis=axis)


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t CI, mean ± t_{0.975, n-1} · sd / √n, from
    ``scipy.stats.ttest_1samp`` (NaNs dropped).

    One value gives no interval (NaN bounds); none gives NaN throughout.
    """
    x = _finite(values)
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(x.mean())
    if x.size < 2:
        return (mean, np.nan, np.nan)
    if np.ptp(x) == 0:  # no spread: scipy's statistic is undefined, the interval is the point
        return (mean, mean, mean)
    ci = scipy_stats.ttest_1samp(x, 0.0).confidence_interval(CONFIDENCE)
    return mean, float(ci.low), float(ci.high)


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
    return float(quiet_nan(np.nanmean, run.column(key)[1:]))


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
    runs = all_arms(runs)
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


def as_number(value: Any) -> float:
    """``value`` as a float; None (a null read back from comparison.json) as NaN."""
    return np.nan if value is None else float(value)


def format_stat(
    stat: Mapping[str, Any] | None, digits: int = 3, signed: bool = False, percent: bool = False
) -> str:
    """``mean [ci_low, ci_high]``; "n/a" when not measured; a lone seed's mean says so."""
    stat = stat or {}
    scale, unit = (100.0, "%") if percent else (1.0, "")
    spec = f"{'+' if signed else ''}.{digits}f"

    def f(key: str) -> str:
        return f"{as_number(stat[key]) * scale:{spec}}{unit}"

    if not np.isfinite(as_number(stat.get("mean"))):
        return "n/a"
    if "ci_low" not in stat:
        return f("mean")
    if not np.isfinite(as_number(stat["ci_low"])):
        return f"{f('mean')} (n = {stat.get('n', 1)}: no interval)"
    return f"{f('mean')} [{f('ci_low')}, {f('ci_high')}]"
