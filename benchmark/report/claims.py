"""The verdicts of the comparison, each stating its n: the paper's qualitative claims beside what
the runs found, the decomposition of the headline difference into the effects the ablation arms
isolate, sac - random per spatial term and by number of terms, and the caveats of a comparison.

A paired comparison gets one of four verdicts: "supported" (every interval above 0),
"contradicted" (every one below 0), "equivalent within ±delta" (every difference's two one-sided
tests reject a difference of delta or more: its 90% interval inside ±delta, delta the profile's
``margin``) or "inconclusive"; all but the last need at least ``MIN_SEEDS_FOR_VERDICT`` paired
seeds. Without a seed that ran both arms it is "not measured"."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from benchmark.captions import TERMS, term_key
from benchmark.comparison import (
    ByTerms,
    Comparison,
    DecompositionRow,
    Difference,
    Estimate,
    TermVerdicts,
)
from benchmark.config import ARMS
from benchmark.report.runs import RunLog, all_arms
from benchmark.report.stats import (
    DECOMPOSITION,
    DIFFERENCES,
    EQUIVALENCE_ALPHA,
    MIN_SEEDS_FOR_VERDICT,
    as_number,
    format_stat,
    quiet_nan,
    summarise,
)


def caveats(comparison: Comparison) -> list[str]:
    """Plain-words warnings about what the comparison figures cannot show in this run."""
    notes = []
    arms = comparison.arms
    below = [
        arm
        for arm in ARMS
        if arm in arms
        and arms[arm].seeds
        and arms[arm].stats["final_metric"].mean < arms[arm].stats["initial_metric"].mean
    ]
    if below:
        notes.append(
            f"{' and '.join(below)} ended below the base model's test metric on average: "
            "fine-tuning lost ground in this run, so a lead of one arm is a smaller loss, "
            "not a gain."
        )
    at_start = [x.seed for x in arms["random"].seeds if x.final_metric <= x.initial_metric]
    if at_start:
        notes.append(
            f"Random's final metric is at or below its start for seed(s) {at_start}: there "
            '"generated samples to reach random\'s final metric" is 0 for every arm and '
            "says nothing."
        )
    return notes


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


def _side(d: Estimate) -> str:
    if d.ci_low > 0:
        return "above 0"
    if d.ci_high < 0:
        return "below 0"
    return "includes 0"


def _equivalent(d: Difference) -> bool | None:
    """Whether the difference is equivalent within its margin (None: not tested)."""
    if d.equivalence_margin is None:
        return None
    return bool(as_number(d.equivalence_p) < EQUIVALENCE_ALPHA)


def interval_verdict(differences: Mapping[str, Difference]) -> str:
    """Supported if every paired difference's 95% interval lies above 0, contradicted if every
    one lies below; equivalent within ±delta if every one was tested against its margin delta
    and passed (``equivalence_p`` < 0.05: its 90% interval inside ±delta); otherwise, or with
    fewer than ``MIN_SEEDS_FOR_VERDICT`` paired seeds, inconclusive. The verdict states n (the
    fewest paired seeds among the differences)."""
    n = min(int(d.n) for d in differences.values())
    too_few = gate(n, "paired")
    if too_few:
        return too_few
    sides = {name: _side(d) for name, d in differences.items()}
    if all(s == "above 0" for s in sides.values()):
        return _verdict("supported", n, "paired")
    if all(s == "below 0" for s in sides.values()):
        return _verdict("contradicted", n, "paired")
    equivalent = {name: _equivalent(d) for name, d in differences.items()}
    margins = {as_number(d.equivalence_margin) for d in differences.values()}
    if all(equivalent.values()) and len(margins) == 1:
        return _verdict(f"equivalent within ±{margins.pop():g}", n, "paired")
    where = ", ".join(
        f"{name} interval {side}"
        + (
            ""
            if equivalent[name] is None
            else f" ({'' if equivalent[name] else 'not '}within ±"
            f"{as_number(differences[name].equivalence_margin):g})"
        )
        for name, side in sides.items()
    )
    return _verdict("inconclusive", n, "paired", where)


def descriptive_verdict(n: int, unit: str, verdict: str) -> str:
    """``verdict`` (from one arm's own runs) with its n, given only from enough seeds."""
    return gate(n, unit) or _verdict(verdict, n, unit)


def _signed(stat: Estimate, digits: int = 3, percent: bool = False) -> str:
    """A difference as "+0.022 [+0.018, +0.027]"; "n/a" when not measured."""
    return format_stat(stat, digits, signed=True, percent=percent)


def _claim_efficiency(comparison: Comparison) -> tuple[str, str, str]:
    diff = comparison.differences["sac - random"]
    auc, fin = diff["auc"], diff["final_metric"]
    return (
        "RLS3 (SAC) reaches a higher test metric than random placement for the same "
        "generated samples (Fig. 5)",
        f"SAC - random, area under the efficiency curve / budget: {_signed(auc)}; "
        f"final metric: {_signed(fin)}",
        interval_verdict({"AUC": auc, "final-metric": fin}),
    )


def _claim_iterations(comparison: Comparison) -> tuple[str, str, str]:
    arms = comparison.arms
    sac = {x.seed: x.iterations for x in arms["sac"].seeds}
    rnd = {x.seed: x.iterations for x in arms["random"].seeds}
    seeds = sorted(sac.keys() & rnd.keys())
    change = summarise([rnd[s] / sac[s] - 1 if sac[s] else np.nan for s in seeds])
    n = change.n
    verdict = gate(n, "paired")
    if verdict is None:
        side = _side(change)
        if side == "includes 0":
            verdict = _verdict("inconclusive", n, "paired", "the interval includes 0")
        elif side == "above 0":
            verdict = _verdict("contradicted", n, "paired")
        elif change.mean <= -0.2:
            verdict = _verdict("supported", n, "paired")
        else:
            verdict = _verdict("partly", n, "paired", "fewer, not ~40%")
    return (
        "The random arm completes about 40% fewer iterations for the same budget "
        "(more invalid samples)",
        f"iterations: SAC {format_stat(arms['sac'].stats['iterations'], 1)}, random "
        f"{format_stat(arms['random'].stats['iterations'], 1)}; per seed random / SAC - 1: "
        f"{_signed(change, 0, percent=True)}",
        verdict,
    )


def _claim_valid_rate(comparison: Comparison) -> tuple[str, str, str]:
    arms, diff = comparison.arms, comparison.differences["sac - random"]["valid_rate"]
    return (
        "The RL agent yields more valid samples than random placement",
        f"valid rate: SAC {format_stat(arms['sac'].stats['valid_rate'], 1, percent=True)}, "
        f"random {format_stat(arms['random'].stats['valid_rate'], 1, percent=True)}; "
        "SAC - random "
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
            before = quiet_nan(np.nanmean, [r.column(key)[0] for r in logs])
            after = quiet_nan(np.nanmean, [r.column(key)[-1] for r in logs])
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


def _claim_left_right(comparison: Comparison) -> tuple[str, str, str]:
    arms, diff = comparison.arms, comparison.differences["sac - random"]["left_right_share"]
    return (
        "SAC's fine-tuning data favour 'left'/'right' more than random's (Fig. 6 counts)",
        "share of left/right among the batches' terms: SAC "
        f"{format_stat(arms['sac'].stats['left_right_share'], 1, percent=True)}, random "
        f"{format_stat(arms['random'].stats['left_right_share'], 1, percent=True)}; "
        "SAC - random "
        f"{_signed(diff, 1, percent=True)}",
        interval_verdict({"share": diff}),
    )


def _claim_n_terms(runs: dict[str, list[RunLog]]) -> tuple[str, str, str]:
    sac = runs["sac"]
    finals = {
        n: float(quiet_nan(np.nanmean, [r.column(f"test/n_terms/{n}")[-1] for r in sac]))
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


def _claim_hardness(comparison: Comparison) -> tuple[str, str, str]:
    arms, diffs = comparison.arms, comparison.differences
    mean = {arm: format_stat(arms[arm].stats["hardness"]) for arm in ARMS if arms[arm].seeds}
    found = "mean hardness over iterations: " + ", ".join(f"{a} {v}" for a, v in mean.items())
    found += f"; SAC - random {_signed(diffs['sac - random']['hardness'])}"
    for name, (a, b) in DIFFERENCES.items():
        if b == "random" and a != "sac" and arms[a].seeds:
            found += f"; {name} {_signed(diffs[name]['hardness'])}"
    measured = any(np.isfinite(x.hardness) for x in arms["sac"].seeds)
    return (
        "The RL agent generates samples the VLM finds harder than random placement does",
        found,
        interval_verdict({"hardness": diffs["sac - random"]["hardness"]})
        if measured
        else _verdict("not measured", len(arms["sac"].seeds), "sac", "no hardness recorded"),
    )


def _claim_dense(comparison: Comparison) -> tuple[str, str, str]:
    diffs = comparison.differences
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


def _every_arm_above_zero(gain: Mapping[str, Estimate]) -> str:
    """The per-arm verdict on ``gain`` (arm -> its stat over seeds): supported if every arm's
    interval lies above 0, contradicted if one lies below (naming them), else inconclusive; n is
    the fewest seeds of an arm, and too few give no verdict (``gate``)."""
    n = min(int(g.n) for g in gain.values())
    too_few = gate(n, "per-arm")
    if too_few:
        return too_few
    sides = {arm: _side(g) for arm, g in gain.items()}
    below = [arm for arm, side in sides.items() if side == "below 0"]
    level = [arm for arm, side in sides.items() if side == "includes 0"]
    if below:
        return _verdict("contradicted", n, "per-arm", f"below 0: {', '.join(below)}")
    if level:
        return _verdict("inconclusive", n, "per-arm", f"includes 0: {', '.join(level)}")
    return _verdict("supported", n, "per-arm", "every interval above 0")


def _claim_grounded(comparison: Comparison) -> tuple[str, str, str]:
    """Every arm's final metric above its image-shuffled control (the gain needs the image)."""
    arms = comparison.arms
    present = [arm for arm in ARMS if arms[arm].seeds]
    gain = {arm: arms[arm].stats["grounded_gain"] for arm in present}
    found = "final metric - image-shuffled control: " + ", ".join(
        f"{arm} {format_stat(gain[arm], signed=True)}" for arm in present
    )
    claim = (
        "Every arm's gain is grounded (not in the paper): its final test metric is above its "
        "image-shuffled control, the same questions asked of other test images"
    )
    if min(int(gain[arm].n) for arm in present) == 0:
        return claim, found, _verdict("not measured", 0, "per-arm", "no control recorded")
    return claim, found, _every_arm_above_zero(gain)


def _claims_external(comparison: Comparison) -> list[tuple[str, str, str]]:
    """Per external set: every arm's gain there (final - base model) above 0."""
    out = []
    for name, per_arm in (comparison.external or {}).items():
        present = [arm for arm in ARMS if per_arm[arm].seeds]
        gain = {arm: per_arm[arm].stats["gain"] for arm in present}
        test = {arm: per_arm[arm].stats["test_gain"] for arm in present}
        found = (
            f"gain on {name} (final - base): "
            + ", ".join(f"{arm} {format_stat(gain[arm], signed=True)}" for arm in present)
            + "; on the test set: "
            + ", ".join(f"{arm} {format_stat(test[arm], signed=True)}" for arm in present)
        )
        claim = (
            f"Gains on the synthetic test set carry over to {name} (not in the paper: its "
            "sim2real question): every arm's score there ends above the base model's"
        )
        out.append((claim, found, _every_arm_above_zero(gain)))
    return out


def claims(runs: Mapping[str, list[RunLog]], comparison: Comparison) -> list[tuple[str, str, str]]:
    """The paper's qualitative claims, each with what this run measured and a verdict with n."""
    runs = all_arms(runs)
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
    out.append(_claim_grounded(comparison))
    out += _claims_external(comparison)
    return out


def pair_verdict(difference: Mapping[str, Difference]) -> str:
    """The verdict of one pair of arms from its final-metric and area-under-curve differences."""
    return interval_verdict({"AUC": difference["auc"], "final-metric": difference["final_metric"]})


def decomposition(comparison: Comparison) -> list[DecompositionRow]:
    """The headline difference taken apart, one row per effect (``DECOMPOSITION``): its paired
    difference in final metric and area under the curve / budget (with their intervals, minimum
    detectable differences and probabilities of improvement) and a verdict with n. A pair whose
    arms share no seed is "not measured"."""
    rows = []
    for effect, name in DECOMPOSITION:
        diff = comparison.differences[name]
        rows.append(
            DecompositionRow(
                effect=effect,
                difference=name,
                n=int(min(diff["final_metric"].n, diff["auc"].n)),
                verdict=pair_verdict(diff),
                final_metric=diff["final_metric"],
                auc=diff["auc"],
            )
        )
    return rows


def term_verdicts(comparison: Comparison) -> TermVerdicts:
    """The verdict of sac - random in the final test metric per spatial term (``by_term``) and by
    number of terms (``by_n_terms``); runs that recorded no such score: not measured."""
    paired = len(comparison.paired["sac - random"])

    def verdicts(block: ByTerms) -> dict[str, str]:
        return {
            key: interval_verdict({"final-metric": diff})
            if diff.n or not paired
            else _verdict("not measured", 0, "paired", "no such scores recorded")
            for key, diff in block.sac_minus_random.items()
        }

    return TermVerdicts(
        by_term=verdicts(comparison.by_term), by_n_terms=verdicts(comparison.by_n_terms)
    )
