"""External evaluation sets: photographs (or any images) beside the synthetic test set, the
paper's sim2real question (spec sections 6 and 8; datasets/README.md, "External sets").

A set is a list of items, each an image with its true caption and one or more alternative
captions that differ from it (What'sUp's four relation captions, VSR's caption with its
relation reversed), and, where known, the spatial terms of the true caption and the two objects
it relates. Three layouts are read (``datasets.external[].format``):

- ``rls3``, the benchmark's own: a folder with the images and ``captions.jsonl``, one JSON object
  a line: ``{"image": "0001.jpg", "caption": "...", "alternatives": ["...", ...],
  "terms": ["left"], "subject": "mug", "reference": "plate"}`` (``terms``, ``subject`` and
  ``reference`` optional; absent terms are parsed from the caption);
- ``whatsup``: an annotation file of What'sUp (Kamath et al. 2023), as its repository's
  ``dataset_zoo/aro_datasets.py`` reads them: ``controlled_images_dataset.json`` /
  ``controlled_clevr_dataset.json`` (a list of ``{"image_path", "caption_options"}``, the first
  option true) or ``coco_qa_{one,two}_obj.json`` / ``vg_qa_{one,two}_obj.json`` (a list of
  ``[image_id, true_caption, false_caption]``);
- ``vsr``: a split of VSR (Liu et al. 2023), JSON Lines with ``image``, ``caption``, ``label``
  and ``relation``. Its true captions (label 1) whose relation is one of the six terms become
  items, with the caption of the opposite relation as the alternative; false captions and other
  relations are left out (their true caption is not known), and ``convert`` says how many.

A bad file is an ``ExternalSetError`` naming the file and the line (or entry): a missing image,
an empty alternative, a caption with no spatial term where one is required (an item that names
its two objects, and every What'sUp item).

Scoring (``score``), with the family's own metric at every test evaluation and by ``rls3 eval``:
CLIP ranks the captions by similarity (correct: the true caption strictly above every
alternative); PaliGemma, where every item names its objects and terms, answers the position
question and is scored with the rubric, otherwise ranks the captions by their mean token
log-likelihood after ``CHOICE_PROMPT``. Images go to the model's input size the way the family's
own preprocessing resizes (``VLM.fit_image``), once per set and model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark.captions import TERMS, parse_terms, question, rubric_score, term_key
from benchmark.config import ExternalSetParams
from benchmark.families import family
from benchmark.fileio import atomic_directory

MANIFEST = "captions.jsonl"  # the rls3 layout's captions file
METRIC = "metric"  # external/<name>/metric; per term external/<name>/term/<key>
# What'sUp's prepositions, from its controlled images' file names, as the benchmark's terms
# ("on" and "under" are the vertical pair: the subject above or below the reference)
WHATSUP_PREPOSITIONS: dict[str, str] = {
    "left_of": "left",
    "right_of": "right",
    "on": "above",
    "under": "below",
    "in-front_of": "in front of",
    "behind": "behind",
}
# VSR's relations that state one of the six terms, each with the relation it is swapped for
VSR_RELATIONS: dict[str, tuple[str, str]] = {
    "left of": ("left", "right of"),
    "at the left side of": ("left", "at the right side of"),
    "right of": ("right", "left of"),
    "at the right side of": ("right", "at the left side of"),
    "above": ("above", "below"),
    "over": ("above", "under"),
    "on top of": ("above", "below"),
    "below": ("below", "above"),
    "under": ("below", "over"),
    "beneath": ("below", "above"),
    "in front of": ("in front of", "behind"),
    "behind": ("behind", "in front of"),
}


class ExternalSetError(ValueError):
    """A bad external set; the message names the file and the line."""


@dataclass(frozen=True)
class ExternalItem:
    """One image with its true caption, the alternatives, and what is known of the relation."""

    image: str  # the file, relative to the set's image folder
    caption: str
    alternatives: tuple[str, ...]
    terms: tuple[str, ...] = ()  # the true caption's spatial terms (canonical order); () unknown
    subject: str | None = None
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The item as a line of ``captions.jsonl`` (optional fields only when known)."""
        out: dict[str, Any] = {
            "image": self.image,
            "caption": self.caption,
            "alternatives": list(self.alternatives),
        }
        if self.terms:
            out["terms"] = list(self.terms)
        if self.subject is not None and self.reference is not None:
            out["subject"], out["reference"] = self.subject, self.reference
        return out

    @property
    def options(self) -> list[str]:
        """The captions to choose from, the true one first."""
        return [self.caption, *self.alternatives]


