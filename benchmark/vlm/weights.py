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
It returns a ``pointer.LocalCheckpoint``, which ``pointer.record`` writes as the base model. The
loaders need only the pointer; this inspection needs the loaders, so the two are apart.
Nothing here downloads anything.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, cast

from benchmark.vlm.pointer import LocalCheckpoint, WeightsError

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


def numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def weight_files(path: Path) -> list[Path]:
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


def hf_model_type(path: Path) -> str | None:
    config = path / "config.json"
    if not config.is_file():
        return None
    try:
        return str(json.loads(config.read_text()).get("model_type"))
    except ValueError as err:
        raise WeightsError(f"{config} is not valid JSON ({err})") from err


def checkpoint_family(path: Path) -> str | None:
    """The family whose checkpoint ``path`` is, by its files (a directory by its config files,
    a ``.safetensors`` file by its tensor names); None if no family claims it."""
    from benchmark.families import FAMILIES

    for f in FAMILIES.values():
        if f.part("looks_like")(path):
            return f.name
    return None


# ---------------------------------------------------------------------------- inspect


def inspect(model: str, path: str | os.PathLike[str], arch: str | None = None) -> LocalCheckpoint:
    """Check a local checkpoint of family ``model`` in seconds; a WeightsError says what is
    wrong (the family's own ``checkpoint.inspect`` does the checking)."""
    from benchmark.families import family

    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(
            f"{p} not found: put the checkpoint there ({HOW}) or set weights: null for the "
            "built-in model (weights load from a local path only, never from a hub)"
        )
    try:
        inspect_family = family(model).part("inspect")
    except ValueError as err:
        raise WeightsError(str(err)) from None
    return cast(LocalCheckpoint, inspect_family(p.resolve(), arch))


__all__ = [
    "HOW",
    "checkpoint_family",
    "hf_model_type",
    "inspect",
    "numel",
    "safetensors_header",
    "weight_files",
]
