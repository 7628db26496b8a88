"""Fixtures shared across test packages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from benchmark.sampling import collect_samples
from benchmark.vlm.base import Sample
from tests.pipeline import copy_repository, dvc

# Nothing in these tests may reach a hub; loaders are given local paths only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Test files that start Ray (a local instance or a cluster): they share a worker with the smoke
# pipeline's tests, so that no two Ray instances compete for the machine's CPUs.
RAY_FILES = ("test_grid.py", "test_bench.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for ``make test``'s workers (pytest-xdist, ``--dist loadgroup``): a test file runs
    whole on one worker, so its module-scoped fixtures are built once; every test of the shared
    smoke pipeline, and of Ray, runs on the same worker, so the pipeline is built once. In a
    plain ``pytest`` run the marks change nothing."""
    for item in items:
        shared = "smoke_pipeline" in item.fixturenames or item.path.name in RAY_FILES
        group = "smoke-pipeline" if shared else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the repository after a full ``dvc repro`` with the smoke profile (minutes)."""
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    done = dvc(repo, "repro")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return repo, done.stdout


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: the built-in models are tiny, and on a shared 2-core machine two
    OpenMP threads competing with another process run many times slower than one. Module-scoped:
    the thread count is restored after each module that asks for it, so the runs of other
    modules (whose results tests compare with runs in subprocesses) keep torch's default."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def train_samples() -> list[Sample]:
    """32 samples of the train environment at 64 px (seed 0)."""
    return collect_samples("train", 32, seed=0, image_size=64)


@pytest.fixture(scope="session")
def test_samples() -> list[Sample]:
    """16 samples of the test environment at 64 px (seed 1)."""
    return collect_samples("test", 16, seed=1, image_size=64)