@dataclass(frozen=True)
class ExternalSet:
    """An external set read from disk: its items, where their images are, its content hash."""

    name: str
    source: Path  # the folder, annotation file or split file it was read from
    image_dir: Path
    items: list[ExternalItem]
    content_hash: str
    skipped: int = 0  # entries of the layout that are not items (``convert`` reports them)

    @property
    def asks_questions(self) -> bool:
        """Every item names its objects and terms: PaliGemma answers the position question."""
        return all(i.terms and i.subject and i.reference for i in self.items)

    def images(self) -> list[np.ndarray]:
        """Every item's image, RGB uint8, as stored."""
        return [load_image(self.image_dir / i.image) for i in self.items]


def load_image(path: Path) -> np.ndarray:
    """An image file as an RGB uint8 array."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


# ---------------------------------------------------------------------------- reading


def read_external(spec: ExternalSetParams, root: Path | None = None) -> ExternalSet:
    """Read the set ``spec`` names (relative paths from ``root``, default the working directory),
    check every item and hash its content (the items and every image file's bytes)."""
    root = Path.cwd() if root is None else root
    path = root / spec.path
    images = None if spec.images is None else root / spec.images
    if not path.exists():
        raise ExternalSetError(
            f"datasets.external '{spec.name}': {path} does not exist (path: {spec.path!r})"
        )
    reader = {"rls3": _read_rls3, "whatsup": _read_whatsup, "vsr": _read_vsr}[spec.format]
    items, image_dir, skipped = reader(path, images)
    if not items:
        raise ExternalSetError(
            f"datasets.external '{spec.name}': {path} holds no item of the {spec.format} layout"
        )
    for where, item in items:
        _check_item(where, item, image_dir)
    content = content_hash(spec.format, [i for _, i in items], image_dir)
    return ExternalSet(spec.name, path, image_dir, [i for _, i in items], content, skipped)


def content_hash(layout: str, items: Sequence[ExternalItem], image_dir: Path) -> str:
    """SHA-256 over the layout, each item (canonical JSON) and its image file's bytes."""
    h = hashlib.sha256(layout.encode())
    for item in items:
        h.update(json.dumps(asdict(item), sort_keys=True, separators=(",", ":")).encode())
        h.update((image_dir / item.image).read_bytes())
    return h.hexdigest()


Located = tuple[str, ExternalItem]  # (file:line, item)


def _check_item(where: str, item: ExternalItem, image_dir: Path) -> None:
    if not item.caption.strip():
        raise ExternalSetError(f"{where}: the caption is empty")
    if not item.alternatives:
        raise ExternalSetError(f"{where}: no alternative caption (at least one is needed)")
    for alt in item.alternatives:
        if not alt.strip():
            raise ExternalSetError(f"{where}: an alternative caption is empty")
        if alt == item.caption:
            raise ExternalSetError(f"{where}: an alternative is the true caption itself")
    unknown = [t for t in item.terms if t not in TERMS]
    if unknown:
        raise ExternalSetError(f"{where}: unknown terms {unknown}; the terms are {list(TERMS)}")
    if (item.subject is None) != (item.reference is None):
        raise ExternalSetError(f"{where}: give both 'subject' and 'reference', or neither")
    if item.subject is not None and not item.terms:
        raise ExternalSetError(
            f"{where}: the caption {item.caption!r} states no spatial term the benchmark parses "
            f"(terms are required where the item names its objects); give 'terms'"
        )
    image = image_dir / item.image
    if not image.is_file():
        raise ExternalSetError(f"{where}: the image {image} is missing")


def _json_lines(path: Path) -> Iterator[tuple[str, Any]]:
    """(file:line, parsed object) for each non-blank line; a bad line is an error naming it."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{number}", json.loads(line)
        except json.JSONDecodeError as err:
            raise ExternalSetError(f"{path}:{number}: not JSON ({err.msg})") from None


def _field(where: str, entry: Any, key: str, kind: type, required: bool = True) -> Any:
    if not isinstance(entry, dict):
        raise ExternalSetError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    if key not in entry:
        if required:
            raise ExternalSetError(f"{where}: missing '{key}'")
        return None
    value = entry[key]
    if not isinstance(value, kind):
        raise ExternalSetError(f"{where}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _read_rls3(path: Path, images: Path | None) -> tuple[list[Located], Path, int]:
    """The benchmark's layout: ``path`` a folder holding ``captions.jsonl`` and the images."""
    manifest = path / MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        raise ExternalSetError(f"{path}: no {MANIFEST} (the rls3 layout, datasets/README.md)")
    allowed = {"image", "caption", "alternatives", "terms", "subject", "reference"}
    items = []
    for where, entry in _json_lines(manifest):
        extra = sorted(set(entry) - allowed) if isinstance(entry, dict) else []
        if extra:
            raise ExternalSetError(f"{where}: unknown keys {extra}; allowed: {sorted(allowed)}")
        alternatives = _field(where, entry, "alternatives", list)
        if not all(isinstance(a, str) for a in alternatives):
            raise ExternalSetError(f"{where}: 'alternatives' must be a list of strings")
        caption = _field(where, entry, "caption", str)
        given = _field(where, entry, "terms", list, required=False)
        terms = parse_terms(caption) if given is None else tuple(given)
        item = ExternalItem(
            image=_field(where, entry, "image", str),
            caption=caption,
            alternatives=tuple(alternatives),
            terms=_canonical(terms),
            subject=_field(where, entry, "subject", str, required=False),
            reference=_field(where, entry, "reference", str, required=False),
        )
        items.append((where, item))
    return items, images or manifest.parent, 0


def _canonical(terms: Sequence[Any]) -> tuple[str, ...]:
    """Known terms in the canonical order; unknown ones kept (the item check names them)."""
    return tuple(t for t in TERMS if t in terms) + tuple(t for t in terms if t not in TERMS)


def _read_whatsup(path: Path, images: Path | None) -> tuple[list[Located], Path, int]:
    """What'sUp: controlled images (dicts with ``image_path`` and ``caption_options``) or the
    COCO/VG QA subsets (``[image_id, true, false]``)."""
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ExternalSetError(f"{path}: not JSON ({err.msg})") from None
    if not isinstance(entries, list) or not entries:
        raise ExternalSetError(f"{path}: expected a non-empty JSON list (What'sUp's layout)")
    qa = isinstance(entries[0], list)
    if images is None:  # where the layout keeps them, beside the annotation file
        if qa:
            images = path.parent / ("vg_images" if path.name.startswith("vg_") else "val2017")
        else:
            images = path.parent
    items = []
    for index, entry in enumerate(entries):
        where = f"{path}: entry {index}"
        if qa:
            if not (isinstance(entry, list) and len(entry) == 3):
                raise ExternalSetError(f"{where}: expected [image_id, true caption, false caption]")
            image_id, caption, false = entry
            if path.name.startswith("vg_"):
                name = f"{image_id}.jpg"
            elif isinstance(image_id, int):
                name = f"{image_id:012d}.jpg"  # COCO's file names: the id in 12 digits
            else:
                raise ExternalSetError(f"{where}: the COCO image id {image_id!r} is not a number")
            item = ExternalItem(name, str(caption), (str(false),), parse_terms(str(caption)))
        else:
            image_path = _field(where, entry, "image_path", str)
            options = _field(where, entry, "caption_options", list)
            if len(options) < 2:
                raise ExternalSetError(
                    f"{where}: 'caption_options' needs the true caption first "
                    "and at least one alternative"
                )
            stem = Path(image_path).stem  # <subject>_<preposition>_<reference>, '-' for spaces
            parts = stem.split("_")
            preposition = "_".join(parts[1:-1])
            term = WHATSUP_PREPOSITIONS.get(preposition)
            terms = (term,) if term else parse_terms(options[0])
            subject, reference = (
                (parts[0].replace("-", " "), parts[-1].replace("-", " "))
                if term and len(parts) >= 3
                else (None, None)
            )
            item = ExternalItem(
                _whatsup_image(image_path, path, images),
                str(options[0]),
                tuple(str(o) for o in options[1:]),
                terms,
                subject,
                reference,
            )
        if not item.terms:
            raise ExternalSetError(
                f"{where}: the caption {item.caption!r} states no spatial term the benchmark "
                "parses (every What'sUp item has one)"
            )
        items.append((where, item))
    return items, images, 0


def _whatsup_image(image_path: str, annotations: Path, images: Path) -> str:
    """The image file relative to ``images``: What'sUp's ``image_path`` is relative to its
    repository (``data/controlled_images/x.jpeg``); the file is looked up under ``images`` by
    its own folder and name, then by name alone."""
    p = Path(image_path)
    for candidate in (Path(p.parent.name) / p.name, Path(p.name)):
        if (images / candidate).is_file():
            return str(candidate)
    return str(Path(p.parent.name) / p.name)  # missing: the item check names it


def _read_vsr(path: Path, images: Path | None) -> tuple[list[Located], Path, int]:
    """A VSR split: the true captions (label 1) of the six terms' relations, each with the
    opposite relation's caption as the alternative."""
    if images is None:  # data/splits/<split>/<file>.jsonl beside data/images, or images/ here
        near = [path.parent / "images", path.parent.parent.parent / "images"]
        images = next((p for p in near if p.is_dir()), near[0])
    items, skipped = [], 0
    for where, entry in _json_lines(path):
        caption = _field(where, entry, "caption", str)
        relation = _field(where, entry, "relation", str)
        label = _field(where, entry, "label", int)
        if label != 1 or relation not in VSR_RELATIONS:
            skipped += 1
            continue
        term, opposite = VSR_RELATIONS[relation]
        match = re.fullmatch(rf"The (.+?) is {re.escape(relation)} the (.+?)\.?", caption.strip())
        if match is None:
            raise ExternalSetError(
                f"{where}: the caption {caption!r} is not 'The <subject> is {relation} the "
                "<reference>.' (VSR's template); its alternative cannot be written"
            )
        subject, reference = match.group(1), match.group(2)
        alternative = f"The {subject} is {opposite} the {reference}."
        image = _field(where, entry, "image", str)
        items.append(
            (where, ExternalItem(image, caption, (alternative,), (term,), subject, reference))
        )
    return items, images, skipped


# ---------------------------------------------------------------------------- converting


def convert(spec: ExternalSetParams, out: str | Path, root: Path | None = None) -> ExternalSet:
    """Write the set ``spec`` names in the rls3 layout under ``out`` (its images copied, the
    folder written atomically); the set as read back from there."""
    source = read_external(spec, root)
    with atomic_directory(out) as tmp:
        lines = []
        for item in source.items:
            (tmp / item.image).parent.mkdir(parents=True, exist_ok=True)
            (tmp / item.image).write_bytes((source.image_dir / item.image).read_bytes())
            lines.append(json.dumps(item.to_dict()))
        (tmp / MANIFEST).write_text("\n".join(lines) + "\n")
    written = read_external(ExternalSetParams(spec.name, str(Path(out).resolve())), root)
    return dataclasses.replace(written, skipped=source.skipped)


# ---------------------------------------------------------------------------- scoring


def score(vlm: Any, external: ExternalSet, images: Sequence[np.ndarray]) -> dict[str, float]:
    """The family's metric on the set (``metric``) and per spatial term (``term/<key>``, over
    the items whose true caption states it); ``images`` fitted by ``vlm.fit_image``."""
    items = external.items
    if family(vlm.family).answers_questions and external.asks_questions:
        answers = vlm.generate(
            list(images), [question(str(i.subject), str(i.reference)) for i in items]
        )
        per_item = [float(rubric_score(a, i.terms)) for a, i in zip(answers, items, strict=True)]
    else:
        ranked = vlm.caption_scores(list(images), [i.options for i in items])
        per_item = [float(s[0] > np.max(s[1:])) for s in ranked]
    out = {METRIC: float(np.mean(per_item))}
    for term in TERMS:
        chosen = [v for v, i in zip(per_item, items, strict=True) if term in i.terms]
        if chosen:
            out[f"term/{term_key(term)}"] = float(np.mean(chosen))
    return out


def metric_name(vlm_family: str, external: ExternalSet) -> str:
    """What ``score``'s metric is for this family and set, in words."""
    f = family(vlm_family)
    if f.answers_questions and external.asks_questions:
        return "rubric S_PG (1-5) of the answer to the position question"
    return f.external_choice
