"""The benchmark report (SPEC section 8; the paper's section 6, Figs. 5-9), from the runs alone.

``write_report(results, model, out)`` reads every finished run of one model under
``results/runs/{model}/{arm}/seed{S}`` (the files ``rls3 run`` writes) and writes:

- ``REPORT.md``: the setting, the statistical comparison of the arms across seeds, valid rate and
  iterations per arm, the paper's qualitative claims beside what this run found, the figures;
- ``figures/*.png``: efficiency curves (Fig. 5), per-term scores before/after with cumulative term
  counts (Fig. 6), score by number of terms (Fig. 7), the concatenated fine-tuning loss (Fig. 8),
  validation with the early-stopping point (Fig. 9), valid rate and iterations per arm;
- ``metrics.json`` (DVC metrics) and ``plots/*.csv`` (DVC plots) with the same figures.

The comparison (per seed, then mean and a percentile-bootstrap confidence interval over seeds):
the final test metric; the area under the efficiency curve, divided by the budget (the mean test
metric over the generated samples, so 0..1 like the metric); and the generated samples each arm
needed to reach the random arm's final metric (same seed).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.captions import TERMS, term_key
from benchmark.config import ARMS
from benchmark.fileio import atomic_write_csv, atomic_write_json, atomic_write_text

BOOTSTRAP = 10_000  # resamples
CONFIDENCE = 0.95
METRIC_NAME = {"clip": "accuracy (caption above both negatives)", "paligemma": "rubric score 1-5"}
COLOURS = {"sac": "tab:blue", "random": "tab:orange"}


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


def load_runs(results: str | Path, model: str) -> dict[str, list[RunLog]]:
    """The finished runs of ``model`` by arm, sorted by seed (unused seed slots left out)."""
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
                    _read_csv(d / "metrics.csv"),
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


# ---------------------------------------------------------------------------- statistics
def bootstrap_ci(
    values: Sequence[float], seed: int = 0, n: int = BOOTSTRAP
) -> tuple[float, float, float]:
    """Mean of ``values`` and the percentile-bootstrap CI of the mean (NaNs dropped)."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n, x.size))].mean(axis=1)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(x.mean()), float(low), float(high)


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


def compare(runs: dict[str, list[RunLog]]) -> dict[str, Any]:
    """Per-seed values, means and bootstrap CIs of the three comparison figures, per arm."""
    random_final = {r.seed: float(r.test[-1]) for r in runs["random"]}
    per_arm: dict[str, Any] = {}
    for arm, logs in runs.items():
        rows: list[dict[str, Any]] = []
        for r in logs:
            target = random_final.get(r.seed, np.nan)
            rows.append(
                {
                    "seed": r.seed,
                    "final_metric": float(r.test[-1]),
                    "initial_metric": float(r.test[0]),
                    "auc": normalised_auc(r.generated, r.test),
                    "samples_to_random_final": samples_to_reach(r.generated, r.test, target),
                    "generated_samples": float(r.generated[-1]),
                    "valid_rate": float(r.summary["valid_rate"]),
                    "iterations": float(r.summary["iterations"]),
                    "stopped": r.summary.get("stopped"),
                }
            )
        stats = {}
        for key in ("final_metric", "initial_metric", "auc", "samples_to_random_final"):
            stats[key] = dict(
                zip(
                    ("mean", "ci_low", "ci_high"), bootstrap_ci([x[key] for x in rows]), strict=True
                )
            )
        for key in ("valid_rate", "iterations", "generated_samples"):
            stats[key] = {"mean": float(np.mean([x[key] for x in rows])) if rows else np.nan}
        per_arm[arm] = {"seeds": rows, "stats": stats, "n_seeds": len(rows)}
    paired = sorted(set(r.seed for r in runs["sac"]) & set(r.seed for r in runs["random"]))
    difference: dict[str, dict[str, Any]] = {}
    for key in ("final_metric", "auc"):
        by_seed = {arm: {x["seed"]: x[key] for x in per_arm[arm]["seeds"]} for arm in ARMS}
        diffs = [by_seed["sac"][s] - by_seed["random"][s] for s in paired]
        difference[key] = dict(zip(("mean", "ci_low", "ci_high"), bootstrap_ci(diffs), strict=True))
        difference[key]["per_seed"] = diffs
    return {"arms": per_arm, "difference": difference, "paired_seeds": paired}


