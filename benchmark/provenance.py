"""Where results come from: digests of files and of the code, and the torch threads a result's
sums depend on. The runs, the agents and the report's fingerprint use them; nothing here imports
a model, so the agents' code does not depend on the VLMs'.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
# The one list of the code a run's results depend on: every module the loop imports. The check
# stage writes its digest (``code_manifest``) to results/check/run_code.json, the one code dep of
# dvc.yaml's run stages, and a change to any of them makes a run with a checkpoint start afresh.
CODE_PATHS = (
    "loop.py", "arms.py", "agents.py", "captions.py", "config.py", "datasets.py", "external.py",
    "families.py", "fileio.py", "layout.py", "records.py", "tracking.py", "checkpoint.py",
    "provenance.py", "samples.py", "sampling.py", "quiet.py", "sim", "vlm",
)  # fmt: skip
# What a pre-trained agent depends on besides its params: every module ``agents`` imports (its
# digest is results/check/agent_code.json, the agent stage's code dep).
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


def _source_files(root: Path, paths: tuple[str, ...]) -> Iterator[Path]:
    """The source files of ``paths`` under ``root``, in digest order; bytecode caches are left
    out, so importing the code does not change what they hold."""
    for name in paths:
        path = root / name
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
                yield f


def code_digest(root: Path | None = None, paths: tuple[str, ...] = CODE_PATHS) -> str:
    """SHA-256 over the source the runs depend on (``paths`` under ``root``; default
    ``CODE_PATHS``)."""
    return str(code_manifest(root, paths)["digest"])


def code_manifest(root: Path | None = None, paths: tuple[str, ...] = CODE_PATHS) -> dict[str, Any]:
    """``code_digest`` and each file's SHA-256 (names relative to ``root``), as JSON would hold
    them: what the check stage writes for the stages whose code it stands for. One small file
    as their dep, instead of every path listed in each of a hundred stages, keeps dvc.lock
    small (DVC reads and rewrites all of it for every stage it runs), and names the file that
    changed."""
    root = root or CODE_ROOT
    digest, files = hashlib.sha256(), {}
    for f in _source_files(root, paths):
        name, data = str(f.relative_to(root)), f.read_bytes()
        digest.update(name.encode())
        digest.update(data)
        files[name] = hashlib.sha256(data).hexdigest()
    return {"paths": list(paths), "digest": digest.hexdigest(), "files": files}
