"""Base training of the built-in models (``rls3 pretrain-vlm``; spec section 5).

No pretrained weights can be downloaded, so each built-in model is trained here on scenes of the
*train* environment described without spatial terms: it learns which objects are there (and,
for CLIP, where they are in the image, from the metadata alone), but no word of a relation, so
it starts like a pretrained CLIP (bag-of-words behaviour). Both skills are then measured
on the *test* environment and written next to the checkpoint:

- CLIP, two objectives on disjoint parameters. The image trunk (``vlm.locnet``) learns where each
  object is, image-only: per object its projected centre, its depth and whether it is in view,
  all from the metadata (``object_targets``, ``sim/camera.py``; ``localisation_loss``). The
  projection and the text tower learn the objects' names: contrastive training (eq. 1 without
  negatives, i.e. open_clip's ClipLoss) on object lists, "a red mug, a teddy bear and a soccer
  ball", in a fresh random order every epoch (``base_training_captions``), on the trunk's slots
  (detached, centred by their running mean). The text tower's blocks keep their
  initialisation; its token embedding and projection train. Batches are drawn from one scene at
  a time (see ``scene_batches``). Spatial skill: the accuracy of the positive caption against
  its two hard negatives (chance 1/3 for random scores; a relation-blind model, for which each
  comparison is a coin flip, scores about 1/4), and each negative alone (chance 1/2). Object
  recognition: the same three-way choice between the true object list and two lists naming
  absent objects (``object_accuracy``), or with one present object replaced by an absent one
  (``object_accuracy_one_replaced``); chance 1/3. Localisation (``measure_localisation``):
  centre error, presence accuracy, and left/right of every pair of objects in view read from
  the two predicted x's.
- PaliGemma, in two stages, as the real one was built (a pretrained image encoder, then
  multimodal training on PaliGemma's own task mix). Stage 1 (``pretrain_vision_tower``): the
  vision tower, the CLIP trunk as a transformers model (``locnet.LocVisionModel``), learns
  where each object is by the same image-only localisation objective. Stage 2 (``base_examples``,
  tower frozen): projector and language model learn the objects prompt, answered by the object
  list in vocabulary order; detection ("detect red mug", answered by four <loc> tokens of its
  box); and the position question of spec section 4, answered by detecting the two objects it
  names. No spatial word is ever shown to the language model (``text_words`` records every word
  it saw). Spatial skill: the mean rubric score on the test environment (1.0: no answer has a
  term) against two image-blind baselines, another sample's terms (chance) and the best single
  set of terms. Object recognition: the recall of the present objects in the answer to the
  objects prompt (chance 1/3 for three names guessed at random) and exact-set accuracy (chance
  1/84); detection: the centre error of the subject's box, pixels.

Both families train on samples collected with every step's object swapped
(``swap_prob = 1``), which decorrelates the objects from the scenes they appear in.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.captions import caption, rubric_score
from benchmark.config import ClipPretrainConfig, PaligemmaPretrainConfig, SimParams
from benchmark.fileio import atomic_write_json
from benchmark.samples import Sample, progress
from benchmark.sampling import collect_samples
from benchmark.sim.camera import ImageObject, image_objects
from benchmark.sim.scenes import object_names
from benchmark.vlm.base import (
    OBJECTS_PROMPT,
    autocast,
    chunks,
    object_list_caption,
    parse_object_names,
    seed_everything,
)
from benchmark.vlm.clip import (
    MAX_LOGIT_SCALE,
    ClipVLM,
    ClipVLMConfig,
    accuracy_mask,
    negclip_loss,
    similarities,
)
from benchmark.vlm.locnet import LocNet, LocVisionModel, localisation_loss
from benchmark.vlm.paligemma import (
    PaligemmaVLM,
    PaligemmaVLMConfig,
    detect_prompt,
    detection_answer,
    parse_box,
    term_sets,
)

BUILTIN_IMAGE_SIZES = (32, 64, 224)  # px: the sizes the built-in models are made for


def _optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    losses: list[float],
    bar: Any,
) -> None:
    """One AdamW step on the schedule; the loss is recorded and shown on the bar."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    losses.append(float(loss.detach()))
    bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)


