"""How the CLIP family's speed is measured: its API paths beside the bare model's
(``rls3 perf vlm``, ``perf.vlm``) and the paper-scale model of ``rls3 perf gpu``."""

from __future__ import annotations

import torch

from benchmark.perf.vlm import Paths, api_and_bare
from benchmark.samples import Sample
from benchmark.vlm.clip.model import ClipVLM, ClipVLMConfig, negclip_loss, sample_texts

GPU_BATCH = 64  # the paper profile's fine-tuning batch
SMALL_BATCH = 4


def perf_paths(samples: list[Sample], vlm: ClipVLM | None = None) -> Paths:
    """Evaluate and one finetune step of ``vlm`` (the built-in model if None) against both
    encoders' forward, and forward + backward + AdamW, on pre-built tensors."""
    if vlm is None:
        config = ClipVLMConfig(batch_size=len(samples), eval_batch_size=len(samples))
        vlm = ClipVLM.builtin(config)
    images = vlm.images_tensor([s.image for s in samples])
    tokens = vlm.texts_tensor(sample_texts(samples))
    optimizer = vlm.optimizer()

    def bare_eval() -> object:
        vlm.model.eval()  # as ``evaluate`` does; ``bare_step`` leaves the model training
        with torch.inference_mode():
            return vlm.features(images, tokens)

    def bare_step() -> object:
        vlm.model.train()
        zi, zt, scale = vlm.features(images, tokens)
        loss = negclip_loss(zi, zt, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return api_and_bare(vlm, samples, bare_eval, bare_step)


def gpu_model(small: bool, image_size: int, device: torch.device) -> tuple[ClipVLM, int]:
    """open_clip ViT-B-32, randomly initialised at ``image_size``, and its batch; the whole
    tower trains, as in the paper."""
    batch = SMALL_BATCH if small else GPU_BATCH
    config = ClipVLMConfig(batch_size=batch, eval_batch_size=batch, lock_image=False)
    return ClipVLM.random("ViT-B-32", image_size, config, device), batch
