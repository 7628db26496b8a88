"""Spatial captions: geometry -> spatial terms -> text (spec section 4; the paper's section 4.3).

For a reference object A and a subject object B, ``d = centre(B) - centre(A)`` is classified in
the camera's horizontal frame (``behind`` = the viewing direction projected on the floor, away
from the viewer; ``right`` = forward x up, the viewer's right) and by its elevation. Angles are
in degrees.

Boundaries (an angle within ``EPS_DEG`` of a boundary counts as on it, so that float rounding
cannot pick the side, and both rules below are symmetric under swapping subject and reference
and under mirroring left/right):

- horizontal sector boundaries (22.5 + 45k deg) belong to the *axis* sector, the one with a
  single term: at exactly 22.5 deg off "behind" the subject is "behind", not "behind" + "right";
- elevation 20 deg belongs to the horizontal-only band, 75 deg to the mixed band (spec:
  |e| <= 20 and 20 < |e| <= 75).

The rubric S_PG (``rubric_score``) reads "all correct" as "every true term was stated": the
base score counts correct terms only, and the two penalties then apply on top, so all true terms
plus one extra non-opposite term scores 5 - 1 = 4, plus an opposite of a true term 5 - 2 = 3.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

# Canonical order: vertical, depth, lateral (spec section 4, "Canonical order and grammar").
TERMS: tuple[str, ...] = ("above", "below", "behind", "in front of", "left", "right")
OPPOSITE: dict[str, str] = {
    "above": "below",
    "below": "above",
    "behind": "in front of",
    "in front of": "behind",
    "left": "right",
    "right": "left",
}


def term_key(term: str) -> str:
    """``term`` as a metric-name part: "in front of" -> "in_front_of"."""
    return term.replace(" ", "_")


SECTOR_DEG = 45.0  # width of a horizontal sector
HORIZONTAL_ONLY_DEG = 20.0  # |e| <= this: horizontal terms only
VERTICAL_ONLY_DEG = 75.0  # |e| > this: the vertical term only
EPS_DEG = 1e-9  # angles this close to a boundary count as on it

# How each term reads in a caption; " the {reference}" follows only the last one.
_PHRASE: dict[str, str] = {
    "above": "above",
    "below": "below",
    "behind": "behind",
    "in front of": "in front of",
    "left": "to the left of",
    "right": "to the right of",
}

# Words and phrases that state a term in free text (matched on whole words after lowercasing
# and turning punctuation into spaces). None of the object names contains any of them.
_TERM_PATTERNS: dict[str, re.Pattern[str]] = {
    "above": re.compile(r"\b(above|over|atop|on top)\b"),
    "below": re.compile(r"\b(below|under|underneath|beneath)\b"),
    "behind": re.compile(r"\b(behind|back|rear)\b"),
    "in front of": re.compile(r"\bfront\b"),
    "left": re.compile(r"\bleft\b"),
    "right": re.compile(r"\bright\b"),
}
_NON_LETTERS = re.compile(r"[^a-z]+")


def _vec3(value: ArrayLike, what: str) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{what} must be a finite 3-vector, got {value!r}")
    return v


def _canonical(terms: Iterable[str]) -> tuple[str, ...]:
    """Check a set of terms and put it in canonical order."""
    terms = tuple(terms)
    unknown = [t for t in terms if t not in OPPOSITE]
    if unknown:
        raise ValueError(f"unknown spatial terms {unknown}; known: {list(TERMS)}")
    if not terms or len(set(terms)) != len(terms):
        raise ValueError(f"need 1 to 3 distinct spatial terms, got {list(terms)}")
    if any(OPPOSITE[t] in terms for t in terms):
        raise ValueError(f"contradictory spatial terms {list(terms)}")
    return tuple(t for t in TERMS if t in terms)


def spatial_terms(
    subject: ArrayLike, reference: ArrayLike, camera_forward: ArrayLike
) -> tuple[str, ...]:
    """The 1-3 terms placing ``subject`` relative to ``reference`` (centres, world frame, z up).

    ``camera_forward`` is the camera's viewing direction; only its floor projection matters.
    See the module docstring for the side each boundary falls on.
    """
    d = _vec3(subject, "subject") - _vec3(reference, "reference")
    forward = _vec3(camera_forward, "camera_forward")
    if not np.any(d):
        raise ValueError("subject and reference centres coincide: no spatial relation")
    floor_len = math.hypot(forward[0], forward[1])
    if floor_len <= 1e-9 * float(np.linalg.norm(forward)):
        raise ValueError("camera_forward is vertical: the horizontal frame is undefined")
    fx, fy = forward[0] / floor_len, forward[1] / floor_len
    depth = d[0] * fx + d[1] * fy  # > 0: behind (away from the viewer)
    lateral = d[0] * fy - d[1] * fx  # > 0: right; right = forward x up = (fy, -fx, 0)

    elevation = math.degrees(math.atan2(d[2], math.hypot(d[0], d[1])))
    vertical: tuple[str, ...] = ("above",) if elevation > 0 else ("below",)
    if abs(elevation) > VERTICAL_ONLY_DEG + EPS_DEG:
        return vertical
    if abs(elevation) <= HORIZONTAL_ONLY_DEG + EPS_DEG:
        vertical = ()

    # off_behind: 0 = straight behind, 180 = straight in front. Boundaries go to the axis sector.
    off_behind = abs(math.degrees(math.atan2(lateral, depth)))
    half = SECTOR_DEG / 2
    horizontal: list[str] = []
    if off_behind < 90.0 - half - EPS_DEG:
        horizontal.append("behind")
    elif off_behind > 90.0 + half + EPS_DEG:
        horizontal.append("in front of")
    if half + EPS_DEG < off_behind < 180.0 - half - EPS_DEG:
        horizontal.append("right" if lateral > 0 else "left")
    return (*vertical, *horizontal)


def caption(subject_name: str, reference_name: str, terms: Sequence[str]) -> str:
    """The caption, e.g. "The small pot is above, behind and to the left of the yellow bowl." """
    phrases = [_PHRASE[t] for t in _canonical(terms)]
    relation = phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"
    return f"The {subject_name} is {relation} the {reference_name}."


def negatives(
    subject_name: str, reference_name: str, terms: Sequence[str], rng: np.random.Generator
) -> tuple[str, str]:
    """The hard negatives (term_swapped, order_swapped) of a caption (NegCLIP style).

    term_swapped: one term, drawn with ``rng``, replaced by its opposite. order_swapped: subject
    and reference exchanged, same terms; false because swapping the objects flips every term.
    """
    if subject_name == reference_name:
        raise ValueError(f"subject and reference are the same object: {subject_name!r}")
    canonical = _canonical(terms)
    flip = canonical[int(rng.integers(len(canonical)))]
    swapped = [OPPOSITE[t] if t == flip else t for t in canonical]
    return (
        caption(subject_name, reference_name, swapped),
        caption(reference_name, subject_name, canonical),
    )


def question(subject_name: str, reference_name: str) -> str:
    """The PaliGemma question whose answer is the caption."""
    return f"What is the position of the {subject_name} relative to the {reference_name}?"


def answer(subject_name: str, reference_name: str, terms: Sequence[str]) -> str:
    """The PaliGemma answer: the caption itself."""
    return caption(subject_name, reference_name, terms)


def parse_terms(text: str) -> tuple[str, ...]:
    """The spatial terms a free-text answer states, canonical order, deduplicated.

    Word-level matching with a few synonyms (under/beneath, over/on top of, front, back); it
    does not understand negation ("not left" states "left").
    """
    words = f" {_NON_LETTERS.sub(' ', text.lower())} "
    return tuple(t for t in TERMS if _TERM_PATTERNS[t].search(words))


def rubric_score(answer_text: str, true_terms: Sequence[str]) -> int:
    """The rubric score S_PG in 1..5 of a generated answer (spec section 4; paper section 4.4)."""
    truth = set(_canonical(true_terms))
    answered = set(parse_terms(answer_text))
    correct = len(answered & truth)
    if correct == len(truth):
        score = 5
    elif correct == 0:
        score = 1
    else:  # 3 true: 2 correct -> 4, 1 correct -> 2; 2 true: 1 correct -> 3
        score = {(3, 2): 4, (2, 1): 3, (3, 1): 2}[(len(truth), correct)]
    if any(OPPOSITE[t] in answered for t in truth):
        score -= 1
    if len(answered) > len(truth):
        score -= 1
    return max(1, min(5, score))


@dataclass(frozen=True)
class CaptionRecord:
    """One described sample: the pair, its terms and every text derived from them."""

    subject: str
    reference: str
    terms: tuple[str, ...]
    caption: str
    term_swapped: str
    order_swapped: str
    question: str
    answer: str

    @property
    def n_terms(self) -> int:
        """Number of spatial terms (1 to 3)."""
        return len(self.terms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (terms as a list, plus ``n_terms``)."""
        d = asdict(self)
        d["terms"] = list(self.terms)
        d["n_terms"] = self.n_terms
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaptionRecord:
        """Inverse of ``to_dict`` (``n_terms``, if present, must match the terms)."""
        terms = tuple(d["terms"])
        if "n_terms" in d and int(d["n_terms"]) != len(terms):
            raise ValueError(f"n_terms={d['n_terms']} but {len(terms)} terms {list(terms)}")
        return cls(
            subject=d["subject"],
            reference=d["reference"],
            terms=terms,
            caption=d["caption"],
            term_swapped=d["term_swapped"],
            order_swapped=d["order_swapped"],
            question=d["question"],
            answer=d["answer"],
        )


