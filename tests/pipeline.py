"""A copy of the repository with the smoke profile, for the pipeline tests (real DVC, real runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmark.config import MAX_SEEDS
from tests.external_sets import write_whatsup

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SEED_SLOTS_LINE = f"  - seed_slots: {list(range(MAX_SEEDS))}\n"
SMOKE_SEED_SLOTS_LINE = "  - seed_slots: [0, 1]\n"
ONE_SEED_SLOT_LINE = "  - seed_slots: [0]\n"
SMOKE_DATASETS_LINE = "    datasets: {validation: 16, test: 24, seed: 2025, external: []}\n"
# the smoke copy's external set, relative to the copy's root
EXTERNAL_SET = Path("external/whatsup/controlled_images_dataset.json")


def copy_repository(dst: Path, *, unused_slot: bool = True) -> Path:
    """The checkout's files (tracked and untracked, not ignored) under ``dst``, smoke profile,
    two seed slots (``unused_slot=False``: the used one alone), and one external set in
    What'sUp's layout (``EXTERNAL_SET``) that the runs score."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    shutil.rmtree(dst / "results" / "report", ignore_errors=True)  # the committed reference
    params = dst / "params.yaml"
    text = params.read_text()
    assert "\nprofile: bench\n" in text and SMOKE_DATASETS_LINE in text
    # an external set (What'sUp's layout, renders for photographs) that every run scores
    write_whatsup(dst / EXTERNAL_SET.parent)
    text = text.replace(SMOKE_DATASETS_LINE, SMOKE_DATASETS_LINE.replace(
        "external: []", f"external: [{{name: whatsup, path: {EXTERNAL_SET}, format: whatsup}}]"
    ))  # fmt: skip
    params.write_text(text.replace("\nprofile: bench\n", "\nprofile: smoke\n"))
    # The smoke profile runs one seed: two seed slots (one used, one marked unused) keep every
    # stage kind in the copy, without the 90 unused-slot stages of the real ten slots (each a
    # DVC stage of its own, seconds apiece); the real dvc.yaml's slots are checked apart.
    pipeline = dst / "dvc.yaml"
    text = pipeline.read_text()
    assert SEED_SLOTS_LINE in text
    slots = SMOKE_SEED_SLOTS_LINE if unused_slot else ONE_SEED_SLOT_LINE
    pipeline.write_text(text.replace(SEED_SLOTS_LINE, slots))
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    _trim_lock(dst)
    return dst


def _trim_lock(repo: Path) -> None:
    """The lock's entries of the copy's stages alone. DVC reads and rewrites the whole of
    dvc.lock for every stage it runs, and keeps the entries of stages its dvc.yaml no longer
    has: the committed lock's other seed slots would triple that work, and change nothing."""
    listed = dvc(repo, "stage", "list", "--name-only")
    assert listed.returncode == 0, listed.stderr
    names = set(listed.stdout.split())
    lock = repo / "dvc.lock"
    data = yaml.safe_load(lock.read_text())
    data["stages"] = {name: s for name, s in data["stages"].items() if name in names}
    lock.write_text(yaml.safe_dump(data, sort_keys=False))


def environment(repo: Path) -> dict[str, str]:
    """The project's environment first on PATH, the copy's code on PYTHONPATH, its own store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(repo)
    return env


def params_reads(repo: Path) -> Path:
    """Where the session's smoke pipeline in ``repo`` records the params keys each of its
    commands read (``benchmark.paramreads.READS_ENV``): beside the copy, not in it."""
    return repo.with_name(f"{repo.name}-params-reads")


def dvc(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``dvc ARGS`` in ``repo`` (``environment``, plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=environment(repo) | (env or {}),
        capture_output=True,
        text=True,
        check=False,
    )


def rls3(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The project's ``rls3`` command in ``repo`` (its code, its environment)."""
    return subprocess.run(
        [str(VENV_BIN / "rls3"), *args],
        cwd=repo,
        env=environment(repo),
        capture_output=True,
        text=True,
        check=False,
    )


def checkpoint_state(state: Path, timeout: float = 10.0) -> dict[str, Any]:
    """A run's ``checkpoint/state.json`` while the run may be writing it: ``atomic_directory``
    moves the old checkpoint aside for an instant, so a missing or half-seen file is read
    again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dict(json.loads(state.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def wait_for_iteration(proc: subprocess.Popen[Any], state: Path, iteration: int = 1) -> None:
    """Wait (at most 5 min) until the run behind ``proc`` has checkpointed ``iteration``."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and checkpoint_state(state)["iteration"] >= iteration:
            return
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
