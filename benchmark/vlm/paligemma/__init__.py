"""The PaliGemma family: the model (``model``), the built-in small model (``builtin``), the
detection format its base training uses (``detection``) and that base training (``pretrain``).
"""

from benchmark.vlm.paligemma.model import (
    CHOICE_PROMPT,
    PaligemmaResult,
    PaligemmaVLM,
    PaligemmaVLMConfig,
)

__all__ = ["CHOICE_PROMPT", "PaligemmaResult", "PaligemmaVLM", "PaligemmaVLMConfig"]