def caveats(comparison: dict[str, Any]) -> list[str]:
    """Plain-words warnings about what the comparison figures cannot show in this run."""
    notes = []
    arms = comparison["arms"]
    below = [
        arm
        for arm in ARMS
        if arms[arm]["seeds"]
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
            '"generated samples to reach random\'s final metric" is 0 for both arms and '
            "says nothing."
        )
    return notes


def mean_curve(logs: Sequence[RunLog], key: str, grid: np.ndarray) -> np.ndarray:
    """Each seed's ``key`` against generated samples, interpolated on ``grid``; seeds x grid.

    Beyond a seed's last iteration its last value holds (its run has ended there).
    """
    return np.array([np.interp(grid, r.generated, r.column(key)) for r in logs])


# ---------------------------------------------------------------------------- claims
def claims(runs: dict[str, list[RunLog]], comparison: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The paper's qualitative claims, each with what this run measured and a verdict."""
    sac, rnd = runs["sac"], runs["random"]
    arms, diff = comparison["arms"], comparison["difference"]
    out: list[tuple[str, str, str]] = []

    n_paired = len(comparison["paired_seeds"])

    def ci_verdict(d: dict[str, float]) -> str:
        if not np.isfinite(d["mean"]):
            return "not measured (no paired random runs)"
        if n_paired < 2:
            return f"inconclusive ({n_paired} paired seed: no interval)"
        if d["ci_low"] > 0:
            return "supported"
        if d["ci_high"] < 0:
            return "contradicted"
        return "inconclusive (the CI spans 0)"

    auc, fin = diff["auc"], diff["final_metric"]
    out.append(
        (
            "RLS3 (SAC) reaches a higher test metric than random placement for the same "
            "generated samples (Fig. 5)",
            f"area under the efficiency curve, SAC - random: {auc['mean']:+.3f} "
            f"[{auc['ci_low']:+.3f}, {auc['ci_high']:+.3f}]; final metric: {fin['mean']:+.3f} "
            f"[{fin['ci_low']:+.3f}, {fin['ci_high']:+.3f}]",
            ci_verdict(auc),
        )
    )
    it_sac, it_rnd = (
        arms["sac"]["stats"]["iterations"]["mean"],
        arms["random"]["stats"]["iterations"]["mean"],
    )
    change = it_rnd / it_sac - 1 if it_sac else np.nan
    out.append(
        (
            "The random arm completes about 40% fewer iterations for the same budget "
            "(more invalid samples)",
            f"iterations: SAC {it_sac:.1f}, random {it_rnd:.1f} ({change:+.0%})",
            "supported"
            if change < -0.2
            else ("partly (fewer, not ~40%)" if change < 0 else "contradicted"),
        )
    )
    v_sac, v_rnd = (
        arms["sac"]["stats"]["valid_rate"]["mean"],
        arms["random"]["stats"]["valid_rate"]["mean"],
    )
    out.append(
        (
            "The RL agent yields more valid samples than random placement",
            f"valid rate: SAC {v_sac:.1%}, random {v_rnd:.1%}",
            "supported" if v_sac > v_rnd else "contradicted",
        )
    )
    for arm, logs in (("SAC", sac), ("random", rnd)):
        if not logs:
            continue
        worse = []
        for term in TERMS:
            key = f"test/term/{term_key(term)}"
            before = np.nanmean([r.column(key)[0] for r in logs])
            after = np.nanmean([r.column(key)[-1] for r in logs])
            if after < before - 0.01:
                worse.append(f"{term} ({before:.2f} -> {after:.2f})")
        claim = (
            "With SAC every spatial term ends equal or better (Fig. 6)"
            if arm == "SAC"
            else "With random placement some terms get worse (Fig. 6: left, above)"
        )
        found = "terms that got worse: " + (", ".join(worse) if worse else "none")
        ok = (not worse) if arm == "SAC" else bool(worse)
        out.append((claim, found, "supported" if ok else "contradicted"))

    def lr_share(logs: Sequence[RunLog]) -> float:
        counts = {
            t: np.mean([r.column(f"batch_terms_cum/{term_key(t)}")[-1] for r in logs])
            for t in TERMS
        }
        total = sum(counts.values())
        return (counts["left"] + counts["right"]) / total if total else np.nan

    if rnd:
        s_sac, s_rnd = lr_share(sac), lr_share(rnd)
        out.append(
            (
                "SAC's fine-tuning data favour 'left'/'right' more than random's (Fig. 6 counts)",
                f"share of left/right among the batch's terms: SAC {s_sac:.1%}, random {s_rnd:.1%}",
                "supported" if s_sac > s_rnd else "contradicted",
            )
        )
    finals = {n: np.nanmean([r.column(f"test/n_terms/{n}")[-1] for r in sac]) for n in (1, 2, 3)}
    out.append(
        (
            "Single-term prompts score higher than multi-term ones (Fig. 7)",
            f"final SAC test metric by number of terms: 1: {finals[1]:.3f}, 2: {finals[2]:.3f}, "
            f"3: {finals[3]:.3f}",
            "supported" if finals[1] > max(finals[2], finals[3]) else "contradicted",
        )
    )
    val = np.concatenate([r.column("val/metric") for r in sac])
    test = np.concatenate([r.test for r in sac])
    corr = (
        float(np.corrcoef(val, test)[0, 1])
        if val.size > 2 and np.std(val) and np.std(test)
        else np.nan
    )
    out.append(
        (
            "Validation mirrors test, so early stopping on it is sound (Fig. 9)",
            f"Pearson correlation of validation and test over SAC iterations: {corr:.2f}",
            "supported" if corr > 0.5 else ("inconclusive" if np.isnan(corr) else "contradicted"),
        )
    )
    stopped = sum(r.summary.get("stopped") == "early_stopping" for r in sac)
    out.append(
        (
            "SAC's gain stagnates and the run is stopped early",
            f"SAC runs stopped by early stopping: {stopped} of {len(sac)}",
            "supported" if stopped == len(sac) else ("partly" if stopped else "contradicted"),
        )
    )
    return out


# ---------------------------------------------------------------------------- figures
def _figure(path: Path, draw: Any, size: tuple[float, float] = (7.0, 4.2)) -> Path:
    """Draw on a fresh figure and save it as PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    draw(fig, ax)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


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
        brackets = "({:.0f})" if arm == "sac" else "[{:.0f}]"
        labels = [f"{lab}\n{brackets.format(c)}" for lab, c in zip(labels, counts, strict=True)]

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
            f"{model}: per-term score (mean ± std over seeds); "
            "cumulative term counts: (sac) [random]",
            fontsize=9,
        )
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)

    return _figure(path, draw, (8.0, 4.4))


def fig_n_terms(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 7: test metric by number of spatial terms against iteration."""

    def draw(fig: Any, ax: Any) -> None:
        for arm, style in (("sac", "-"), ("random", ":")):
            logs = runs[arm]
            if not logs:
                continue
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
        for i, arm in enumerate(ARMS):
            rows = comparison["arms"][arm]["seeds"]
            if not rows:
                continue
            rates = [x["valid_rate"] for x in rows]
            iters = [x["iterations"] for x in rows]
            ax.bar(i - 0.2, np.mean(rates), 0.4, color=COLOURS[arm], alpha=0.7)
            ax.plot([i - 0.2] * len(rates), rates, "k.", ms=5)
            ax2.bar(i + 0.2, np.mean(iters), 0.4, color=COLOURS[arm], alpha=0.35, hatch="//")
            ax2.plot([i + 0.2] * len(iters), iters, "k.", ms=5)
        ax.set_xticks(
            range(len(ARMS)), [f"{a}\n(left: valid rate, right: iterations)" for a in ARMS]
        )
        ax.set_ylabel("valid rate (valid / generated samples)")
        ax2.set_ylabel("iterations completed")
        ax.set_ylim(0, 1)
        ax.set_title(f"{model}: valid rate and iterations per arm (dots: seeds)")

    return _figure(path, draw)


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


def _fmt(stat: dict[str, float], digits: int = 3) -> str:
    if not np.isfinite(stat.get("mean", np.nan)):
        return "n/a"
    if "ci_low" not in stat:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} [{stat['ci_low']:.{digits}f}, {stat['ci_high']:.{digits}f}]"


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
    for arm, logs in runs.items():
        seconds[f"{arm} runs"] = sum(float(r.summary.get("seconds", 0.0)) for r in logs)
    return seconds


