"""REPORT.md, comparison.json, metrics.json and plots/*.csv of one model, and the index of the
reports of every model."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config import ARMS
from benchmark.fileio import atomic_write_csv, atomic_write_json, atomic_write_text
from benchmark.report.claims import caveats, claims
from benchmark.report.figures import (
    efficiency_grid,
    fig_efficiency,
    fig_hardness,
    fig_loss,
    fig_n_terms,
    fig_term_distribution,
    fig_terms,
    fig_valid_rate,
    fig_validation,
    present_arms,
)
from benchmark.report.runs import HARDNESS_NAME, METRIC_NAME, RunLog, load_runs
from benchmark.report.stats import (
    CONFIDENCE,
    DIFFERENCES,
    INTERVAL,
    METRICS_KEY,
    MIN_SEEDS_FOR_VERDICT,
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
    for arm in present_arms(runs):
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
        arm: quiet_nan(np.nanmean, per_iteration(runs[arm], "hardness"), 0)
        for arm in present_arms(runs)
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
        cells = [format_stat(arms[arm]["stats"][key], digits) for arm in present]
        cells += [
            format_stat(comparison["differences"][name][key], digits, signed=True) if differ else ""
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
            format_stat(arms.get(arm, {}).get("stats", {}).get("final_metric")) for arm in ARMS
        )
        lines.append(
            f"| {model} | {n} | {finals} | {format_stat(diff['auc'], signed=True)} | "
            f"[{model}/REPORT.md]({model}/REPORT.md) |"
        )
    lines.append("")
    return atomic_write_text(report_dir / "REPORT.md", "\n".join(lines))
