"""The CLIP family: the model (``model``: open_clip, the built-in small model's registration,
the NegCLIP loss) and the built-in model's base training (``pretrain``)."""

from benchmark.vlm.clip.model import (
    BUILTIN_MODEL,
    MAX_LOGIT_SCALE,
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

__all__ = [
    "BUILTIN_MODEL",
    "MAX_LOGIT_SCALE",
    "ClipResult",
    "ClipVLM",
    "ClipVLMConfig",
    "accuracy_mask",
    "negclip_loss",
    "negclip_loss_terms",
    "register_builtin",
    "sample_texts",
    "similarities",
]
