"""CLIP's base training (benchmark/vlm/clip/pretrain.py): its captions, and a tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.captions import parse_terms
from benchmark.config import ClipEvaluate, ClipPretrainConfig, SimParams
from benchmark.pretrain import metrics_path, run
from benchmark.samples import Sample
from benchmark.sim.scenes import object_names
from benchmark.vlm.base import parse_object_names
from benchmark.vlm.clip import ClipVLM
from benchmark.vlm.clip.pretrain import absent_lists, base_training_captions, pretrain_clip

CLIP = ClipEvaluate()  # the model's evaluate block


@pytest.mark.parametrize("replaced", [1, 3])
def test_absent_lists_replace_present_objects_by_absent_ones(
    train_samples: list[Sample], replaced: int
) -> None:
    first, second = absent_lists(train_samples, np.random.default_rng(0), replaced)
    for s, a, b in zip(train_samples, first, second, strict=True):
        present = set(s.object_names())
        for text in (a, b):
            named = set(parse_object_names(text, object_names()))
            assert len(named) == 3 and len(named & present) == 3 - replaced
        assert a != b


def test_a_tiny_clip_base_training_writes_a_loadable_checkpoint_and_metrics(
    tmp_path: Path,
) -> None:
    config = ClipPretrainConfig(samples=32, epochs=1, batch_size=16, test_samples=12)
    info = run("clip", config, SimParams(), 32, CLIP, tmp_path / "base")
    saved = json.loads(metrics_path(tmp_path / "base").read_text())
    assert saved == info and (tmp_path / "base_metrics.json").is_file()
    for key in ("spatial_accuracy", "object_accuracy", "object_accuracy_one_replaced"):
        assert 0.0 <= saved["test"][key] <= 1.0
    assert ClipVLM.load(tmp_path / "base").model_cfg["vision_cfg"]["image_size"] == 64


def test_the_clip_text_tower_never_sees_a_spatial_word_in_base_training() -> None:
    """Every caption base training tokenizes is scanned (``text_words`` is collected from them
    as they are built) against the caption generator's spatial vocabulary."""
    from benchmark.captions import TERMS

    config = ClipPretrainConfig(samples=48, epochs=2, batch_size=16, test_samples=8)
    _, info = pretrain_clip(config, SimParams(), 32, CLIP)
    spatial = {w for term in TERMS for w in term.split()} | {"to"}  # "to the left of"
    seen = set(info["text_words"])
    assert not seen & spatial
    named = {w for n in object_names() for w in n.split()}
    assert seen & named and seen <= named | {"a", "an", "and"}


def test_base_training_captions_are_object_lists_in_a_fresh_order(
    train_samples: list[Sample],
) -> None:
    rng = np.random.default_rng(0)
    first = base_training_captions(train_samples, rng)
    second = base_training_captions(train_samples, rng)
    assert first != second  # reshuffled every epoch
    for s, text in zip(train_samples, first, strict=True):
        assert parse_terms(text) == ()
        assert set(parse_object_names(text, object_names())) == set(s.object_names())
