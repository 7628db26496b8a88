"""PaliGemma's base training (benchmark/vlm/paligemma/pretrain.py): its stages, prompts and
answers, and a tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.captions import parse_terms
from benchmark.config import PaligemmaEvaluate, PaligemmaPretrainConfig, SimParams
from benchmark.pretrain import metrics_path, run
from benchmark.samples import Sample
from benchmark.sim.scenes import object_names
from benchmark.vlm.base import parse_object_names
from benchmark.vlm.paligemma import PaligemmaVLM
from benchmark.vlm.paligemma.pretrain import (
    base_examples,
    pretrain_captioning,
    pretrain_paligemma,
    pretrain_vision_tower,
    random_terms_answers,
)

PALIGEMMA = PaligemmaEvaluate()  # the model's evaluate block


def test_random_terms_answers_keep_the_objects_and_take_another_samples_terms(
    train_samples: list[Sample],
) -> None:
    answers = random_terms_answers(train_samples, np.random.default_rng(0))
    pool = {s.record.terms for s in train_samples}
    own = 0
    for s, a in zip(train_samples, answers, strict=True):
        assert a.startswith(f"The {s.record.subject} is ") and a.endswith(
            f"the {s.record.reference}."
        )
        assert parse_terms(a) in pool
        own += parse_terms(a) == s.record.terms
    assert own < len(train_samples)  # the terms are not the sample's own


def test_a_tiny_paligemma_base_training_writes_a_loadable_checkpoint_and_metrics(
    tmp_path: Path,
) -> None:
    config = PaligemmaPretrainConfig(
        samples=16, vision_steps=2, vision_batch_size=4, steps=2, batch_size=8, test_samples=6
    )
    info = run("paligemma", config, SimParams(), 32, PALIGEMMA, tmp_path / "base")
    assert json.loads(metrics_path(tmp_path / "base").read_text()) == info
    assert 1.0 <= info["test"]["spatial_score"] <= 5.0
    assert info["test"]["spatial_chance"] <= info["test"]["spatial_best_constant"] <= 5.0
    assert 0.0 <= info["test"]["object_recall"] <= 1.0
    assert info["test"]["object_exact_chance"] == pytest.approx(1 / 84)
    PaligemmaVLM.load(tmp_path / "base")


def test_paligemma_stages_train_the_tower_then_everything_but_the_tower(
    train_samples: list[Sample],
) -> None:
    vlm = PaligemmaVLM.builtin()
    config = PaligemmaPretrainConfig(vision_steps=1, vision_batch_size=8, steps=1, batch_size=8)

    def changed(before: dict[str, torch.Tensor]) -> set[str]:
        after = vlm.model.state_dict()
        return {k for k, v in before.items() if not torch.equal(v, after[k])}

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in vlm.model.state_dict().items()}

    before = snapshot()
    assert len(pretrain_vision_tower(vlm, train_samples, config)) == 1
    tower = changed(before)
    assert tower and all(k.startswith("model.vision_tower.") for k in tower)
    before = snapshot()
    pretrain_captioning(vlm, train_samples, config, np.random.default_rng(0))
    rest = changed(before)
    assert not any(k.startswith("model.vision_tower.") for k in rest)
    assert any(k.startswith("model.multi_modal_projector.") for k in rest)
    assert any(k.startswith("model.language_model.") for k in rest)


def test_the_paligemma_language_model_never_sees_a_spatial_word_in_base_training() -> None:
    """Every prompt and answer of stage 2 is recorded as it is built (``text_words``) and checked
    against the words that state a spatial term; the position question's own function words
    ("of", "to") state none."""
    from benchmark.captions import TERMS

    config = PaligemmaPretrainConfig(
        samples=24, vision_steps=1, vision_batch_size=8, steps=6, batch_size=8, test_samples=4
    )
    _, info = pretrain_paligemma(config, SimParams(), 32, PALIGEMMA)
    spatial = {w for term in TERMS for w in term.split()} - {"in", "of"}
    seen = set(info["text_words"])
    assert not seen & spatial and parse_terms(" ".join(seen)) == ()
    assert {"position", "relative"} <= seen  # the position question was asked
    assert {w for n in object_names() for w in n.split()} <= seen


def test_base_examples_name_detect_and_locate_the_asked_pair(train_samples: list[Sample]) -> None:
    """Objects prompt: the present objects; detection: the box around the projected centre;
    the position question: both named objects' boxes, subject first, and no spatial term."""
    from benchmark.sim.camera import image_objects
    from benchmark.vlm.paligemma.detection import parse_box

    samples = train_samples[:9]
    prompts, answers = base_examples(samples, 3, 3, np.random.default_rng(0))
    for s, text in zip(samples[:3], answers[:3], strict=True):
        assert set(parse_object_names(text, object_names())) == set(s.object_names())

    def around(text: str, name: str, s: Sample) -> bool:
        """The box holds the object's projected centre and spans its bounding disk's width
        (less where the image edge cuts it)."""
        where = {o.name: o for o in image_objects(s.metadata, 64)}[name]  # type: ignore[arg-type]
        y0, x0, y1, x1 = parse_box(text, 64)  # type: ignore[misc]
        inside = y0 - 0.1 <= where.y <= y1 + 0.1 and x0 - 0.1 <= where.x <= x1 + 0.1
        return inside and 0 < x1 - x0 <= 2 * max(where.radius, 1.0) + 0.2

    for s, prompt, text in zip(samples[3:6], prompts[3:6], answers[3:6], strict=True):
        name = prompt.removeprefix("detect ")
        assert name in s.object_names() and text.endswith(f"> {name}")
        assert around(text, name, s)
    for s, prompt, text in zip(samples[6:], prompts[6:], answers[6:], strict=True):
        assert prompt == s.record.question and parse_terms(text) == ()
        first, second = text.split(" ; ")
        assert first.endswith(s.record.subject) and second.endswith(s.record.reference)
        assert around(first, s.record.subject, s) and around(second, s.record.reference, s)