def _plots(runs: dict[str, list[RunLog]], out: Path) -> None:
    """The DVC plots: mean efficiency curve, validation curve, fine-tuning loss (seed 0)."""
    grid = _grid(runs)
    rows = [{"generated_samples": round(float(g), 1)} for g in grid]
    for arm, logs in runs.items():
        if logs:
            mean = mean_curve(logs, "test/metric", grid).mean(0)
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
    for arm, logs in runs.items():
        if logs:
            loss_rows += [
                {"arm": arm, "finetune_step": int(x["finetune_step"]), "loss": round(x["loss"], 5)}
                for x in logs[0].losses
            ]
    atomic_write_csv(out / "finetune_loss.csv", loss_rows)


def _dvc_metrics(model: str, comparison: dict[str, Any]) -> dict[str, Any]:
    """The comparison as a flat-ish JSON for ``dvc metrics show``."""
    metrics: dict[str, Any] = {"model": model}
    for arm in ARMS:
        a = comparison["arms"][arm]
        metrics[arm] = {"n_seeds": a["n_seeds"]}
        for key, stat in a["stats"].items():
            for part, value in stat.items():
                metrics[arm][f"{key}_{part}"] = None if not np.isfinite(value) else round(value, 5)
    metrics["sac_minus_random"] = {
        f"{key}_{part}": None if not np.isfinite(v) else round(v, 5)
        for key, stat in comparison["difference"].items()
        for part, v in stat.items()
        if part != "per_seed"
    }
    return metrics


