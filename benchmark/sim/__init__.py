"""The embedded indoor-scene simulator: scenes as data, a PyBullet world, a gymnasium env."""

import gymnasium as gym

from benchmark.sim.env import PlacementEnv
from benchmark.sim.scenes import environment_scenes, get_scene, object_names, scene_names

__all__ = ["PlacementEnv", "environment_scenes", "get_scene", "object_names", "scene_names"]

for _environment in ("train", "test"):
    _id = f"RLS3/Placement-{_environment}-v0"
    if _id not in gym.registry:
        gym.register(
            _id, entry_point="benchmark.sim.env:PlacementEnv", kwargs={"environment": _environment}
        )
