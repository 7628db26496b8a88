"""The PaliGemma family: built-in tokenizer and prompt, rubric J2, frozen fine-tuning, loading."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from transformers import PaliGemmaForConditionalGeneration

from benchmark.captions import rubric_score
from benchmark.samples import Sample
from benchmark.vlm.paligemma.builtin import build_builtin, closed_vocabulary_texts, term_sets
from benchmark.vlm.paligemma.model import (
    PaligemmaResult,
    PaligemmaVLM,
    PaligemmaVLMConfig,
    is_attention_parameter,
    is_language_model_parameter,
    pixels_key,
)


@pytest.fixture(scope="module")
def builtin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_builtin(tmp_path_factory.mktemp("paligemma") / "builtin", seed=0)


def _snapshot(vlm: PaligemmaVLM) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in vlm.model.state_dict().items()}


def _train_loss(vlm: PaligemmaVLM, samples: list[Sample]) -> float:
    batch = vlm.inputs(
        [s.image for s in samples],
        [s.record.question for s in samples],
        [s.record.answer for s in samples],
    )
    with torch.inference_mode():
        return float(vlm.loss(batch))


def test_term_sets_are_the_26_captionable_combinations() -> None:
    sets = term_sets()
    assert len(sets) == len(set(sets)) == 26
    assert ("above", "behind", "left") in sets and ("in front of",) in sets


def test_the_builtin_tokenizer_covers_the_closed_vocabulary(builtin_dir: Path) -> None:
    tokenizer = PaligemmaVLM.load(builtin_dir).processor.tokenizer
    unk = tokenizer.unk_token_id
    for text in closed_vocabulary_texts()[::7]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert unk not in ids, text
        assert tokenizer.decode(ids) == text
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<eos>", "<bos>")] == [0, 1, 2]


def test_prompt_layout_and_labels(builtin_dir: Path, train_samples: list[Sample]) -> None:
    vlm = PaligemmaVLM.load(builtin_dir)
    s = train_samples[0]
    batch = vlm.inputs([s.image], [s.record.question], [s.record.answer])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    tok = vlm.processor.tokenizer
    n_image = vlm.processor.image_seq_length
    assert n_image == 9  # one token per object of the vocabulary
    assert ids[:n_image] == [vlm.model.config.image_token_id] * n_image
    assert ids[n_image] == tok.bos_token_id
    n_question = len(s.record.question.split())
    assert tok.decode(ids[n_image + 1 : n_image + 1 + n_question]) == s.record.question
    answer_at = n_image + 2 + n_question  # after the question's closing newline
    assert tok.decode(ids[answer_at - 1]) == "\n"
    assert all(label == -100 for label in labels[:answer_at])
    assert labels[answer_at:] == ids[answer_at:]
    assert tok.decode(labels[answer_at:]) == s.record.answer + tok.eos_token


def test_j2_and_metric_from_rubric_scores(builtin_dir: Path, test_samples: list[Sample]) -> None:
    vlm = PaligemmaVLM.load(builtin_dir, PaligemmaVLMConfig(max_new_tokens=6))
    results = [PaligemmaResult("", (), 5), PaligemmaResult("", (), 3), PaligemmaResult("", (), 1)]
    assert vlm.j2(results) == pytest.approx((6 - 3) ** 2)
    assert vlm.metric(results) == pytest.approx(3.0)
    # hardness: the per-sample 6 - S_PG whose mean J2 squares; an error: below the top score
    assert vlm.hardness(results) == [1.0, 3.0, 5.0]
    assert vlm.errors(results) == [False, True, True]
    results = vlm.evaluate(test_samples[:8])
    for r, s in zip(results, test_samples, strict=False):
        assert r.score == rubric_score(r.answer, s.record.terms)
    assert vlm.j2(results) == pytest.approx((6 - vlm.metric(results)) ** 2)


@pytest.mark.parametrize("lora", [False, True])
def test_finetuning_trains_only_the_attention_and_lowers_the_loss(
    builtin_dir: Path, train_samples: list[Sample], lora: bool
) -> None:
    config = PaligemmaVLMConfig(lr=3e-3, batch_size=8, lora=lora, lora_r=8)
    vlm = PaligemmaVLM.load(builtin_dir, config)
    batch = train_samples[:16]
    before_weights, before = _snapshot(vlm), _train_loss(vlm, batch)
    losses = vlm.finetune(batch, k=6)
    after_weights, after = _snapshot(vlm), _train_loss(vlm, batch)
    print(f"PaliGemma (lora={lora}) training loss {before:.3f} -> {after:.3f}")
    assert len(losses) == 6
    assert after < before - 0.2
    assert isinstance(vlm.model, PaliGemmaForConditionalGeneration)  # adapter merged away
    assert after_weights.keys() == before_weights.keys()  # no LoRA or other extra tensors
    changed = {k for k in before_weights if not torch.equal(before_weights[k], after_weights[k])}
    attention = {k for k in before_weights if is_attention_parameter(k)}
    assert len(attention) == 4 * 4  # 4 layers x q, k, v, o
    assert changed == attention  # every attention projection moved, nothing else did
    assert not any(p.requires_grad for p in vlm.model.parameters())


def test_finetuning_the_language_model_trains_all_of_it_and_nothing_else(
    builtin_dir: Path, train_samples: list[Sample]
) -> None:
    config = PaligemmaVLMConfig(lr=3e-3, batch_size=8, trainable="language_model")
    vlm = PaligemmaVLM.load(builtin_dir, config)
    batch = train_samples[:16]
    before_weights, before = _snapshot(vlm), _train_loss(vlm, batch)
    vlm.finetune(batch, k=6)
    after_weights, after = _snapshot(vlm), _train_loss(vlm, batch)
    assert after < before - 0.2
    changed = {k for k in before_weights if not torch.equal(before_weights[k], after_weights[k])}
    changed -= {k for k in changed if k.startswith("lm_head.")}  # tied to the embeddings
    language = {k for k in before_weights if is_language_model_parameter(k)}
    assert "model.language_model.embed_tokens.weight" in changed  # the spatial words' rows too
    assert any(".mlp." in k for k in changed) and any("layernorm" in k for k in changed)
    assert changed <= language and len(changed) >= len(language) - 1  # at most a norm unmoved
    assert not any("vision_tower" in k or "multi_modal_projector" in k for k in changed)
    assert not any(p.requires_grad for p in vlm.model.parameters())


def test_finetuning_is_deterministic(builtin_dir: Path, train_samples: list[Sample]) -> None:
    runs = [
        PaligemmaVLM.load(builtin_dir, PaligemmaVLMConfig(batch_size=4)).finetune(
            train_samples[:8], k=2, seed=9
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_save_and_load_round_trip(
    builtin_dir: Path, tmp_path: Path, test_samples: list[Sample]
) -> None:
    vlm = PaligemmaVLM.load(builtin_dir, PaligemmaVLMConfig(max_new_tokens=4))
    out = vlm.save(tmp_path / "ckpt")
    assert (out / "model.safetensors").is_file()
    again = PaligemmaVLM.load(out, PaligemmaVLMConfig(max_new_tokens=4))
    assert again.evaluate(test_samples[:4]) == vlm.evaluate(test_samples[:4])


def test_a_checkpoint_in_googles_layout_loads_through_the_same_code(
    builtin_dir: Path, tmp_path: Path, test_samples: list[Sample]
) -> None:
    """google/paligemma-3b-pt-224's layout: sharded safetensors with an index, and the image
    processor and tokenizer saved on their own (preprocessor_config.json, tokenizer files)."""
    source = PaligemmaVLM.load(builtin_dir)
    real = tmp_path / "paligemma-3b-pt-224"
    source.model.save_pretrained(real, max_shard_size="500KB")
    source.processor.image_processor.save_pretrained(real)
    source.processor.tokenizer.save_pretrained(real)
    names = {p.name for p in real.iterdir()}
    assert "model.safetensors.index.json" in names and "preprocessor_config.json" in names
    assert len([n for n in names if n.endswith(".safetensors")]) > 1
    assert "processor_config.json" not in names
    config = PaligemmaVLMConfig(max_new_tokens=4)
    loaded = PaligemmaVLM.load(real, config)
    assert loaded.evaluate(test_samples[:4]) == PaligemmaVLM.load(builtin_dir, config).evaluate(
        test_samples[:4]
    )


def test_a_missing_checkpoint_is_a_clear_error_never_a_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="google/paligemma-3b-pt-224"):
        PaligemmaVLM.load("google/paligemma-3b-pt-224")
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        PaligemmaVLM.load(tmp_path)


@pytest.mark.parametrize(
    ("field", "value"), [("lr", -1.0), ("lora_r", 0), ("lora", "yes"), ("lora_dropout", 1.0)]
)
def test_bad_config_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"PaligemmaVLMConfig\n{field}\n"):
        PaligemmaVLMConfig(**{field: value})  # type: ignore[arg-type]


def test_the_builtin_image_tokens_are_one_per_object_saying_where_it_is(
    builtin_dir: Path, train_samples: list[Sample]
) -> None:
    """The vision tower is the localisation trunk: token c holds object c's identity and its
    soft-argmax slot (presence, x, y, depth, then x and y times the depth in metres)."""
    from benchmark.sim.scenes import object_names
    from benchmark.vlm.locnet import LocVisionModel

    vlm = PaligemmaVLM.load(builtin_dir)
    tower = vlm.model.get_encoder("image")
    assert isinstance(tower, LocVisionModel)
    with torch.inference_mode():
        pixels = vlm.pixels([s.image for s in train_samples[:4]])
        tokens = tower(pixels).last_hidden_state
        presence, centres, depths = tower.trunk.pool(*tower.trunk.maps(pixels))
    n = len(object_names())
    assert tokens.shape == (4, n, n + 6)
    assert torch.equal(tokens[..., :n], torch.eye(n).expand(4, -1, -1))
    s = torch.sigmoid(presence)
    torch.testing.assert_close(tokens[..., n], s)
    torch.testing.assert_close(tokens[..., n + 1 : n + 3], s[..., None] * centres)
    torch.testing.assert_close(tokens[..., n + 3], s * depths)
    metres = s * (depths + 2.0)
    torch.testing.assert_close(
        tokens[..., n + 4 : n + 6], s[..., None] * centres * metres[..., None]
    )
    assert vlm.processor.image_seq_length == n  # one <image> token per object


def _own_answers(vlm: PaligemmaVLM, samples: list[Sample]) -> list[str]:
    """Greedy answers through transformers' own path (``generate`` of the model, no cache)."""
    batch = vlm.inputs([s.image for s in samples], [s.record.question for s in samples])
    with torch.inference_mode():
        out = vlm.model.generate(
            **batch, max_new_tokens=vlm.config.max_new_tokens, do_sample=False, num_beams=1
        )
    texts = vlm.processor.batch_decode(out[:, batch["input_ids"].shape[1] :], True)
    return [t.strip() for t in texts]


