"""What both VLM families share: the interface, the device, checkpoints on disk.

A family (``clip``, ``paligemma``) implements ``VLM``:
``evaluate`` gives per-sample results, ``j2`` the extrinsic reward of eq. 3 over them, ``metric``
the validation/test metric (higher is better), ``finetune`` K epochs (CLIP) or K steps
(PaliGemma) on a batch, ``save`` a safetensors checkpoint that the family's ``load`` reads back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from benchmark.captions import TERMS, term_key
from benchmark.samples import Sample

T = TypeVar("T")

# ---------------------------------------------------------------------------- object lists

# Base training describes scenes without spatial terms (spec section 5, "Embedded defaults").
OBJECTS_PROMPT = "What objects are in the image?"


def object_list_caption(names: Sequence[str]) -> str:
    """ "a red mug, an orange can and a soccer ball": the objects, in the given order."""
    items = [f"{'an' if n[0] in 'aeiou' else 'a'} {n}" for n in names]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def parse_object_names(text: str, vocabulary: Sequence[str]) -> tuple[str, ...]:
    """The object names of ``vocabulary`` that ``text`` mentions, in vocabulary order."""
    lowered = f" {' '.join(text.lower().replace(',', ' ').replace('.', ' ').split())} "
    return tuple(n for n in vocabulary if f" {n} " in lowered)


# ---------------------------------------------------------------------------- device, progress


def default_device() -> torch.device:
    """CUDA when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; nothing on the CPU (bf16 matmuls are slower than fp32 there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) for model building and training."""
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------- files


def module_digest(module: torch.nn.Module) -> str:
    """A content digest of a module's state (every parameter and buffer, names and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def missing_keys(keys: Sequence[bytes], cache: Mapping[bytes, Any]) -> dict[bytes, int]:
    """The keys ``cache`` lacks, each with the index of its first occurrence in ``keys`` (so a
    repeated image is computed once)."""
    missing: dict[bytes, int] = {}
    for i, key in enumerate(keys):
        if key not in cache:
            missing.setdefault(key, i)
    return missing


def require_path(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, or FileNotFoundError naming it (never a fallback to a built-in)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p} (weights load from a local path only)")
    return p


# ---------------------------------------------------------------------------- the interface


class VLM(ABC):
    """A vision-language model under test: evaluate, reward, fine-tune, save."""

    family: ClassVar[str]
    config: Any  # the family's config (``ClipVLMConfig``, ``PaligemmaVLMConfig``)
    device: torch.device

    @abstractmethod
    def evaluate(self, samples: Sequence[Sample]) -> list[Any]:
        """Per-sample results (a family's result dataclass, each with ``to_dict()``)."""

    @abstractmethod
    def j2(self, results: Sequence[Any]) -> float:
        """The extrinsic reward J2 of eq. 3 over an episode's results: mean(hardness)^2."""

    @abstractmethod
    def hardness(self, results: Sequence[Any]) -> list[float]:
        """Each sample's hardness, the per-sample quantity whose mean J2 squares (higher: the
        VLM does worse on it)."""

    @abstractmethod
    def errors(self, results: Sequence[Any]) -> list[bool]:
        """Whether the VLM got each sample wrong."""

    @abstractmethod
    def metric(self, results: Sequence[Any]) -> float:
        """The validation/test metric over results (higher is better)."""

    @abstractmethod
    def finetune(
        self, samples: Sequence[Sample], k: int, *, seed: int | None = None
    ) -> list[float]:
        """Fine-tune on ``samples`` for ``k`` epochs (CLIP) or steps (PaliGemma); step losses."""

    @abstractmethod
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a safetensors checkpoint directory (atomically); return its path."""

    @abstractmethod
    def fit_image(self, image: np.ndarray) -> np.ndarray:
        """``image`` (any size, RGB uint8) resized to the model's input the way the family's
        own preprocessing resizes it, still RGB uint8: an external set's photographs are fitted
        once, and the preprocessing then leaves them as they are."""

    @abstractmethod
    def caption_scores(
        self, images: Sequence[np.ndarray], options: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """For each image, a score per caption of its ``options`` (higher: the model prefers it);
        an external set's choice among its captions."""


def subset_metrics(
    vlm: VLM, samples: Sequence[Sample], results: Sequence[Any], prefix: str = "test"
) -> dict[str, float]:
    """The metric per spatial term and per number of terms (keys ``PREFIX/term/...``,
    ``PREFIX/n_terms/N``), from ``results`` of ``vlm.evaluate(samples)``."""
    out: dict[str, float] = {}
    for term in TERMS:
        idx = [i for i, s in enumerate(samples) if term in s.record.terms]
        if idx:
            out[f"{prefix}/term/{term_key(term)}"] = vlm.metric([results[i] for i in idx])
    for n in (1, 2, 3):
        idx = [i for i, s in enumerate(samples) if s.record.n_terms == n]
        if idx:
            out[f"{prefix}/n_terms/{n}"] = vlm.metric([results[i] for i in idx])
    return out
