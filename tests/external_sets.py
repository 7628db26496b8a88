"""External sets in What'sUp's and VSR's layouts, made for the tests from rendered scenes.

Photographs are not available here, so the images are the simulator's test-environment renders,
saved as JPEG, and the annotation files use the layouts' real field names (What'sUp's
``dataset_zoo/aro_datasets.py``; VSR's ``data/README.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from benchmark.config import SimParams
from benchmark.samples import Sample
from benchmark.sampling import collect_samples

# What'sUp's controlled-image prepositions (file name part, caption phrase) and our terms
WHATSUP = {
    "left": ("left_of", "to the left of"),
    "right": ("right_of", "to the right of"),
    "above": ("on", "on"),
    "below": ("under", "under"),
}
# VSR relations for our terms (a relation VSR uses for each)
VSR = {
    "left": "left of",
    "right": "right of",
    "above": "above",
    "below": "below",
    "in front of": "in front of",
    "behind": "behind",
}


def single_term_samples(n: int, terms: tuple[str, ...], seed: int = 11) -> list[Sample]:
    """``n`` rendered test-environment samples whose caption states one term of ``terms``."""
    out: list[Sample] = []
    draw = 0
    while len(out) < n:
        batch = collect_samples("test", 4 * n, seed + draw, sim=SimParams(), t0=32)
        out += [s for s in batch if len(s.record.terms) == 1 and s.record.terms[0] in terms]
        draw += 1
    return out[:n]


def write_whatsup(root: Path, n: int = 8) -> Path:
    """What'sUp's controlled-images layout under ``root``: ``controlled_images/*.jpeg`` named
    ``<subject>_<preposition>_<reference>`` and ``controlled_images_dataset.json``, a list of
    ``{"image_path", "caption_options"}`` with the true caption first. Returns the JSON file."""
    (root / "controlled_images").mkdir(parents=True, exist_ok=True)
    entries = []
    for s in single_term_samples(n, tuple(WHATSUP)):
        subject, reference = s.record.subject, s.record.reference
        part, _ = WHATSUP[s.record.terms[0]]
        name = f"{subject.replace(' ', '-')}_{part}_{reference.replace(' ', '-')}.jpeg"
        Image.fromarray(s.image).save(root / "controlled_images" / name, format="JPEG")
        options = [f"A {subject} {phrase} a {reference}" for _, phrase in WHATSUP.values()]
        true = f"A {subject} {WHATSUP[s.record.terms[0]][1]} a {reference}"
        options.remove(true)
        entries.append(
            {"image_path": f"data/controlled_images/{name}", "caption_options": [true, *options]}
        )
    annotations = root / "controlled_images_dataset.json"
    annotations.write_text(json.dumps(entries))
    return annotations


def write_vsr(root: Path, n: int = 8) -> Path:
    """VSR's layout under ``root``: ``data/images/*.jpg`` and ``data/splits/random/test.jsonl``
    with VSR's fields; ``n`` true captions of the six terms, plus a false one and one of a
    relation that is not a term (both left out by the reader). Returns the split file."""
    images = root / "data" / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    samples = single_term_samples(n + 2, tuple(VSR), seed=23)
    for index, s in enumerate(samples):
        name = f"{index:012d}.jpg"
        Image.fromarray(s.image).save(images / name, format="JPEG")
        relation, label = VSR[s.record.terms[0]], 1
        if index == n:
            label = 0  # a false caption: its true caption is not known
        if index == n + 1:
            relation = "touching"  # not one of the six terms
        lines.append(
            {
                "image": name,
                "image_link": f"http://images.cocodataset.org/train2017/{name}",
                "caption": f"The {s.record.subject} is {relation} the {s.record.reference}.",
                "label": label,
                "relation": relation,
                "annotator_id": 1,
                "vote_true_validator_id": "[2, 9]",
                "vote_false_validator_id": "[]",
                "reference_frame": None,
            }
        )
    split = root / "data" / "splits" / "random" / "test.jsonl"
    split.parent.mkdir(parents=True)
    split.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return split


def write_whatsup_coco_qa(root: Path, n: int = 4) -> Path:
    """What'sUp's COCO-QA layout under ``root``: ``val2017/<id, 12 digits>.jpg`` and
    ``coco_qa_two_obj.json``, a list of ``[image_id, true caption, false caption]``."""
    (root / "val2017").mkdir(parents=True, exist_ok=True)
    entries = []
    for index, s in enumerate(single_term_samples(n, ("left", "right"), seed=31)):
        image_id = 1000 + index
        Image.fromarray(s.image).save(root / "val2017" / f"{image_id:012d}.jpg", format="JPEG")
        side = s.record.terms[0]
        other = "right" if side == "left" else "left"
        true, false = (
            f"A photo of a {s.record.subject} to the {t} of a {s.record.reference}"
            for t in (side, other)
        )
        entries.append([image_id, true, false])
    annotations = root / "coco_qa_two_obj.json"
    annotations.write_text(json.dumps(entries))
    return annotations
