"""A local PaliGemma checkpoint, checked before it is recorded (spec section 5, "Real
weights"): a Hugging Face snapshot directory with its processor. Every shard's header is
compared with the model its ``config.json`` describes, built on PyTorch's meta device, so a 3B
checkpoint is checked without reading 12 GB; the processor must load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import torch

from benchmark.vlm.pointer import LocalCheckpoint, WeightsError
from benchmark.vlm.weights import (
    PICKLE_SUFFIXES,
    checkpoint_family,
    hf_model_type,
    numel,
    safetensors_header,
    weight_files,
)

NAME = "paligemma"
KIND = {"clip": "an open_clip (CLIP)"}  # how a message names another family's checkpoint


def _kind(other: str) -> str:
    return KIND.get(other, f"a {other}")


def looks_like(path: Path) -> bool:
    """A PaliGemma: a snapshot whose ``config.json`` says so, or a ``.safetensors`` file with a
    vision tower or a multimodal projector."""
    if path.is_dir():
        config = path / "config.json"
        try:
            return config.is_file() and json.loads(config.read_text()).get("model_type") == NAME
        except ValueError:
            return False
    if path.suffix != ".safetensors":
        return False
    return any(
        "vision_tower" in k or "multi_modal_projector" in k for k in safetensors_header(path)
    )


def inspect(p: Path, arch: str | None) -> LocalCheckpoint:
    """Check the PaliGemma snapshot at ``p`` (absolute). A WeightsError says what is wrong."""
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor

    if arch is not None:
        raise WeightsError("arch applies to CLIP only; a PaliGemma snapshot names its own")
    other = checkpoint_family(p) if p.is_dir() or p.suffix == ".safetensors" else None
    if p.is_file():
        if other not in (None, NAME):
            raise WeightsError(
                f"{p} holds {_kind(str(other))} model's weights: give it to the {other} key"
            )
        raise WeightsError(
            f"{p} is a file: a PaliGemma checkpoint is a Hugging Face snapshot directory "
            "(config.json, safetensors shards, tokenizer files)"
        )
    if other not in (None, NAME):
        raise WeightsError(
            f"{p} is {_kind(str(other))} checkpoint: give it to the {other} key; the paligemma "
            "key takes a Hugging Face PaliGemma snapshot directory"
        )
    model_type = hf_model_type(p)
    if model_type is None:
        raise WeightsError(
            f"{p} has no config.json: a PaliGemma checkpoint is a Hugging Face snapshot "
            "directory (config.json, safetensors shards, tokenizer files)"
        )
    if model_type != NAME:
        raise WeightsError(f"{p} is a {model_type} checkpoint, not a PaliGemma (config.json)")
    files = weight_files(p)
    stored = 0
    for f in files:
        table = safetensors_header(f)
        owner = checkpoint_family(f)
        if owner not in (None, NAME):
            raise WeightsError(f"{f} holds {_kind(str(owner))} model's weights, not PaliGemma's")
        stored += sum(numel(v["shape"]) for v in table.values())
    import benchmark.vlm.locnet  # noqa: F401  (the built-in tower's config class)

    config = PaliGemmaConfig.from_pretrained(p)
    with torch.device("meta"):
        model = PaliGemmaForConditionalGeneration(config)
    expected = sum(t.numel() for t in model.parameters())
    tied = sum(
        model.get_parameter(k).numel() for k in getattr(model, "_tied_weights_keys", None) or {}
    )
    if stored not in (expected, expected + tied):
        raise WeightsError(
            f"{p}: its safetensors hold {stored:,} numbers, the model its config.json describes "
            f"has {expected:,} parameters (a missing shard, or another model's config?)"
        )
    try:
        processor = PaliGemmaProcessor.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        raise WeightsError(
            f"{p}: its processor does not load (tokenizer and preprocessor_config.json "
            f"files belong beside the weights): {str(err).splitlines()[0][:200]}"
        ) from err
    side = int(cast(Any, config.vision_config).image_size)
    processed = processor.image_processor.size
    if processed.get("height", side) != side:
        raise WeightsError(
            f"{p}: its image processor resizes to {processed} but its vision tower takes {side} px"
        )
    others = [f for f in sorted(p.iterdir()) if f.is_file() and f.suffix not in PICKLE_SUFFIXES]
    every = tuple(sorted(set(others) | set(files)))
    return LocalCheckpoint(NAME, p, None, every, side)
