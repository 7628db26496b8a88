"""The built-in small PaliGemma, built locally (no download): a ``PaliGemmaConfig`` from
``configs/RLS3-PaliGemma-Loc.json`` (the vision tower is the built-in CLIP's localisation
trunk as a transformers model, ``locnet.LocVisionModel``), and a word-level tokenizer over the
closed vocabulary of the benchmark's questions, answers, object lists and detection prompts."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    PaliGemmaProcessor,
    PreTrainedTokenizerFast,
    SiglipImageProcessor,
)

import benchmark.vlm.locnet  # noqa: F401  (registers the built-in vision tower)
from benchmark.captions import OPPOSITE, TERMS, caption, question
from benchmark.fileio import atomic_directory
from benchmark.sim.scenes import object_names
from benchmark.vlm.base import OBJECTS_PROMPT, object_list_caption, seed_everything
from benchmark.vlm.paligemma.detection import detect_prompt

BUILTIN_CONFIG = Path(__file__).parent / "configs" / "RLS3-PaliGemma-Loc.json"
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<image>")  # Gemma's ids 0-3, then <image>
PROMPT_END = "\n"  # the processor ends every prompt with a newline


def term_sets() -> list[tuple[str, ...]]:
    """Every caption-able set of terms: at most one per axis, 1 to 3 in all (26 sets)."""
    axes = [(t, OPPOSITE[t]) for t in TERMS[::2]]  # vertical, depth, lateral
    sets = itertools.product(*[((), (a,), (b,)) for a, b in axes])
    return [sum(s, ()) for s in sets if any(s)]


def closed_vocabulary_texts() -> list[str]:
    """All texts the benchmark asks or expects: questions, answers, object lists."""
    names = object_names()
    texts = [OBJECTS_PROMPT]
    for b, a in itertools.permutations(names, 2):
        texts.append(question(b, a))
        texts.extend(caption(b, a, terms) for terms in term_sets())
    texts.extend(object_list_caption(p) for p in itertools.permutations(names, 3))
    texts.extend(detect_prompt(n) for n in names)
    texts.append(" ; ".join(names))  # PaliGemma's separator of detections
    return texts


def build_tokenizer(texts: Sequence[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the words of ``texts`` plus the special tokens."""
    words = sorted({w for t in texts for w in t.split()})
    vocab = {tok: i for i, tok in enumerate((*SPECIAL_TOKENS, PROMPT_END))}
    for w in words:
        vocab[f"▁{w}"] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    )
    backend.add_tokens([AddedToken(PROMPT_END, normalized=False)])  # split before pre-tokenizing
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def build_builtin(out_dir: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write the built-in small PaliGemma (random weights, seeded) with ``save_pretrained``."""
    model, processor = build_model(json.loads(BUILTIN_CONFIG.read_text()), seed)
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    return Path(out_dir)


def build_model(
    spec: dict[str, Any], seed: int = 0
) -> tuple[PaliGemmaForConditionalGeneration, PaliGemmaProcessor]:
    """A randomly initialised PaliGemma (seeded) of ``spec`` (``projection_dim``,
    ``hidden_size``, ``vision_config``, ``text_config``: the layout of
    ``configs/RLS3-PaliGemma-Loc.json``) and its processor, built locally: the closed-vocabulary
    tokenizer, PaliGemma's <loc> tokens, a SigLIP image processor at the tower's image size.
    A vision config of model type ``siglip_vision_model`` gives Google's architecture (one
    image token per patch); the built-in tower gives one per object. The text vocabulary is
    ``text_config["vocab_size"]`` when larger than the tokenizer's (e.g. Gemma's 257,216)."""
    vision = spec["vision_config"]
    image_size = vision["image_size"]
    if vision.get("model_type") == "rls3_locnet_vision":
        tokens = vision["objects"]  # one image token per object (``locnet``)
    else:
        tokens = (image_size // vision["patch_size"]) ** 2
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size})
    # The processor reads it to expand <image>; SiglipImageProcessor does not declare it.
    image_processor.image_seq_length = tokens  # type: ignore[attr-defined]
    processor = PaliGemmaProcessor(
        image_processor=image_processor, tokenizer=build_tokenizer(closed_vocabulary_texts())
    )
    tokenizer = processor.tokenizer
    # the processor added <loc>/<seg> tokens; rounded up to a multiple of 64
    vocab_size = max(-(-len(tokenizer) // 64) * 64, spec["text_config"].get("vocab_size", 0))
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<eos>", "<bos>", "<image>")}
    text_config = {
        **spec["text_config"],
        "vocab_size": vocab_size,
        "pad_token_id": ids["<pad>"],
        "eos_token_id": ids["<eos>"],
        "bos_token_id": ids["<bos>"],
    }
    config = PaliGemmaConfig(
        vision_config=vision,
        text_config=text_config,
        image_token_index=ids["<image>"],
        vocab_size=vocab_size,
        projection_dim=spec["projection_dim"],
        hidden_size=spec["hidden_size"],
    )
    seed_everything(seed)
    model = PaliGemmaForConditionalGeneration(config)
    model.generation_config.pad_token_id = ids["<pad>"]
    model.generation_config.eos_token_id = ids["<eos>"]
    model.generation_config.bos_token_id = ids["<bos>"]
    return model, processor
