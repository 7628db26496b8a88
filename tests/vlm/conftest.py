"""Shared fixtures: real simulator samples and the real built-in models (no mocks)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from benchmark.sampling import collect_samples
from benchmark.vlm.base import Sample

# Nothing in these tests may reach a hub; loaders are given local paths only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: the built-in models are tiny, and on a shared 2-core machine two
    OpenMP threads competing with another process run many times slower than one."""
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
