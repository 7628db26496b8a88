"""MLflow conventions in one place.

One experiment per model (``rls3-clip``, ``rls3-paligemma``), one run per (arm, seed) named
``{arm}-seed{seed}``. The store defaults to SQLite under ``results/`` and honours
``MLFLOW_TRACKING_URI``. Metrics use step = cumulative generated samples (the x axis of the
paper's Fig. 5), except the fine-tuning loss, whose step is the global fine-tuning step.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from benchmark import layout

MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call


def tracking_uri(results_dir: str | Path = layout.RESULTS) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store in ``results_dir``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    path = layout.mlflow_store(Path(results_dir).resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def experiment_name(model: str) -> str:
    return f"rls3-{model}"


def run_name(arm: str, seed: int) -> str:
    return f"{arm}-seed{seed}"


def git_commit(root: str | Path = ".") -> str:
    """The checkout's commit (with ``-dirty`` for uncommitted changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as MLflow's flat ``a.b.c`` keys."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def run_tags(
    model: str, arm: str, seed: int, profile: str, dataset_hashes: Sequence[str]
) -> dict[str, str]:
    """A run's tags: what it is, the commit it ran at and its datasets' content hashes."""
    validation, test = dataset_hashes
    return {
        "arm": arm,
        "seed": str(seed),
        "model": model,
        "profile": profile,
        "git_commit": git_commit(),
        "dataset.validation": validation,
        "dataset.test": test,
    }


def metric_rows(
    iterations: Sequence[Mapping[str, Any]],
    episodes: Sequence[Mapping[str, Any]],
    losses: Sequence[Mapping[str, Any]],
) -> list[tuple[str, float, int]]:
    """A run's logs as MLflow rows (key, value, step); non-finite values left out.

    Iterations and episodes are stepped by generated samples (the efficiency axis), the
    fine-tuning loss and the inner validation by fine-tuning step.
    """
    rows: list[tuple[str, float, int]] = []
    for it in iterations:
        step = int(it["generated_samples"])
        rows += [(k, float(v), step) for k, v in it.items() if isinstance(v, int | float)]
    for ep in episodes:
        step = int(ep["generated_total"])
        rows += [("episode/j1", ep["j1"], step), ("episode/j2", ep["j2"], step)]
        rows += [("episode/valid_rate", ep["valid"] / max(ep["steps"], 1), step)]
        rows += [("episode/hardness", ep["hardness"], step)]
    for r in losses:
        if "loss" in r:
            rows.append(("finetune/loss", r["loss"], int(r["finetune_step"])))
        else:
            rows.append(("val/metric_inner", r["val_inner"], int(r["finetune_step"])))
    return [r for r in rows if math.isfinite(r[1])]


def experiment_id(client: MlflowClient, model: str) -> str:
    """The id of ``model``'s experiment, created if it is not there yet (by this process or,
    for runs side by side, another one)."""
    name = experiment_name(model)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:  # another run created it in between
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def prepare_store(uri: str, model: str) -> str:
    """Create the store (its tables) and ``model``'s experiment before runs start side by side:
    two processes opening a new SQLite store at once race in MLflow's schema migrations
    ("Online migration expected to match one row"). Returns the experiment id."""
    return experiment_id(MlflowClient(tracking_uri=uri), model)


class RunTracker:
    """The MLflow run of one (model, arm, seed); created once, reopened on resume."""

    def __init__(self, uri: str, model: str, arm: str, seed: int) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        self.experiment_id = experiment_id(self.client, model)
        self.name = run_name(arm, seed)
        self.run_id: str | None = None

    def start(self, run_id: str | None, tags: Mapping[str, str], params: Mapping[str, str]) -> str:
        """Reopen ``run_id`` (resume) or create the run with its tags and params."""
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            self.run_id = run_id
            return run_id
        run = self.client.create_run(self.experiment_id, tags=dict(tags), run_name=self.name)
        self.run_id = run.info.run_id
        items = list(params.items())
        for i in range(0, len(items), 100):  # MLflow's limit of params per batch
            self.client.log_batch(
                self.run_id, params=[Param(k, v[:6000]) for k, v in items[i : i + 100]]
            )
        return self.run_id

    def set_tags(self, tags: Mapping[str, str]) -> None:
        assert self.run_id is not None
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log(self, rows: Iterable[tuple[str, float, int]]) -> None:
        """Log (key, value, step) rows, skipping any (key, step) MLflow already holds.

        The skip makes re-logging an iteration after a resume idempotent.
        """
        assert self.run_id is not None
        rows = list(rows)
        held: dict[str, set[int]] = {}
        for key in {k for k, _, _ in rows}:
            held[key] = {m.step for m in self.client.get_metric_history(self.run_id, key)}
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, int(step))
            for key, value, step in rows
            if int(step) not in held[key]
        ]
        for i in range(0, len(metrics), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + MAX_BATCH])

    def finish(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)
