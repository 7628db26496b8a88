"""The run files a report reads (benchmark/report/runs.py)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.report import (
    complete_episode_hardness,
)


def test_hardness_counts_only_complete_episodes() -> None:
    """A budget arm's last episode, cut short, has a smaller contrastive group and a lower loss."""

    iterations = [
        {"iteration": 0.0, "hardness": np.nan, "error_rate": np.nan},
        {"iteration": 1.0, "hardness": 3.0, "error_rate": 0.5},
        {"iteration": 2.0, "hardness": 2.0, "error_rate": 0.5},
    ]
    episodes = [
        {"iteration": 1.0, "valid": 32.0, "hardness": 4.0, "error_rate": 0.6},
        {"iteration": 1.0, "valid": 32.0, "hardness": 5.0, "error_rate": 0.4},
        {"iteration": 2.0, "valid": 32.0, "hardness": 4.5, "error_rate": 0.5},
        {"iteration": 2.0, "valid": 3.0, "hardness": 1.0, "error_rate": 0.0},
    ]
    rows = complete_episode_hardness(iterations, episodes)
    assert np.isnan(rows[0]["hardness"])
    assert rows[1]["hardness"] == pytest.approx(4.5) and rows[1]["error_rate"] == pytest.approx(0.5)
    assert rows[2]["hardness"] == pytest.approx(4.5)  # the 3-sample episode is left out
    assert complete_episode_hardness(iterations, []) == iterations  # older runs: as recorded
