"""``rls3 perf vlm``: throughput of the VLM API against the bare model, as ratios from one run.

On one batch of simulator samples, in alternating rounds: ``evaluate`` against the bare
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
from benchmark.samples import Sample
from benchmark.sampling import collect_samples
from benchmark.vlm.clip import ClipVLM, ClipVLMConfig, negclip_loss, sample_texts
from benchmark.vlm.paligemma import PaligemmaVLM, PaligemmaVLMConfig, freeze_all_but


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


Paths = tuple[
    str, Callable[[], object], Callable[[], object], Callable[[], object], Callable[[], object]
]


def _clip_paths(samples: list[Sample], vlm: ClipVLM | None = None) -> Paths:
    if vlm is None:
        config = ClipVLMConfig(batch_size=len(samples), eval_batch_size=len(samples))
        vlm = ClipVLM.builtin(config)
    images = vlm.images_tensor([s.image for s in samples])
    tokens = vlm.texts_tensor(sample_texts(samples))
    optimizer = vlm.optimizer()

    def bare_eval() -> object:
        vlm.model.eval()  # as ``evaluate`` does; ``bare_step`` leaves the model training
        with torch.inference_mode():
            return vlm.features(images, tokens)

    def bare_step() -> object:
        vlm.model.train()
        zi, zt, scale = vlm.features(images, tokens)
        loss = negclip_loss(zi, zt, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return (
        str(vlm.device),
        lambda: vlm.evaluate(samples),
        bare_eval,
        lambda: vlm.finetune(samples, 1),
        bare_step,
    )


def _paligemma_paths(samples: list[Sample], vlm: PaligemmaVLM | None = None) -> Paths:
    if vlm is None:
        vlm = PaligemmaVLM.builtin(
            PaligemmaVLMConfig(batch_size=len(samples), eval_batch_size=len(samples))
        )
    config = vlm.config
    images = [s.image for s in samples]
    questions = [s.record.question for s in samples]
    prompts = vlm.inputs(images, questions)
    train = vlm.inputs(images, questions, [s.record.answer for s in samples])
    params = freeze_all_but(vlm.model, config.trainable)
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    vlm.model.requires_grad_(False)

    def bare_eval() -> object:
        with torch.inference_mode():
            return vlm.model.generate(
                **prompts, max_new_tokens=config.max_new_tokens, do_sample=False, num_beams=1
            )

    def bare_step() -> object:
        freeze_all_but(vlm.model, config.trainable)
        vlm.model.train()
        loss = vlm.loss(train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        vlm.model.requires_grad_(False)
        vlm.model.eval()
        return loss

    return (
        str(vlm.device),
        lambda: vlm.evaluate(samples),
        bare_eval,
        lambda: vlm.finetune(samples, 1),
        bare_step,
    )


def measure(model: str, batch: int = 32, rounds: int = 3, seed: int = 0) -> VlmPerf:
    """Time the four paths of ``model`` on one batch, alternating, after one warm-up round."""
    if model not in ("clip", "paligemma"):
        raise ValueError(f"model must be clip or paligemma, got {model!r}")
    if batch < 2 or rounds < 1:
        raise ValueError(f"need batch >= 2 and rounds >= 1, got batch={batch}, rounds={rounds}")
    torch.manual_seed(seed)
    samples = collect_samples("train", batch, seed, sim=SimParams(), t0=32)  # 64 px
    return time_paths(model, samples, rounds)


def time_paths(
    model: str, samples: list[Sample], rounds: int, vlm: ClipVLM | PaligemmaVLM | None = None
) -> VlmPerf:
    """``measure`` on given samples and, if given, a given model (its config's batch sizes
    should hold the whole batch: ``finetune`` then takes one step, like the bare path)."""
    if vlm is None:
        paths = _clip_paths(samples) if model == "clip" else _paligemma_paths(samples)
    elif isinstance(vlm, ClipVLM):
        paths = _clip_paths(samples, vlm)
    else:
        paths = _paligemma_paths(samples, vlm)
    device, *timed = paths
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


def format_report(p: VlmPerf) -> str:
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


__all__ = ["VlmPerf", "format_report", "measure", "time_paths"]
