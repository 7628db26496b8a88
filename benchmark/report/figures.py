"""The report's figures (the paper's Figs. 5-9, and the valid rate, iterations, hardness and
term distribution per arm), drawn with matplotlib from the runs and the comparison.

Each arm keeps one colour, line style and marker in every figure (``COLOURS``, ``LINE_STYLES``,
``MARKERS``), so that five arms and ten seeds stay apart; an arm without runs is left out."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.captions import TERMS, term_key
from benchmark.comparison import Comparison
from benchmark.config import ARMS
from benchmark.families import family
from benchmark.report.runs import RunLog
from benchmark.report.stats import (
    N_TERMS,
    batch_term_shares,
    mean_curve,
    per_iteration,
    quiet_nan,
)

# the sac family in cool colours, the random family in warm ones
COLOURS = {
    "sac": "tab:blue",
    "random": "tab:orange",
    "sac-dense": "tab:green",
    "sac-nofeedback": "tab:purple",
    "random-hardest": "tab:red",
}
LINE_STYLES: dict[str, Any] = {
    "sac": "-",
    "random": ":",
    "sac-dense": "--",
    "sac-nofeedback": "-.",
    "random-hardest": (0, (5, 1.5, 1, 1.5, 1, 1.5)),  # dash-dot-dot
}
MARKERS = {
    "sac": "o",
    "random": "s",
    "sac-dense": "^",
    "sac-nofeedback": "D",
    "random-hardest": "v",
}
# each arm's cumulative term counts in the Fig. 6 tick labels:
# (sac) [random] {sac-dense} <sac-nofeedback> |random-hardest|
BRACKETS = {
    "sac": "({:.0f})",
    "random": "[{:.0f}]",
    "sac-dense": "{{{:.0f}}}",
    "sac-nofeedback": "<{:.0f}>",
    "random-hardest": "|{:.0f}|",
}


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
    fig.savefig(tmp, dpi=110, bbox_inches="tight")  # legends beside the axes stay whole
    plt.close(fig)
    os.replace(tmp, path)
    return path


def present_arms(runs: Mapping[str, list[RunLog]]) -> list[str]:
    """The arms of ``ARMS`` that have runs, in order."""
    return [arm for arm in ARMS if runs.get(arm)]


def efficiency_grid(runs: dict[str, list[RunLog]]) -> np.ndarray:
    end = max(float(r.generated[-1]) for logs in runs.values() for r in logs)
    return np.linspace(0.0, end, 200)


def _style(arm: str) -> dict[str, Any]:
    """The arm's colour, line style and marker as matplotlib keyword arguments."""
    return {"color": COLOURS[arm], "linestyle": LINE_STYLES[arm], "marker": MARKERS[arm]}


