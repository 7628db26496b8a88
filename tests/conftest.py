"""Fixtures shared across test packages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark.config import SimParams
from benchmark.paramreads import READS_ENV
from benchmark.samples import Sample
from benchmark.sampling import collect_samples
from tests.pipeline import copy_repository, dvc, params_reads

# Nothing in these tests may reach a hub; loaders are given local paths only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# `make test`'s workers (pytest-xdist, `--dist loadfile`): each test file runs whole on one worker,
# so its module-scoped fixtures are built once, and these files share one worker: every test of
# the session's smoke pipeline is in one of them (so the pipeline is built once), and so are the
# two whose grids run on Ray (so no two grids compete for the CPUs). The checks of Ray's token
# authentication (test_ray_auth.py: one-CPU heads, a task each) run on the other worker, to keep
# the two workers' times close. A plain `pytest` run ignores the grouping.
PIPELINE_FILES = frozenset(
    {"test_pipeline.py", "test_ui.py", "test_reference.py", "test_bench.py", "test_grid.py"}
)
# The other long files, longest first (minutes each: a pipeline on real weights, the SAC
# contract's pre-training at the bench's size, the loop's real runs): they start on the other
# worker, beside the smoke pipeline, rather than wherever pytest-randomly's order puts them. One
# of them left to the end of the pipeline's worker made the suite a few minutes longer.
LONG_FILES = ("test_weights_pipeline.py", "test_agents.py", "test_loop.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the files of ``PIPELINE_FILES`` as one scope."""
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler for the other modes
    from xdist.scheduler import LoadFileScheduling

    # the files in collection order (``pytest_collection_modifyitems``: the long ones first), not
    # by their number of tests, which would put the two-test weights pipeline last
    config.option.loadscopereorder = False

    class PipelineScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "smoke pipeline" if Path(path).name in PIPELINE_FILES else path

    return PipelineScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The smoke pipeline's files first, then ``LONG_FILES`` in their order, then the rest in
    theirs, so that `make test`'s two workers each start with long units and end with short
    ones. A test of the smoke pipeline outside ``PIPELINE_FILES`` would build the pipeline again
    on another worker: a collection error names the file to add."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        if name in PIPELINE_FILES:
            return 0
        return 1 + LONG_FILES.index(name) if name in LONG_FILES else 1 + len(LONG_FILES)

    items.sort(key=rank)
    strays = {
        item.path.name
        for item in items
        if "smoke_pipeline" in getattr(item, "fixturenames", ())  # a test function's
        and item.path.name not in PIPELINE_FILES
    }
    if strays:
        raise pytest.UsageError(
            f"{', '.join(sorted(strays))} use the smoke_pipeline fixture: add them to "
            "PIPELINE_FILES in tests/conftest.py"
        )


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the repository after a full ``dvc repro`` with the smoke profile (minutes).
    Each command records the params keys it read in ``params_reads(repo)``."""
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    done = dvc(repo, "repro", env={READS_ENV: str(params_reads(repo))})
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
    return collect_samples("train", 32, seed=0, sim=SimParams(), t0=32)


@pytest.fixture(scope="session")
def test_samples() -> list[Sample]:
    """16 samples of the test environment at 64 px (seed 1)."""
    return collect_samples("test", 16, seed=1, sim=SimParams(), t0=32)
