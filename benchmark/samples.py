"""A sample, and the progress bar of the loops over samples.

A *sample* is one valid simulator step described by the caption generator: its image and its
``CaptionRecord`` (spec sections 3-4). The simulator's side (``sampling``, ``datasets``) and the
VLMs' side both use it, so it lives below both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from benchmark.captions import CaptionRecord

T = TypeVar("T")

PROGRESS_DELAY_S = 3.0  # a progress bar appears only on loops that run longer than this


@dataclass(frozen=True)
class Sample:
    """One VLM sample: the rendered image and its captions (and the simulator's metadata)."""

    image: np.ndarray  # H x W x 3, uint8
    record: CaptionRecord
    metadata: Mapping[str, Any] | None = None

    def object_names(self) -> tuple[str, ...]:
        """Names of the active objects in the image (empty without metadata)."""
        if self.metadata is None:
            return ()
        return tuple(o["name"] for o in self.metadata["objects"])


def progress(
    iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = ""
) -> Any:
    """A tqdm bar that only shows on loops longer than ``PROGRESS_DELAY_S``."""
    return tqdm(iterable, total=total, desc=desc, delay=PROGRESS_DELAY_S, leave=False)
