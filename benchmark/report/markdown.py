"""REPORT.md, comparison.json, metrics.json and plots/*.csv of one model, and the index of the
reports of every model.

REPORT.md: the setting (with the equivalence margin delta and where it was set), the comparison
of the arms, every paired difference, the decomposition of the headline into the effects the
ablation arms isolate, the final test metric per spatial term and by number of terms, the reward
balance of each arm, the per-seed figures, the paper's claims beside this run, and the figures."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import layout
from benchmark.arms import REGISTRY
from benchmark.comparison import ByTerms, Claim, Comparison, Difference, Estimate
from benchmark.config import ARMS
from benchmark.families import family
from benchmark.fileio import atomic_write_csv, atomic_write_json, atomic_write_text
from benchmark.reference import fingerprint, format_fingerprint, machine, write_run_files
from benchmark.report.claims import caveats, claims, decomposition, term_verdicts
from benchmark.report.figures import (
    efficiency_grid,
    fig_efficiency,
    fig_grounded,
    fig_hardness,
    fig_loss,
    fig_n_terms,
    fig_term_distribution,
    fig_terms,
    fig_valid_rate,
    fig_validation,
    present_arms,
)
from benchmark.report.runs import RunLog, load_runs
from benchmark.report.stats import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    DIFFERENCES,
    INTERVAL,
    MAX_SEEDS,
    METRICS_KEY,
    MIN_SEEDS_FOR_VERDICT,
    as_number,
    compare,
    format_stat,
    json_ready,
    mean_curve,
    per_iteration,
    quiet_nan,
)

NULL_MEANS = (
    "In `comparison.json` and `metrics.json` a `null` means not measured: e.g. no paired "
    "random run for that seed, a metric the arm never reached, runs that did not record it, or "
    "a single seed (which gives no interval)."
)


def _stage_seconds(results: Path, model: str, runs: dict[str, list[RunLog]]) -> dict[str, float]:
    """Compute time recorded by the stages' own outputs (process start-up not included)."""
    seconds: dict[str, float] = {}
    base = layout.base_metrics(results, model)
    if base.is_file():
        seconds["base model"] = float(json.loads(base.read_text()).get("train_seconds", 0.0))
    agents = 0.0
    for r in runs["sac"]:
        pre = layout.agent(results, r.seed) / "pretrain.json"
        if pre.is_file():
            agents += float(json.loads(pre.read_text()).get("seconds", 0.0))
    seconds["SAC pre-training"] = agents
    for arm in present_arms(runs):
        seconds[f"{arm} runs"] = sum(float(r.summary.get("seconds", 0.0)) for r in runs[arm])
    return seconds


def _rounded(value: float, digits: int = 5) -> float | int | None:
    """``value`` rounded for metrics.json; counts stay ints, non-finite numbers None."""
    if isinstance(value, int | np.integer):
        return int(value)
    return round(float(value), digits) if np.isfinite(value) else None


def iteration_rows(
    runs: Mapping[str, list[RunLog]], key: str, name: str, start: int = 1
) -> list[dict[str, Any]]:
    """A DVC plot of ``key`` against iteration (``start``..): each arm's mean over seeds as
    ``<arm>_<name>`` (None: not recorded)."""
    means = {
        arm: quiet_nan(np.nanmean, per_iteration(runs[arm], key, start=start), 0)
        for arm in present_arms(runs)
    }
    length = max((m.size for m in means.values()), default=0)
    return [
        {
            "iteration": i + start,
            **{f"{arm}_{name}": _rounded(m[i]) if i < m.size else None for arm, m in means.items()},
        }
        for i in range(length)
    ]


def hardness_rows(runs: Mapping[str, list[RunLog]]) -> list[dict[str, Any]]:
    """The DVC plot of hardness: per iteration 1.., each arm's mean over seeds (None: none)."""
    return iteration_rows(runs, "hardness", "hardness")


