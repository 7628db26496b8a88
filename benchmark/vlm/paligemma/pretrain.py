"""The built-in PaliGemma's base training (spec section 5, "built-in models"), in two stages, as
the real one was built (a pretrained image encoder, then multimodal training on PaliGemma's own
task mix). Stage 1 (``pretrain_vision_tower``): the vision tower, the CLIP trunk as a
transformers model (``locnet.LocVisionModel``), learns where each object is by the same image-
only localisation objective. Stage 2 (``base_examples``, tower frozen): projector and language
model learn the objects prompt, answered by the object list in vocabulary order; detection
("detect red mug", answered by four <loc> tokens of its box); and the position question of spec
section 4, answered by detecting the two objects it names. No spatial word is ever shown to the
language model (``text_words`` records every word it saw). Spatial skill: the mean rubric score
on the test environment (1.0: no answer has a term) against two image-blind baselines, another
sample's terms (chance) and the best single set of terms. Object recognition: the recall of the
present objects in the answer to the objects prompt (chance 1/3 for three names guessed at
random) and exact-set accuracy (chance 1/84); detection: the centre error of the subject's box,
pixels.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from benchmark.captions import caption, rubric_score
from benchmark.config import (
    PaligemmaEvaluate,
    PaligemmaFinetune,
    PaligemmaPretrainConfig,
    SimParams,
)
from benchmark.samples import Sample, progress
from benchmark.sim.camera import ImageObject, image_objects
from benchmark.sim.scenes import object_names
from benchmark.vlm import basetraining
from benchmark.vlm.base import (
    OBJECTS_PROMPT,
    autocast,
    object_list_caption,
    parse_object_names,
    seed_everything,
)
from benchmark.vlm.locnet import LocVisionModel, localisation_loss
from benchmark.vlm.paligemma.builtin import term_sets
from benchmark.vlm.paligemma.detection import detect_prompt, detection_answer, parse_box
from benchmark.vlm.paligemma.model import PaligemmaVLM, PaligemmaVLMConfig

LOC_TOKEN = re.compile(r"<loc\d{4}>")


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

    Image-only, the CLIP trunk's objective (``localisation_loss`` on
    ``basetraining.object_targets``, from the metadata): each object's heat map peaks at its
    projected centre, its depth map reads its depth, its presence is scored. Minibatches come
    from one scene at a time (``basetraining.scene_batches``), epoch after epoch, for
    ``vision_steps`` AdamW steps.
    """
    if config.vision_steps == 0:
        return []
    tower = vlm.model.get_encoder("image")
    if not isinstance(tower, LocVisionModel):
        raise TypeError(f"the built-in PaliGemma's tower is {type(tower).__name__}, not LocNet")
    trunk = tower.trunk
    pixels = vlm.pixels([s.image for s in samples])
    centres, depths, present = (
        t.to(vlm.device) for t in basetraining.object_targets(samples, object_names())
    )
    rng = np.random.default_rng(config.seed)
    batches: list[np.ndarray] = []
    while len(batches) < config.vision_steps:
        batches.extend(basetraining.scene_batches(samples, config.vision_batch_size, rng))
    tower.requires_grad_(True)
    optimizer = torch.optim.AdamW(tower.parameters(), lr=config.vision_lr, weight_decay=0.1)
    schedule = basetraining.one_cycle(optimizer, config.vision_lr, config.vision_steps)
    tower.train()
    losses: list[float] = []
    bar = progress(batches[: config.vision_steps], desc="paligemma vision tower")
    for idx in bar:
        i = torch.as_tensor(idx, device=vlm.device)
        with autocast(vlm.device):
            heat, depth = trunk.maps(pixels[i])
            loss = localisation_loss(trunk, heat, depth, centres[i], depths[i], present[i])
        basetraining.optimizer_step(loss.float(), optimizer, schedule, losses, bar)
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
    schedule = basetraining.one_cycle(optimizer, config.lr, config.steps)
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
        basetraining.optimizer_step(loss, optimizer, schedule, losses, bar)
    vlm.model.requires_grad_(False)
    vlm.model.eval()
    return losses


def pretrain_paligemma(
    config: PaligemmaPretrainConfig, sim: SimParams, t0: int, evaluate: PaligemmaEvaluate
) -> tuple[PaligemmaVLM, dict[str, Any]]:
    """Train the built-in PaliGemma (vision tower, then captioning); measure it on test scenes
    (those of the profile's ``sim`` block and ``t0``), answering as the profile's ``evaluate``
    block says (its batch, token cap and prompt prefix)."""
    start = time.perf_counter()
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    samples = basetraining.collect_train(config, sim, t0)
    # base training has its own optimisers (below): no fine-tuning knob is used
    vlm = PaligemmaVLM.builtin(PaligemmaVLMConfig.of(evaluate, PaligemmaFinetune(), config.seed))
    vision_losses = pretrain_vision_tower(vlm, samples, config)
    words: set[str] = set()
    losses = pretrain_captioning(vlm, samples, config, rng, words)
    train_s = time.perf_counter() - start
    test = basetraining.collect_test(config, sim, t0)
    metrics = measure_paligemma(vlm, test, config.seed)
    tower = vlm.model.get_encoder("image")
    metrics.update(
        basetraining.measure_localisation(tower.trunk, vlm.pixels([s.image for s in test]), test)
    )
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


def sample_passes(config: PaligemmaPretrainConfig) -> int:
    """Sample passes of the base training (``rls3 check``'s time estimate): the vision tower's
    steps, then the captioning steps, each over a batch."""
    return config.vision_steps * config.vision_batch_size + config.steps * config.batch_size
