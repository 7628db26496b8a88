"""The built-in PaliGemma's learnability contract (spec section 5, ``rls3 probe
learnability``): fine-tuned on random-placement samples, its rubric rises above both image-blind
controls."""

from __future__ import annotations


def learnability_targets(before: dict[str, float], after: dict[str, float]) -> dict[str, bool]:
    """Each point on its own: the rubric at least 0.8 above the image-shuffled control and the
    term-shuffled control after fine-tuning, and every spatial term above its base value."""
    terms = [k for k in before if k.startswith("test/term/")]
    return {
        "0.8_above_the_image_shuffled_control": after["metric"] - after["control"] >= 0.8,
        "0.8_above_the_term_shuffled_control": after["metric"] - after["control_terms"] >= 0.8,
        "every_term_above_base": all(after.get(k, -1.0) > before[k] for k in terms),
    }
