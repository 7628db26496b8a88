"""A base model that is a recorded checkpoint (spec section 5, "Real weights"), not trained
weights: the record and how the loaders follow it.

``record`` is what the ``base_model`` stage does instead of base training for a profile with
real ``weights:``: it writes ``weights.json`` (path, files, sizes, content digest) as the base
model. The families' ``load`` follow that record (``resolve``), so every later stage reads the
checkpoint through the same loaders as a built-in one. ``weights.inspect`` checks a checkpoint
before it is recorded; it needs the loaders, and the loaders need only this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.fileio import atomic_directory

POINTER_FILE = "weights.json"  # a base model that is a recorded checkpoint, not trained weights
DIGEST_BLOCK = 1 << 23


class WeightsError(ValueError):
    """A checkpoint that cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class LocalCheckpoint:
    """A checked local checkpoint of one family."""

    family: str
    path: Path  # absolute
    arch: str | None  # CLIP: the open_clip architecture of a bare weights file
    files: tuple[Path, ...]  # every file of the checkpoint (weights, configs, tokenizer)
    image_size: int  # the side, px, its image tower takes

    def identity(self) -> dict[str, Any]:
        """Path, architecture, and each file's size and modification time (cheap, no reads):
        what ``rls3 check`` writes, so that DVC re-records the checkpoint when it changes."""
        return {
            "family": self.family,
            "path": str(self.path),
            "arch": self.arch,
            "image_size": self.image_size,
            "files": [
                {
                    "name": self.name_of(f),
                    "size": f.stat().st_size,
                    "mtime_ns": f.stat().st_mtime_ns,
                }
                for f in self.files
            ],
        }

    def name_of(self, f: Path) -> str:
        """A file's name in the records: relative to the checkpoint's directory."""
        return f.name if self.path.is_file() else str(f.relative_to(self.path))


def content_digest(checkpoint: LocalCheckpoint) -> tuple[str, list[dict[str, Any]]]:
    """SHA-256 over every file (name and bytes), and each file's own digest and size."""
    total = hashlib.sha256()
    files = []
    for f in checkpoint.files:
        one = hashlib.sha256()
        with f.open("rb") as stream:
            while block := stream.read(DIGEST_BLOCK):
                one.update(block)
        name = checkpoint.name_of(f)
        total.update(name.encode() + b"\0" + one.hexdigest().encode())
        files.append({"name": name, "size": f.stat().st_size, "sha256": one.hexdigest()})
    return total.hexdigest(), files


def record(checkpoint: LocalCheckpoint, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``out/weights.json``, the base model that is ``checkpoint`` (atomically)."""
    digest, files = content_digest(checkpoint)
    pointer = {
        "family": checkpoint.family,
        "path": str(checkpoint.path),
        "arch": checkpoint.arch,
        "image_size": checkpoint.image_size,
        "sha256": digest,
        "bytes": sum(f["size"] for f in files),
        "files": files,
    }
    with atomic_directory(out) as tmp:
        (tmp / POINTER_FILE).write_text(json.dumps(pointer, indent=2) + "\n")
    return pointer


def resolve(path: str | os.PathLike[str], arch: str | None = None) -> tuple[Path, str | None]:
    """``(path, arch)`` unchanged, or, for a base model recorded by ``record``, the recorded
    checkpoint's; a recorded file that is gone or changed size is a WeightsError."""
    p = Path(path)
    pointer_file = p / POINTER_FILE
    if not pointer_file.is_file():
        return p, arch
    pointer = json.loads(pointer_file.read_text())
    root = Path(pointer["path"])
    for f in pointer["files"]:
        target = root if root.is_file() else root / f["name"]
        if not target.is_file() or target.stat().st_size != f["size"]:
            raise WeightsError(
                f"{target}, recorded by {pointer_file}, is gone or changed: put the checkpoint "
                "back, or run `dvc repro` (its base_model stage records it again)"
            )
    return root, pointer["arch"]
