"""The VLMs under test (spec section 5): CLIP through open_clip, PaliGemma through transformers.

Each family (``benchmark.families``) implements ``base.VLM`` in its own package; ``load_vlm``
asks the family for its class. The family packages are imported on demand (transformers takes
seconds to import).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any, cast

import torch

from benchmark.config import ClipVLMConfig, PaligemmaVLMConfig
from benchmark.families import family
from benchmark.samples import Sample
from benchmark.vlm.base import VLM


def load_vlm(
    model: str,
    path: str | os.PathLike[str] | None = None,
    *,
    arch: str | None = None,
    config: Any = None,
    device: torch.device | None = None,
) -> VLM:
    """A VLM of family ``model``: the freshly initialised built-in model when ``path`` is None,
    else the checkpoint at the local ``path`` (CLIP: with ``arch`` for a bare weights file).

    ``config`` is the family's ``ClipVLMConfig`` or ``PaligemmaVLMConfig`` (default values when
    None).
    """
    cls = family(model).part("vlm")
    if path is None:
        if arch is not None:
            raise ValueError("arch names the architecture of a checkpoint's weights file")
        return cast(VLM, cls.builtin(config, device))
    return cast(VLM, cls.load(path, arch=arch, config=config, device=device))


def vlm_loader(
    model: str, config: ClipVLMConfig | PaligemmaVLMConfig, seed: int
) -> Callable[[str | os.PathLike[str]], VLM]:
    """``load_vlm`` for one run: a function path -> VLM with the profile's model knobs
    (``config``: the family's ``evaluate`` and ``finetune`` blocks, ``vlm_config``) and the
    run's seed."""
    family(model)  # another name: a ValueError listing the families
    config = dataclasses.replace(config, seed=seed)
    return lambda path: load_vlm(model, path, config=config)


__all__ = ["VLM", "Sample", "load_vlm", "vlm_loader"]
