"""The arms: the random agent, and SAC pre-training against the valid-rate contract (SPEC 3)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.agents import RandomAgent, load_sac, pretrain_sac, valid_rate
from benchmark.config import AgentParams
from benchmark.sim.env import PlacementEnv

# The test size of the contract: the paper's SAC settings (learning rate 3e-4, 256x256, batch 256)
# with P cut from 100k to 30k steps. Measured on the 2-core machine, seed 0, 600 deterministic
# evaluation steps: 0.85 at 20k, 0.903 at 30k (an experiment script), and 0.912 here in 747 s
# on a quiet machine; the paper-scale run (100k: 0.930) is quoted in docs/research.md. Faster
# settings level off below the contract: the bench profile's learning rate 2e-3 reaches
# 0.84-0.87 at 6k-12k steps, 6e-4 0.83-0.88 at 8k-20k.
CONTRACT_PARAMS = AgentParams(
    pretrain_steps=30_000, learning_rate=3e-4, gamma=0.0, buffer_size=30_000
)


def test_random_agent_is_uniform_in_the_action_box_and_seeded() -> None:
    obs = np.zeros(32, dtype=np.float32)
    agent = RandomAgent(5)
    draws = np.array([agent.predict(obs)[0] for _ in range(20_000)])
    assert draws.shape == (20_000, 3) and draws.dtype == np.float32
    assert draws.min() >= -1.0 and draws.max() <= 1.0
    for column in draws.T:  # each coordinate uniform: equal quarters, mean 0, variance 1/3
        hist, _ = np.histogram(column, bins=4, range=(-1, 1))
        assert np.allclose(hist / len(column), 0.25, atol=0.015)
        assert column.mean() == pytest.approx(0.0, abs=0.02)
        assert column.var() == pytest.approx(1 / 3, abs=0.02)
    assert abs(np.corrcoef(draws.T)[0, 1]) < 0.03  # and independent
    again = RandomAgent(5)
    assert np.array_equal(draws[:50], [again.predict(obs)[0] for _ in range(50)])
    other = RandomAgent(6)
    assert not np.array_equal(draws[:50], [other.predict(obs)[0] for _ in range(50)])


@pytest.mark.slow
def test_sac_pretraining_meets_the_valid_rate_contract(tmp_path: Path) -> None:
    """Intrinsic-only pre-training lifts the valid rate from the random policy's to >= 85%."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = pretrain_sac(CONTRACT_PARAMS, seed=0, out_dir=tmp_path / "sac", eval_steps=600)
    finally:
        torch.set_num_threads(threads)
    print(
        f"valid rate {report.valid_rate_before:.3f} (random) -> {report.valid_rate_after:.3f} "
        f"(SAC, deterministic) after {report.steps} steps in {report.seconds:.0f} s"
    )
    assert 0.40 <= report.valid_rate_before <= 0.70
    assert report.valid_rate_after > report.valid_rate_before + 0.15  # SAC did learn
    # What was saved is the trained policy, replay buffer included.
    env = PlacementEnv("train", render_images=False)
    try:
        model = load_sac(tmp_path / "sac", env)
        assert model.replay_buffer is not None
        assert model.replay_buffer.size() == CONTRACT_PARAMS.pretrain_steps
        rate = valid_rate(model, env, 600, seed=10_000)
        assert rate == pytest.approx(report.valid_rate_after)
    finally:
        env.close()
    assert report.valid_rate_after >= 0.85, (  # the contract itself
        f"valid-rate contract: SAC {report.valid_rate_after:.3f} < 0.85"
    )
