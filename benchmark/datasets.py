"""The fixed evaluation sets (spec section 6; the paper's section 5.3): build, write, read.

Validation comes from the train environment, test from the test environment; both are drawn
once by a uniform random placement policy, seeded, and are identical for every arm and seed.
On disk (see ``datasets/README.md``) a set is a directory with one PNG per sample under
``images/``, one Parquet table ``records.parquet`` (metadata and captions, one row a sample) and
``manifest.json`` (how it was made and its content hash). The hash covers the decoded pixels
and the records, not the file encodings, so it names the content.

The *image-shuffled control* of a set (``shuffled_images`` over a ``derangement``) asks each
sample's question of another sample's image. A model that learnt the relations from the images
gains on the real pairs only; one that learnt text priors gains on the control as well. The probe
and every run score it with the same seeded derangement (the profile's ``probe.seed``), so every
arm and seed share it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from benchmark.captions import CaptionRecord
from benchmark.config import Profile, SimParams
from benchmark.fileio import atomic_directory
from benchmark.samples import Sample
from benchmark.sampling import collect_samples

FORMAT_VERSION = 1
SPLITS: dict[str, str] = {"validation": "train", "test": "test"}  # split -> environment


@dataclass(frozen=True)
class Dataset:
    """A fixed evaluation set read back from disk."""

    name: str
    manifest: dict[str, Any]
    samples: list[Sample]

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])


def content_hash(samples: Sequence[Sample]) -> str:
    """SHA-256 over every sample's pixels (with their shape) and canonical JSON records."""
    h = hashlib.sha256()
    for s in samples:
        h.update(repr(s.image.shape).encode())
        h.update(np.ascontiguousarray(s.image, dtype=np.uint8).tobytes())
        h.update(_canonical_json(s.record.to_dict()).encode())
        h.update(_canonical_json(s.metadata).encode())
    return h.hexdigest()


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation with no fixed point (n >= 2): sample i gets image ``out[i]``."""
    if n < 2:
        raise ValueError(f"the shuffled control needs at least 2 test samples, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=int)
    out[order] = np.roll(order, -1)  # each sample takes the image of the next in a random cycle
    return out


def shuffled_images(samples: Sequence[Sample], donors: np.ndarray) -> list[Sample]:
    """Each sample's texts and metadata with the image of ``samples[donors[i]]``."""
    return [
        Sample(samples[int(j)].image, s.record, s.metadata)
        for s, j in zip(samples, donors, strict=True)
    ]


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def build_dataset(
    split: str,
    size: int,
    seed: int,
    out_dir: str | Path,
    *,
    sim: SimParams,
    t0: int,
) -> Dataset:
    """Generate the ``split`` set (``validation`` or ``test``) and write it to ``out_dir/split``,
    in the environment of the profile's ``sim`` block and ``t0`` (``collect_samples``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    if size < 1:
        raise ValueError(f"dataset size must be >= 1, got {size}")
    environment = SPLITS[split]
    samples = collect_samples(environment, size, seed, sim=sim, t0=t0)
    manifest = {
        "name": split,
        "environment": environment,
        "size": size,
        "seed": seed,
        "image_size": sim.image_size,
        "policy": "uniform random placement",
        "format_version": FORMAT_VERSION,
        "content_hash": content_hash(samples),
    }
    write_dataset(Path(out_dir) / split, manifest, samples)
    return Dataset(split, manifest, samples)


def build_datasets(profile: Profile, out_dir: str | Path) -> list[Dataset]:
    """The ``datasets`` stage: the profile's validation set (train environment, seed ``seed``)
    and test set (test environment, seed ``seed + 1``), written under ``out_dir``."""
    d = profile.datasets
    return [
        build_dataset(split, size, d.seed + offset, out_dir, sim=profile.sim, t0=profile.loop.t0)
        for split, size, offset in (("validation", d.validation, 0), ("test", d.test, 1))
    ]


def write_dataset(path: Path, manifest: dict[str, Any], samples: Sequence[Sample]) -> None:
    """Write images, records and manifest into ``path`` atomically (all or nothing)."""
    with atomic_directory(path) as tmp:
        (tmp / "images").mkdir()
        rows = []
        for index, s in enumerate(samples):
            image = f"images/{index:05d}.png"
            Image.fromarray(s.image).save(tmp / image, format="PNG")
            record = s.record.to_dict()
            rows.append(
                {
                    "index": index,
                    "image": image,
                    "scene": s.metadata["scene"] if s.metadata else None,
                    "environment": s.metadata["environment"] if s.metadata else None,
                    **{k: record[k] for k in _RECORD_COLUMNS},
                    "metadata": _canonical_json(s.metadata),
                }
            )
        pq.write_table(pa.Table.from_pylist(rows), tmp / "records.parquet")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


_RECORD_COLUMNS = (
    "subject",
    "reference",
    "terms",
    "n_terms",
    "caption",
    "term_swapped",
    "order_swapped",
    "question",
    "answer",
)


def read_dataset(path: str | Path, verify: bool = True) -> Dataset:
    """Read a set written by ``build_dataset``; ``verify`` checks its content hash."""
    path = Path(path)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise FileNotFoundError(
            f"no dataset at {path} (missing manifest.json); run `rls3 build-datasets` first"
        )
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"dataset at {path} has format_version {manifest.get('format_version')}, "
            f"this code reads {FORMAT_VERSION}; rebuild it with `rls3 build-datasets`"
        )
    samples = []
    for row in pq.read_table(path / "records.parquet").to_pylist():
        with Image.open(path / row["image"]) as img:
            image = np.asarray(img.convert("RGB"))
        record = CaptionRecord.from_dict({k: row[k] for k in _RECORD_COLUMNS})
        samples.append(Sample(image, record, json.loads(row["metadata"])))
    dataset = Dataset(str(manifest["name"]), manifest, samples)
    if verify and content_hash(samples) != dataset.content_hash:
        raise ValueError(
            f"dataset at {path} does not match its manifest's content hash "
            f"{dataset.content_hash[:12]}...: it was modified; "
            "rebuild it with `rls3 build-datasets`"
        )
    return dataset
