"""Base training of the built-in models (``rls3 pretrain-vlm``; spec section 5).

No pretrained weights can be downloaded, so each built-in model is trained here on scenes of the
*train* environment described without spatial terms: it learns which objects are there (and,
for CLIP, where they are in the image, from the metadata alone), but no word of a relation, so
it starts like a pretrained CLIP (bag-of-words behaviour). Both skills are then measured
on the *test* environment and written next to the checkpoint:

Each family's base training lives with the family (``vlm.clip.pretrain``,
``vlm.paligemma.pretrain``; what they share: ``vlm.basetraining``). This module is the stage:
it runs the family's base training, or, for a profile with real ``weights:``, records the
checkpoint instead, and writes the checkpoint and its measurements.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from benchmark import layout
from benchmark.config import (
    ClipEvaluate,
    ClipPretrainConfig,
    PaligemmaEvaluate,
    PaligemmaPretrainConfig,
    Params,
    SimParams,
    override,
)
from benchmark.families import family
from benchmark.fileio import atomic_write_json
from benchmark.provenance import torch_threads


def metrics_path(out: Path) -> Path:
    """The measurements JSON beside a checkpoint directory (``base`` -> ``base_metrics.json``)."""
    return out.with_name(f"{out.name}_metrics.json")


def record_weights(
    model: str,
    path: str,
    arch: str | None = None,
    out: str | os.PathLike[str] | None = None,
    key: str = "weights",
) -> dict[str, Any]:
    """The base model of a profile with real weights (spec section 5): the checkpoint at
    ``path`` checked and recorded (``pointer.record``: path, files, sizes, content digest), not
    trained; its measurements file says so. A checkpoint that cannot be used is a ValueError
    naming ``key``."""
    from benchmark.vlm.pointer import WeightsError, record
    from benchmark.vlm.weights import inspect

    start = time.perf_counter()
    try:
        checkpoint = inspect(model, path, arch)
    except WeightsError as err:
        raise WeightsError(f"{key}: {err}") from err
    target = Path(out) if out is not None else layout.base_model(layout.RESULTS, model)
    pointer = record(checkpoint, target)
    info = {
        "model": model,
        "weights": {k: v for k, v in pointer.items() if k != "files"},
        "files": pointer["files"],
        "train_seconds": 0.0,  # no base training: real pretrained weights
        "record_seconds": round(time.perf_counter() - start, 1),
        "checkpoint": str(target),
    }
    atomic_write_json(metrics_path(target), info)
    return info


def run(
    model: str,
    config: ClipPretrainConfig | PaligemmaPretrainConfig,
    sim: SimParams,
    t0: int,
    evaluate: ClipEvaluate | PaligemmaEvaluate,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Base-train the built-in model of family ``model`` (its ``pretrain`` block: ``config``)
    in the profile's environment (``sim``, ``t0``), evaluating as its ``evaluate`` block says;
    write its checkpoint and measurements and return the latter."""
    vlm, info = family(model).part("base_training")(config, sim, t0, evaluate)
    target = Path(out) if out is not None else layout.base_model(layout.RESULTS, model)
    vlm.save(target)
    info["checkpoint"] = str(target)
    info["device"] = str(vlm.device)
    info["torch_threads"] = torch.get_num_threads()
    atomic_write_json(metrics_path(target), info)
    return info


def base_model_stage(
    params: Params,
    model: str,
    out: str | os.PathLike[str] | None = None,
    **overrides: int | None,
) -> dict[str, Any]:
    """The ``base_model`` stage of ``model``: with real ``weights:`` the checkpoint recorded
    (spec section 5, "Real weights"), else the built-in model base-trained on the profile's
    ``pretrain`` block (``overrides``: some of its keys, None for the block's value), on the
    profile's threads. Returns the measurements written beside the checkpoint (``record_seconds``
    where recorded)."""
    profile = params.active
    weights = profile.model(model).weights
    if weights is not None:
        key = f"profiles.{params.profile}.{model}.weights"
        return record_weights(model, weights.path, weights.arch, out, key)
    config = override(
        profile.model(model).pretrain,
        f"profiles.{params.profile}.{model}.pretrain",
        **{k: v for k, v in overrides.items() if v is not None},
    )
    # the profile's threads, as the runs: `make bench` trains the agents beside this stage,
    # one thread each (two OpenMP threads sharing a core with another process run far slower)
    with torch_threads(profile.threads):
        return run(model, config, profile.sim, profile.loop.t0, profile.model(model).evaluate, out)