def _one_cycle(
    optimizer: torch.optim.Optimizer, lr: float, steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """10% warm-up to ``lr``, then cosine decay: from-scratch training needs the warm-up.
    (OneCycleLR divides by zero when the warm-up ends exactly on step 0, at 10 steps: 15% then.)"""
    steps = max(2, steps)
    pct = 0.15 if steps == 10 else 0.1
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=pct
    )


def _collect_train(
    config: ClipPretrainConfig | PaligemmaPretrainConfig, sim: SimParams, t0: int
) -> list[Sample]:
    """Train-environment samples in the profile's environment, at the base training's swap
    rate (objects decorrelated from scenes)."""
    if sim.image_size not in BUILTIN_IMAGE_SIZES:
        raise ValueError(
            f"sim.image_size = {sim.image_size}: the built-in models train at one of "
            f"{list(BUILTIN_IMAGE_SIZES)} px"
        )
    return collect_samples(
        "train", config.samples, config.seed, sim=sim, t0=t0, swap_prob=config.swap_prob
    )


def _collect_test(
    config: ClipPretrainConfig | PaligemmaPretrainConfig, sim: SimParams, t0: int
) -> list[Sample]:
    """Test-environment samples as the benchmark draws them (the profile's swap rate), seed + 1."""
    return collect_samples("test", config.test_samples, config.seed + 1, sim=sim, t0=t0)


# ---------------------------------------------------------------------------- CLIP


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


