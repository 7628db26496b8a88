"""A picture of a scene with three of its objects placed at random (``rls3 scene preview``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.sim.scenes import get_scene, object_names
from benchmark.sim.world import SceneWorld


def preview(scene_name: str, size: int = 256, camera: int = 0, seed: int = 0) -> np.ndarray:
    """Render ``scene_name`` from camera pose ``camera`` with 3 random objects placed (seeded)."""
    scene = get_scene(scene_name)
    if not 0 <= camera < len(scene.cameras):
        raise ValueError(
            f"scene {scene_name!r} has camera poses 0..{len(scene.cameras) - 1}, not {camera}"
        )
    rng = np.random.default_rng(seed)
    world = SceneWorld(scene)
    try:
        names = object_names()
        for i in rng.choice(len(names), size=3, replace=False):
            world.set_yaw(names[int(i)], float(rng.uniform(-math.pi, math.pi)))
            world.place_randomly(names[int(i)], rng)
        return world.render(camera, size)
    finally:
        world.close()


def write_preview(
    scene_name: str, out: Path, size: int = 256, camera: int = 0, seed: int = 0
) -> Path:
    """Write the preview as a PNG (atomically: a temporary file renamed into place)."""
    image = preview(scene_name, size=size, camera=camera, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    Image.fromarray(image).save(tmp, format="PNG")
    tmp.replace(out)
    return out
