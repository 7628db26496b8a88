"""Real checkpoints written locally for the tests (no downloads): open_clip architectures at their
full size (ViT-B-32, the paper's; ViT-S-32) and a PaliGemma of the real model class at a small
configuration, all randomly initialised."""

from __future__ import annotations

from pathlib import Path

from benchmark.vlm.clip import ClipVLM
from benchmark.vlm.paligemma.builtin import build_model
from benchmark.vlm.paligemma.perf import PALIGEMMA_SMALL


def save_vit_b32(out: Path, image_size: int = 32) -> Path:
    """open_clip's ViT-B-32 (151M parameters) at ``image_size`` px, in open_clip's local format
    (``open_clip_config.json`` and ``open_clip_model.safetensors``)."""
    return ClipVLM.random("ViT-B-32", image_size).save(out)


def save_vit_s32(out: Path, image_size: int = 32) -> Path:
    """open_clip's ViT-S-32 (the same layout at width 384: 12 layers per tower) at
    ``image_size`` px, in open_clip's local format."""
    return ClipVLM.random("ViT-S-32", image_size).save(out)


def save_small_paligemma(out: Path) -> Path:
    """``PaliGemmaForConditionalGeneration`` with a SigLIP tower at 32 px and a 2-layer Gemma,
    and its processor, written with ``save_pretrained``: a Hugging Face snapshot's layout."""
    model, processor = build_model(PALIGEMMA_SMALL)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
