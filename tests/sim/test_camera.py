"""Projected object disks against PyBullet's own segmentation of the same rendered view."""

import numpy as np
import pybullet as p

from benchmark.sim.camera import image_objects, object_masks
from benchmark.sim.env import PlacementEnv
from benchmark.sim.scenes import object_names

SIZE = 64


def _segmentation(env: PlacementEnv, metadata: dict) -> np.ndarray:
    """PyBullet's body-id mask of the sample's view (the renderer the images come from)."""
    world = env.worlds[metadata["scene_index"]]
    view, projection = world.camera_matrices(metadata["camera"]["index"])
    _, _, _, _, seg = world.client.getCameraImage(
        SIZE, SIZE, view, projection, renderer=p.ER_TINY_RENDERER
    )
    return np.asarray(seg).reshape(SIZE, SIZE)


def test_projected_disks_cover_the_objects_pybullet_draws(env: PlacementEnv) -> None:
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    checked = centred = 0
    while checked < 60:
        _, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 3))
        if "sample" in info:
            metadata = info["sample"]
            world = env.worlds[metadata["scene_index"]]
            seg = _segmentation(env, metadata)
            masks = object_masks(metadata, SIZE, object_names())
            for obj in image_objects(metadata, SIZE):
                drawn = seg == world.body[obj.name]
                if drawn.sum() < 2:
                    continue  # hidden behind furniture: nothing to compare
                checked += 1
                ys, xs = np.nonzero(drawn)
                # The drawn silhouette's centre is within 1.5 px of the projected one, and the
                # disk holds nearly all of the silhouette: neither mirrored, nor off, nor small.
                near = np.hypot(xs.mean() + 0.5 - obj.x, ys.mean() + 0.5 - obj.y)
                inside = masks[object_names().index(obj.name)][drawn].mean()
                centred += near <= 1.5 and inside >= 0.9
        if terminated or truncated:
            env.reset()
    assert centred / checked >= 0.9, f"{centred} of {checked} objects drawn where projected"


def test_objects_behind_the_camera_or_not_named_leave_their_channel_empty() -> None:
    metadata = {
        "camera": {"position": [0, 0, 1], "forward": [0, 1, 0], "up": [0, 0, 1], "fov_deg": 90},
        "objects": [
            {"name": "red mug", "center": [0, 2, 1], "size": [0.2, 0.2, 0.2]},
            {"name": "blue box", "center": [0, -2, 1], "size": [0.2, 0.2, 0.2]},
        ],
    }
    seen = {o.name: o for o in image_objects(metadata, 64)}
    # Straight ahead at 2 m with a 90 degree field: the image centre; the bounding sphere's
    # radius, 0.1 * sqrt(3) m, is 0.1 * sqrt(3) * 32 / 2 = 2.77 px there.
    assert abs(seen["red mug"].x - 32) < 1e-9 and abs(seen["red mug"].y - 32) < 1e-9
    assert abs(seen["red mug"].radius - 0.1 * 3**0.5 * 16) < 1e-9
    assert seen["blue box"].depth < 0
    masks = object_masks(metadata, 64, ["blue box", "red mug", "yellow duck"])
    assert masks[0].sum() == 0 and masks[2].sum() == 0
    # Pixel centres (i + 0.5) within 2.77 px of (32, 32): offsets up to (1.5, 1.5) and (2.5, 0.5).
    assert masks[1][32, 32] == 1 and masks[1].sum() == 24
