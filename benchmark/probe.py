"""The learnability probe (``rls3 probe learnability``; spec section 5, "Learnability").

Can the base model learn the relations at all? From the base checkpoint, the loop's own
``finetune`` (with the profile's fine-tuning config, locked image trunk included) runs on a fixed
set of random-placement train-environment samples for a fixed number of epochs, and the fixed
test set (``datasets/test``, the one every run is scored on) is scored before and after:

- the metric, per spatial term and per number of terms (``vlm.base.subset_metrics``);
- an *image-shuffled control* (``datasets.shuffled_images``): each test sample's texts scored
  against another test sample's image (a fixed derangement, the one every run scores too). A
  model that learnt the relations from the images gains on the real pairs only; one that learnt
  text priors (which captions are common, which negatives are odd) gains on the control as well.

One draw of train samples is one draw: the probe fine-tunes ``draws`` fresh copies of the base,
each on its own draw of samples, and reports the mean and the range; the targets (spec section 5)
are checked on the mean and written with the figures, so the DVC metric says
whether the embedded default can learn: CLIP accuracy from <= 0.35 to >= 0.60, the control within
0.10 of its base value and at least 0.20 below the fine-tuned accuracy, every term above its base
value; PaliGemma's rubric at least 0.8 above both image-blind controls after fine-tuning (the
gap is what the image adds: a base that may know the spatial words as language gains on the
controls too), every term above its base value.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.captions import rubric_score
from benchmark.config import LearnabilityConfig, Params, SimParams, override
from benchmark.datasets import derangement, read_dataset, shuffled_images
from benchmark.families import family
from benchmark.fileio import atomic_write_json
from benchmark.samples import Sample
from benchmark.sampling import collect_samples
from benchmark.vlm import vlm_loader
from benchmark.vlm.base import VLM, subset_metrics


def score(
    vlm: VLM, test: Sequence[Sample], control: Sequence[Sample], donors: np.ndarray
) -> dict[str, float]:
    """The metric on the test samples (overall, per term, per number of terms) and on the
    image-shuffled control; for a family that answers in words (PaliGemma) also the
    *term-shuffled* control: each answer scored against the terms of the sample whose image the
    image-shuffled control borrowed."""
    results = vlm.evaluate(test)
    out = {"metric": vlm.metric(results), "control": vlm.metric(vlm.evaluate(control))}
    if family(vlm.family).answers_questions:
        out["control_terms"] = float(
            np.mean(
                [
                    rubric_score(r.answer, test[int(j)].record.terms)
                    for r, j in zip(results, donors, strict=True)
                ]
            )
        )
    return {**out, **subset_metrics(vlm, test, results, prefix="test")}


def targets(before: dict[str, float], after: dict[str, float], model: str) -> dict[str, bool]:
    """The family's learnability contract (spec section 5), each point on its own."""
    return dict(family(model).part("learnability_targets")(before, after))


def finetune_steps(vlm: VLM, samples: int, epochs: int) -> int:
    """``finetune``'s K for ``epochs`` passes over ``samples``: epochs for CLIP, minibatch steps
    for PaliGemma (whose K counts steps)."""
    if family(vlm.family).k_unit == "steps":
        return epochs * math.ceil(samples / vlm.config.batch_size)
    return epochs


def _draw(
    vlm: VLM,
    seed: int,
    config: LearnabilityConfig,
    test: Sequence[Sample],
    control: Sequence[Sample],
    donors: np.ndarray,
    sim: SimParams,
    t0: int,
) -> dict[str, Any]:
    """One draw: ``vlm`` (a fresh base, modified in place) fine-tuned on ``config.samples``
    random-placement samples drawn with ``seed``, then scored."""
    start = time.perf_counter()
    train = collect_samples("train", config.samples, seed, sim=sim, t0=t0)
    collected = time.perf_counter()
    k = finetune_steps(vlm, len(train), config.epochs)
    losses = vlm.finetune(train, k, seed=seed)
    tuned = time.perf_counter()
    after = score(vlm, test, control, donors)
    return {
        "seed": seed,
        "after": after,
        "finetune_k": k,
        "train_samples": len(train),
        "finetune_loss_first_last": [losses[0], losses[-1]] if losses else [],
        "seconds": {
            "collect": round(collected - start, 1),
            "finetune": round(tuned - collected, 1),
            "evaluate": round(time.perf_counter() - tuned, 1),
        },
    }


