"""``rls3 perf vlm``: throughput of the VLM API against the bare model, as ratios from one run.

On one batch of simulator samples, in alternating rounds (the paths are each family's
``perf.perf_paths``): ``evaluate`` against the bare
inference of the same model on pre-built tensors (CLIP: both encoders; PaliGemma: greedy
``generate`` with the same settings), and one ``finetune`` step (the whole batch as one
minibatch) against the bare forward + backward + AdamW step on pre-built tensors. The ratio
API/bare is the share of the model's own speed that the API keeps (preprocessing, tokenising,
parsing, optimizer set-up are the difference).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmark.config import SimParams
from benchmark.families import family
from benchmark.samples import Sample
from benchmark.sampling import collect_samples
from benchmark.vlm.base import VLM


@dataclass(frozen=True)
class VlmPerf:
    """Samples per second of each path, summed over the rounds."""

    model: str
    batch: int
    rounds: int
    device: str
    eval_api: float
    eval_bare: float
    finetune_api: float
    finetune_bare: float


# what a family's ``perf.perf_paths(samples, vlm)`` gives: the device, then the API's evaluate,
# the bare inference, the API's one-step finetune and the bare step, each a function to time
Paths = tuple[
    str, Callable[[], object], Callable[[], object], Callable[[], object], Callable[[], object]
]


def api_and_bare(
    vlm: VLM,
    samples: list[Sample],
    bare_eval: Callable[[], object],
    bare_step: Callable[[], object],
) -> Paths:
    """A family's ``Paths``: the API's evaluate and one-step finetune of ``vlm`` on ``samples``,
    each beside the family's bare equivalent."""
    return (
        str(vlm.device),
        lambda: vlm.evaluate(samples),
        bare_eval,
        lambda: vlm.finetune(samples, 1),
        bare_step,
    )


def measure(model: str, batch: int = 32, rounds: int = 3, seed: int = 0) -> VlmPerf:
    """Time the four paths of ``model`` on one batch, alternating, after one warm-up round."""
    family(model)  # another name: a ValueError listing the families
    if batch < 2 or rounds < 1:
        raise ValueError(f"need batch >= 2 and rounds >= 1, got batch={batch}, rounds={rounds}")
    torch.manual_seed(seed)
    samples = collect_samples("train", batch, seed, sim=SimParams(), t0=32)  # 64 px
    return time_paths(model, samples, rounds)


def time_paths(model: str, samples: list[Sample], rounds: int, vlm: VLM | None = None) -> VlmPerf:
    """``measure`` on given samples and, if given, a given model (its config's batch sizes
    should hold the whole batch: ``finetune`` then takes one step, like the bare path)."""
    device, *timed = family(model).part("perf_paths")(samples, vlm)
    batch = len(samples)
    totals = [0.0] * len(timed)
    for r in range(rounds + 1):  # round 0 warms up allocators and lazy inits
        for i, path in enumerate(timed):
            start = time.perf_counter()
            path()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if r:
                totals[i] += time.perf_counter() - start
    rate = [batch * rounds / t for t in totals]
    return VlmPerf(model, batch, rounds, device, *rate)


def format_vlm_perf(p: VlmPerf) -> str:
    """A small table: API and bare samples/s and their ratio, for evaluation and fine-tuning."""
    lines = [
        f"rls3 perf vlm --model {p.model}: batch {p.batch}, {p.rounds} alternating rounds, "
        f"device {p.device}",
        f"{'':<10} {'API (samples/s)':>16} {'bare (samples/s)':>17} {'API / bare':>11}",
    ]
    for name, api, bare in (
        ("evaluate", p.eval_api, p.eval_bare),
        ("finetune", p.finetune_api, p.finetune_bare),
    ):
        lines.append(f"{name:<10} {api:>16.1f} {bare:>17.1f} {api / bare:>11.2f}")
    return "\n".join(lines)


__all__ = ["VlmPerf", "format_vlm_perf", "measure", "time_paths"]
