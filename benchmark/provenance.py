"""Where results come from: digests of files and of the code, and the torch threads a result's
sums depend on. The runs, the agents and the report's fingerprint use them; nothing here imports
a model, so the agents' code does not depend on the VLMs'.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch


def files_digest(path: Path) -> str:
    """SHA-256 over a file, or over a directory's files (relative names and bytes, sorted)."""
    digest = hashlib.sha256()
    root = path if path.is_dir() else path.parent
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(str(f.relative_to(root)).encode())
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


CODE_ROOT = Path(__file__).resolve().parent  # the ``benchmark`` package
# The one list of the code a run's results depend on: every module the loop imports. dvc.yaml's
# five run stages list the same paths as deps (tests/test_stages.py keeps them equal), and a
# change to any of them makes a run with a checkpoint start afresh.
CODE_PATHS = (
    "loop.py", "arms.py", "agents.py", "captions.py", "config.py", "datasets.py", "external.py",
    "families.py", "fileio.py", "layout.py", "records.py", "tracking.py", "checkpoint.py",
    "provenance.py", "samples.py", "sampling.py", "quiet.py", "sim", "vlm",
)  # fmt: skip
# What a pre-trained agent depends on besides its params: every module ``agents`` imports (the
# agent stage's deps in dvc.yaml, kept equal by the same test).
AGENT_CODE_PATHS = (
    "agents.py", "arms.py", "config.py", "families.py", "fileio.py", "provenance.py", "quiet.py",
    "sim",
)  # fmt: skip


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` (the profile's ``threads``: the order of a
    run's sums, so its files, depend on it), and restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def code_digest(root: Path | None = None, paths: tuple[str, ...] = CODE_PATHS) -> str:
    """SHA-256 over the source the runs depend on (``paths`` under ``root``; default
    ``CODE_PATHS``); bytecode caches are left out, so importing the code does not change it."""
    root = root or CODE_ROOT
    digest = hashlib.sha256()
    for name in paths:
        path = root / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if not f.is_file() or "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            digest.update(str(f.relative_to(root)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()