def _plots(runs: dict[str, list[RunLog]], out: Path) -> None:
    """The DVC plots: mean efficiency curve, validation curve, fine-tuning loss (seed 0),
    hardness, grounded gain."""
    grid = efficiency_grid(runs)
    rows = [{"generated_samples": round(float(g), 1)} for g in grid]
    for arm in present_arms(runs):
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
    for arm in present_arms(runs):
        loss_rows += [
            {"arm": arm, "finetune_step": int(x["finetune_step"]), "loss": round(x["loss"], 5)}
            for x in runs[arm][0].losses
        ]
    atomic_write_csv(out / "finetune_loss.csv", loss_rows)
    for file, rows in (
        ("hardness.csv", hardness_rows(runs)),
        ("grounded_gain.csv", iteration_rows(runs, "test/grounded_gain", "grounded_gain", 0)),
    ):
        if rows:
            atomic_write_csv(out / file, rows)
        else:
            atomic_write_text(out / file, "iteration\n")


def _flat(stats: Mapping[str, Estimate]) -> dict[str, Any]:
    """``{key: estimate}`` as ``{key_part: value}`` for metrics.json (per-seed lists left out,
    numbers rounded)."""
    return {
        f"{key}_{part}": _rounded(value)
        for key, stat in stats.items()
        for part, value in stat.to_json().items()
        if part != "per_seed"
    }


def _dvc_metrics(model: str, comparison: Comparison) -> dict[str, Any]:
    """The comparison as a flat-ish JSON for ``dvc metrics show`` (None: not measured)."""
    metrics: dict[str, Any] = {
        "model": model,
        "interval": INTERVAL,
        "margin": comparison.margin,
        "margin_key": comparison.margin_key,
    }
    for arm in ARMS:
        a = comparison.arms[arm]
        metrics[arm] = {"n_seeds": a.n_seeds, **_flat(a.stats)}
    for name, differences in comparison.differences.items():
        metrics[METRICS_KEY[name]] = _flat(differences)
    for row in comparison.decomposition or []:
        block = metrics[METRICS_KEY[row.difference]]
        block.update(effect=row.effect, verdict=row.verdict, n_paired=row.n)
    for by in ("by_term", "by_n_terms"):
        terms: ByTerms = getattr(comparison, by)
        metrics[by] = {arm: _flat(terms.arms[arm]) for arm in ARMS}
        sac_random = _flat(terms.sac_minus_random)
        if comparison.term_verdicts is not None:
            for key, verdict in getattr(comparison.term_verdicts, by).items():
                sac_random[f"{key}_verdict"] = verdict
        metrics[by]["sac_minus_random"] = sac_random
    for name, per_arm in (comparison.external or {}).items():
        metrics[f"external_{name}"] = {
            arm: _flat(per_arm[arm].stats) for arm in ARMS if per_arm[arm].seeds
        }
    return metrics


def write_report(
    results: str | Path,
    model: str,
    out: str | Path,
    margin: float,
    profile: str | None = None,
    threads: int = 1,
) -> Path:
    """Read the runs of ``model``; write REPORT.md, figures/, plots/, comparison.json,
    metrics.json and run_files.json (this machine's fingerprint and the digests of the bench's
    files, ``benchmark.reference``) to ``out``.

    ``margin``: the equivalence margin delta in the model's metric, the params key
    ``profiles.<profile>.<model>.margin``; ``profile``: the params profile it was read from
    (default: the profile the sac runs recorded); ``threads``: torch's threads per run, the
    profile's ``threads``, for the fingerprint.
    """
    results, out = Path(results), Path(out)
    runs = load_runs(results, model)
    comparison = compare(runs, margin)
    profile = profile or str(runs["sac"][0].summary.get("profile", "<profile>"))
    comparison = replace(
        comparison,
        margin_key=f"profiles.{profile}.{model}.margin",
        decomposition=decomposition(comparison),
        term_verdicts=term_verdicts(comparison),
        claims=[
            Claim(claim=claim, found=found, verdict=verdict)
            for claim, found, verdict in claims(runs, comparison)
        ],
        fingerprint=fingerprint(threads),
    )
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
        "Grounded gain: test metric minus the image-shuffled control": fig_grounded(
            runs, model, fig / "fig_grounded.png"
        ),
        "Term distribution of the fine-tuning data": fig_term_distribution(
            runs, model, fig / "fig_term_distribution.png"
        ),
    }
    _plots(runs, out / "plots")
    atomic_write_json(out / "metrics.json", json_ready(_dvc_metrics(model, comparison)))
    atomic_write_json(out / "comparison.json", json_ready(comparison))
    write_run_files(results, model, out, comparison.fingerprint or {})
    text = _markdown(results, model, runs, comparison, figures, out)
    atomic_write_text(out / "REPORT.md", text)
    return out / "REPORT.md"


