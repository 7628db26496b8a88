"""Where a sample's objects appear in its image, from the sample's metadata alone.

The renderer's camera is a pinhole looking along ``forward`` with ``up`` = +z, a square image
and a vertical field of view ``fov_deg`` (``world.SceneWorld``'s view and projection matrices).
So an object's centre projects to pixel coordinates without touching the simulator, and the
disk of its bounding sphere (half the diagonal of its bounds) covers its silhouette, occlusion
ignored. The built-in PaliGemma's base training uses these disks to recolour the background
but not the objects (``pretrain.randomise_background``); the captions never see them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ImageObject:
    """One object as the camera sees it: centre in pixels (x right, y down), radius, depth."""

    name: str
    x: float
    y: float
    radius: float  # pixels: the radius of the object's bounding sphere at its depth
    depth: float  # metres along the camera's forward axis (<= 0: behind the camera)


def image_objects(metadata: Mapping[str, Any], size: int) -> list[ImageObject]:
    """The metadata's objects projected into a ``size`` x ``size`` image of its camera."""
    camera = metadata["camera"]
    eye = np.asarray(camera["position"], dtype=float)
    forward = np.asarray(camera["forward"], dtype=float)
    right = np.cross(forward, np.asarray(camera["up"], dtype=float))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half = size / 2 / math.tan(math.radians(camera["fov_deg"]) / 2)  # focal length, pixels
    seen = []
    for obj in metadata["objects"]:
        d = np.asarray(obj["center"], dtype=float) - eye
        depth = float(d @ forward)
        scale = half / depth if depth > 0 else 0.0
        seen.append(
            ImageObject(
                name=obj["name"],
                x=size / 2 + float(d @ right) * scale,
                y=size / 2 - float(d @ up) * scale,
                radius=float(np.linalg.norm(obj["size"])) / 2 * scale,
                depth=depth,
            )
        )
    return seen


def object_masks(
    metadata: Mapping[str, Any], size: int, names: Sequence[str], min_radius: float = 1.0
) -> np.ndarray:
    """Disks (``len(names)`` x size x size, 0/1 float32) where each named object appears.

    Channel ``i`` holds object ``names[i]``'s disk (radius at least ``min_radius`` pixels);
    objects not in the image, or behind the camera, leave their channel empty.
    """
    masks = np.zeros((len(names), size, size), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    for obj in image_objects(metadata, size):
        if obj.depth <= 0 or obj.name not in names:
            continue
        r = max(obj.radius, min_radius)
        disk = (xx - obj.x) ** 2 + (yy - obj.y) ** 2 <= r * r
        masks[names.index(obj.name)][disk] = 1.0
    return masks