def scene_batches(
    samples: Sequence[Sample], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch of minibatches, each drawn from a single scene, in random order.

    Within one scene the background cannot tell the captions apart, only the objects can; in
    mixed batches the model first learns the scenes, a shortcut that does not transfer to the
    test environment's scenes.
    """
    scenes = np.array([s.metadata["scene"] if s.metadata else "" for s in samples])
    batches: list[np.ndarray] = []
    for scene in np.unique(scenes):
        idx = rng.permutation(np.flatnonzero(scenes == scene))
        batches.extend(idx[i : i + batch_size] for i in range(0, len(idx), batch_size))
    return [batches[int(i)] for i in rng.permutation(len(batches))]


LOC_TOKEN = re.compile(r"<loc\d{4}>")
SLOT_MEAN_MOMENTUM = 0.05  # of the running mean of the slots during base training
DEPTH_CENTRE_M = 2.0  # localisation targets: depth - 2 m (the scenes' objects lie 1-3.2 m away)


def object_targets(
    samples: Sequence[Sample], names: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each object of ``names`` is in each sample's image, from the metadata alone.

    Returns centres (N, C, 2) in [-1, 1] (x right, y down), depths (N, C) in metres minus
    ``DEPTH_CENTRE_M``, and presence (N, C): 1 for an active object whose centre projects into
    the image in front of the camera.
    """
    centres = torch.zeros(len(samples), len(names), 2)
    depths = torch.zeros(len(samples), len(names))
    present = torch.zeros(len(samples), len(names))
    for i, s in enumerate(samples):
        if s.metadata is None:
            raise ValueError("localisation targets need each sample's metadata")
        size = s.image.shape[0]
        for obj in image_objects(s.metadata, size):
            if obj.depth <= 0 or not (0 <= obj.x < size and 0 <= obj.y < size):
                continue
            c = names.index(obj.name)
            centres[i, c] = torch.tensor([obj.x / size * 2 - 1, obj.y / size * 2 - 1])
            depths[i, c] = obj.depth - DEPTH_CENTRE_M
            present[i, c] = 1.0
    return centres, depths, present


def base_training_captions(samples: Sequence[Sample], rng: np.random.Generator) -> list[str]:
    """One epoch's texts for the CLIP text tower: each sample's object list in a random order.
    These are the only texts base training tokenizes: no spatial word among them."""
    return [object_list_caption(rng.permutation(s.object_names()).tolist()) for s in samples]


def pretrain_clip(
    config: ClipPretrainConfig, sim: SimParams, t0: int
) -> tuple[ClipVLM, dict[str, Any]]:
    """Train the built-in CLIP on object lists of train scenes, and its image trunk on where each
    object is (image-only, from the metadata); measure it on test scenes. The scenes are those of
    the profile's ``sim`` block and ``t0``."""
    start = time.perf_counter()
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    samples = _collect_train(config, sim, t0)
    vlm = ClipVLM.builtin(
        ClipVLMConfig(lr=config.lr, weight_decay=config.weight_decay, seed=config.seed)
    )
    trunk = vlm.model.visual.trunk
    if not isinstance(trunk, LocNet):
        raise TypeError(f"the built-in CLIP's trunk is {type(trunk).__name__}, not LocNet")
    centres, depths, present = object_targets(samples, object_names())
    images = vlm.images_tensor([s.image for s in samples])
    epochs = [scene_batches(samples, config.batch_size, rng) for _ in range(config.epochs)]
    total = sum(len(e) for e in epochs)
    # The text tower's blocks stay at their initialisation: base training teaches the object
    # names through the token embedding and the projection, and leaves the blocks free for
    # fine-tuning (docs/research.md: fine-tuned from trained blocks, the relations were learnt
    # slower).
    frozen = vlm.model.transformer
    optimizer = vlm.optimizer(exclude=frozen)
    schedule = _one_cycle(optimizer, config.lr, total)
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
                _optimizer_step(loss, optimizer, schedule, losses, bar)
                located.append(float(where.detach()))
                with torch.no_grad():
                    vlm.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
                bar.update(1)
    vlm.model.eval()
    with torch.no_grad():  # the exact mean over the training images (``LocNet.slot_mean``)
        slots = torch.cat([trunk.slots(*trunk.maps(b)) for b in images.split(256)])
        trunk.slot_mean.copy_(slots.mean(dim=0))
    train_s = time.perf_counter() - start
    test = _collect_test(config, sim, t0)
    metrics = measure_clip(vlm, test, config.seed)
    metrics.update(measure_localisation(trunk, vlm.images_tensor([s.image for s in test]), test))
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


@torch.inference_mode()
def measure_localisation(
    trunk: LocNet, images: torch.Tensor, samples: Sequence[Sample]
) -> dict[str, float]:
    """How well ``trunk`` finds the objects of ``samples`` (``images``, preprocessed): centre
    error (px at 64 px) and presence accuracy, and left/right of every pair of present objects
    read from the two predicted x's (what the relation needs; chance 1/2)."""
    trunk.eval()
    centres, _, present = object_targets(samples, object_names())
    logits, predicted = [], []
    for b in images.split(256):
        p, c, _ = trunk.pool(*trunk.maps(b))
        logits.append(p)
        predicted.append(c)
    presence, where = torch.cat(logits).cpu(), torch.cat(predicted).cpu()
    mask = present.bool()
    error = (where - centres).norm(dim=2)[mask].mean() * 32
    pairs = correct = 0
    for i in range(len(samples)):
        idx = torch.nonzero(mask[i]).flatten().tolist()
        for a in idx:
            for b in idx:
                gap = centres[i, a, 0] - centres[i, b, 0]
                if a < b and abs(gap) > 2 / 64:  # at least a pixel apart
                    pairs += 1
                    correct += int((where[i, a, 0] - where[i, b, 0]) * gap > 0)
    return {
        "centre_error_px": float(error),
        "presence_accuracy": float(((presence > 0) == mask).float().mean()),
        "left_right_accuracy": correct / max(pairs, 1),
    }


# ---------------------------------------------------------------------------- PaliGemma


def random_terms_answers(samples: Sequence[Sample], rng: np.random.Generator) -> list[str]:
    """Each sample's answer with the spatial terms of another sample drawn at random."""
    donors = rng.integers(len(samples), size=len(samples))
    return [
        caption(s.record.subject, s.record.reference, samples[int(j)].record.terms)
        for s, j in zip(samples, donors, strict=True)
    ]


def measure_paligemma(
    vlm: PaligemmaVLM, samples: Sequence[Sample], seed: int = 0
) -> dict[str, float | None]:
    """Rubric score against image-blind baselines, and object naming, on ``samples``."""
    rng = np.random.default_rng(seed)
    results = vlm.evaluate(samples)
    random_terms = [
        rubric_score(a, s.record.terms)
        for a, s in zip(random_terms_answers(samples, rng), samples, strict=True)
    ]
    # The best an image-blind model can do: one fixed set of terms, the best on these samples.
    best_constant = max(
        float(np.mean([rubric_score(caption("a", "b", terms), s.record.terms) for s in samples]))
        for terms in term_sets()
    )
    # Detection of each question's subject: where the language model says it is.
    size = samples[0].image.shape[0] if samples else 64
    boxes = [
        parse_box(t, size)
        for t in vlm.generate(
            [s.image for s in samples], [detect_prompt(s.record.subject) for s in samples]
        )
    ]
    errors = []
    for b, s in zip(boxes, samples, strict=True):
        true = in_view(s).get(s.record.subject)
        if b is not None and true is not None:
            errors.append(math.hypot((b[1] + b[3]) / 2 - true.x, (b[0] + b[2]) / 2 - true.y))
    named = vlm.generate([s.image for s in samples], [OBJECTS_PROMPT] * len(samples))
    vocabulary = object_names()
    recall, precision, exact = [], [], []
    for text, s in zip(named, samples, strict=True):
        said, present = set(parse_object_names(text, vocabulary)), set(s.object_names())
        recall.append(len(said & present) / len(present))
        precision.append(len(said & present) / len(said) if said else 0.0)
        exact.append(said == present)
    return {
        "spatial_score": vlm.metric(results),
        "spatial_chance": float(np.mean(random_terms)),
        "spatial_best_constant": best_constant,
        "answers_with_terms": float(np.mean([bool(r.terms) for r in results])),
        "j2": vlm.j2(results),
        "object_recall": float(np.mean(recall)),
        "object_precision": float(np.mean(precision)),
        "object_exact": float(np.mean(exact)),
        "object_recall_chance": 1 / 3,
        "object_exact_chance": 1 / math.comb(len(vocabulary), 3),
        "detection_boxes": sum(b is not None for b in boxes) / max(len(boxes), 1),
        "detection_centre_error_px": float(np.mean(errors)) if errors else None,
    }


def pretrain_vision_tower(
    vlm: PaligemmaVLM, samples: Sequence[Sample], config: PaligemmaPretrainConfig
) -> list[float]:
    """Stage 1: the vision tower (``locnet.LocVisionModel``) learns where each object is.

    Image-only, the CLIP trunk's objective (``localisation_loss`` on ``object_targets``, from the
    metadata): each object's heat map peaks at its projected centre, its depth map reads its
    depth, its presence is scored. Minibatches come from one scene at a time
    (``scene_batches``), epoch after epoch, for ``vision_steps`` AdamW steps.
    """
    if config.vision_steps == 0:
        return []
    tower = vlm.model.get_encoder("image")
    if not isinstance(tower, LocVisionModel):
        raise TypeError(f"the built-in PaliGemma's tower is {type(tower).__name__}, not LocNet")
    trunk = tower.trunk
    pixels = vlm.pixels([s.image for s in samples])
    centres, depths, present = (t.to(vlm.device) for t in object_targets(samples, object_names()))
    rng = np.random.default_rng(config.seed)
    batches: list[np.ndarray] = []
    while len(batches) < config.vision_steps:
        batches.extend(scene_batches(samples, config.vision_batch_size, rng))
    tower.requires_grad_(True)
    optimizer = torch.optim.AdamW(tower.parameters(), lr=config.vision_lr, weight_decay=0.1)
    schedule = _one_cycle(optimizer, config.vision_lr, config.vision_steps)
    tower.train()
    losses: list[float] = []
    bar = progress(batches[: config.vision_steps], desc="paligemma vision tower")
    for idx in bar:
        i = torch.as_tensor(idx, device=vlm.device)
        with autocast(vlm.device):
            heat, depth = trunk.maps(pixels[i])
            loss = localisation_loss(trunk, heat, depth, centres[i], depths[i], present[i])
        _optimizer_step(loss.float(), optimizer, schedule, losses, bar)
    vlm.model.requires_grad_(False)
    vlm.model.eval()
    return losses


def box(obj: ImageObject, size: int) -> tuple[float, float, float, float]:
    """The box (y_min, x_min, y_max, x_max, pixels) of an object's projected bounding disk
    (``sim.camera``), clipped to a ``size`` image."""
    r = max(obj.radius, 1.0)
    return (max(0.0, obj.y - r), max(0.0, obj.x - r), min(size, obj.y + r), min(size, obj.x + r))


def in_view(sample: Sample) -> dict[str, ImageObject]:
    """The sample's objects whose centres project into its image, in front of the camera."""
    if sample.metadata is None:
        raise ValueError("detection examples need each sample's metadata")
    size = sample.image.shape[0]
    return {
        o.name: o
        for o in image_objects(sample.metadata, size)
        if o.depth > 0 and 0 <= o.x < size and 0 <= o.y < size
    }


def base_examples(
    samples: Sequence[Sample], n_objects: int, n_detect: int, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Stage-2 prompts and answers, none with a spatial word, the tasks of PaliGemma's own
    pre-training mix:

    - the first ``n_objects`` samples: the objects prompt, answered by the object list in
      vocabulary order (the order carries no layout);
    - the next ``n_detect``: "detect {name}" for one object in view drawn at random, answered
      as PaliGemma does, four <loc> tokens of its box and the name (``detection_answer``);
    - the rest: the position question, answered by detecting the two objects it names,
      subject first, in PaliGemma's multi-object form ("<loc>x4 red mug ; <loc>x4 teddy bear").

    The language model learns to name the objects and to say where each one is, in <loc>
    tokens; how two of them stand to each other, and its words, are left to fine-tuning.
    """
    vocabulary = object_names()
    prompts, answers = [], []
    for i, s in enumerate(samples):
        seen, size = in_view(s), s.image.shape[0]
        if i < n_objects:
            prompts.append(OBJECTS_PROMPT)
            answers.append(object_list_caption([n for n in vocabulary if n in s.object_names()]))
        elif i < n_objects + n_detect:
            name = sorted(seen)[int(rng.integers(len(seen)))]
            prompts.append(detect_prompt(name))
            answers.append(detection_answer(name, box(seen[name], size), size))
        else:
            pair = (s.record.subject, s.record.reference)
            prompts.append(s.record.question)
            answers.append(
                " ; ".join(
                    detection_answer(n, box(seen[n], size), size) if n in seen else n for n in pair
                )
            )
    return prompts, answers


def pretrain_captioning(
    vlm: PaligemmaVLM,
    samples: Sequence[Sample],
    config: PaligemmaPretrainConfig,
    rng: np.random.Generator,
    words: set[str] | None = None,
) -> list[float]:
    """Stage 2: projector and language model (vision tower frozen) learn to name the objects.

    Each step mixes the two kinds of ``base_examples``; every word of their prompts and answers
    is added to ``words`` (the record that no spatial word was shown). Freezing the tower
    keeps its localisation as stage 1 left it.
    """
    tower = vlm.model.get_encoder("image")
    vlm.model.requires_grad_(True)
    tower.requires_grad_(False)
    params = [p for p in vlm.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    schedule = _one_cycle(optimizer, config.lr, config.steps)
    n_objects = round(config.batch_size * config.objects_fraction)
    n_detect = round(config.batch_size * config.detect_fraction)
    vlm.model.train()
    tower.eval()
    losses: list[float] = []
    bar = progress(range(config.steps), desc="paligemma captioning")
    for _ in bar:
        idx = rng.integers(len(samples), size=config.batch_size)
        chosen = [samples[int(i)] for i in idx]
        prompts, answers = base_examples(chosen, n_objects, n_detect, rng)
        if words is not None:  # <loc> tokens recorded as one word
            texts = [LOC_TOKEN.sub("<loc> ", t) for t in prompts + answers]
            words.update(w for t in texts for w in t.replace(",", " ").split())
        loss = vlm.loss(vlm.inputs([s.image for s in chosen], prompts, answers))
        _optimizer_step(loss, optimizer, schedule, losses, bar)
    vlm.model.requires_grad_(False)
    vlm.model.eval()
    return losses


def pretrain_paligemma(
    config: PaligemmaPretrainConfig, sim: SimParams, t0: int
) -> tuple[PaligemmaVLM, dict[str, Any]]:
    """Train the built-in PaliGemma (vision tower, then captioning); measure it on test scenes
    (those of the profile's ``sim`` block and ``t0``)."""
    start = time.perf_counter()
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    samples = _collect_train(config, sim, t0)
    vlm = PaligemmaVLM.builtin(PaligemmaVLMConfig(seed=config.seed))
    vision_losses = pretrain_vision_tower(vlm, samples, config)
    words: set[str] = set()
    losses = pretrain_captioning(vlm, samples, config, rng, words)
    train_s = time.perf_counter() - start
    test = _collect_test(config, sim, t0)
    metrics = measure_paligemma(vlm, test, config.seed)
    tower = vlm.model.get_encoder("image")
    metrics.update(measure_localisation(tower.trunk, vlm.pixels([s.image for s in test]), test))
    window = max(1, min(20, len(losses) // 2))
    info = {
        "model": "paligemma",
        "config": asdict(config),
        "train_seconds": round(train_s, 1),
        "measure_seconds": round(time.perf_counter() - start - train_s, 1),
        "vision_final_loss": float(np.mean(vision_losses[-window:])) if vision_losses else None,
        "first_loss": float(np.mean(losses[:window])),
        "final_loss": float(np.mean(losses[-window:])),
        "text_words": sorted(words),  # every word the language model saw in base training
        "test": metrics,
    }
    return vlm, info


# ---------------------------------------------------------------------------- the stage


def default_out(model: str) -> Path:
    """Where ``rls3 pretrain-vlm`` writes a base checkpoint."""
    return Path("results") / "vlm" / model / "base"


def metrics_path(out: Path) -> Path:
    """The measurements JSON beside a checkpoint directory (``base`` -> ``base_metrics.json``)."""
    return out.with_name(f"{out.name}_metrics.json")


def record_weights(
    model: str,
    path: str,
    arch: str | None = None,
    out: str | os.PathLike[str] | None = None,
    key: str = "weights",
) -> dict[str, Any]:
    """The base model of a profile with real weights (spec section 5): the checkpoint at
    ``path`` checked and recorded (``pointer.record``: path, files, sizes, content digest), not
    trained; its measurements file says so. A checkpoint that cannot be used is a ValueError
    naming ``key``."""
    from benchmark.vlm.pointer import WeightsError, record
    from benchmark.vlm.weights import inspect

    start = time.perf_counter()
    try:
        checkpoint = inspect(model, path, arch)
    except WeightsError as err:
        raise WeightsError(f"{key}: {err}") from err
    target = Path(out) if out is not None else default_out(model)
    pointer = record(checkpoint, target)
    info = {
        "model": model,
        "weights": {k: v for k, v in pointer.items() if k != "files"},
        "files": pointer["files"],
        "train_seconds": 0.0,  # no base training: real pretrained weights
        "record_seconds": round(time.perf_counter() - start, 1),
        "checkpoint": str(target),
    }
    atomic_write_json(metrics_path(target), info)
    return info


def run(
    config: ClipPretrainConfig | PaligemmaPretrainConfig,
    sim: SimParams,
    t0: int,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Base-train a built-in model in the profile's environment (``sim``, ``t0``), write its
    checkpoint and measurements; return the latter."""
    vlm: ClipVLM | PaligemmaVLM
    if isinstance(config, ClipPretrainConfig):
        vlm, info = pretrain_clip(config, sim, t0)
    else:
        vlm, info = pretrain_paligemma(config, sim, t0)
    target = Path(out) if out is not None else default_out(info["model"])
    vlm.save(target)
    info["checkpoint"] = str(target)
    info["device"] = str(vlm.device)
    info["torch_threads"] = torch.get_num_threads()
    report = metrics_path(target)
    tmp = report.with_name(f".{report.name}.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, report)
    return info
