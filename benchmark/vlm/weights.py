"""Real pretrained weights (spec section 5, "Real weights"): a local checkpoint, checked, recorded.

A profile's ``weights:`` (one per model block) is null for the built-in model and its base
training, or a local path (``config.Weights``):

- CLIP: a directory in open_clip's local format (``open_clip_config.json`` and a
  ``.safetensors`` file: what ``ClipVLM.save`` writes and what an open_clip hub snapshot holds),
  or an architecture name (``arch``, e.g. ``ViT-B-32``) plus a ``.safetensors`` file or a
  directory holding one;
- PaliGemma: a Hugging Face snapshot directory with its processor (``config.json`` of model type
  ``paligemma``, safetensors shards, tokenizer and image-processor files).

``inspect`` checks one in seconds, before any long stage (``rls3 check``): it exists, it is the
family's, its weights are safetensors (a pickle is refused, never opened), they load (CLIP: the
real loader; PaliGemma: every shard's header against the model its config describes, built on
the meta device, so that a 3B checkpoint is checked without reading 12 GB), and its image size.
It returns a ``pointer.Checkpoint``, which ``pointer.record`` writes as the base model. The
loaders need only the pointer; this inspection needs the loaders, so the two are apart.
Nothing here downloads anything.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, cast

import torch

from benchmark.vlm.pointer import Checkpoint, WeightsError

OPEN_CLIP_CONFIG = "open_clip_config.json"
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
HOW = 'docs/guide.md, "Real weights"'


# ---------------------------------------------------------------------------- safetensors


def safetensors_header(file: Path) -> dict[str, Any]:
    """The tensor table of a ``.safetensors`` file, read without touching the data; a file
    that is not one (a pickle named .safetensors, a truncated download) is a WeightsError."""
    size = file.stat().st_size
    with file.open("rb") as f:
        head = f.read(8)
        if head[:2] in (b"PK", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
            raise WeightsError(
                f"{file} is a pickled checkpoint (torch.save), which is never loaded: "
                f"convert it to safetensors ({HOW})"
            )
        if len(head) < 8:
            raise WeightsError(f"{file} is not a safetensors file (empty or truncated)")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, 100_000_000):
            raise WeightsError(f"{file} is not a safetensors file (bad header length)")
        try:
            table = json.loads(f.read(length))
        except ValueError as err:
            raise WeightsError(f"{file} is not a safetensors file ({err})") from err
    tensors = {k: v for k, v in table.items() if k != "__metadata__"}
    end = max((v["data_offsets"][1] for v in tensors.values()), default=0)
    if 8 + length + end != size:
        raise WeightsError(
            f"{file} is truncated or padded: the header says {8 + length + end} bytes, "
            f"the file has {size} (an interrupted download?)"
        )
    return tensors


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _weight_files(path: Path) -> list[Path]:
    """The checkpoint's ``.safetensors`` files; pickled weights alone are refused."""
    if path.is_file():
        if path.suffix != ".safetensors":
            kind = "pickled" if path.suffix in PICKLE_SUFFIXES else "not a safetensors"
            raise WeightsError(
                f"{path} is a {kind} checkpoint, which is never loaded: only .safetensors "
                f"weights are read (convert it: {HOW})"
            )
        return [path]
    found = sorted(path.rglob("*.safetensors"))
    if found:
        return found
    pickles = sorted(p.name for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise WeightsError(
            f"{path} holds only pickled weights ({', '.join(pickles[:3])}), which are never "
            f"loaded: put the checkpoint's .safetensors files there ({HOW})"
        )
    raise WeightsError(
        f"{path} holds no weights (no .safetensors file): put the checkpoint there ({HOW})"
    )


def _hf_model_type(path: Path) -> str | None:
    config = path / "config.json"
    if not config.is_file():
        return None
    try:
        return str(json.loads(config.read_text()).get("model_type"))
    except ValueError as err:
        raise WeightsError(f"{config} is not valid JSON ({err})") from err


def _looks_like(keys: set[str]) -> str | None:
    """The family a tensor table belongs to, from its names."""
    if any(k.startswith("visual.") for k in keys) and "text_projection" in keys | {
        k.split(".")[-1] for k in keys
    }:
        return "clip"
    if any("vision_tower" in k or "multi_modal_projector" in k for k in keys):
        return "paligemma"
    return None


# ---------------------------------------------------------------------------- inspect


def inspect(family: str, path: str | os.PathLike[str], arch: str | None = None) -> Checkpoint:
    """Check a local checkpoint of ``family`` in seconds; a WeightsError says what is wrong."""
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(
            f"{p} not found: put the checkpoint there ({HOW}) or set weights: null for the "
            "built-in model (weights load from a local path only, never from a hub)"
        )
    p = p.resolve()
    if family == "clip":
        return _inspect_clip(p, arch)
    if family == "paligemma":
        if arch is not None:
            raise WeightsError("arch applies to CLIP only; a PaliGemma snapshot names its own")
        return _inspect_paligemma(p)
    raise WeightsError(f"family must be clip or paligemma, got {family!r}")


def _inspect_clip(p: Path, arch: str | None) -> Checkpoint:
    from benchmark.vlm.clip import ClipVLM, register_builtin

    if p.is_dir() and not (p / OPEN_CLIP_CONFIG).is_file():
        model_type = _hf_model_type(p)
        if model_type is not None:
            raise WeightsError(
                f"{p} is a Hugging Face {model_type} snapshot (config.json), not an open_clip "
                "checkpoint: the clip key takes open_clip weights (a directory with "
                f"{OPEN_CLIP_CONFIG}, or arch plus a .safetensors file)"
            )
    files = _weight_files(p)
    for f in files:
        if _looks_like(set(safetensors_header(f))) == "paligemma":
            raise WeightsError(
                f"{f} holds a PaliGemma's weights, not an open_clip model's: give it to the "
                "paligemma key"
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
    return Checkpoint("clip", p, None if local_dir else arch, tuple(extra + files), side)


def _inspect_paligemma(p: Path) -> Checkpoint:
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor

    if p.is_file():
        if p.suffix == ".safetensors" and _looks_like(set(safetensors_header(p))) == "clip":
            raise WeightsError(
                f"{p} holds an open_clip (CLIP) model's weights: give it to the clip key"
            )
        raise WeightsError(
            f"{p} is a file: a PaliGemma checkpoint is a Hugging Face snapshot directory "
            "(config.json, safetensors shards, tokenizer files)"
        )
    if (p / OPEN_CLIP_CONFIG).is_file():
        raise WeightsError(
            f"{p} is an open_clip (CLIP) checkpoint ({OPEN_CLIP_CONFIG}): give it to the clip "
            "key; the paligemma key takes a Hugging Face PaliGemma snapshot directory"
        )
    model_type = _hf_model_type(p)
    if model_type is None:
        raise WeightsError(
            f"{p} has no config.json: a PaliGemma checkpoint is a Hugging Face snapshot "
            "directory (config.json, safetensors shards, tokenizer files)"
        )
    if model_type != "paligemma":
        raise WeightsError(f"{p} is a {model_type} checkpoint, not a PaliGemma (config.json)")
    files = _weight_files(p)
    stored = 0
    for f in files:
        table = safetensors_header(f)
        if _looks_like(set(table)) == "clip":
            raise WeightsError(f"{f} holds an open_clip (CLIP) model's weights, not PaliGemma's")
        stored += sum(_numel(v["shape"]) for v in table.values())
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
    return Checkpoint("paligemma", p, None, every, side)


__all__ = ["inspect", "safetensors_header"]
