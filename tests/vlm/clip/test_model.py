"""The CLIP family: eq. 1 in the NegCLIP form, accuracy, J2, fine-tuning, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import open_clip
import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from benchmark.samples import Sample
from benchmark.vlm.clip.model import (
    BUILTIN_MODEL,
    ClipResult,
    ClipVLM,
    ClipVLMConfig,
    accuracy_mask,
    negclip_loss,
    negclip_loss_terms,
    register_builtin,
    sample_texts,
    similarities,
)
from benchmark.vlm.locnet import LocNet

E = math.e

# Two images and their 3N = 6 texts: positives, term-swapped, order-swapped (unit vectors).
IMAGES = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
TEXTS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0], [0.0, -1.0]])


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_negclip_loss_matches_the_hand_computed_value(scale: float) -> None:
    # image 1's logits over the 6 texts: s*[1, 0, 0, 1, -1, 0]; image 2's are a permutation
    i2t = -scale + math.log(2 * E**scale + 3 + E**-scale)
    # positive 1's logits over the 2 images: s*[1, 0]
    t2i = -scale + math.log(E**scale + 1)
    expected = (i2t + t2i) / 2
    terms = negclip_loss_terms(IMAGES, TEXTS, torch.tensor(scale))
    assert terms.tolist() == pytest.approx([expected, expected], rel=1e-6)
    assert float(negclip_loss(IMAGES, TEXTS, torch.tensor(scale))) == pytest.approx(expected)


def test_without_negatives_the_loss_is_open_clips_cliploss() -> None:
    gen = torch.Generator().manual_seed(0)
    image = F.normalize(torch.randn(7, 16, generator=gen), dim=-1)
    text = F.normalize(torch.randn(7, 16, generator=gen), dim=-1)
    scale = torch.tensor(14.3)
    reference = open_clip.ClipLoss()(image, text, scale)
    assert float(negclip_loss(image, text, scale)) == pytest.approx(float(reference), rel=1e-6)
    # and negatives change it: they enter the image-to-text denominator
    negs = F.normalize(torch.randn(14, 16, generator=gen), dim=-1)
    assert float(negclip_loss(image, torch.cat([text, negs]), scale)) > float(reference)


def test_accuracy_needs_the_positive_strictly_above_both_negatives() -> None:
    sims = similarities(IMAGES, TEXTS)
    assert sims.tolist() == [[1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]
    assert accuracy_mask(sims).tolist() == [True, True]
    hand = torch.tensor([[0.5, 0.2, 0.1], [0.3, 0.4, 0.1], [0.2, 0.2, 0.1], [0.2, 0.1, 0.3]])
    assert accuracy_mask(hand).tolist() == [True, False, False, False]


def test_j2_is_the_square_of_the_episode_loss(train_samples: list[Sample]) -> None:
    results = [ClipResult(1.0, 0.0, 0.0, 0.0, False), ClipResult(2.0, 0.0, 0.0, 0.0, True)]
    vlm = ClipVLM.builtin()
    assert vlm.j2(results) == pytest.approx(1.5**2)
    assert vlm.metric(results) == 0.5
    # hardness: each sample's loss, whose mean J2 squares; an error: the caption lost
    assert vlm.hardness(results) == [1.0, 2.0] and vlm.errors(results) == [True, False]
    # on real samples: J2 is L^2 with L eq. 1 over the whole episode (one contrastive group)
    episode = train_samples[:16]
    results = vlm.evaluate(episode)
    with torch.inference_mode():
        zi, zt, scale = vlm.features(
            vlm.images_tensor([s.image for s in episode]), vlm.texts_tensor(sample_texts(episode))
        )
        loss = float(negclip_loss(zi, zt, scale))
    assert vlm.j2(results) == pytest.approx(loss**2, rel=1e-5)
    sims = similarities(zi, zt)
    assert [r.correct for r in results] == accuracy_mask(sims).tolist()
    assert results[3].sim_term_swapped == pytest.approx(float(sims[3, 1]), abs=1e-6)


def test_finetuning_lowers_the_training_loss(train_samples: list[Sample]) -> None:
    vlm = ClipVLM.builtin(ClipVLMConfig(lr=3e-3, batch_size=16))
    before = np.mean([r.loss for r in vlm.evaluate(train_samples)])
    losses = vlm.finetune(train_samples, k=3)
    after = np.mean([r.loss for r in vlm.evaluate(train_samples)])
    print(f"CLIP training loss {before:.3f} -> {after:.3f}; steps {np.round(losses, 3)}")
    assert len(losses) == 3 * 2  # 3 epochs of 32 samples in minibatches of 16
    assert after < before - 0.1


def test_building_and_finetuning_are_deterministic(train_samples: list[Sample]) -> None:
    a, b = ClipVLM.builtin(), ClipVLM.builtin()
    for (name, pa), pb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name
    assert a.finetune(train_samples[:8], 1, seed=5) == b.finetune(train_samples[:8], 1, seed=5)
    c = ClipVLM.builtin(ClipVLMConfig(seed=1))
    assert not torch.equal(c.model.text_projection, a.model.text_projection)


def test_save_and_load_round_trip(tmp_path: Path, test_samples: list[Sample]) -> None:
    vlm = ClipVLM.builtin(ClipVLMConfig(seed=3))
    out = vlm.save(tmp_path / "ckpt")
    assert sorted(p.name for p in out.iterdir()) == [
        "open_clip_config.json",
        "open_clip_model.safetensors",
    ]
    loaded = ClipVLM.load(out)
    assert loaded.evaluate(test_samples) == vlm.evaluate(test_samples)


def test_a_loaded_model_infers_without_touching_its_batchnorm_statistics(
    tmp_path: Path, test_samples: list[Sample]
) -> None:
    """open_clip builds in training mode; a forward pass there would update BatchNorm's buffers
    and give batch-dependent features. The constructor, which building and loading share, puts
    the model in inference mode; checked on a loaded checkpoint with trained statistics."""
    trained = ClipVLM.builtin(ClipVLMConfig(seed=3, freeze_bn_stats=False))
    trained.finetune(test_samples[:8], 1)  # moves the running statistics away from their init
    loaded = ClipVLM.load(trained.save(tmp_path / "ckpt"))
    assert not loaded.model.training
    buffers = {k: v.clone() for k, v in loaded.model.state_dict().items() if "running" in k}
    assert buffers, "the built-in image tower has BatchNorm layers"
    images = loaded.images_tensor([s.image for s in test_samples[:4]])
    texts = loaded.texts_tensor(sample_texts(test_samples[:4]))
    with torch.no_grad():
        alone, _, _ = loaded.features(images[:1], texts[:3])
        batch, _, _ = loaded.features(images, texts)
    for k, v in loaded.model.state_dict().items():
        if k in buffers:
            assert torch.equal(v, buffers[k]), k
    # Inference-mode features of an image do not depend on the rest of its batch.
    assert torch.allclose(alone[0], batch[0], atol=1e-5)


def test_real_weights_load_from_an_arch_name_and_a_local_file_or_cache(
    tmp_path: Path, test_samples: list[Sample]
) -> None:
    """The "real weights" path: an open_clip architecture plus a plain safetensors state dict,
    as a file or inside a hub-cache tree, through the same loader."""
    register_builtin()  # the test makes the weights itself (it used to rely on an earlier test)
    model = open_clip.create_model(BUILTIN_MODEL)
    with torch.no_grad():
        model.logit_scale.fill_(1.234)
    file = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(file))
    snapshot = tmp_path / "models--org--clip" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(snapshot / "open_clip_model.safetensors"),
    )
    from_file = ClipVLM.load(file, arch=BUILTIN_MODEL)
    from_cache = ClipVLM.load(tmp_path / "models--org--clip", arch=BUILTIN_MODEL)
    assert from_file.model.logit_scale.item() == pytest.approx(1.234)
    assert from_file.evaluate(test_samples) == from_cache.evaluate(test_samples)


def test_a_missing_or_unsafe_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "ViT-B-32" / "open_clip_model.safetensors"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        ClipVLM.load(missing, arch="ViT-B-32")
    pickled = tmp_path / "model.bin"
    pickled.write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"only \.safetensors"):
        ClipVLM.load(pickled, arch=BUILTIN_MODEL)
    with pytest.raises(ValueError, match="arch"):
        ClipVLM.load(pickled)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \.safetensors"):
        ClipVLM.load(empty, arch=BUILTIN_MODEL)


@pytest.mark.parametrize(
    ("field", "value"), [("lr", 0.0), ("batch_size", 0), ("weight_decay", -1.0)]
)
def test_bad_config_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"ClipVLMConfig\n{field}\n"):
        ClipVLMConfig(**{field: value})  # type: ignore[arg-type]


def test_the_trunk_pools_each_heat_map_to_its_peak_and_presence() -> None:
    """Soft-argmax on a hand-made heat map: object 2 peaks at grid cell (row 8, column 24) of
    32 x 32, so its centre is that cell's centre in [-1, 1]; the others are flat (absent)."""
    trunk = LocNet(objects=3)
    heat = torch.zeros(1, 3, 32, 32)
    heat[0, 2, 8, 24] = 40.0
    depth = torch.full((1, 3, 32, 32), 0.5)
    presence, centres, depths = trunk.pool(heat, depth)
    assert centres[0, 2].tolist() == pytest.approx([(24.5 / 32) * 2 - 1, (8.5 / 32) * 2 - 1])
    assert centres[0, 0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # flat: the middle
    assert depths[0].tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert presence[0, 2] > 0 > presence[0, 0]
    assert trunk.slots(heat, depth).shape == (1, 3 * 4)


def test_the_builtin_tower_is_a_timm_trunk_on_a_fine_grid_behind_open_clips_factory() -> None:
    vlm = ClipVLM.builtin()
    assert isinstance(vlm.model.visual.trunk, LocNet)
    assert timm.is_model("rls3_locnet")
    with torch.no_grad():
        heat, _ = vlm.model.visual.trunk.maps(torch.zeros(2, 3, 64, 64))
    assert heat.shape[-2:] == (32, 32)  # the spatial grid kept up to the pooling
    assert open_clip.get_model_config(BUILTIN_MODEL)["vision_cfg"]["timm_model_name"] == (
        "rls3_locnet"
    )


def test_locked_image_tuning_trains_the_projection_and_text_but_not_the_trunk(
    train_samples: list[Sample],
) -> None:
    vlm = ClipVLM.builtin(ClipVLMConfig(lr=3e-3, batch_size=16, lock_image=True))
    before = {k: v.clone() for k, v in vlm.model.state_dict().items()}
    vlm.finetune(train_samples, 2)
    after = vlm.model.state_dict()
    trunk = [k for k in before if k.startswith("visual.trunk.")]
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert trunk and not set(trunk) & set(moved)  # weights and BatchNorm statistics alike
    assert any(k.startswith("visual.head.") for k in moved)
    assert any(k.startswith("transformer.") for k in moved)
    unlocked = ClipVLM.builtin(ClipVLMConfig(lr=3e-3, batch_size=16))
    unlocked.finetune(train_samples, 1)
    assert not torch.equal(
        unlocked.model.state_dict()["visual.trunk.features.0.0.weight"],
        before["visual.trunk.features.0.0.weight"],
    )


@pytest.mark.parametrize("freeze", [True, False])
def test_fine_tuning_the_whole_tower_keeps_batchnorm_statistics_when_frozen(
    train_samples: list[Sample], freeze: bool
) -> None:
    """``freeze_bn_stats`` (the default, measured in docs/research.md): the trunk's weights train
    and its BatchNorm layers normalise with, and keep, their running statistics."""
    vlm = ClipVLM.builtin(ClipVLMConfig(lr=3e-3, batch_size=16, freeze_bn_stats=freeze))
    before = {k: v.clone() for k, v in vlm.model.state_dict().items()}
    vlm.finetune(train_samples, 1)
    after = vlm.model.state_dict()
    running = [k for k in before if "running_" in k]
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert running and "visual.trunk.features.0.0.weight" in moved
    assert (not set(running) & moved) if freeze else set(running) <= moved
    assert ClipVLMConfig().freeze_bn_stats


# ---------------------------------------------------------------------------- what makes it cheap


def test_cached_trunk_features_equal_a_fresh_forward_pass(test_samples: list[Sample]) -> None:
    """The locked trunk's cache serves what the trunk computes, whatever the batch."""
    vlm = ClipVLM.builtin(ClipVLMConfig(seed=2, lock_image=True))
    images = [s.image for s in test_samples]
    served = vlm.locked_features(images[:5])  # computed on a batch of 5, then cached
    again = vlm.locked_features(images)  # 5 from the cache, 11 fresh
    trunk = vlm.model.visual.trunk.eval()
    with torch.no_grad():
        fresh = torch.cat([trunk(vlm.images_tensor([im])) for im in images])  # one at a time
    assert torch.equal(served, again[:5])
    torch.testing.assert_close(again, fresh, rtol=0, atol=1e-6)
    # evaluate through the cache equals open_clip's whole-tower forward pass
    results = vlm.evaluate(test_samples)
    with torch.no_grad():
        zi, zt, scale = vlm.features(
            vlm.images_tensor(images), vlm.texts_tensor(sample_texts(test_samples))
        )
    expected = negclip_loss_terms(zi, zt, scale).tolist()
    assert [r.loss for r in results] == pytest.approx(expected, abs=1e-5)


def test_a_changed_trunk_is_never_served_stale_features(
    tmp_path: Path, test_samples: list[Sample]
) -> None:
    vlm = ClipVLM.builtin(ClipVLMConfig(seed=2, lock_image=True))
    images = [s.image for s in test_samples]
    before = vlm.locked_features(images)
    other = ClipVLM.builtin(ClipVLMConfig(seed=9)).save(tmp_path / "other")
    with torch.no_grad():  # another checkpoint's trunk, loaded into the same model
        vlm.model.load_state_dict(ClipVLM.load(other).model.state_dict())
    after = vlm.locked_features(images)
    trunk = vlm.model.visual.trunk.eval()
    with torch.no_grad():
        fresh = trunk(vlm.images_tensor(images))
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, fresh, rtol=0, atol=1e-6)
    # a change of one buffer is enough (the trunk's slot mean, set by base training)
    with torch.no_grad():
        vlm.model.visual.trunk.slot_mean += 1.0
    torch.testing.assert_close(vlm.locked_features(images), fresh - 1.0, rtol=0, atol=1e-6)


