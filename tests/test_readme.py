"""The README as a user reads it: short, two commands in its quick start, and `dvc repro` working
the way it shows, in a shell where nothing but the README's own line put the project's
environment on PATH."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.pipeline import VENV_BIN, copy_repository

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ACTIVATE = ". .venv/bin/activate"


def shell_blocks(text: str) -> list[list[str]]:
    """The command lines of each ```sh block, comments stripped."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [[line.split("#")[0].strip() for line in b.splitlines() if line.split("#")[0].strip()]
            for b in blocks]  # fmt: skip


def test_the_readme_is_short_and_starts_with_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert shell_blocks(quick_start)[0] == ["make bench MODEL=clip", "make test"]


def test_the_readme_cites_nothing_outside_the_repository() -> None:
    for file in [README, *(ROOT / "docs").glob("*.md")]:
        text = file.read_text()
        for link in re.findall(r"\]\(([^)#]+)", text):
            if not link.startswith(("http://", "https://")):
                target = (file.parent / link).resolve()
                assert target.exists(), f"{file.name}: {link}"
                assert target.is_relative_to(ROOT), f"{file.name}: {link} leaves the repository"


def test_dvc_repro_as_the_readme_shows(tmp_path: Path) -> None:
    """``. .venv/bin/activate`` then ``dvc repro``, in a copy of the repository whose ``.venv``
    is the project's environment, from a shell whose PATH holds only the system's directories:
    the stage's ``rls3`` is found. Without the README's line, the same ``dvc repro`` cannot run
    the stage, which is why the README says it."""
    text = README.read_text()
    block = next(b for b in shell_blocks(text) if ACTIVATE in b)
    assert block[block.index(ACTIVATE) + 1] == "dvc repro"
    repo = copy_repository(tmp_path / "repo", unused_slot=False)
    (repo / ".venv").symlink_to(VENV_BIN.parent)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(repo),  # the copy's code, as the other pipeline tests run it
        **{k: v for k, v in os.environ.items() if k.startswith("LC_") or k == "LANG"},
    }
    command = f"{ACTIVATE} && dvc repro check"  # the pipeline's first stage, in seconds
    done = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((repo / "results/check/passed.json").read_text())
    (repo / "results").rename(tmp_path / "first")
    bare = subprocess.run(["bash", "-c", ".venv/bin/dvc repro check"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert bare.returncode != 0
    said = bare.stdout + bare.stderr
    assert "rls3" in said and "not found" in said, said[-2000:]
