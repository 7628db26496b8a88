"""The arms of the benchmark as data (spec section 6): how each acts, learns, is rewarded and draws.

An arm is a record, and the loop (``benchmark/loop.py``) branches on its fields, never on its
name:

- ``acts``: ``sac`` (the seed's pre-trained SAC agent) or ``uniform`` (uniform random actions);
- ``learns``: whether the agent takes a gradient step every environment step (line 8);
- ``reward``: the VLM's part of the reward (line 13): ``none`` (the agent gets its +1/-1
  feasibility alone), ``episode_end`` (the paper's beta * J2 on an episode's last step) or
  ``dense`` (each valid step its own share, the episode's sum beta * J2); its weight is the
  profile's ``loop.beta`` (``weight`` below);
- ``draw``: how line 14 picks the episode's eta * N samples for the fine-tuning batch:
  ``uniform`` (the paper's random draw) or ``hardest`` (the eta * N samples with the highest
  hardness under the VLM as it stood before the iteration's fine-tuning);
- ``budget``: ``own`` (the sac arm: stops early on validation, its generated samples are the
  budget) or ``sac`` (runs until the sac run of the same model and seed's budget is spent).

``sac`` is the paper's RLS3; ``random`` its baseline; ``sac-dense`` the paper's open question 2;
``sac-nofeedback`` and ``random-hardest`` are ablations that separate the two ways the agent can
help: wasting fewer placements (feasibility, learnt in pre-training) and seeking the samples the
VLM gets wrong (its reward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Acts = Literal["sac", "uniform"]
RewardForm = Literal["none", "episode_end", "dense"]
Draw = Literal["uniform", "hardest"]
Budget = Literal["own", "sac"]


@dataclass(frozen=True)
class Arm:
    """One arm of the comparison; ``question``: what it answers, for the report and the docs."""

    name: str
    acts: Acts
    learns: bool
    reward: RewardForm
    draw: Draw
    budget: Budget
    question: str

    def weight(self, beta: float) -> float:
        """The VLM reward's weight: the profile's beta, or 0 where the arm gets none."""
        return 0.0 if self.reward == "none" else beta

    @property
    def uses_agent(self) -> bool:
        """Whether the arm starts from the seed's pre-trained agent (and so depends on it)."""
        return self.acts == "sac"


REGISTRY: dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm("sac", "sac", True, "episode_end", "uniform", "own", "RLS3: the paper's method"),
        Arm("random", "uniform", False, "none", "uniform", "sac", "the paper's baseline"),
        Arm(
            "sac-dense",
            "sac",
            True,
            "dense",
            "uniform",
            "sac",
            "a dense per-step VLM reward (the paper's open question 2)",
        ),
        Arm(
            "sac-nofeedback",
            "sac",
            True,
            "none",
            "uniform",
            "sac",
            "the same agent without the VLM's reward (beta = 0): feasibility alone",
        ),
        Arm(
            "random-hardest",
            "uniform",
            False,
            "none",
            "hardest",
            "sac",
            "random placement, the hardest eta * N samples drawn: hard-sample selection without RL",
        ),
    )
}
ARMS: tuple[str, ...] = tuple(REGISTRY)
BUDGET_ARMS: tuple[str, ...] = tuple(a.name for a in REGISTRY.values() if a.budget == "sac")


def arm_of(name: str) -> Arm:
    """The arm called ``name``; an unknown name is an error listing the arms."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"arm must be one of {ARMS}, not {name!r}") from None