def _finetune_line(model: str, summary: dict[str, Any]) -> str:
    """K and the fine-tuning config as the runs recorded them; where they depart from the paper
    (a locked image tower, the whole language model trained), said so in bold."""
    if "finetune" not in summary:
        return "not recorded by these runs."
    unit = family(model).k_unit
    cfg = ", ".join(
        f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}" for k, v in summary["finetune"].items()
    )
    line = f"K = {summary['k']} {unit}; {cfg}."
    if summary["finetune"].get("lock_image"):
        line += (
            " **The image trunk is locked** (locked-image tuning, LiT: its features are computed"
            " once per fine-tuning round; the projection and the text tower train). The paper"
            " fine-tunes the whole CLIP (`lock_image: false`, the paper profile)."
        )
    if summary["finetune"].get("trainable") == "language_model":
        line += (
            " **The whole language model trains** (its token embeddings, attention, MLPs and"
            " norms; the vision tower and the projector stay frozen). The paper fine-tunes the"
            " attention projections only (`trainable: attention`, the paper profile)."
        )
    return line


def _base_line(results: Path, model: str) -> str:
    """Which weights the runs started from: the built-in model, or a recorded checkpoint."""
    path = layout.base_metrics(results, model)
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


def _seed_ranges(seeds: Sequence[int]) -> str:
    """Seeds in runs, e.g. "0-4, 7"."""
    runs: list[list[int]] = []
    for seed in sorted(seeds):
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def _setting(
    results: Path, model: str, runs: dict[str, list[RunLog]], comparison: Comparison
) -> list[str]:
    """The header: profile, arms and seeds, test metric, equivalence margin, fine-tuning,
    machine, date, compute time."""
    first = runs["sac"][0].summary
    n = {arm: comparison.arms[arm].n_seeds for arm in ARMS}
    seconds = _stage_seconds(results, model, runs)
    by_seeds: dict[str, list[str]] = {}
    for name, seeds in comparison.paired.items():
        if seeds:
            by_seeds.setdefault(_seed_ranges(seeds), []).append(name)
    paired = "; ".join(
        f"{seeds} ({'every measured difference' if len(by_seeds) == 1 else ', '.join(names)})"
        for seeds, names in by_seeds.items()
    )
    absent = [arm for arm in ARMS if not n[arm]]
    lines = [
        f"# RLS3 benchmark report: {model}",
        "",
        f"- Profile: `{first['profile']}`; seeds: "
        + ", ".join(f"{n[arm]} {arm}" for arm in ARMS if n[arm])
        + (f" ({', '.join(absent)}: no runs, left out of the tables and figures)" if absent else "")
        + f". Paired seeds: {paired}.",
        "- Arms: "
        + "; ".join(f"`{arm}`, {REGISTRY[arm].question}" for arm in ARMS if n[arm])
        + ".",
        f"- Test metric: {family(model).metric_name}, on the fixed test set (test environment, "
        f"content hash `{first['dataset_hashes']['test'][:12]}`).",
        f"- Equivalence margin: delta = {as_number(comparison.margin):g} in the test metric, "
        f"set by the params key `{comparison.margin_key}` (fixed in params.yaml, not estimated "
        "from these runs): two arms are equivalent within ±delta when the 90% interval of "
        "their paired difference lies inside ±delta.",
        f"- Hardness of a generated sample: {family(model).hardness_name}, under the VLM before "
        "that iteration's fine-tuning (higher: harder for the VLM); an iteration's is the mean "
        "over its complete episodes (T0 samples, evaluated as one group as for J2: a budget arm's "
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
        f"- Fingerprint (what the runs' bits depend on beyond their inputs): "
        f"{format_fingerprint(comparison.fingerprint or {})}. On the same fingerprint a bench "
        "repeats every run file byte for byte; on another, the bits differ and the "
        f"conclusions are what to compare (`rls3 bench --model {model} --check-reference` "
        "does either; `run_files.json` holds the files' digests).",
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
    ("final image-shuffled control", "final_control", 3, True),
    ("**grounded gain**: final metric - control", "grounded_gain", 3, True),
    ("area under the efficiency curve / budget", "auc", 3, True),
    ("generated samples to reach random's final metric", "samples_to_random_final", 0, False),
    ("hardness of the generated samples", "hardness", 3, True),
    ("VLM error rate on the generated samples", "error_rate", 3, True),
    ("valid rate", "valid_rate", 3, True),
    ("iterations", "iterations", 1, True),
)
# the differences beside the arms in the comparison table (all of them: the next table)
HEADLINE_DIFFERENCES = ("sac - random", "sac-dense - random")


