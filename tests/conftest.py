"""Fixtures shared across test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline import copy_repository, dvc


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the repository after a full ``dvc repro`` with the smoke profile (minutes)."""
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    done = dvc(repo, "repro")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return repo, done.stdout
