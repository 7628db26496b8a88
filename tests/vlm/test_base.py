"""The shared VLM pieces: samples from the simulator, object lists, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.captions import describe_sample
from benchmark.config import SimParams
from benchmark.fileio import atomic_directory
from benchmark.samples import Sample
from benchmark.sampling import collect_samples
from benchmark.sim.scenes import object_names
from benchmark.vlm.base import (
    object_list_caption,
    parse_object_names,
    require_path,
)


def test_collect_samples_is_seeded_and_describes_each_image(train_samples: list[Sample]) -> None:
    again = collect_samples("train", 32, seed=0, sim=SimParams(), t0=32)
    assert len(again) == 32
    for a, b in zip(train_samples, again, strict=True):
        assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
        assert np.array_equal(a.image, b.image)
        assert a.record == b.record
    other = collect_samples("train", 4, seed=1, sim=SimParams(), t0=32)
    assert not np.array_equal(other[0].image, train_samples[0].image)
    s = train_samples[0]
    assert s.metadata is not None and s.metadata["environment"] == "train"
    assert {s.record.subject, s.record.reference} <= set(s.object_names())
    assert len(set(s.object_names())) == 3
    # the record is the caption generator's description of this sample's metadata
    assert describe_sample(s.metadata, np.random.default_rng(0)).subject in s.object_names()


def test_object_list_caption_and_parse_are_inverse() -> None:
    names = ["teddy bear", "orange can", "soccer ball"]
    text = object_list_caption(names)
    assert text == "a teddy bear, an orange can and a soccer ball"
    assert object_list_caption(["blue box"]) == "a blue box"
    assert parse_object_names(text, object_names()) == ("teddy bear", "soccer ball", "orange can")
    assert parse_object_names("a blue boxer", object_names()) == ()


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    with atomic_directory(target) as d:
        (d / "a.txt").write_text("old")
    with atomic_directory(target) as d:
        (d / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    with pytest.raises(RuntimeError), atomic_directory(target) as d:
        (d / "c.txt").write_text("half")
        raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary left over


def test_require_path_names_the_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such.safetensors"
    with pytest.raises(FileNotFoundError, match=r"no/such\.safetensors"):
        require_path(missing, "checkpoint")


def test_load_vlm_picks_the_family_and_rejects_unknown_ones(tmp_path: Path) -> None:
    from benchmark.vlm import load_vlm
    from benchmark.vlm.clip import ClipVLM
    from benchmark.vlm.paligemma import PaligemmaVLM

    assert isinstance(load_vlm("clip"), ClipVLM)
    assert isinstance(load_vlm("paligemma"), PaligemmaVLM)
    with pytest.raises(ValueError, match=r"model = .blip. is not allowed; expected one of"):
        load_vlm("blip")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing")):
        load_vlm("paligemma", tmp_path / "missing")