def _present(comparison: Comparison) -> list[str]:
    """The arms with runs, in order."""
    return [arm for arm in ARMS if comparison.arms[arm].seeds]


def _measured(comparison: Comparison, names: Sequence[str] = tuple(DIFFERENCES)) -> list[str]:
    """The differences of ``names`` whose two arms both have runs."""
    present = _present(comparison)
    return [name for name in names if all(arm in present for arm in DIFFERENCES[name])]


def _comparison_table(comparison: Comparison) -> list[str]:
    """Means with intervals per arm that has runs, and the headline paired differences."""
    arms = comparison.arms
    present = _present(comparison)
    shown = _measured(comparison, HEADLINE_DIFFERENCES)
    lines = [
        f"Mean over seeds with a {CONFIDENCE:.0%} confidence interval in brackets: Student t, "
        "mean ± t_{0.975, n-1} · sd / √n over the n seeds (n - 1 degrees of freedom); a single "
        "seed gives no interval. Differences are paired: per seed, then over the seeds both arms "
        "ran. A comparison gets a verdict only from at least "
        f"{MIN_SEEDS_FOR_VERDICT} paired seeds: supported or contradicted when its interval "
        "excludes 0, equivalent within ±delta when its 90% interval lies inside ±delta. "
        + NULL_MEANS,
        "",
        "| figure | " + " | ".join(present + shown) + " |",
        "| --- " * (1 + len(present) + len(shown)) + "|",
    ]
    for label, key, digits, differ in TABLE_ROWS:
        cells = [format_stat(arms[arm].stats[key], digits) for arm in present]
        cells += [
            format_stat(comparison.differences[name][key], digits, signed=True) if differ else ""
            for name in shown
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _differences_table(comparison: Comparison) -> list[str]:
    """Every paired difference whose arms have runs, in every figure that has one."""
    shown = _measured(comparison)
    missing = [name for name in DIFFERENCES if name not in shown]
    lines = [
        "Each column: per seed the first arm minus the second, then the mean over the seeds "
        f"both ran with its {CONFIDENCE:.0%} Student-t interval; the minimum detectable "
        "difference and the probability of improvement as in the next section."
        + (
            " Paired seeds for an MDE of ±delta: how many paired seeds the comparison would "
            "need for its minimum detectable difference to be the margin delta, if the sd of "
            "its paired differences stayed what these seeds show (the smallest n whose MDE is "
            "at most delta)."
            if comparison.margin is not None
            else ""
        )
        + (f" Not measured (an arm without runs): {', '.join(missing)}." if missing else ""),
        "",
        "| figure | " + " | ".join(shown) + " |",
        "| --- " * (1 + len(shown)) + "|",
    ]
    for label, key, digits, differ in TABLE_ROWS:
        if differ:
            cells = [
                format_stat(comparison.differences[name][key], digits, signed=True)
                for name in shown
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for key, label in (("final_metric", "final metric"), ("auc", "AUC / budget")):
        diffs = [comparison.differences[name][key] for name in shown]
        lines.append(
            f"| minimum detectable difference, {label} | "
            + " | ".join(_number(d.mde) for d in diffs)
            + " |"
        )
        lines.append(
            f"| probability of improvement, {label} | " + " | ".join(_poi(d) for d in diffs) + " |"
        )
        if comparison.margin is not None:
            lines.append(
                f"| paired seeds for an MDE of ±{comparison.margin:g}, {label} | "
                + " | ".join(_seeds(d.seeds_for_margin) for d in diffs)
                + " |"
            )
    lines.append(
        "| paired seeds (n) | "
        + " | ".join(str(len(comparison.paired[name])) for name in shown)
        + " |"
    )
    return lines


def _number(value: Any, digits: int = 3) -> str:
    """A plain number, or "n/a"."""
    x = as_number(value)
    return f"{x:.{digits}f}" if np.isfinite(x) else "n/a"


def _seeds(value: Any) -> str:
    """A count of seeds, "more than" the search's limit, or "n/a"."""
    x = as_number(value)
    if np.isnan(x):
        return "n/a"
    return f"over {MAX_SEEDS:,}" if np.isinf(x) else f"{x:.0f}"


def _poi(stat: Difference) -> str:
    """A probability of improvement with its bootstrap interval ("n/a": not computed)."""
    if stat.poi is None:
        return "n/a"
    runs = min(stat.poi_runs_x or 0, stat.poi_runs_y or 0)
    low, high = as_number(stat.poi_ci_low), as_number(stat.poi_ci_high)
    return format_stat(Estimate(mean=stat.poi, ci_low=low, ci_high=high, n=runs), 2)


def _decomposition_table(comparison: Comparison) -> list[str]:
    """One row per effect: final-metric and AUC differences, verdict, MDE and PoI, and given a
    margin the seeds for an MDE of that margin."""
    lines = [
        "What each ablation arm isolates, as a paired difference (per seed, then the mean over "
        f"the seeds both arms ran, {CONFIDENCE:.0%} Student-t interval). The verdict weighs both "
        "figures together. MDE: the minimum detectable difference, the smallest true difference "
        "a paired t test over these n seeds would find with 80% power at two-sided alpha 0.05, "
        "given the observed standard deviation of the paired differences (statsmodels' "
        "TTestPower times that sd); a true effect smaller than it could well go unseen. PoI: "
        "rliable's probability of improvement, P(X > Y) + 0.5 P(X = Y), the chance that a run "
        "of the first arm ends above a run of the second; it compares every run of one arm with "
        "every run of the other (all pairs, not only the paired seeds), 0.5 meaning no "
        f"tendency, with a {CONFIDENCE:.0%} stratified-bootstrap interval (each arm's runs "
        f"resampled independently, {BOOTSTRAP_REPS} times, seed {BOOTSTRAP_SEED})."
        + (
            " Seeds for MDE ±delta: the paired seeds at which the MDE would fall to the margin "
            f"delta = {comparison.margin:g}, if the paired sd stayed what these seeds show."
            if comparison.margin is not None
            else ""
        ),
        "",
    ]
    header = ["effect", "difference", "final metric", "AUC / budget", "verdict"]
    header += ["MDE final / AUC", "PoI final", "PoI AUC"]
    if comparison.margin is not None:
        header.append("seeds for MDE ±delta, final / AUC")
    lines += ["| " + " | ".join(header) + " |", "| --- " * len(header) + "|"]
    for row in comparison.decomposition or []:
        fin, auc = row.final_metric, row.auc
        seeds = (
            f" {_seeds(fin.seeds_for_margin)} / {_seeds(auc.seeds_for_margin)} |"
            if comparison.margin is not None
            else ""
        )
        lines.append(
            f"| {row.effect} | {row.difference} | {format_stat(fin, signed=True)} | "
            f"{format_stat(auc, signed=True)} | {row.verdict} | "
            f"{_number(fin.mde)} / {_number(auc.mde)} | {_poi(fin)} | "
            f"{_poi(auc)} |" + seeds
        )
    return lines


def _terms_table(comparison: Comparison, by: str) -> list[str]:
    """The final test metric per spatial term (``by_term``) or by number of terms, per arm, and
    sac - random with its paired interval and verdict."""
    present = _present(comparison)
    block: ByTerms = getattr(comparison, by)
    verdicts = getattr(comparison.term_verdicts, by) if comparison.term_verdicts else {}
    first = "spatial term" if by == "by_term" else "number of terms"
    lines = [
        f"| {first} | " + " | ".join(present) + " | sac - random | verdict |",
        "| --- " * (3 + len(present)) + "|",
    ]
    for key in block.sac_minus_random:
        label = key.replace("_", " ") if by == "by_term" else f"{key} term{'s' * (key != '1')}"
        cells = [format_stat(block.arms[arm][key]) for arm in present]
        diff = format_stat(block.sac_minus_random[key], signed=True)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {diff} | {verdicts[key]} |")
    return lines


def _external_tables(comparison: Comparison) -> list[str]:
    """Per external set: each arm's score of the base model, its final score and the gain, beside
    its final metric and gain on the synthetic test set (mean over seeds, interval)."""
    lines: list[str] = []
    for name, per_arm in (comparison.external or {}).items():
        lines += [
            f"**{name}**",
            "",
            "| arm | seeds | base model | final | gain (final - base) | test set: final | "
            "test set: gain |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for arm in ARMS:
            if not per_arm[arm].seeds:
                continue
            stats = per_arm[arm].stats
            lines.append(
                f"| {arm} | {per_arm[arm].n_seeds} | {format_stat(stats['initial'])} | "
                f"{format_stat(stats['final'])} | {format_stat(stats['gain'], signed=True)} | "
                f"{format_stat(comparison.arms[arm].stats['final_metric'])} | "
                f"{format_stat(stats['test_gain'], signed=True)} |"
            )
        lines.append("")
    return lines


def _reward_table(comparison: Comparison) -> list[str]:
    """Per arm: J1, J2, the VLM reward received and the VLM's share of the return."""
    arms = comparison.arms
    lines = [
        "Per episode, then the mean over episodes of each seed, then over seeds (Student-t "
        f"interval, {CONFIDENCE:.0%}). J1: the agent's feasibility return (the sum of its +1/-1 "
        "rewards); J2: the VLM's J2 over the episode's samples (eq. 3), computed for every arm; "
        "beta * J2 received: what the agent got as the VLM's reward (summed over the steps "
        "for sac-dense; 0 for an arm whose reward is none, whatever the run recorded); the VLM's "
        "share: the mean over episodes of received / (|J1| + received).",
        "",
        "| arm | VLM reward | J1 per episode | J2 per episode | beta * J2 received per episode | "
        "VLM's share of the return |",
        "| --- " * 6 + "|",
    ]
    for arm in _present(comparison):
        stats = arms[arm].stats
        lines.append(
            f"| {arm} | {REGISTRY[arm].reward} | {format_stat(stats['j1'], 1)} | "
            f"{format_stat(stats['j2'], 2)} | {format_stat(stats['vlm_reward'], 1)} | "
            f"{format_stat(stats['vlm_share'], 1, percent=True)} |"
        )
    return lines


def _per_seed_table(comparison: Comparison) -> list[str]:
    def value(x: float, spec: str) -> str:
        return "n/a" if not np.isfinite(x) else f"{x:{spec}}"

    lines = [
        "| arm | seed | before | final | AUC/budget | samples to random's final | generated | "
        "valid rate | iterations | hardness | error rate | stopped |",
        "| --- " * 12 + "|",
    ]
    for arm in ARMS:
        for x in comparison.arms[arm].seeds:
            reach = value(x.samples_to_random_final, ".0f").replace("n/a", "never")
            lines.append(
                f"| {arm} | {x.seed} | {x.initial_metric:.3f} | {x.final_metric:.3f} | "
                f"{x.auc:.3f} | {reach} | {x.generated_samples:.0f} | "
                f"{x.valid_rate:.1%} | {x.iterations:.0f} | {value(x.hardness, '.3f')} | "
                f"{value(x.error_rate, '.3f')} | {x.stopped} |"
            )
    return lines


def _markdown(
    results: Path,
    model: str,
    runs: dict[str, list[RunLog]],
    comparison: Comparison,
    figures: dict[str, Path],
    out: Path,
) -> str:
    lines = _setting(results, model, runs, comparison)
    lines += ["", "## Comparison of the arms", "", *_comparison_table(comparison)]
    for note in caveats(comparison):
        lines += ["", f"**Note:** {note}"]
    lines += ["", "### Every paired difference", "", *_differences_table(comparison)]
    lines += [
        "",
        "## Where the headline difference comes from",
        "",
        *_decomposition_table(comparison),
        "",
        "## Per spatial term and by number of terms",
        "",
        f"The final test metric (mean over seeds, {CONFIDENCE:.0%} Student-t interval), and sac "
        "- random per seed with its paired interval and verdict (equivalence within the same "
        "±delta).",
        "",
        *_terms_table(comparison, "by_term"),
        "",
        *_terms_table(comparison, "by_n_terms"),
        "",
        "## Reward balance",
        "",
        *_reward_table(comparison),
    ]
    if comparison.external:
        lines += [
            "",
            "## External sets",
            "",
            "Each external set of `datasets.external` (datasets/README.md), scored with the "
            "model's metric at every test evaluation of every run (mean over seeds, "
            f"{CONFIDENCE:.0%} Student-t interval): does what the arms gained on the rendered "
            "test set carry over to these images?",
            "",
            *_external_tables(comparison),
        ]
    lines += ["", "## Per seed", "", *_per_seed_table(comparison)]
    lines += [
        "",
        "## The paper's claims beside this run",
        "",
        f"A verdict needs at least {MIN_SEEDS_FOR_VERDICT} seeds (paired seeds where arms are "
        "compared) and, for a comparison, an interval that excludes 0 (supported or "
        "contradicted) or a 90% interval inside ±delta (equivalent); n is stated with each.",
        "",
        "| claim (RLS3, ICCPS 2025) | found here | verdict |",
        "| --- | --- | --- |",
    ]
    for claim, found, verdict in ((c.claim, c.found, c.verdict) for c in comparison.claims or []):
        lines.append(f"| {claim} | {found} | {verdict} |")
    lines += ["", "## Figures", ""]
    for title, path in figures.items():
        lines += [f"### {title}", "", f"![{title}]({path.relative_to(out).as_posix()})", ""]
    budget = [arm for arm in ARMS if REGISTRY[arm].budget == "sac" and runs[arm]]
    lines += [
        "## How to read and regenerate",
        "",
        "- Every number above comes from the run files under `results/runs/` (also in MLflow: "
        "`make ui`). `dvc repro` regenerates them; `dvc metrics show` and `dvc plots show` give "
        "the same figures.",
        f"- Budgets: the {', '.join(budget) or 'other'} arms' budget is the sac run's generated "
        "samples (same seed); x axes count generated samples (environment steps, valid or not).",
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
        f"| model | seeds ({' / '.join(ARMS)}) | "
        + " | ".join(f"{arm} final" for arm in ARMS)
        + " | AUC/budget, sac - random | report |",
        "| --- " * (len(ARMS) + 4) + "|",
    ]
    for model in models:
        comparison = Comparison.from_json(
            json.loads((report_dir / model / "comparison.json").read_text())
        )
        arms, diff = comparison.arms, comparison.difference
        n = " / ".join(str(arms[arm].n_seeds if arm in arms else 0) for arm in ARMS)
        finals = " | ".join(
            format_stat(arms[arm].stats["final_metric"] if arm in arms else None) for arm in ARMS
        )
        lines.append(
            f"| {model} | {n} | {finals} | {format_stat(diff['auc'], signed=True)} | "
            f"[{model}/REPORT.md]({model}/REPORT.md) |"
        )
    lines.append("")
    return atomic_write_text(report_dir / "REPORT.md", "\n".join(lines))