def write_report(results: str | Path, model: str, out: str | Path) -> Path:
    """Read the runs of ``model``; write REPORT.md, figures/, plots/ and metrics.json to ``out``."""
    results, out = Path(results), Path(out)
    runs = load_runs(results, model)
    comparison = compare(runs)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    figures = {
        "Fig. 5, efficiency": fig_efficiency(runs, model, out / "figures" / "fig5_efficiency.png"),
        "Fig. 6, per-term scores": fig_terms(runs, model, out / "figures" / "fig6_terms.png"),
        "Fig. 7, score by number of terms": fig_n_terms(
            runs, model, out / "figures" / "fig7_n_terms.png"
        ),
        "Fig. 8, fine-tuning loss": fig_loss(runs, model, out / "figures" / "fig8_loss.png"),
        "Fig. 9, validation and early stopping": fig_validation(
            runs, model, out / "figures" / "fig9_validation.png"
        ),
        "Valid rate and iterations per arm": fig_valid_rate(
            comparison, model, out / "figures" / "valid_rate_iterations.png"
        ),
    }
    _plots(runs, out / "plots")
    atomic_write_json(out / "metrics.json", _dvc_metrics(model, comparison))
    atomic_write_json(out / "comparison.json", comparison)
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


def _markdown(
    results: Path,
    model: str,
    runs: dict[str, list[RunLog]],
    comparison: dict[str, Any],
    figures: dict[str, Path],
    out: Path,
) -> str:
    arms = comparison["arms"]
    first = runs["sac"][0].summary
    n = {arm: arms[arm]["n_seeds"] for arm in ARMS}
    seconds = _stage_seconds(results, model, runs)
    lines = [
        f"# RLS3 benchmark report: {model}",
        "",
        f"- Profile: `{first['profile']}`; seeds: {n['sac']} sac, {n['random']} random "
        f"(paired: {comparison['paired_seeds']}).",
        f"- Test metric: {METRIC_NAME[model]}, on the fixed test set (test environment, "
        f"content hash `{first['dataset_hashes']['test'][:12]}`).",
        f"- Fine-tuning per iteration: {_finetune_line(model, first)}",
        f"- Machine: {machine()}.",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC (report written).",
        "- Compute time recorded by the stages (process start-up and DVC not included): "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
        + f"; total {sum(seconds.values()) / 60:.1f} min. The end-to-end wall time of the "
        "`make bench` that wrote this report is in `bench.json` beside it when there is one.",
        "",
        "## Comparison of the arms",
        "",
        f"Mean over seeds with a {CONFIDENCE:.0%} percentile-bootstrap confidence interval "
        f"({BOOTSTRAP} resamples) in brackets. With {n['sac']} seed(s) the interval only spans "
        "the seeds' own values: read it as a range, not as significance.",
        "",
        "| figure | sac | random | sac - random |",
        "| --- | --- | --- | --- |",
    ]
    diff = comparison["difference"]
    rows = [
        ("test metric before fine-tuning", "initial_metric", None),
        ("final test metric", "final_metric", "final_metric"),
        ("area under the efficiency curve / budget", "auc", "auc"),
        ("generated samples to reach random's final metric", "samples_to_random_final", None),
    ]
    for label, key, dkey in rows:
        digits = 0 if key == "samples_to_random_final" else 3
        d = _fmt(diff[dkey]) if dkey else ""
        lines.append(
            f"| {label} | {_fmt(arms['sac']['stats'][key], digits)} | "
            f"{_fmt(arms['random']['stats'][key], digits)} | {d} |"
        )
    for note in caveats(comparison):
        lines += ["", f"**Note:** {note}"]
    lines += [
        "",
        "Per seed:",
        "",
        "| arm | seed | before | final | AUC/budget | samples to random's final | generated | "
        "valid rate | iterations | stopped |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arm in ARMS:
        for x in arms[arm]["seeds"]:
            reach = (
                "never"
                if not np.isfinite(x["samples_to_random_final"])
                else f"{x['samples_to_random_final']:.0f}"
            )
            lines.append(
                f"| {arm} | {x['seed']} | {x['initial_metric']:.3f} | {x['final_metric']:.3f} | "
                f"{x['auc']:.3f} | {reach} | {x['generated_samples']:.0f} | "
                f"{x['valid_rate']:.1%} | {x['iterations']:.0f} | {x['stopped']} |"
            )
    lines += [
        "",
        "## The paper's claims beside this run",
        "",
        "| claim (RLS3, ICCPS 2025) | found here | verdict |",
        "| --- | --- | --- |",
    ]
    for claim, found, verdict in claims(runs, comparison):
        lines.append(f"| {claim} | {found} | {verdict} |")
    lines += ["", "## Figures", ""]
    for title, path in figures.items():
        lines += [f"### {title}", "", f"![{title}]({path.relative_to(out).as_posix()})", ""]
    lines += [
        "## How to read and regenerate",
        "",
        "- Every number above comes from the run files under `results/runs/` (also in MLflow: "
        "`make ui`). `dvc repro` regenerates them; `dvc metrics show` and `dvc plots show` give "
        "the same figures.",
        "- Budgets: the random arm's budget is the sac run's generated samples (same seed); "
        "x axes count generated samples (environment steps, valid or not).",
        "",
    ]
    return "\n".join(lines)


def write_index(report_dir: str | Path, models: Sequence[str]) -> Path:
    """``results/report/REPORT.md``: the headline comparison of every model, linking each report."""
    report_dir = Path(report_dir)
    lines = [
        "# RLS3 benchmark: all models",
        "",
        "| model | seeds | sac final | random final | AUC/budget, sac - random | report |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for model in models:
        comparison = json.loads((report_dir / model / "comparison.json").read_text())
        arms, diff = comparison["arms"], comparison["difference"]
        lines.append(
            f"| {model} | {arms['sac']['n_seeds']} | {_fmt(arms['sac']['stats']['final_metric'])} "
            f"| {_fmt(arms['random']['stats']['final_metric'])} | {_fmt(diff['auc'])} | "
            f"[{model}/REPORT.md]({model}/REPORT.md) |"
        )
    lines.append("")
    return atomic_write_text(report_dir / "REPORT.md", "\n".join(lines))
