"""The VLMs under test (spec section 5): CLIP through open_clip, PaliGemma through transformers.

Both families implement ``base.VLM``; ``load_vlm`` picks one by name. The family modules are
imported on demand (transformers takes seconds to import).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import torch

from benchmark.config import MODELS, ClipVLMConfig, PaligemmaVLMConfig
from benchmark.samples import Sample
from benchmark.vlm.base import VLM

FAMILIES = MODELS  # config.MODELS: the one list of model families


def load_vlm(
    family: str,
    path: str | os.PathLike[str] | None = None,
    *,
    arch: str | None = None,
    config: Any = None,
    device: torch.device | None = None,
) -> VLM:
    """A VLM of ``family``: the freshly initialised built-in model when ``path`` is None,
    else the checkpoint at the local ``path`` (CLIP: with ``arch`` for a bare weights file).

    ``config`` is the family's ``ClipVLMConfig`` or ``PaligemmaVLMConfig`` (default values when
    None).
    """
    if family == "clip":
        from benchmark.vlm.clip import ClipVLM

        if path is None:
            return ClipVLM.builtin(config, device)
        return ClipVLM.load(path, arch, config, device)
    if family == "paligemma":
        from benchmark.vlm.paligemma import PaligemmaVLM

        if arch is not None:
            raise ValueError("arch applies to CLIP only; a PaliGemma checkpoint names its own")
        if path is None:
            return PaligemmaVLM.builtin(config, device)
        return PaligemmaVLM.load(path, config, device)
    raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")


def vlm_loader(
    family: str, finetune: ClipVLMConfig | PaligemmaVLMConfig, seed: int
) -> Callable[[str | os.PathLike[str]], VLM]:
    """``load_vlm`` for one run: a function path -> VLM with the profile's fine-tuning config
    (``finetune``, the family's block of params.yaml) and the run's seed."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    config = dataclasses.replace(finetune, seed=seed)
    return lambda path: load_vlm(family, path, config=config)


__all__ = ["FAMILIES", "VLM", "Sample", "load_vlm", "vlm_loader"]
