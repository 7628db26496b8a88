"""How the PaliGemma family's speed is measured: its API paths beside the bare model's
(``rls3 perf vlm``, ``perf.vlm``) and the paper-scale model of ``rls3 perf gpu``: the real 3B
configuration (SigLIP So400m/14 at 224 px, Gemma 2B), randomly initialised."""

from __future__ import annotations

from typing import Any

import torch

from benchmark.perf.vlm import Paths, api_and_bare
from benchmark.samples import Sample
from benchmark.vlm.paligemma.builtin import build_model
from benchmark.vlm.paligemma.model import PaligemmaVLM, PaligemmaVLMConfig, freeze_all_but

GPU_BATCH = 16  # the paper profile's fine-tuning batch
SMALL_BATCH = 4

# google/paligemma-3b-pt-224's architecture (its config.json), for a random initialisation
PALIGEMMA_3B: dict[str, Any] = {
    "projection_dim": 2048,
    "hidden_size": 2048,
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "patch_size": 14,
        "image_size": 224,
        "projection_dim": 2048,
        "vision_use_head": False,  # PaliGemma reads every patch token: no pooling head
    },
    "text_config": {
        "model_type": "gemma",
        "hidden_size": 2048,
        "intermediate_size": 16384,
        "num_hidden_layers": 18,
        "num_attention_heads": 8,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "vocab_size": 257216,
        "max_position_embeddings": 8192,
    },
}
# the same layout, tiny: ``--small`` and the tests
PALIGEMMA_SMALL: dict[str, Any] = {
    "projection_dim": 64,
    "hidden_size": 64,
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "patch_size": 8,
        "image_size": 32,
    },
    "text_config": {
        "model_type": "gemma",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "max_position_embeddings": 256,
    },
}


def perf_paths(samples: list[Sample], vlm: PaligemmaVLM | None = None) -> Paths:
    """Evaluate and one finetune step of ``vlm`` (the built-in model if None) against greedy
    ``generate`` with the same settings, and forward + backward + AdamW of the trained part."""
    if vlm is None:
        vlm = PaligemmaVLM.builtin(
            PaligemmaVLMConfig(batch_size=len(samples), eval_batch_size=len(samples))
        )
    config = vlm.config
    images = [s.image for s in samples]
    questions = [s.record.question for s in samples]
    prompts = vlm.inputs(images, questions)
    train = vlm.inputs(images, questions, [s.record.answer for s in samples])
    params = freeze_all_but(vlm.model, config.trainable)
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    vlm.model.requires_grad_(False)

    def bare_eval() -> object:
        with torch.inference_mode():
            return vlm.model.generate(
                **prompts, max_new_tokens=config.max_new_tokens, do_sample=False, num_beams=1
            )

    def bare_step() -> object:
        freeze_all_but(vlm.model, config.trainable)
        vlm.model.train()
        loss = vlm.loss(train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        vlm.model.requires_grad_(False)
        vlm.model.eval()
        return loss

    return api_and_bare(vlm, samples, bare_eval, bare_step)


def gpu_model(small: bool, image_size: int, device: torch.device) -> tuple[PaligemmaVLM, int]:
    """A PaliGemma of the real 3B configuration (``small``: the same layout, tiny), randomly
    initialised on ``device``, fp32 weights with bf16 autocast there, and its batch. Its
    tokenizer is the built-in closed-vocabulary one (Gemma's is not shipped)."""
    batch = SMALL_BATCH if small else GPU_BATCH
    with torch.device(device):  # initialise 3B parameters where they will live
        model, processor = build_model(PALIGEMMA_SMALL if small else PALIGEMMA_3B)
    config = PaligemmaVLMConfig(batch_size=batch, eval_batch_size=batch)
    return PaligemmaVLM(model, processor, config, device), batch
