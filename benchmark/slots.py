"""dvc.yaml's seed slots: DVC fixes its stages before it reads params, so there is one stage per
seed slot 0..MAX_SEEDS-1. A slot the active profile does not use writes a one-line marker (a
``summary.json`` saying ``skipped``) in a second, and the report ignores it."""

from __future__ import annotations

from pathlib import Path

from benchmark.fileio import atomic_directory, atomic_write_json


def unused(seed: int, seeds: int) -> bool:
    """Whether slot ``seed`` lies beyond the profile's ``seeds`` (seeds 0..seeds-1 are used)."""
    return seed >= seeds


def run_stage(arm: str, model: str, slot: int) -> str:
    """dvc.yaml's name for the run stage of ``arm``, ``model`` and seed slot ``slot``."""
    return f"{run_stage_prefix(arm, model)}{slot}"


def run_stage_prefix(arm: str, model: str) -> str:
    """The common start of ``arm``'s run stages for ``model`` (one per seed slot)."""
    return f"run_{arm.replace('-', '_')}@{model}-"


def mark_unused(out: Path, seed: int, seeds: int, profile: str, what: dict[str, object]) -> str:
    """Write the marker of an unused slot in ``out`` (replacing whatever the slot held before);
    returns the reason, for the caller to print."""
    reason = f"profile {profile} uses {seeds} seed(s): 0..{seeds - 1}"
    with atomic_directory(out) as tmp:
        atomic_write_json(tmp / "summary.json", {**what, "seed": seed, "skipped": reason})
    return reason
