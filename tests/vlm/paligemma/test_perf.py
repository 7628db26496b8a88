"""PaliGemma's perf paths (benchmark/vlm/paligemma/perf.py): the paper-scale model that
``rls3 perf gpu`` builds."""

from __future__ import annotations

from benchmark.vlm.paligemma.perf import PALIGEMMA_3B


def test_the_3b_configuration_is_paligemma_3b_pt_224s() -> None:
    """Its parameter count, on the meta device: 2.92 billion (Gemma 2B and SigLIP So400m)."""
    import torch
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

    config = PaliGemmaConfig(
        vision_config=PALIGEMMA_3B["vision_config"],
        text_config=PALIGEMMA_3B["text_config"],
        projection_dim=PALIGEMMA_3B["projection_dim"],
        hidden_size=PALIGEMMA_3B["hidden_size"],
        vocab_size=PALIGEMMA_3B["text_config"]["vocab_size"],
    )
    with torch.device("meta"):
        model = PaliGemmaForConditionalGeneration(config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 2) == 2.92
