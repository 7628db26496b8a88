"""The comparison of the arms across seeds: per-seed figures, means with Student-t intervals
(scipy.stats), paired per-seed differences with their equivalence test (statsmodels' two one-sided
tests), minimum detectable difference (statsmodels' t-test power) and probability of improvement
(rliable's, with its stratified-bootstrap interval), and the per-iteration curves the figures
draw."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
from rliable import metrics as rliable_metrics
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from benchmark.arms import REGISTRY
from benchmark.captions import TERMS, term_key
from benchmark.comparison import (
    ArmFigures,
    ByTerms,
    Comparison,
    Difference,
    Estimate,
    ExternalArm,
    ExternalSeed,
    JsonRecord,
    SeedFigures,
)
from benchmark.config import ARMS
from benchmark.report.runs import RunLog, all_arms

CONFIDENCE = 0.95
INTERVAL = f"Student t, {CONFIDENCE:.0%}, n-1 degrees of freedom, over seeds"
MIN_SEEDS_FOR_VERDICT = 3
# equivalence: two one-sided paired t tests at this level each, i.e. the 90% paired interval
# inside +/- the margin delta (statsmodels' ttost_paired); p below it: equivalent
EQUIVALENCE_ALPHA = 0.05
EQUIVALENCE = (
    "two one-sided paired t tests (statsmodels ttost_paired) at alpha 0.05 each: equivalent "
    "when p < 0.05, i.e. the 90% paired interval lies inside ±delta"
)
# the minimum detectable difference: a paired (one-sample) t test at this power and level
POWER, POWER_ALPHA = 0.8, 0.05
MAX_SEEDS = 1_000_000  # seeds_for_margin's search stops here (infinity beyond)
# the probability of improvement's interval: rliable's stratified bootstrap (percentile)
BOOTSTRAP_REPS = 50_000
BOOTSTRAP_SEED = 0
# paired per-seed differences: name -> (arm, arm subtracted); the key in metrics.json
DIFFERENCES = {
    "sac - random": ("sac", "random"),
    "sac-dense - random": ("sac-dense", "random"),
    "sac-dense - sac": ("sac-dense", "sac"),
    "sac-nofeedback - random": ("sac-nofeedback", "random"),
    "sac - sac-nofeedback": ("sac", "sac-nofeedback"),
    "random-hardest - random": ("random-hardest", "random"),
}
METRICS_KEY = {
    "sac - random": "sac_minus_random",
    "sac-dense - random": "sac_dense_minus_random",
    "sac-dense - sac": "sac_dense_minus_sac",
    "sac-nofeedback - random": "sac_nofeedback_minus_random",
    "sac - sac-nofeedback": "sac_minus_sac_nofeedback",
    "random-hardest - random": "random_hardest_minus_random",
}
# the decomposition of the headline: what each difference isolates, in the order the effects add
DECOMPOSITION = (
    ("feasibility", "sac-nofeedback - random"),
    ("the VLM's feedback", "sac - sac-nofeedback"),
    ("hard-sample selection without RL", "random-hardest - random"),
    ("dense reward", "sac-dense - sac"),
    ("the paper's headline", "sac - random"),
)
# the reward balance of an arm's episodes (per-episode means, then over seeds)
REWARD_KEYS = ("j1", "j2", "vlm_reward", "vlm_share")
STAT_KEYS = (
    "final_metric",
    "final_control",
    "grounded_gain",
    "initial_metric",
    "auc",
    "samples_to_random_final",
    "hardness",
    "error_rate",
    "valid_rate",
    "iterations",
    "generated_samples",
    "left_right_share",
    *REWARD_KEYS,
)
DIFF_KEYS = (
    "final_metric",
    "final_control",
    "grounded_gain",
    "auc",
    "hardness",
    "error_rate",
    "valid_rate",
    "iterations",
    "left_right_share",
)
# an external set's figures per run (``compare_external``)
EXTERNAL_KEYS = ("initial", "final", "gain", "test_gain")
# differences in the model's metric: where the equivalence margin applies, and the probability
# of improvement is given
METRIC_KEYS = ("final_metric", "auc")
# the final test metric per spatial term and by number of terms (columns test/term/<key>,
# test/n_terms/<n>); in a seed's row as term/<key> and n_terms/<n>
TERM_KEYS = tuple(term_key(t) for t in TERMS)
N_TERMS = (1, 2, 3)


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
    with warnings.catch_warnings():  # nearly equal values: scipy warns, the interval is narrow
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = scipy_stats.ttest_1samp(x, 0.0).confidence_interval(CONFIDENCE)
    return mean, float(ci.low), float(ci.high)


def summarise(values: Sequence[float]) -> Estimate:
    """Mean, t interval and n (the finite values it rests on) of per-seed ``values``."""
    mean, low, high = t_interval(values)
    return Estimate(mean=mean, ci_low=low, ci_high=high, n=int(_finite(values).size))


def equivalence_p(a: Sequence[float], b: Sequence[float], margin: float) -> float:
    """The p-value of the two one-sided paired t tests (statsmodels' ``ttost_paired``) of
    H0: mean(a - b) <= -margin or >= +margin against -margin < mean(a - b) < +margin.

    p < ``EQUIVALENCE_ALPHA`` (0.05) exactly when the 90% paired Student-t interval of a - b lies
    inside ±margin. Pairs with a NaN are dropped; under two pairs give NaN; differences without
    spread give 0 inside the margin and 1 outside (their interval is the point).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2:
        return np.nan
    d = x - y
    if np.ptp(d) == 0:
        return 0.0 if -margin < d[0] < margin else 1.0
    p, _, _ = ttost_paired(x, y, -margin, margin)
    return float(p)


@cache
def _detectable_effect(n: int) -> float:
    """The standardised effect (mean / sd) a paired t test over ``n`` pairs detects with power
    ``POWER`` at two-sided level ``POWER_ALPHA`` (statsmodels' ``TTestPower``)."""
    effect = TTestPower().solve_power(
        nobs=n, alpha=POWER_ALPHA, power=POWER, alternative="two-sided"
    )
    return float(np.asarray(effect).item())


def detectable_difference(differences: Sequence[float]) -> float:
    """The minimum detectable difference at this n and spread: the standardised effect a paired
    t test over these n pairs detects with 80% power at two-sided alpha 0.05, times their
    standard deviation (in the difference's unit). Under two pairs: NaN."""
    d = _finite(differences)
    if d.size < 2:
        return np.nan
    return _detectable_effect(int(d.size)) * float(d.std(ddof=1))


def seeds_for_margin(differences: Sequence[float], margin: float | None) -> float:
    """The paired seeds a comparison would need to detect a true difference of ``margin``, if
    its paired standard deviation stayed what these differences show: the smallest n whose
    minimum detectable difference (``detectable_difference``: 80% power, two-sided alpha 0.05)
    is at most ``margin``. No spread: 2; under two pairs or no margin: NaN; beyond
    ``MAX_SEEDS``: infinity."""
    d = _finite(differences)
    if margin is None or not margin > 0 or d.size < 2:
        return np.nan
    sd = float(d.std(ddof=1))
    target = margin / sd if sd > 0 else np.inf  # the standardised effect to reach
    if _detectable_effect(2) <= target:
        return 2.0
    low, high = 2, 4  # the effect at ``low`` is above the target; find one at or below it
    while _detectable_effect(high) > target:
        if high >= MAX_SEEDS:
            return np.inf
        low, high = high, min(2 * high, MAX_SEEDS)
    while high - low > 1:  # the detectable effect falls as n grows
        middle = (low + high) // 2
        low, high = (low, middle) if _detectable_effect(middle) <= target else (middle, high)
    return float(high)


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) over every pair of runs, for each row of resampled runs
    (reps x runs each): the Mann-Whitney U statistic over the pairs, as rliable computes it."""
    above = (x[:, :, None] > y[:, None, :]).mean(axis=(1, 2))
    tied = (x[:, :, None] == y[:, None, :]).mean(axis=(1, 2))
    return above + 0.5 * tied


def probability_of_improvement(
    x: Sequence[float], y: Sequence[float], reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED
) -> dict[str, Any]:
    """rliable's probability of improvement of X over Y, P(X > Y) + 0.5 P(X = Y), with its 95%
    stratified-bootstrap interval; NaN where an arm has no finite value.

    The point is ``rliable.metrics.probability_of_improvement`` on runs x 1 task: every run of
    X against every run of Y (all pairs, not only paired seeds). The interval is the bootstrap of
    ``rliable.library.get_interval_estimates`` (``StratifiedIndependentBootstrap``, percentile
    method): each arm's runs resampled with replacement independently, ``reps`` times, the
    2.5th and 97.5th percentiles of the statistic; its draws come from
    ``np.random.RandomState(seed)``, so the report is reproducible: where both arms have as
    many runs, the draws of ``get_interval_estimates`` after ``np.random.seed(seed)``. (rliable's
    own bootstrap needs ``arch``: rliable 1.2 accepts arch < 8, and arch 7.2, the newest of those,
    does not import with pandas 3; so the same resampling is done here in numpy.)
    """
    xs, ys = _finite(x), _finite(y)
    out: dict[str, Any] = {"poi": np.nan, "poi_ci_low": np.nan, "poi_ci_high": np.nan}
    out |= {"poi_runs_x": int(xs.size), "poi_runs_y": int(ys.size)}
    if xs.size == 0 or ys.size == 0:
        return out
    out["poi"] = float(rliable_metrics.probability_of_improvement(xs[:, None], ys[:, None]))
    rng = np.random.RandomState(seed)
    if xs.size == ys.size:  # one draw per rep and arm, X's then Y's: rliable's order
        index = rng.choice(xs.size, (reps, 2, xs.size), replace=True)
        ix, iy = index[:, 0], index[:, 1]
    else:
        ix = rng.choice(xs.size, (reps, xs.size), replace=True)
        iy = rng.choice(ys.size, (reps, ys.size), replace=True)
    replicates = _improvement(xs[ix], ys[iy])
    low, high = np.percentile(replicates, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    out["poi_ci_low"], out["poi_ci_high"] = float(low), float(high)
    return out


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


def reward_balance(run: RunLog) -> dict[str, float]:
    """Per-episode means of the agent's rewards: J1 (its +1/-1 feasibility return), the VLM's J2,
    the VLM reward it received (beta * J2, summed over the steps when dense; 0 for an arm whose
    reward is ``none``, whatever older runs recorded) and the VLM's share of the return,
    received / (|J1| + received). NaN where the run recorded no episodes."""
    if not run.episodes:
        return dict.fromkeys(REWARD_KEYS, np.nan)
    j1, j2 = run.episode_column("j1"), run.episode_column("j2")
    received = run.episode_column("extrinsic")
    arm = REGISTRY.get(run.arm)
    if arm is not None and arm.reward == "none":
        received = np.zeros_like(received)
    total = np.abs(j1) + received
    share = np.full_like(total, np.nan)
    np.divide(received, total, out=share, where=total > 0)
    return {
        "j1": float(quiet_nan(np.nanmean, j1)),
        "j2": float(quiet_nan(np.nanmean, j2)),
        "vlm_reward": float(quiet_nan(np.nanmean, received)),
        "vlm_share": float(quiet_nan(np.nanmean, share)),
    }


def seed_row(run: RunLog, random_final: float) -> SeedFigures:
    """One run's comparison figures; ``random_final``: the random arm's final metric, same seed.

    Also its final image-shuffled control and grounded gain (final metric - control; NaN in
    runs that did not score the control), its final test metric per spatial term
    (``term/<key>``) and by number of terms (``n_terms/<n>``), and its reward balance
    (``REWARD_KEYS``).
    """
    control = float(run.column("test/control")[-1])
    return SeedFigures(
        seed=run.seed,
        final_metric=float(run.test[-1]),
        final_control=control,
        grounded_gain=float(run.test[-1]) - control,
        initial_metric=float(run.test[0]),
        auc=normalised_auc(run.generated, run.test),
        samples_to_random_final=samples_to_reach(run.generated, run.test, random_final),
        generated_samples=float(run.generated[-1]),
        valid_rate=float(run.summary["valid_rate"]),
        iterations=float(run.summary["iterations"]),
        hardness=fine_tuning_mean(run, "hardness"),
        error_rate=fine_tuning_mean(run, "error_rate"),
        left_right_share=left_right_share(run),
        stopped=run.summary.get("stopped"),
        terms={k: float(run.column(f"test/term/{k}")[-1]) for k in TERM_KEYS},
        n_terms={str(n): float(run.column(f"test/n_terms/{n}")[-1]) for n in N_TERMS},
        **reward_balance(run),
    )


def paired_difference(
    per_arm: Mapping[str, ArmFigures], a: str, b: str, key: str, margin: float | None = None
) -> Difference:
    """``a`` minus ``b`` in ``key``, per seed both ran: mean, t interval, n, the differences,
    their standard deviation and minimum detectable difference (``detectable_difference``).

    In the final metric and the area under the curve (``METRIC_KEYS``) also the probability of
    improvement of ``a`` over ``b`` over all their runs with its interval, and, given
    ``margin``, the paired seeds that would detect a difference of that margin
    (``seeds_for_margin``); in those and the final metric per term or number of terms (the
    model's metric), given ``margin``, the equivalence test's p (``equivalence_p``) and that
    margin.
    """
    value = {arm: {x.seed: x.value(key) for x in per_arm[arm].seeds} for arm in (a, b)}
    seeds = sorted(value[a].keys() & value[b].keys())
    diffs = [value[a][s] - value[b][s] for s in seeds]
    finite = _finite(diffs)
    estimate = summarise(diffs)
    extra: dict[str, Any] = {}
    if key in METRIC_KEYS:
        extra |= probability_of_improvement(list(value[a].values()), list(value[b].values()))
    if margin is not None and (key in METRIC_KEYS or key.startswith(("term/", "n_terms/"))):
        extra["equivalence_p"] = equivalence_p(
            [value[a][s] for s in seeds], [value[b][s] for s in seeds], margin
        )
        extra["equivalence_margin"] = margin
    if margin is not None and key in METRIC_KEYS:
        extra["seeds_for_margin"] = seeds_for_margin(diffs, margin)
    return Difference(
        mean=estimate.mean,
        ci_low=estimate.ci_low,
        ci_high=estimate.ci_high,
        n=estimate.n,
        sd=float(finite.std(ddof=1)) if finite.size > 1 else np.nan,
        mde=detectable_difference(diffs),
        **extra,
        per_seed=diffs,
    )


def _by(per_arm: Mapping[str, ArmFigures], keys: Sequence[str], margin: float | None) -> ByTerms:
    """Per arm the mean over seeds of each seed-row ``keys``, and sac - random in each."""
    return ByTerms(
        arms={
            arm: {key.split("/", 1)[1]: summarise([x.value(key) for x in a.seeds]) for key in keys}
            for arm, a in per_arm.items()
        },
        sac_minus_random={
            key.split("/", 1)[1]: paired_difference(per_arm, "sac", "random", key, margin)
            for key in keys
        },
    )


def compare(runs: Mapping[str, list[RunLog]], margin: float | None = None) -> Comparison:
    """Per-seed values, means and t intervals per arm, and the arms' paired differences.

    ``margin``: the equivalence margin delta in the model's metric (the profile's ``margin``);
    None: no equivalence test. ``difference`` is ``differences["sac - random"]`` (the paper's
    comparison); ``by_term`` and ``by_n_terms``: the final test metric per spatial term and by
    number of terms, per arm and as sac - random. A difference whose arms share no seed has
    n = 0 and NaN throughout (not measured).
    """
    runs = all_arms(runs)
    random_final = {r.seed: float(r.test[-1]) for r in runs["random"]}
    per_arm: dict[str, ArmFigures] = {}
    for arm in ARMS:
        rows = [seed_row(r, random_final.get(r.seed, np.nan)) for r in runs[arm]]
        stats = {key: summarise([x.value(key) for x in rows]) for key in STAT_KEYS}
        per_arm[arm] = ArmFigures(seeds=rows, stats=stats, n_seeds=len(rows))
    differences = {
        name: {key: paired_difference(per_arm, a, b, key, margin) for key in DIFF_KEYS}
        for name, (a, b) in DIFFERENCES.items()
    }
    paired = {
        name: sorted({r.seed for r in runs[a]} & {r.seed for r in runs[b]})
        for name, (a, b) in DIFFERENCES.items()
    }
    return Comparison(
        interval=INTERVAL,
        min_seeds_for_verdict=MIN_SEEDS_FOR_VERDICT,
        margin=margin,
        equivalence=EQUIVALENCE,
        detectable_difference=(
            f"paired t test, power {POWER:.0%}, two-sided alpha {POWER_ALPHA}: statsmodels "
            "TTestPower().solve_power(nobs=n) times the paired standard deviation"
        ),
        probability_of_improvement=(
            "rliable's P(X > Y) + 0.5 P(X = Y) over every run of one arm against every run of "
            f"the other; {CONFIDENCE:.0%} stratified-bootstrap percentile interval, "
            f"{BOOTSTRAP_REPS} resamples, seed {BOOTSTRAP_SEED}"
        ),
        arms=per_arm,
        difference=differences["sac - random"],
        differences=differences,
        paired_seeds=paired["sac - random"],
        paired=paired,
        by_term=_by(per_arm, [f"term/{k}" for k in TERM_KEYS], margin),
        by_n_terms=_by(per_arm, [f"n_terms/{n}" for n in N_TERMS], margin),
        # only where the runs scored external sets: a report without them reads as before
        external=compare_external(runs) or None,
    )


def external_sets(runs: Mapping[str, list[RunLog]]) -> list[str]:
    """The external sets the runs scored (their ``external/<name>/metric`` columns), sorted."""
    names = {
        key.split("/")[1]
        for logs in runs.values()
        for r in logs
        for row in r.iterations[:1]
        for key in row
        if key.startswith("external/") and key.endswith("/metric")
    }
    return sorted(names)


def compare_external(runs: Mapping[str, list[RunLog]]) -> dict[str, dict[str, ExternalArm]]:
    """Per external set and arm: each seed's score of the base model (``initial``), at the end
    (``final``), their difference (``gain``) and the same run's gain on the synthetic test set
    (``test_gain``), each summarised over seeds (mean, t interval, n). {} without sets."""
    runs = all_arms(runs)
    out: dict[str, dict[str, ExternalArm]] = {}
    for name in external_sets(runs):
        per_arm: dict[str, ExternalArm] = {}
        for arm in ARMS:
            rows = []
            for r in runs[arm]:
                scores = r.column(f"external/{name}/metric")
                rows.append(
                    ExternalSeed(
                        seed=r.seed,
                        initial=float(scores[0]),
                        final=float(scores[-1]),
                        gain=float(scores[-1] - scores[0]),
                        test_gain=float(r.test[-1] - r.test[0]),
                    )
                )
            stats = {k: summarise([getattr(x, k) for x in rows]) for k in EXTERNAL_KEYS}
            per_arm[arm] = ExternalArm(seeds=rows, stats=stats, n_seeds=len(rows))
        out[name] = per_arm
    return out


def json_ready(value: Any) -> Any:
    """``value`` as strict JSON allows: non-finite floats become None (null), numpy scalars
    Python ones, tuples lists, records (``comparison.json``'s) their JSON; recursively."""
    if isinstance(value, JsonRecord):
        value = value.to_json()
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


def per_iteration(logs: Sequence[RunLog], key: str, start: int = 1) -> np.ndarray:
    """Seeds x iterations ``start``.. of ``key`` (by default row 0, the base model, left out);
    NaN past a run's end."""
    values = [r.column(key)[start:] for r in logs]
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
    stat: Estimate | None, digits: int = 3, signed: bool = False, percent: bool = False
) -> str:
    """``mean [ci_low, ci_high]``; "n/a" when not measured; a lone seed's mean says so."""
    scale, unit = (100.0, "%") if percent else (1.0, "")
    spec = f"{'+' if signed else ''}.{digits}f"

    def f(value: float) -> str:
        return f"{as_number(value) * scale:{spec}}{unit}"

    if stat is None or not np.isfinite(as_number(stat.mean)):
        return "n/a"
    if not np.isfinite(as_number(stat.ci_low)):
        return f"{f(stat.mean)} (n = {stat.n}: no interval)"
    return f"{f(stat.mean)} [{f(stat.ci_low)}, {f(stat.ci_high)}]"
