"""The CLIP family: the model (``model``: open_clip, the built-in small model's registration,
the NegCLIP loss) and the built-in model's base training (``pretrain``)."""

from benchmark.vlm.clip.model import BUILTIN_MODEL, ClipResult, ClipVLM, ClipVLMConfig

__all__ = ["BUILTIN_MODEL", "ClipResult", "ClipVLM", "ClipVLMConfig"]