def learnability(
    load: Callable[[], VLM],
    datasets: str | Path,
    config: LearnabilityConfig,
    model: str,
    *,
    sim: SimParams,
    t0: int,
) -> dict[str, Any]:
    """Run the probe: ``load()`` gives a fresh base model; ``config.draws`` draws of train
    samples (seeds ``config.seed``, ``config.seed + 1``, ...; in the profile's environment,
    ``sim`` and ``t0``) each fine-tune one. The figures
    after fine-tuning are the draws' mean (``after``) and range (``after_range``); the
    targets are checked on the mean."""
    start = time.perf_counter()
    test = read_dataset(Path(datasets) / "test").samples
    donors = derangement(len(test), config.seed)
    control = shuffled_images(test, donors)
    vlm = load()
    before = score(vlm, test, control, donors)
    scored = time.perf_counter()
    draws = [
        _draw(vlm if d == 0 else load(), config.seed + d, config, test, control, donors, sim, t0)
        for d in range(config.draws)
    ]
    after = {key: float(np.mean([d["after"][key] for d in draws])) for key in draws[0]["after"]}
    spread = {
        key: [float(np.min(v)), float(np.max(v))]
        for key in after
        for v in [[d["after"][key] for d in draws]]
    }
    gains = [d["after"]["metric"] - before["metric"] for d in draws]
    return {
        "model": model,
        "config": asdict(config),
        "finetune_config": asdict(vlm.config) if hasattr(vlm, "config") else {},
        "draws": len(draws),
        "train_samples": draws[0]["train_samples"],
        "finetune_k": draws[0]["finetune_k"],
        "sample_passes": draws[0]["train_samples"] * config.epochs,
        "test_samples": len(test),
        "before": before,
        "after": after,
        "after_range": spread,
        "gain": after["metric"] - before["metric"],
        "gain_range": [min(gains), max(gains)],
        "control_gain": after["control"] - before["control"],
        "targets": targets(before, after, model),
        "per_draw": draws,
        "seconds": {
            "evaluate_base": round(scored - start, 1),
            "draws": [sum(d["seconds"].values()) for d in draws],
            "total": round(time.perf_counter() - start, 1),
        },
    }


def format_result(result: dict[str, Any]) -> str:
    """The probe's figures as a small table: before, and after as the draws' mean [range]."""
    before, after, spread = result["before"], result["after"], result["after_range"]
    lines = [
        f"learnability of {result['model']}: {result['draws']} draw(s) of "
        f"{result['train_samples']} train samples x {result['config']['epochs']} epochs = "
        f"{result['sample_passes']} sample passes each, scored on {result['test_samples']} "
        f"test samples ({result['seconds']['total']:.0f} s)",
        f"{'':<22} {'before':>7} {'after (mean [min, max] over draws)':>36}",
    ]
    for key in before:
        low, high = spread.get(key, [float("nan")] * 2)
        lines.append(
            f"{key:<22} {before[key]:>7.3f} {after.get(key, float('nan')):>9.3f} "
            f"[{low:.3f}, {high:.3f}]"
        )
    lines += [
        f"target {k} (on the mean): {'met' if v else 'NOT met'}"
        for k, v in result["targets"].items()
    ]
    return "\n".join(lines)


def probe_stage(
    params: Params,
    model: str,
    *,
    base: Path,
    datasets: Path,
    out: Path,
    samples: int | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    """The ``probe_learnability`` stage: the profile's ``probe`` block (``samples``, ``epochs``:
    instead of its values) on the base model at ``base``, with the family's fine-tuning config;
    the result written to ``out`` and returned."""
    profile = params.active
    given = {"samples": samples, "epochs": epochs}
    config = override(
        profile.model(model).probe,
        f"profiles.{params.profile}.{model}.probe",
        **{k: v for k, v in given.items() if v is not None},
    )
    if not base.exists():
        raise FileNotFoundError(
            f"no base {model} model at {base}; run `rls3 pretrain-vlm --model {model}` first"
        )
    loader = vlm_loader(model, profile.model(model).vlm_config(), config.seed)
    result = learnability(
        lambda: loader(base), datasets, config, model, sim=profile.sim, t0=profile.loop.t0
    )
    atomic_write_json(out, result)
    return result
