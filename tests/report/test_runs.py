"""The run files a report reads (benchmark/report/runs.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.report import (
    RunLog,
    compare,
    complete_episode_hardness,
    load_runs,
    reward_balance,
)
from tests.report.helpers import _write_run


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


def test_the_runs_carry_their_episodes(tmp_path: Path) -> None:
    _write_run(tmp_path, "sac", 0, 0.02)
    _write_run(tmp_path, "sac-nofeedback", 0, 0.01)
    runs = load_runs(tmp_path, "clip")
    (sac,) = runs["sac"]
    assert len(sac.episodes) == 8  # two per iteration, 4 iterations
    assert sac.episode_column("j1").tolist() == [20.0, 16.0] * 4
    assert sac.episode_column("extrinsic").tolist() == pytest.approx([22.0, 32.0] * 4)
    assert runs["sac-nofeedback"][0].episode_column("extrinsic").tolist() == [0.0] * 8
    assert runs["random"] == [] and runs["random-hardest"] == []


def _episodes(arm: str, rows: list[tuple[float, float, float]]) -> RunLog:
    log = RunLog(arm, 0, {}, [], [])
    log.episodes = [{"j1": j1, "j2": j2, "extrinsic": ext} for j1, j2, ext in rows]
    return log


def test_the_reward_balance_by_hand() -> None:
    # received / (|J1| + received): 30 / 40 and 10 / 20
    sac = reward_balance(_episodes("sac", [(10.0, 3.0, 30.0), (-10.0, 1.0, 10.0)]))
    assert sac == pytest.approx({"j1": 0.0, "j2": 2.0, "vlm_reward": 20.0, "vlm_share": 0.625})
    # an arm whose reward is none received nothing, whatever an older run recorded
    random = reward_balance(_episodes("random", [(8.0, 3.0, 30.0), (4.0, 1.0, 10.0)]))
    assert random == pytest.approx({"j1": 6.0, "j2": 2.0, "vlm_reward": 0.0, "vlm_share": 0.0})
    # an episode with no return at all has no share; no episodes: nothing measured
    empty = reward_balance(_episodes("sac", [(0.0, 0.0, 0.0), (1.0, 1.0, 3.0)]))
    assert empty["vlm_share"] == pytest.approx(0.75)
    assert all(np.isnan(v) for v in reward_balance(RunLog("sac", 0, {}, [], [])).values())


def test_the_comparison_summarises_the_reward_balance_over_seeds(tmp_path: Path) -> None:
    for seed in range(3):
        _write_run(tmp_path, "sac", seed, 0.02)
        _write_run(tmp_path, "random", seed, 0.0)
    arms = compare(load_runs(tmp_path, "clip")).arms
    # sac, seed s: J1 20 - s and 16 - s, J2 2.2 and 3.2, received 10 * J2
    assert arms["sac"].stats["j1"].mean == pytest.approx(17.0)
    assert arms["sac"].stats["vlm_reward"].mean == pytest.approx(27.0)
    share = np.mean([np.mean([22 / (42 - s), 32 / (48 - s)]) for s in range(3)])
    assert arms["sac"].stats["vlm_share"].mean == pytest.approx(share)
    assert arms["random"].stats["vlm_share"].mean == 0.0
    assert arms["random"].stats["j2"].mean == pytest.approx(2.5)
