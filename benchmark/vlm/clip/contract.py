"""The built-in CLIP's learnability contract (spec section 5, ``rls3 probe learnability``):
fine-tuned on random-placement samples, it gains on the test environment from the image."""

from __future__ import annotations


def learnability_targets(before: dict[str, float], after: dict[str, float]) -> dict[str, bool]:
    """Each point of the contract on its own: base accuracy at most 0.35, at least 0.60 after
    fine-tuning, the image-shuffled control within 0.10 of its base value and 0.20 below the
    fine-tuned accuracy, and every spatial term above its base value."""
    terms = [k for k in before if k.startswith("test/term/")]
    return {
        "base_at_most_0.35": before["metric"] <= 0.35,
        "finetuned_at_least_0.60": after["metric"] >= 0.60,
        "control_within_0.10_of_base": abs(after["control"] - before["control"]) <= 0.10,
        "control_0.20_below_finetuned": after["control"] <= after["metric"] - 0.20,
        "every_term_above_base": all(after.get(k, -1.0) > before[k] for k in terms),
    }
