"""The built-in CLIP's base training (spec section 5, "built-in models"): two objectives on
disjoint parameters. The image trunk (``vlm.locnet``) learns where each object is, image-only:
per object its projected centre, its depth and whether it is in view, all from the metadata
(``basetraining.object_targets``, ``sim/camera.py``; ``localisation_loss``). The projection and
the text tower learn the objects' names: contrastive training (eq. 1 without negatives, i.e.
open_clip's ClipLoss) on object lists, "a red mug, a teddy bear and a soccer ball", in a fresh
random order every epoch (``base_training_captions``), on the trunk's slots (detached, centred
by their running mean). The text tower's blocks keep their initialisation; its token embedding
and projection train. Batches are drawn from one scene at a time (see
``basetraining.scene_batches``). Spatial skill: the accuracy of the positive caption against its
two hard negatives (chance 1/3 for random scores; a relation-blind model, for which each
comparison is a coin flip, scores about 1/4), and each negative alone (chance 1/2). Object
recognition: the same three-way choice between the true object list and two lists naming absent
objects (``object_accuracy``), or with one present object replaced by an absent one
(``object_accuracy_one_replaced``); chance 1/3. Localisation
(``basetraining.measure_localisation``): centre error, presence accuracy, and left/right of
every pair of objects in view read from the two predicted x's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.config import ClipEvaluate, ClipFinetune, ClipPretrainConfig, SimParams
from benchmark.samples import Sample, progress
from benchmark.sim.scenes import object_names
from benchmark.vlm import basetraining
from benchmark.vlm.base import (
    autocast,
    chunks,
    object_list_caption,
    seed_everything,
)
from benchmark.vlm.clip.model import (
    MAX_LOGIT_SCALE,
    ClipVLM,
    ClipVLMConfig,
    accuracy_mask,
    negclip_loss,
    similarities,
)
from benchmark.vlm.locnet import LocNet, localisation_loss

SLOT_MEAN_MOMENTUM = 0.05  # of the running mean of the slots during base training


def absent_lists(
    samples: Sequence[Sample], rng: np.random.Generator, replaced: int = 1
) -> tuple[list[str], list[str]]:
    """Two distractor object lists per sample: ``replaced`` (1..3) of the present objects, at
    random slots, replaced by absent ones; the two lists differ."""
    if not 1 <= replaced <= 3:
        raise ValueError(f"replaced must be 1, 2 or 3, got {replaced}")
    vocabulary = object_names()
    first, second = [], []
    for s in samples:
        present = list(s.object_names())
        absent = [n for n in vocabulary if n not in present]
        lists: list[list[str]] = []
        while len(lists) < 2:
            names = present.copy()
            slots = rng.choice(len(present), size=replaced, replace=False)
            fakes = rng.choice(len(absent), size=replaced, replace=False)
            for slot, fake in zip(slots, fakes, strict=True):
                names[int(slot)] = absent[int(fake)]
            if names not in lists:
                lists.append(names)
        first.append(object_list_caption(lists[0]))
        second.append(object_list_caption(lists[1]))
    return first, second


def _three_way(vlm: ClipVLM, samples: Sequence[Sample], texts: list[str]) -> list[bool]:
    """Whether each image scores its first text (of 3N: trues, then 2 blocks) above the rest."""
    images = vlm.images_tensor([s.image for s in samples])
    zi, zt, _ = vlm.features(images, vlm.texts_tensor(texts))
    return [bool(c) for c in accuracy_mask(similarities(zi, zt)).tolist()]


@torch.inference_mode()
def measure_clip(vlm: ClipVLM, samples: Sequence[Sample], seed: int = 0) -> dict[str, float]:
    """Spatial and object accuracies (three-way choices, chance 1/3) on ``samples``."""
    vlm.model.eval()
    rng = np.random.default_rng(seed)
    results = vlm.evaluate(samples)
    objects: dict[int, list[bool]] = {3: [], 1: []}
    for group in chunks(samples, vlm.config.eval_batch_size):
        true = [object_list_caption(s.object_names()) for s in group]
        for replaced, correct in objects.items():
            first, second = absent_lists(group, rng, replaced)
            correct.extend(_three_way(vlm, group, true + first + second))
    return {
        "spatial_accuracy": vlm.metric(results),
        "spatial_chance": 1 / 3,
        "beats_term_swapped": float(
            np.mean([r.sim_positive > r.sim_term_swapped for r in results])
        ),
        "beats_order_swapped": float(
            np.mean([r.sim_positive > r.sim_order_swapped for r in results])
        ),
        "pairwise_chance": 1 / 2,
        "loss": float(np.mean([r.loss for r in results])),
        "j2": vlm.j2(results),
        "object_accuracy": float(np.mean(objects[3])),
        "object_accuracy_one_replaced": float(np.mean(objects[1])),
        "object_chance": 1 / 3,
    }


def base_training_captions(samples: Sequence[Sample], rng: np.random.Generator) -> list[str]:
    """One epoch's texts for the CLIP text tower: each sample's object list in a random order.
    These are the only texts base training tokenizes: no spatial word among them."""
    return [object_list_caption(rng.permutation(s.object_names()).tolist()) for s in samples]


def pretrain_clip(
    config: ClipPretrainConfig, sim: SimParams, t0: int, evaluate: ClipEvaluate
) -> tuple[ClipVLM, dict[str, Any]]:
    """Train the built-in CLIP on object lists of train scenes, and its image trunk on where each
    object is (image-only, from the metadata); measure it on test scenes. The scenes are those of
    the profile's ``sim`` block and ``t0``; the model evaluates as the profile's ``evaluate``
    block says, and trains with the base training's own learning rate and weight decay, its
    image trunk included."""
    start = time.perf_counter()
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    samples = basetraining.collect_train(config, sim, t0)
    # base training's own learning rate and weight decay; it trains the trunk
    own = ClipFinetune(lr=config.lr, weight_decay=config.weight_decay, lock_image=False)
    vlm = ClipVLM.builtin(ClipVLMConfig.of(evaluate, own, config.seed))
    trunk = vlm.model.visual.trunk
    if not isinstance(trunk, LocNet):
        raise TypeError(f"the built-in CLIP's trunk is {type(trunk).__name__}, not LocNet")
    centres, depths, present = basetraining.object_targets(samples, object_names())
    images = vlm.images_tensor([s.image for s in samples])
    epochs = [
        basetraining.scene_batches(samples, config.batch_size, rng) for _ in range(config.epochs)
    ]
    total = sum(len(e) for e in epochs)
    # The text tower's blocks stay at their initialisation: base training teaches the object
    # names through the token embedding and the projection, and leaves the blocks free for
    # fine-tuning (docs/research.md: fine-tuned from trained blocks, the relations were learnt
    # slower).
    frozen = vlm.model.transformer
    optimizer = vlm.optimizer(exclude=frozen)
    schedule = basetraining.one_cycle(optimizer, config.lr, total)
    losses: list[float] = []
    located: list[float] = []
    words: set[str] = set()
    vlm.model.train()
    with progress(total=total, desc="clip base training") as bar:
        for batches in epochs:
            texts = base_training_captions(samples, rng)
            words.update(w for t in texts for w in t.replace(",", " ").split())
            tokens = vlm.texts_tensor(texts)
            for idx in batches:
                i = torch.as_tensor(idx, device=vlm.device)
                with autocast(vlm.device):
                    heat, depth = trunk.maps(images[i])
                    # the trunk learns from the localisation loss alone, the projection and the
                    # text tower from the contrastive one, on slots centred by a running mean
                    slots = trunk.slots(heat, depth).detach()
                    trunk.slot_mean.lerp_(slots.mean(dim=0), SLOT_MEAN_MOMENTUM)
                    zi = F.normalize(vlm.model.visual.head(slots - trunk.slot_mean), dim=-1)
                    zt = vlm.model.encode_text(tokens[i], normalize=True)
                    where = localisation_loss(
                        trunk, heat, depth, centres[idx], depths[idx], present[idx]
                    )
                contrastive = negclip_loss(zi.float(), zt.float(), vlm.model.logit_scale.exp())
                loss = contrastive + where.float()  # two disjoint sets of parameters
                basetraining.optimizer_step(loss, optimizer, schedule, losses, bar)
                located.append(float(where.detach()))
                with torch.no_grad():
                    vlm.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
                bar.update(1)
    vlm.model.eval()
    with torch.no_grad():  # the exact mean over the training images (``LocNet.slot_mean``)
        slots = torch.cat([trunk.slots(*trunk.maps(b)) for b in images.split(256)])
        trunk.slot_mean.copy_(slots.mean(dim=0))
    train_s = time.perf_counter() - start
    test = basetraining.collect_test(config, sim, t0)
    metrics = measure_clip(vlm, test, config.seed)
    metrics.update(
        basetraining.measure_localisation(trunk, vlm.images_tensor([s.image for s in test]), test)
    )
    info = {
        "model": "clip",
        "config": asdict(config),
        "train_seconds": round(train_s, 1),
        "measure_seconds": round(time.perf_counter() - start - train_s, 1),
        "first_epoch_loss": float(np.mean(losses[: len(epochs[0])])),
        "last_epoch_loss": float(np.mean(losses[-len(epochs[-1]) :])),
        "last_epoch_localisation_loss": float(np.mean(located[-len(epochs[-1]) :])),
        "text_words": sorted(words),  # every word the text tower saw in base training
        "test": metrics,
    }
    return vlm, info


def sample_passes(config: ClipPretrainConfig) -> int:
    """Sample passes of the base training (``rls3 check``'s time estimate): every epoch over
    every sample."""
    return config.samples * config.epochs
