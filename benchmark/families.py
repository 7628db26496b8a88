"""The model families: the one place that maps a model's name to its parts.

A family is a package under ``benchmark/vlm/`` (``clip``, ``paligemma``) holding its model, its
built-in model and that model's base training, its checkpoint inspection, its learnability
contract and how its speed is measured. The rest of the benchmark (the CLI, the check, the
probe, the report, the perf commands) asks the family's record here and never compares a
model's name. Adding a family is adding its package and one record below.

This module imports nothing heavy: the parts are named as ``module:attribute`` and loaded when
asked for, so the params schema can list the families without importing torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """What the benchmark needs to know of one VLM family."""

    name: str
    metric_name: str  # the validation and test metric, in words (higher is better)
    hardness_name: str  # a generated sample's hardness under the VLM, in words
    k_unit: str  # what fine-tuning's K counts: "epochs" over the batch, or optimizer "steps"
    pretrain_length: str  # the base training's length knob: the pretrain block's key
    # True: the VLM answers a question in words, scored with the rubric (an external set whose
    # items name their objects is asked its position question); False: it ranks captions
    answers_questions: bool
    external_choice: str  # how it picks among an external item's captions, in words
    vlm: str  # the VLM class (``base.VLM``)
    base_training: str  # (config, sim, t0, evaluate) -> (vlm, info): base training
    base_training_passes: str  # (pretrain config) -> sample passes of that training
    inspect: str  # (path, arch) -> pointer.LocalCheckpoint: the family's checkpoint, checked
    looks_like: str  # (a directory or .safetensors file) -> bool: the family's checkpoint
    learnability_targets: str  # (before, after) -> {target: met}: the probe's contract
    perf_paths: str  # (samples, vlm) -> the API paths and their bare ones, timed by perf.vlm
    gpu_model: str  # (small, image size, device) -> (vlm, batch): `rls3 perf gpu`'s model

    def part(self, name: str) -> Any:
        """The attribute that the field ``name`` names, imported."""
        module, attribute = getattr(self, name).split(":")
        return getattr(importlib.import_module(module), attribute)


PARTS = (
    "vlm",
    "base_training",
    "base_training_passes",
    "inspect",
    "looks_like",
    "learnability_targets",
    "perf_paths",
    "gpu_model",
)  # the fields above that name a part to import


def _parts(package: str, model_class: str, base_training: str) -> dict[str, str]:
    """The part names every family's package provides, in the same modules."""
    return {
        "vlm": f"{package}.model:{model_class}",
        "base_training": f"{package}.pretrain:{base_training}",
        "base_training_passes": f"{package}.pretrain:sample_passes",
        "inspect": f"{package}.checkpoint:inspect",
        "looks_like": f"{package}.checkpoint:looks_like",
        "learnability_targets": f"{package}.contract:learnability_targets",
        "perf_paths": f"{package}.perf:perf_paths",
        "gpu_model": f"{package}.perf:gpu_model",
    }


FAMILIES: dict[str, Family] = {
    "clip": Family(
        name="clip",
        metric_name="accuracy (caption above both negatives)",
        hardness_name="per-sample contrastive loss (eq. 1)",
        k_unit="epochs",
        pretrain_length="epochs",
        answers_questions=False,
        external_choice="accuracy: the true caption scores above every alternative",
        **_parts("benchmark.vlm.clip", "ClipVLM", "pretrain_clip"),
    ),
    "paligemma": Family(
        name="paligemma",
        metric_name="rubric score 1-5",
        hardness_name="6 - rubric score",
        k_unit="steps",
        pretrain_length="steps",
        answers_questions=True,
        external_choice="accuracy: the true caption is the most likely answer",
        **_parts("benchmark.vlm.paligemma", "PaligemmaVLM", "pretrain_paligemma"),
    ),
}
MODELS: tuple[str, ...] = tuple(FAMILIES)


def family(name: str) -> Family:
    """The family called ``name``; another name is a ValueError listing the families."""
    if name not in FAMILIES:
        raise ValueError(f"model = {name!r} is not allowed; expected one of {list(MODELS)}")
    return FAMILIES[name]
