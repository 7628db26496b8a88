"""Shared fixtures: real environments (the simulator is cheap enough to build per module)."""

from collections.abc import Iterator

import pytest

from benchmark.sim.env import PlacementEnv


@pytest.fixture(scope="module", params=["train", "test"])
def env(request: pytest.FixtureRequest) -> Iterator[PlacementEnv]:
    environment = PlacementEnv(request.param, t0=16, image_size=32)
    yield environment
    environment.close()