def _own_features(vlm: PaligemmaVLM, samples: list[Sample]) -> torch.Tensor:
    """The vision tower and projector on each image alone, through transformers' own method."""
    inner = vlm.model.model
    with torch.no_grad():
        return torch.cat(
            [
                type(inner).get_image_features(inner, vlm.pixels([s.image])).pooler_output
                for s in samples
            ]
        )


def test_the_frozen_image_features_are_the_models_own(
    builtin_dir: Path, test_samples: list[Sample]
) -> None:
    """Generation through the cache answers as transformers' own path does, and the features
    it serves are what the vision tower and projector compute, whatever the batch."""
    vlm = PaligemmaVLM.load(builtin_dir, PaligemmaVLMConfig(eval_batch_size=5))
    answers = vlm.generate(
        [s.image for s in test_samples], [s.record.question for s in test_samples]
    )
    assert answers == _own_answers(vlm, test_samples)
    assert len(vlm._image_cache) == len(test_samples)  # each image computed once
    inner = vlm.model.model
    with vlm.frozen_image_features(), torch.no_grad():
        served = inner.get_image_features(vlm.pixels([s.image for s in test_samples]))
    assert torch.equal(served.pooler_output, _own_features(vlm, test_samples))
    # an image's features do not depend on the batch it came in (so a run's files do not
    # depend on what the cache held: a resumed run repeats an uninterrupted one)
    other = PaligemmaVLM.load(builtin_dir, PaligemmaVLMConfig(eval_batch_size=16))
    other.generate(
        [s.image for s in test_samples[3:]], [s.record.question for s in test_samples[3:]]
    )
    shared = [pixels_key(p) for p in vlm.pixels([s.image for s in test_samples[3:]])]
    assert all(torch.equal(vlm._image_cache[k], other._image_cache[k]) for k in shared)
    # outside the cache's calls transformers' own method is back
    assert "get_image_features" not in vars(inner)


