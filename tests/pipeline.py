"""A copy of the repository with the smoke profile, for the pipeline tests (real DVC, real runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def copy_repository(dst: Path) -> Path:
    """The checkout's files (tracked and untracked, not ignored) under ``dst``, smoke profile."""
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
    assert "\nprofile: bench\n" in text
    params.write_text(text.replace("\nprofile: bench\n", "\nprofile: smoke\n"))
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return dst


def environment(repo: Path) -> dict[str, str]:
    """The project's environment first on PATH, the copy's code on PYTHONPATH, its own store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(repo)
    return env


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=environment(repo),
        capture_output=True,
        text=True,
        check=False,
    )