def describe_sample(metadata: Mapping[str, Any], rng: np.random.Generator) -> CaptionRecord:
    """Describe a simulator sample: draw (reference A, subject B) with ``rng``, build the record."""
    objects = metadata["objects"]
    if len(objects) < 2:
        raise ValueError(f"a sample needs at least 2 objects, got {len(objects)}")
    ref_index, subj_index = (int(i) for i in rng.choice(len(objects), size=2, replace=False))
    reference, subject = objects[ref_index], objects[subj_index]
    terms = spatial_terms(subject["center"], reference["center"], metadata["camera"]["forward"])
    b, a = subject["name"], reference["name"]
    term_swapped, order_swapped = negatives(b, a, terms, rng)
    return CaptionRecord(
        subject=b,
        reference=a,
        terms=terms,
        caption=caption(b, a, terms),
        term_swapped=term_swapped,
        order_swapped=order_swapped,
        question=question(b, a),
        answer=answer(b, a, terms),
    )


def term_counts(records: Iterable[CaptionRecord]) -> dict[str, int]:
    """How many records contain each term (all 6 keys, canonical order)."""
    counts = Counter(t for r in records for t in r.terms)
    return {t: counts[t] for t in TERMS}


def n_terms_counts(records: Iterable[CaptionRecord]) -> dict[int, int]:
    """How many records have 1, 2 and 3 terms (all 3 keys)."""
    counts = Counter(r.n_terms for r in records)
    return {n: counts[n] for n in (1, 2, 3)}