def test_a_changed_vision_part_is_never_served_stale_features(
    builtin_dir: Path, tmp_path: Path, test_samples: list[Sample]
) -> None:
    vlm = PaligemmaVLM.load(builtin_dir)
    images, questions = [s.image for s in test_samples], [s.record.question for s in test_samples]
    vlm.generate(images, questions)
    before = _own_features(vlm, test_samples)
    other = PaligemmaVLM.load(build_builtin(tmp_path / "other", seed=5))
    with torch.no_grad():  # another checkpoint's weights, loaded into the same model
        vlm.model.load_state_dict(other.model.state_dict())
    assert vlm.generate(images, questions) == _own_answers(vlm, test_samples)
    after = torch.stack([vlm._image_cache[pixels_key(p)] for p in vlm.pixels(images)])
    assert not torch.allclose(before, after)
    assert torch.equal(after, _own_features(vlm, test_samples))
    # a change of one buffer is enough (a BatchNorm statistic of the vision tower)
    buffer = next(b for n, b in vlm.model.named_buffers() if "running_mean" in n)
    with torch.no_grad():
        buffer += 1.0
    vlm.generate(images, questions)
    changed = torch.stack([vlm._image_cache[pixels_key(p)] for p in vlm.pixels(images)])
    assert not torch.equal(changed, after)
    assert torch.equal(changed, _own_features(vlm, test_samples))


def test_fine_tuning_through_the_cache_is_the_models_own_fine_tuning(
    builtin_dir: Path, train_samples: list[Sample]
) -> None:
    """The same losses and weights as fine-tuning with the vision part run at every step."""
    config = PaligemmaVLMConfig(lr=3e-3, batch_size=8, trainable="language_model")
    cached, own = PaligemmaVLM.load(builtin_dir, config), PaligemmaVLM.load(builtin_dir, config)
    own.frozen_image_features = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    losses = cached.finetune(train_samples[:16], k=4, seed=3)
    assert len(cached._image_cache) == 16
    assert losses == pytest.approx(own.finetune(train_samples[:16], k=4, seed=3), abs=1e-5)
    # the features agree to about 1e-7 (each image alone against a batch of 8); Adam's
    # normalised steps carry that to about 3e-5 in a weight, against 1e-2 that the steps move
    for (name, a), b in zip(_snapshot(cached).items(), _snapshot(own).values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4, msg=name)
    # a trained vision part is never cached: the model's own path serves it
    cached.model.model.multi_modal_projector.requires_grad_(True)
    with cached.frozen_image_features():
        assert "get_image_features" not in vars(cached.model.model)
