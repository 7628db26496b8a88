"""The VLM tests run with one torch thread (tests/conftest.py has the shared sample fixtures)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def vlm_tests_use_one_torch_thread(one_torch_thread: None) -> None:
    """Every module here runs with one torch thread (``one_torch_thread``, tests/conftest.py)."""
