"""A local CLIP checkpoint, checked before it is recorded (spec section 5, "Real weights"): a
directory in open_clip's local format, or an open_clip architecture name plus a
``.safetensors`` file (or a directory holding one). It must load through open_clip's own
factory; its image size is its tower's."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.vlm.pointer import LocalCheckpoint, WeightsError
from benchmark.vlm.weights import (
    checkpoint_family,
    hf_model_type,
    safetensors_header,
    weight_files,
)

NAME = "clip"
OPEN_CLIP_CONFIG = "open_clip_config.json"


def looks_like(path: Path) -> bool:
    """An open_clip checkpoint: a directory in open_clip's local format, or a ``.safetensors``
    file whose tensors are an image tower (``visual.``) and a text projection."""
    if path.is_dir():
        return (path / OPEN_CLIP_CONFIG).is_file()
    if path.suffix != ".safetensors":
        return False
    keys = set(safetensors_header(path))
    return any(k.startswith("visual.") for k in keys) and "text_projection" in keys | {
        k.split(".")[-1] for k in keys
    }


def inspect(p: Path, arch: str | None) -> LocalCheckpoint:
    """Check the open_clip checkpoint at ``p`` (absolute); ``arch`` names the architecture of
    a bare weights file. A WeightsError says what is wrong."""
    from benchmark.vlm.clip.model import ClipVLM, register_builtin

    if p.is_dir() and not (p / OPEN_CLIP_CONFIG).is_file():
        model_type = hf_model_type(p)
        if model_type is not None:
            raise WeightsError(
                f"{p} is a Hugging Face {model_type} snapshot (config.json), not an open_clip "
                "checkpoint: the clip key takes open_clip weights (a directory with "
                f"{OPEN_CLIP_CONFIG}, or arch plus a .safetensors file)"
            )
    files = weight_files(p)
    for f in files:
        other = checkpoint_family(f)
        if other not in (None, NAME):
            raise WeightsError(
                f"{f} holds a {other} model's weights, not an open_clip model's: give it to the "
                f"{other} key"
            )
    local_dir = p.is_dir() and (p / OPEN_CLIP_CONFIG).is_file()
    if not local_dir:
        register_builtin()
        import open_clip

        if arch is None:
            raise WeightsError(
                f"{p} is not in open_clip's local format (no {OPEN_CLIP_CONFIG}): name its "
                "architecture, weights: {path: ..., arch: ViT-B-32}"
            )
        if arch not in open_clip.list_models():
            raise WeightsError(
                f"arch {arch!r} is not an open_clip architecture (open_clip.list_models(), "
                "e.g. ViT-B-32, ViT-B-16, ViT-L-14)"
            )
    try:
        vlm = ClipVLM.load(p, None if local_dir else arch, device=torch.device("cpu"))
    except (RuntimeError, KeyError, ValueError, AssertionError) as err:  # open_clip asserts
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(
            f"{p} does not load as open_clip {arch or 'local-dir'}: {first[:300]}"
        ) from err
    size = vlm.model.visual.preprocess_cfg.get("size", 0)
    side = int(size[0] if isinstance(size, list | tuple) else size)
    extra = [p / OPEN_CLIP_CONFIG] if local_dir else []
    return LocalCheckpoint(NAME, p, None if local_dir else arch, tuple(extra + files), side)
