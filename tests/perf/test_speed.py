"""The machine's speed sample (benchmark/perf/speed.py): real timings of the two workloads."""

from __future__ import annotations

import pytest
import torch

from benchmark.perf.speed import speed_sample


def test_a_sample_times_both_workloads_on_the_threads_asked_and_restores_them() -> None:
    before = torch.get_num_threads()
    sample = speed_sample(threads=1, rounds=3)
    assert set(sample) == {"text_step_ms", "mlp_step_ms", "threads"} and sample["threads"] == 1
    # a transformer step over 3,200 tokens is far more work than three 64 x 64 MLPs on 64 rows
    assert 0 < sample["mlp_step_ms"] < sample["text_step_ms"] < 10_000
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(("threads", "rounds"), [(0, 3), (1, 0)])
def test_a_sample_of_nothing_is_a_clear_error(threads: int, rounds: int) -> None:
    with pytest.raises(ValueError, match="threads and rounds must be >= 1"):
        speed_sample(threads, rounds)
