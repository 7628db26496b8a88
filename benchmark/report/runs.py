"""The run files a report reads: one finished run of ``rls3 run`` per arm and seed (its summary,
its per-iteration metrics, its fine-tuning losses and its per-episode rewards)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import layout
from benchmark.config import ARMS
from benchmark.records import episode_column, iteration_column, loss_column


@dataclass
class RunLog:
    """One finished run's files: ``summary.json``, ``metrics.csv`` (``iterations``, row 0 the base
    model), ``finetune_loss.csv`` (``losses``) and ``episodes.csv`` (``episodes``: one row per
    episode, with its rewards J1, J2 and the VLM reward the agent received; [] in runs without
    the file)."""

    arm: str
    seed: int
    summary: dict[str, Any]
    iterations: list[dict[str, float]]
    losses: list[dict[str, float]]
    episodes: list[dict[str, float]] = field(default_factory=list)

    def column(self, key: str) -> np.ndarray:
        """``key`` per iteration: a column of ``metrics.csv`` (``records``; another name is an
        ``UnknownColumn``), NaN in a row that does not record it (a term the run's test set
        lacks, an older run)."""
        iteration_column(key)
        return np.array([row.get(key, np.nan) for row in self.iterations], dtype=float)

    def episode_column(self, key: str) -> np.ndarray:
        """``key`` per episode: a column of ``episodes.csv`` (another name is an error)."""
        episode_column(key)
        return np.array([row.get(key, np.nan) for row in self.episodes], dtype=float)

    @property
    def generated(self) -> np.ndarray:
        return self.column("generated_samples")

    @property
    def test(self) -> np.ndarray:
        return self.column("test/metric")


def _read_csv(path: Path, known: Callable[[str], str]) -> list[dict[str, float]]:
    """The rows of a run file, every column checked by ``known`` (an unknown one raises)."""
    if not path.is_file() or path.stat().st_size == 0:
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        for name in reader.fieldnames or []:
            known(name)
        return [
            {k: float(v) if v not in ("", None) else np.nan for k, v in row.items()}
            for row in reader
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

    Every arm of ``ARMS`` is a key; an arm without runs (any but sac, e.g. the ablations in older
    results) has [].
    """
    runs: dict[str, list[RunLog]] = {arm: [] for arm in ARMS}
    for arm in ARMS:
        for d in sorted(layout.arm_runs(results, model, arm).glob("seed*")):
            summary_path = d / "summary.json"
            if not summary_path.is_file():
                continue
            summary = json.loads(summary_path.read_text())
            if summary.get("skipped") or not summary.get("finished"):
                continue
            episodes = _read_csv(d / "episodes.csv", episode_column)
            runs[arm].append(
                RunLog(
                    arm,
                    int(summary["seed"]),
                    summary,
                    complete_episode_hardness(
                        _read_csv(d / "metrics.csv", iteration_column), episodes
                    ),
                    _read_csv(d / "finetune_loss.csv", loss_column),
                    episodes,
                )
            )
        runs[arm].sort(key=lambda r: r.seed)
    if not runs["sac"]:
        raise FileNotFoundError(
            f"no finished sac runs of {model} under {Path(results) / 'runs' / model}; "
            f"run `rls3 run --model {model} --arm sac --seed 0` (or `dvc repro`) first"
        )
    return runs


def all_arms(runs: Mapping[str, list[RunLog]]) -> dict[str, list[RunLog]]:
    """``runs`` with every arm of ``ARMS`` as a key ([] where it has no runs)."""
    return {arm: list(runs.get(arm, [])) for arm in ARMS}