def fig_efficiency(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 5: test metric against cumulative generated samples; mean and min-max over seeds."""
    grid = efficiency_grid(runs)

    def draw(fig: Any, ax: Any) -> None:
        for arm in present_arms(runs):
            logs, c = runs[arm], COLOURS[arm]
            for r in logs:
                ax.plot(r.generated, r.test, MARKERS[arm], ms=2.5, color=c, alpha=0.35)
            curves = mean_curve(logs, "test/metric", grid)
            ax.plot(
                grid,
                curves.mean(0),
                **_style(arm),
                markevery=20,
                ms=5,
                lw=1.6,
                label=f"{arm} (mean of {len(logs)} seeds)",
            )
            ax.fill_between(grid, curves.min(0), curves.max(0), color=c, alpha=0.08)
        ax.set_xlabel("cumulative generated samples (environment steps)")
        ax.set_ylabel(f"test {family(model).metric_name}")
        ax.set_title(f"{model}: efficiency (small marks: iterations; band: min-max over seeds)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)

    return _figure(path, draw, (8.0, 4.8))


def fig_terms(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 6: per-term test metric before and after, with cumulative term counts."""
    keys = [f"test/term/{term_key(t)}" for t in TERMS]
    before = np.array([quiet_nan(np.nanmean, [r.column(k)[0] for r in runs["sac"]]) for k in keys])
    bars = [("before", before, np.zeros_like(before), "tab:gray")]
    counts: list[list[str]] = [[] for _ in TERMS]
    for arm in present_arms(runs):
        logs = runs[arm]
        after = np.array([[r.column(k)[-1] for k in keys] for r in logs])
        mean, std = quiet_nan(np.nanmean, after, 0), quiet_nan(np.nanstd, after, 0)
        bars.append((f"after, {arm}", mean, std, COLOURS[arm]))
        for i, t in enumerate(TERMS):
            total = np.mean([r.column(f"batch_terms_cum/{term_key(t)}")[-1] for r in logs])
            counts[i].append(BRACKETS[arm].format(total) if np.isfinite(total) else "")
    labels = ["\n".join([t, *c]) for t, c in zip(TERMS, counts, strict=True)]
    legend = " ".join(BRACKETS[arm].format(0).replace("0", arm) for arm in present_arms(runs))

    def draw(fig: Any, ax: Any) -> None:
        x = np.arange(len(TERMS))
        width = 0.84 / len(bars)
        for i, (name, mean, std, colour) in enumerate(bars):
            ax.bar(
                x + (i - (len(bars) - 1) / 2) * width,
                mean,
                width,
                yerr=std,
                label=name,
                color=colour,
                capsize=1.5,
                error_kw={"lw": 0.8},
            )
        ax.set_xticks(x, labels, fontsize=7.5)
        ax.set_xlabel(
            "spatial term, and below it each arm's cumulative term count in its fine-tuning data "
            f"(mean over seeds):\n{legend}",
            fontsize=9,
        )
        ax.set_ylabel(f"test {family(model).metric_name}")
        ax.set_title(f"{model}: per-term score (mean ± std over seeds)", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(axis="y", alpha=0.3)

    return _figure(path, draw, (10.5, 5.4))


def fig_n_terms(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 7: test metric against iteration, one panel per number of spatial terms."""

    def draw(fig: Any, axes: Any) -> None:
        for ax, n in zip(axes, N_TERMS, strict=True):
            for arm in present_arms(runs):
                logs = runs[arm]
                length = min(len(r.iterations) for r in logs)
                values = quiet_nan(
                    np.nanmean, [r.column(f"test/n_terms/{n}")[:length] for r in logs], 0
                )
                ax.plot(np.arange(length), values, **_style(arm), ms=3.5, lw=1.3, label=arm)
            ax.set_title(f"{n} term{'s' if n > 1 else ''}", fontsize=10)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_xlabel("iteration (0: the base model)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(f"test {family(model).metric_name}")
        axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(
            f"{model}: score by number of spatial terms (mean over seeds, up to the shortest run)",
            fontsize=10,
        )

    return _figure(path, draw, (12.0, 4.0), ncols=len(N_TERMS))


def fig_loss(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 8: the fine-tuning loss of every step, iterations concatenated; thin lines the
    seeds, the thick one their mean."""

    def draw(fig: Any, ax: Any) -> None:
        for arm in present_arms(runs):
            logs = [r for r in runs[arm] if r.losses]
            if not logs:
                continue
            length = max(len(r.losses) for r in logs)
            losses = np.full((len(logs), length), np.nan)
            for i, r in enumerate(logs):
                losses[i, : len(r.losses)] = [row["loss"] for row in r.losses]
                ax.plot(
                    [row["finetune_step"] for row in r.losses],
                    losses[i, : len(r.losses)],
                    color=COLOURS[arm],
                    alpha=0.18,
                    lw=0.6,
                )
            steps = np.arange(1, length + 1)
            ax.plot(
                steps,
                quiet_nan(np.nanmean, losses, 0),
                color=COLOURS[arm],
                linestyle=LINE_STYLES[arm],
                lw=1.8,
                label=f"{arm} (mean of {len(logs)} seeds)",
            )
        first = runs["sac"][0]
        for row in first.iterations[1:]:
            step = sum(1 for x in first.losses if x["iteration"] <= row["iteration"])
            ax.axvline(step, color="gray", lw=0.5, alpha=0.4)
        ax.set_xlabel("fine-tuning step (grey lines: iteration ends, the first sac seed)")
        ax.set_ylabel("training loss")
        ax.set_title(f"{model}: concatenated fine-tuning loss (thin lines: one per seed)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)

    return _figure(path, draw, (8.0, 4.6))


def stop_groups(logs: list[RunLog]) -> list[tuple[int, str, list[int]]]:
    """Where the runs stopped: (last iteration, how, seeds), by iteration then how."""
    groups: dict[tuple[int, str], list[int]] = {}
    for r in logs:
        key = (len(r.iterations) - 1, str(r.summary.get("stopped")))
        groups.setdefault(key, []).append(r.seed)
    return [(end, how, seeds) for (end, how), seeds in sorted(groups.items())]


def seed_ranges(seeds: list[int]) -> str:
    """Seeds as runs of consecutive numbers: [0, 1, 2, 3, 5] -> "0-3, 5"."""
    spans: list[list[int]] = []
    for s in sorted(seeds):
        if spans and s == spans[-1][1] + 1:
            spans[-1][1] = s
        else:
            spans.append([s, s])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def fig_validation(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Fig. 9: validation metric against iteration for the sac arm; each seed's best validation
    and the iteration where its run stopped, listed in the legend by iteration and reason."""
    logs = runs["sac"]

    def draw(fig: Any, ax: Any) -> None:
        length = max(len(r.iterations) for r in logs)
        padded = np.full((len(logs), length), np.nan)
        for i, r in enumerate(logs):
            padded[i, : len(r.iterations)] = r.column("val/metric")
        mean, std = quiet_nan(np.nanmean, padded, 0), quiet_nan(np.nanstd, padded, 0)
        x = np.arange(length)
        ax.plot(x, mean, color=COLOURS["sac"], marker="o", ms=3, label="sac, mean over seeds")
        ax.fill_between(x, mean - std, mean + std, color=COLOURS["sac"], alpha=0.2, label="± std")
        best = [(int(np.nanargmax(r.column("val/metric"))), r) for r in logs]
        ax.plot(
            [b for b, _ in best],
            [r.column("val/metric")[b] for b, r in best],
            "*",
            ms=9,
            color="tab:red",
            alpha=0.6,
            ls="none",
            label="each seed's best validation (the model early stopping would keep)",
        )
        shapes = ("X", "P", "d", "h", "p", "8", "<", ">")
        for k, (end, how, seeds) in enumerate(stop_groups(logs)):
            ax.axvline(end, color="black", ls="--", lw=0.6, alpha=0.5)
            listed = seed_ranges(seeds)
            ax.plot(
                [end] * len(seeds),
                [r.column("val/metric")[-1] for r in logs if r.seed in seeds],
                shapes[k % len(shapes)],
                ms=6,
                color="black",
                alpha=0.7,
                ls="none",
                label=f"stopped at iteration {end} ({how}): seed{'s' * (len(seeds) > 1)} {listed}",
            )
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("iteration (dashed lines: where runs stopped)")
        ax.set_ylabel(f"validation {family(model).metric_name}")
        ax.set_title(f"{model}: validation curve and early-stopping points ({len(logs)} seeds)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(alpha=0.3)

    return _figure(path, draw, (11.0, 4.6))


def fig_valid_rate(comparison: Comparison, model: str, path: Path) -> Path:
    """Valid rate and iterations per arm (one dot per seed, bar: mean)."""

    def draw(fig: Any, ax: Any) -> None:
        ax2 = ax.twinx()
        present = [arm for arm in ARMS if comparison.arms[arm].seeds]
        for i, arm in enumerate(present):
            rows = comparison.arms[arm].seeds
            rates = [x.valid_rate for x in rows]
            iters = [x.iterations for x in rows]
            spread = np.linspace(-0.12, 0.12, len(rows))  # the seeds side by side
            ax.bar(i - 0.2, np.mean(rates), 0.4, color=COLOURS[arm], alpha=0.7)
            ax.plot(i - 0.2 + spread, rates, "k.", ms=4, alpha=0.6)
            ax2.bar(i + 0.2, np.mean(iters), 0.4, color=COLOURS[arm], alpha=0.35, hatch="//")
            ax2.plot(i + 0.2 + spread, iters, "k.", ms=4, alpha=0.6)
        ax.set_xticks(range(len(present)), present, fontsize=8)
        ax.set_xlabel("per arm: left bar valid rate, right bar (hatched) iterations")
        ax.set_ylabel("valid rate (valid / generated samples)")
        ax2.set_ylabel("iterations completed")
        ax.set_ylim(0, 1)
        ax.set_title(f"{model}: valid rate and iterations per arm (dots: seeds)")

    return _figure(path, draw, (8.0, 4.2))


def _per_iteration_figure(
    runs: dict[str, list[RunLog]],
    key: str,
    path: Path,
    *,
    start: int,
    labels: tuple[str, str, str],
    missing: str,
) -> Path:
    """Each arm's mean of ``key`` over seeds against iteration (``start``..) with its min-max
    band; ``labels``: x label, y label, title; ``missing``: the text where no arm recorded it."""

    def draw(fig: Any, ax: Any) -> None:
        drawn = False
        for arm in present_arms(runs):
            values = per_iteration(runs[arm], key, start=start)
            if not np.isfinite(values).any():
                continue
            x = np.arange(start, start + values.shape[1])
            mean = quiet_nan(np.nanmean, values, 0)
            label = f"{arm} (mean of {len(runs[arm])} seeds)"
            ax.plot(x, mean, **_style(arm), ms=3.5, label=label)
            low, high = quiet_nan(np.nanmin, values, 0), quiet_nan(np.nanmax, values, 0)
            ax.fill_between(x, low, high, color=COLOURS[arm], alpha=0.1)
            drawn = True
        if drawn:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.text(0.5, 0.5, missing, ha="center", transform=ax.transAxes)
        if drawn and start == 0:
            ax.axhline(0.0, color="black", lw=0.8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1], fontsize=9)
        ax.set_title(labels[2], fontsize=10)
        ax.grid(alpha=0.3)

    return _figure(path, draw, (9.0, 4.4))


def fig_hardness(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Each arm's mean hardness of its generated samples against iteration; min-max over seeds."""
    return _per_iteration_figure(
        runs,
        "hardness",
        path,
        start=1,
        labels=(
            "iteration",
            f"hardness: {family(model).hardness_name}\nhigher = harder for the VLM,\n"
            "under the VLM before that iteration's fine-tuning",
            f"{model}: hardness of each arm's generated samples (band: min-max over seeds)",
        ),
        missing="hardness not recorded by these runs",
    )


def fig_grounded(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Each arm's grounded gain (test metric - image-shuffled control) against iteration, from
    the base model (0) on; min-max over seeds."""
    return _per_iteration_figure(
        runs,
        "test/grounded_gain",
        path,
        start=0,
        labels=(
            "iteration (0: the base model)",
            f"test {family(model).metric_name}\nminus its image-shuffled control\n"
            "(0: nothing learnt needs the image)",
            f"{model}: grounded gain of each arm (band: min-max over seeds)",
        ),
        missing="the image-shuffled control was not recorded by these runs",
    )


def fig_term_distribution(runs: dict[str, list[RunLog]], model: str, path: Path) -> Path:
    """Per arm: each spatial term's share of every iteration's fine-tuning batch (stacked)."""
    present = present_arms(runs)

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

    return _figure(path, draw, (3.2 * len(present) + 1.6, 4.0), ncols=len(present))
