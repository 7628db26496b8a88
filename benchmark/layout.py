"""Where everything lives on disk: the one module that spells the results layout.

Every function takes the results root first (``RESULTS`` for the project's own, relative to the
project directory where ``dvc repro`` runs; a scratch directory for a measurement or a test).
dvc.yaml names the same paths as the stages' outputs.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path("results")
DATASETS = Path("datasets")


def base_model(results: str | Path, model: str) -> Path:
    """The base model of a family: a built-in model's checkpoint, or a recorded real one."""
    return Path(results) / "vlm" / model / "base"


def base_metrics(results: str | Path, model: str) -> Path:
    """The base model's measurements (a DVC metric)."""
    return Path(results) / "vlm" / model / "base_metrics.json"


def agent(results: str | Path, seed: int) -> Path:
    """The SAC agent pre-trained for ``seed``."""
    return Path(results) / "agents" / f"seed{seed}"


def arm_runs(results: str | Path, model: str, arm: str) -> Path:
    """Every seed's run of ``arm`` with ``model``."""
    return Path(results) / "runs" / model / arm


def run_dir(results: str | Path, model: str, arm: str, seed: int) -> Path:
    """One run's directory: its checkpoint, its files, its summary."""
    return arm_runs(results, model, arm) / f"seed{seed}"


def report(results: str | Path, model: str | None = None) -> Path:
    """A model's report directory, or (``model`` None) the index's."""
    root = Path(results) / "report"
    return root if model is None else root / model


def probe(results: str | Path, model: str) -> Path:
    """The learnability probe's result (a DVC metric)."""
    return Path(results) / "probe" / model / "learnability.json"


def grid(results: str | Path, model: str) -> Path:
    """What ``rls3 grid`` wrote of its runs."""
    return Path(results) / "grid" / f"{model}.json"


def mlflow_store(results: str | Path) -> Path:
    """The project's MLflow store when ``MLFLOW_TRACKING_URI`` names none."""
    return Path(results) / "mlflow.db"