def test_the_text_tower_padded_to_the_longest_caption_equals_open_clips(
    test_samples: list[Sample],
) -> None:
    """Padding after the end of text changes nothing under the causal mask: the trimmed
    batch, each distinct text encoded once, gives open_clip's own features."""
    vlm = ClipVLM.builtin(ClipVLMConfig(seed=4))
    tokens = vlm.texts_tensor(sample_texts(test_samples) * 2)  # every text twice
    assert (tokens[:, -1] == 0).all()  # the built-in captions leave padding to trim
    with torch.no_grad():
        ours = vlm.encode_texts(tokens)
        theirs = vlm.model.encode_text(tokens, normalize=True)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_training_only_the_used_embedding_rows_is_the_same_fine_tuning(
    train_samples: list[Sample], test_samples: list[Sample]
) -> None:
    """Without weight decay, AdamW leaves every row no text uses where it was: training the
    used rows alone gives the same model as training the whole embedding."""
    config = ClipVLMConfig(lr=3e-3, batch_size=16, weight_decay=0.0, lock_image=True)
    rows, whole = ClipVLM.builtin(config), ClipVLM.builtin(config)
    embedding = rows.model.token_embedding.weight.detach().clone()
    whole._causal_text = lambda: False  # type: ignore[method-assign]  # open_clip's own path
    losses = rows.finetune(train_samples, 2, seed=3)
    assert losses == pytest.approx(whole.finetune(train_samples, 2, seed=3), abs=1e-5)
    used = torch.unique(rows.texts_tensor(sample_texts(train_samples)))
    unused = torch.ones(len(embedding), dtype=torch.bool)
    unused[used] = False
    after = rows.model.token_embedding.weight.detach()
    assert torch.equal(after[unused], embedding[unused])
    assert not torch.equal(after[used], embedding[used])  # the used rows trained
    torch.testing.assert_close(after, whole.model.token_embedding.weight, rtol=0, atol=1e-5)
    assert rows.model.token_embedding.weight.requires_grad  # the embedding is whole again
    ours = [r.loss for r in rows.evaluate(test_samples)]
    assert ours == pytest.approx([r.loss for r in whole.evaluate(test_samples)], abs=1e-4)
    # with weight decay every row moves: the whole embedding trains
    decayed = ClipVLM.builtin(ClipVLMConfig(lr=3e-3, batch_size=16, weight_decay=0.1))
    decayed.finetune(train_samples, 1, seed=3)
    assert not torch.equal(decayed.model.token_embedding.weight.detach()[unused], embedding[unused])
