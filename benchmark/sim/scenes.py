"""Scenes and objects as data: the JSON files under ``benchmark/sim/data`` and their schema.

World frame: metres, z up, the room's floor centre at the origin, x across the room, the back
wall at y = +depth/2. Cameras stand at negative y and look towards the back wall.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

Environment = Literal["train", "test"]
ENVIRONMENTS: tuple[Environment, ...] = ("train", "test")
FurnitureKind = Literal["box", "table", "shelf"]

Vec3 = tuple[float, float, float]
Rgba = tuple[float, float, float, float]


@dataclass(frozen=True)
class ObjectSpec:
    """A placeable object: a pybullet_data model (``urdf`` or ``mesh``) or a primitive."""

    name: str
    rgba: Rgba
    urdf: str | None = None
    mesh: str | None = None
    scale: float = 1.0
    box: Vec3 | None = None  # half extents, m
    cylinder: tuple[float, float] | None = None  # radius, height, m


@dataclass(frozen=True)
class Furniture:
    """An axis-aligned piece of furniture; its top face is a designated surface if flagged.

    ``kind``: ``box`` is solid from ``elevation`` to ``elevation + size[2]``; ``table`` is a
    5 cm top at height ``size[2]`` on four legs; ``shelf`` is a wall-mounted slab of thickness
    ``size[2]`` whose underside is at ``elevation``.
    """

    name: str
    kind: FurnitureKind
    size: Vec3
    at: tuple[float, float]
    rgba: Rgba
    designated: bool = False
    elevation: float = 0.0

    @property
    def top(self) -> float:
        """Height of the top face, m."""
        return self.elevation + self.size[2]


@dataclass(frozen=True)
class Camera:
    eye: Vec3
    target: Vec3
    fov: float  # vertical field of view, degrees


@dataclass(frozen=True)
class Room:
    size: Vec3  # width (x), depth (y), height (z), m
    floor_rgba: Rgba
    wall_rgba: Rgba
    floor_texture: str | None = None


@dataclass(frozen=True)
class Scene:
    name: str
    environment: Environment
    room: Room
    furniture: tuple[Furniture, ...]
    cameras: tuple[Camera, ...]
    light_direction: Vec3

    @property
    def surfaces(self) -> tuple[Furniture, ...]:
        """The designated surfaces, lowest first."""
        return tuple(sorted((f for f in self.furniture if f.designated), key=lambda f: f.top))


class SceneError(ValueError):
    """A scene or object file that breaks the schema, or an unknown name."""


def _data_dir() -> Any:
    return resources.files("benchmark.sim") / "data"


def _floats(value: Any, n: int, where: str) -> list[float]:
    if not isinstance(value, list) or len(value) != n:
        raise SceneError(f"{where}: expected a list of {n} numbers, got {value!r}")
    return [float(v) for v in value]


def _vec2(value: Any, where: str) -> tuple[float, float]:
    x, y = _floats(value, 2, where)
    return x, y


def _vec3(value: Any, where: str) -> Vec3:
    x, y, z = _floats(value, 3, where)
    return x, y, z


def _rgba(value: Any, where: str) -> Rgba:
    r, g, b, a = _floats(value, 4, where)
    return r, g, b, a


def _parse_scene(raw: dict[str, Any]) -> Scene:
    name = raw["name"]
    env = raw["environment"]
    if env not in ENVIRONMENTS:
        raise SceneError(f"scene {name!r}: environment must be one of {ENVIRONMENTS}, got {env!r}")
    room = raw["room"]
    furniture = tuple(
        Furniture(
            name=f["name"],
            kind=f["kind"],
            size=_vec3(f["size"], f"{name}/{f['name']}.size"),
            at=_vec2(f["at"], f"{name}/{f['name']}.at"),
            rgba=_rgba(f["rgba"], f"{name}/{f['name']}.rgba"),
            designated=bool(f.get("designated", False)),
            elevation=float(f.get("elevation", 0.0)),
        )
        for f in raw["furniture"]
    )
    scene = Scene(
        name=name,
        environment=env,
        room=Room(
            size=_vec3(room["size"], f"{name}.room.size"),
            floor_rgba=_rgba(room["floor_rgba"], f"{name}.room.floor_rgba"),
            wall_rgba=_rgba(room["wall_rgba"], f"{name}.room.wall_rgba"),
            floor_texture=room.get("floor_texture"),
        ),
        furniture=furniture,
        cameras=tuple(
            Camera(
                eye=_vec3(c["eye"], f"{name}.camera.eye"),
                target=_vec3(c["target"], f"{name}.camera.target"),
                fov=float(c.get("fov", 55.0)),
            )
            for c in raw["cameras"]
        ),
        light_direction=_vec3(raw["light_direction"], f"{name}.light_direction"),
    )
    tops = [s.top for s in scene.surfaces]
    # The observation encodes exactly two surfaces (see env.py), at different heights so that
    # above/below relations occur.
    if len(tops) != 2 or abs(tops[1] - tops[0]) < 0.2:
        raise SceneError(
            f"scene {name!r}: needs exactly 2 designated surfaces at least 0.2 m apart in height, "
            f"got tops {tops}"
        )
    if not scene.cameras:
        raise SceneError(f"scene {name!r}: needs at least one camera")
    return scene


@cache
def all_scenes() -> tuple[Scene, ...]:
    """Every scene shipped with the package, train scenes first, each group by file name."""
    files = sorted(
        (p for p in (_data_dir() / "scenes").iterdir() if p.name.endswith(".json")),
        key=lambda p: p.name,
    )
    scenes = [_parse_scene(json.loads(p.read_text())) for p in files]
    return tuple(sorted(scenes, key=lambda s: ENVIRONMENTS.index(s.environment)))


def scene_names(environment: Environment | None = None) -> tuple[str, ...]:
    """Names of the scenes of one environment (or of all), in environment order."""
    return tuple(s.name for s in all_scenes() if environment in (None, s.environment))


def environment_scenes(environment: Environment) -> tuple[Scene, ...]:
    """The scenes of ``environment`` in their fixed cycling order."""
    if environment not in ENVIRONMENTS:
        raise SceneError(f"unknown environment {environment!r}; choose one of {ENVIRONMENTS}")
    order = _CYCLE_ORDER[environment]
    by_name = {s.name: s for s in all_scenes() if s.environment == environment}
    return tuple(by_name[n] for n in order if n in by_name) + tuple(
        s for n, s in sorted(by_name.items()) if n not in order
    )


# The cycling order: the paper's three named rooms first.
_CYCLE_ORDER: dict[str, tuple[str, ...]] = {
    "train": ("kitchen", "bedroom", "living room", "office", "bathroom"),
    "test": ("dining room", "workshop", "study"),
}


def get_scene(name: str) -> Scene:
    """The scene called ``name``; an unknown name lists the known ones."""
    for scene in all_scenes():
        if scene.name == name:
            return scene
    raise SceneError(f"unknown scene {name!r}; known scenes: {', '.join(scene_names())}")


@cache
def object_specs() -> tuple[ObjectSpec, ...]:
    """The shared object vocabulary, in its fixed order (the index is the object id)."""
    raw = json.loads((_data_dir() / "objects.json").read_text())
    specs = []
    for o in raw["objects"]:
        specs.append(
            ObjectSpec(
                name=o["name"],
                rgba=_rgba(o["rgba"], f"object {o['name']}.rgba"),
                urdf=o.get("urdf"),
                mesh=o.get("mesh"),
                scale=float(o.get("scale", 1.0)),
                box=_vec3(o["box"], o["name"]) if "box" in o else None,
                cylinder=_vec2(o["cylinder"], o["name"]) if "cylinder" in o else None,
            )
        )
    return tuple(specs)


def object_names() -> tuple[str, ...]:
    """The 9 object names, in vocabulary order."""
    return tuple(o.name for o in object_specs())
