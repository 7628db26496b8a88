"""One home for making the placement environment: the backend and the profile's arguments.

``sim.backend`` picks ``embedded`` (``PlacementEnv``, in process) or ``unity``
(``UnityPlacementEnv``, a Unity build driven through mlagents-envs; unity_build/README.md). Both
take the same arguments and honour the same contract, so their callers do not know which runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym

from benchmark.config import BACKENDS
from benchmark.sim.env import PlacementEnv
from benchmark.sim.scenes import Environment

if TYPE_CHECKING:
    from benchmark.config import SimParams


def profile_env_kwargs(sim: SimParams, t0: int) -> dict[str, Any]:
    """The environment arguments of a profile: its ``sim`` block and the loop's T0."""
    return {
        "t0": t0,
        "max_steps": sim.max_steps_factor * t0,
        "image_size": sim.image_size,
        "swap_prob": sim.swap_prob,
        "scene_period": sim.scene_period,
    }


def make_env(environment: Environment, *, sim: SimParams | None = None, **kwargs: Any) -> gym.Env:
    """The placement env of ``environment`` on ``sim.backend`` (embedded without ``sim``);
    ``kwargs`` are ``PlacementEnv``'s (t0, max_steps, image_size, ...)."""
    if sim is None or sim.backend == "embedded":
        return PlacementEnv(environment, **kwargs)
    if sim.backend == "unity":
        from benchmark.sim.unity import UnityPlacementEnv

        u = sim.unity
        return UnityPlacementEnv(
            environment, build=u.build, base_port=u.base_port, timeout_s=u.timeout_s, **kwargs
        )
    raise ValueError(f"sim.backend = {sim.backend!r}; choose one of {list(BACKENDS)}")
