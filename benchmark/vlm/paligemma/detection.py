"""PaliGemma's detection format: "detect red mug", answered by four <loc> tokens of the
object's box and its name. Only the built-in model's base training asks it (and its tokenizer
knows the prompts); the benchmark's own questions never do."""

from __future__ import annotations

import re
from collections.abc import Sequence

LOC_BINS = 1024  # PaliGemma's <locNNNN> tokens: box coordinates in 1024 bins


def detect_prompt(name: str) -> str:
    """PaliGemma's detection prompt, "detect red mug"."""
    return f"detect {name}"


def detection_answer(name: str, box: Sequence[float], size: int) -> str:
    """PaliGemma's detection answer: four <loc> tokens (y_min, x_min, y_max, x_max of ``box``,
    pixels of a ``size`` image, in ``LOC_BINS`` bins), then the name."""
    y0, x0, y1, x1 = (min(LOC_BINS - 1, max(0, int(v / size * LOC_BINS))) for v in box)
    return f"<loc{y0:04d}><loc{x0:04d}><loc{y1:04d}><loc{x1:04d}> {name}"


def parse_box(text: str, size: int) -> tuple[float, float, float, float] | None:
    """The first four <loc> tokens of ``text`` as a box in pixels of a ``size`` image (bin
    centres), or None when there are fewer than four."""
    locs = [int(v) for v in re.findall(r"<loc(\d{4})>", text)[:4]]
    if len(locs) < 4:
        return None
    y0, x0, y1, x1 = ((v + 0.5) * size / LOC_BINS for v in locs)
    return y0, x0, y1, x1
