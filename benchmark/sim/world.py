"""One scene in its own headless PyBullet client: build, place objects, check feasibility, render.

Feasibility (the paper's eq. 2) is decided by PyBullet's own queries, never by hand-made box
tests: a vertical ray from the target finds what the object would land on; four short rays at
the corners of its footprint check that it lies wholly on that surface; a broadphase query
plus ``getClosestPoints`` checks that it touches nothing else. No dynamics are stepped: an
object is posed resting on its surface with a 1 mm gap, so poses, and therefore images, are
exact and deterministic.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass

import numpy as np

from benchmark.quiet import c_output_silenced
from benchmark.sim.scenes import Furniture, ObjectSpec, Scene, Vec3, object_specs

with c_output_silenced():  # PyBullet prints its build time on import
    import pybullet as p
    import pybullet_data
    from pybullet_utils.bullet_client import BulletClient

GAP = 0.001  # m, between an object's collision bounds and the surface it rests on
WALL = 0.05  # m, wall thickness
TABLE_TOP = 0.05  # m, thickness of a table's top
TABLE_LEG = 0.05  # m, side of a table's square legs
PLACEMENT_HEADROOM = 0.6  # m above the upper surface that a target may reach
PLACEMENT_INSET = 0.08  # m, the placement box is the surfaces' xy bounds shrunk by this
HIDDEN_RGBA = (1.0, 1.0, 1.0, 0.0)  # TinyRenderer skips fully transparent shapes: free to keep


@dataclass(frozen=True)
class Pose:
    """An object's base pose as PyBullet reports it: position (m) and quaternion (x, y, z, w)."""

    position: Vec3
    orientation: tuple[float, float, float, float]


@dataclass(frozen=True)
class _Footprint:
    """An object's collision bounds at zero yaw, relative to its base origin."""

    lo: np.ndarray  # (3,) AABB minimum minus base position
    hi: np.ndarray  # (3,) AABB maximum minus base position

    @property
    def centre(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def size(self) -> np.ndarray:
        return self.hi - self.lo


def placement_box(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Corners (lo, hi) of the box that actions aim into: the xy bounds of the designated
    surfaces shrunk by PLACEMENT_INSET, from just above the lower surface to
    PLACEMENT_HEADROOM above the upper one."""
    lower, upper = scene.surfaces
    xs = [f.at[0] + s * f.size[0] / 2 for f in (lower, upper) for s in (-1, 1)]
    ys = [f.at[1] + s * f.size[1] / 2 for f in (lower, upper) for s in (-1, 1)]
    lo = np.array([min(xs) + PLACEMENT_INSET, min(ys) + PLACEMENT_INSET, lower.top + 0.05])
    hi = np.array(
        [max(xs) - PLACEMENT_INSET, max(ys) - PLACEMENT_INSET, upper.top + PLACEMENT_HEADROOM]
    )
    return lo, hi


RENDERER_ENV = "RLS3_RENDERER"
RENDERERS = ("tiny", "egl")  # tiny: the CPU TinyRenderer, what every committed result used


def _renderer(client: BulletClient) -> int:
    """PyBullet's renderer for ``RLS3_RENDERER``: TinyRenderer (the default), or EGL (hardware
    OpenGL without a display, where PyBullet's ``eglRenderer`` plugin loads: ``rls3 perf gpu``).
    EGL's images are not TinyRenderer's pixel for pixel: results are comparable within one."""
    choice = os.environ.get(RENDERER_ENV, "tiny")
    if choice not in RENDERERS:
        raise ValueError(f"{RENDERER_ENV} = {choice!r} is not allowed; expected one of {RENDERERS}")
    if choice == "tiny":
        return int(p.ER_TINY_RENDERER)
    spec = importlib.util.find_spec("eglRenderer")
    plugin = (
        -1
        if spec is None or spec.origin is None
        else client.loadPlugin(spec.origin, "_eglRendererPlugin")
    )
    if plugin < 0:
        raise RuntimeError(f"{RENDERER_ENV}=egl, but PyBullet's EGL plugin does not load here")
    return int(p.ER_BULLET_HARDWARE_OPENGL)


class SceneWorld:
    """A scene with all 9 objects loaded; inactive ones are parked out of sight, transparent."""

    def __init__(self, scene: Scene, objects: tuple[ObjectSpec, ...] | None = None) -> None:
        self.scene = scene
        self.objects = objects if objects is not None else object_specs()
        with c_output_silenced():  # and "argv[0]=" on each connection
            self.client = BulletClient(connection_mode=p.DIRECT)
        self.client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.renderer = _renderer(self.client)
        self.surface_body: dict[int, Furniture] = {}  # body id of a designated top -> furniture
        self._build_room()
        for piece in scene.furniture:
            self._build_furniture(piece)
        self.cid = self.client._client  # raw pybullet calls in the hot path skip a wrapper
        self.body: dict[str, int] = {}
        self._base: dict[str, Vec3] = {}
        self._park: dict[str, Vec3] = {}
        self._centre: dict[str, Vec3] = {}
        self._offset_t: dict[str, Vec3] = {}
        self._quat: dict[str, tuple[float, ...]] = {}
        self._corner_list: dict[str, list[tuple[float, ...]]] = {}
        self._yaw: dict[str, float] = {o.name: 0.0 for o in self.objects}
        self._surface: dict[str, Furniture | None] = {o.name: None for o in self.objects}
        self._footprint: dict[str, _Footprint] = {}
        self._rgba: dict[str, tuple[float, ...]] = {}
        for index, spec in enumerate(self.objects):
            self._load_object(index, spec)
        self.placement_box = placement_box(scene)
        self._matrices = [
            (
                self.client.computeViewMatrix(cam.eye, cam.target, (0, 0, 1)),
                self.client.computeProjectionMatrixFOV(cam.fov, 1.0, 0.05, 30.0),
            )
            for cam in scene.cameras
        ]

    # ------------------------------------------------------------------ building
    def _box(self, half: Vec3, centre: Vec3, rgba: tuple[float, ...]) -> int:
        c = self.client
        return int(
            c.createMultiBody(
                baseMass=0,
                baseCollisionShapeIndex=c.createCollisionShape(p.GEOM_BOX, halfExtents=half),
                baseVisualShapeIndex=c.createVisualShape(
                    p.GEOM_BOX, halfExtents=half, rgbaColor=rgba
                ),
                basePosition=centre,
            )
        )

    def _build_room(self) -> None:
        w, d, h = self.scene.room.size
        room = self.scene.room
        floor = self._box((w / 2, d / 2, 0.01), (0, 0, -0.01), room.floor_rgba)
        if room.floor_texture:
            texture = self.client.loadTexture(room.floor_texture)
            self.client.changeVisualShape(floor, -1, textureUniqueId=texture)
        self._box((w / 2 + WALL, WALL / 2, h / 2), (0, d / 2 + WALL / 2, h / 2), room.wall_rgba)
        for side in (-1, 1):
            self._box(
                (WALL / 2, d / 2, h / 2), (side * (w / 2 + WALL / 2), 0, h / 2), room.wall_rgba
            )

    def _build_furniture(self, f: Furniture) -> None:
        sx, sy, sz = f.size
        x, y = f.at
        if f.kind == "table":
            top = self._box((sx / 2, sy / 2, TABLE_TOP / 2), (x, y, f.top - TABLE_TOP / 2), f.rgba)
            leg_h = f.top - TABLE_TOP - f.elevation
            for dx in (-1, 1):
                for dy in (-1, 1):
                    self._box(
                        (TABLE_LEG / 2, TABLE_LEG / 2, leg_h / 2),
                        (
                            x + dx * (sx / 2 - TABLE_LEG),
                            y + dy * (sy / 2 - TABLE_LEG),
                            f.elevation + leg_h / 2,
                        ),
                        f.rgba,
                    )
        else:  # a solid box or a wall shelf: one slab from elevation to top
            top = self._box((sx / 2, sy / 2, sz / 2), (x, y, f.elevation + sz / 2), f.rgba)
        if f.designated:
            self.surface_body[top] = f

    def _load_object(self, index: int, spec: ObjectSpec) -> None:
        c = self.client
        park = self._park_position(index)
        if spec.urdf:
            body = c.loadURDF(spec.urdf, park, globalScaling=spec.scale)
        else:
            if spec.mesh:
                scale = [spec.scale] * 3
                col = c.createCollisionShape(p.GEOM_MESH, fileName=spec.mesh, meshScale=scale)
                vis = c.createVisualShape(p.GEOM_MESH, fileName=spec.mesh, meshScale=scale)
            elif spec.box:
                col = c.createCollisionShape(p.GEOM_BOX, halfExtents=spec.box)
                vis = c.createVisualShape(p.GEOM_BOX, halfExtents=spec.box)
            elif spec.cylinder:
                radius, length = spec.cylinder
                col = c.createCollisionShape(p.GEOM_CYLINDER, radius=radius, height=length)
                vis = c.createVisualShape(p.GEOM_CYLINDER, radius=radius, length=length)
            else:
                raise ValueError(f"object {spec.name!r} has no urdf, mesh, box or cylinder")
            # A positive mass makes the collision shape a convex hull, which getClosestPoints
            # handles against every other shape; nothing is ever simulated, so mass is moot.
            body = c.createMultiBody(1.0, col, vis, park)
        lo, hi = c.getAABB(body)
        # PyBullet's base position is the centre of mass, not the URDF link origin.
        base = np.asarray(c.getBasePositionAndOrientation(body)[0])
        self._footprint[spec.name] = _Footprint(np.asarray(lo) - base, np.asarray(hi) - base)
        self._rgba[spec.name] = spec.rgba
        self._park[spec.name] = park
        self.body[spec.name] = int(body)
        self.set_yaw(spec.name, 0.0)
        self.hide(spec.name)

    def _park_position(self, index: int) -> Vec3:
        # Below the floor, apart from each other, out of every camera's view and every ray.
        return (3.0 * index, 0.0, -20.0)

    # ------------------------------------------------------------------ objects
    # Every pose is set here, so the base position, orientation and centre of each object are
    # kept on the Python side too: the hot path (one step) asks PyBullet only what it must.
    def _set_pose(self, name: str, position: Vec3) -> None:
        p.resetBasePositionAndOrientation(
            self.body[name], position, self._quat[name], physicsClientId=self.cid
        )
        self._base[name] = position
        ox, oy, oz = self._offset_t[name]
        self._centre[name] = (position[0] + ox, position[1] + oy, position[2] + oz)

    def hide(self, name: str) -> None:
        """Park an object out of the scene and make it transparent (costs no render time)."""
        self._set_pose(name, self._park[name])
        p.changeVisualShape(self.body[name], -1, rgbaColor=HIDDEN_RGBA, physicsClientId=self.cid)
        self._surface[name] = None

    def park(self, name: str) -> None:
        """Move an object to its parking place, out of every ray, without touching its look."""
        self._set_pose(name, self._park[name])

    def show(self, name: str) -> None:
        p.changeVisualShape(
            self.body[name], -1, rgbaColor=self._rgba[name], physicsClientId=self.cid
        )

    def set_yaw(self, name: str, yaw: float) -> None:
        """The object's rotation about z (rad), used by its next placement."""
        yaw = float(yaw)
        self._yaw[name] = yaw
        self._quat[name] = (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))
        c, s = math.cos(yaw), math.sin(yaw)
        fp = self._footprint[name]
        cx, cy, cz = (float(v) for v in fp.centre)
        self._offset_t[name] = (c * cx - s * cy, s * cx + c * cy, cz)
        self._corner_list[name] = [
            (c * x - s * y, s * x + c * y)
            for x in (float(fp.lo[0]), float(fp.hi[0]))
            for y in (float(fp.lo[1]), float(fp.hi[1]))
        ]

    def yaw(self, name: str) -> float:
        """The object's rotation about z, rad."""
        return self._yaw[name]

    def restore(
        self, name: str, position: Vec3, surface: Furniture | None, visible_already: bool = False
    ) -> None:
        """Put a (possibly hidden) object back where it stood, at its yaw, on ``surface``."""
        if not visible_already:
            self.show(name)
        self._set_pose(name, position)
        self._surface[name] = surface

    def pose(self, name: str) -> Pose:
        """The object's base pose as PyBullet reports it."""
        pos, orn = p.getBasePositionAndOrientation(self.body[name], physicsClientId=self.cid)
        return Pose(tuple(pos), tuple(orn))

    def base_position(self, name: str) -> Vec3:
        """The base position this world last gave the object (what PyBullet reports)."""
        return self._base[name]

    def centre(self, name: str) -> Vec3:
        """The centre of the object's bounds in the world (what captions measure from)."""
        return self._centre[name]

    def size(self, name: str) -> np.ndarray:
        """Extents of the object's bounds at zero yaw (m)."""
        return self._footprint[name].size

    def surface_of(self, name: str) -> Furniture | None:
        """The designated surface the object rests on (None while parked)."""
        return self._surface[name]

    # ------------------------------------------------------------------ feasibility
    def place_randomly(self, name: str, rng: np.random.Generator, tries: int = 10_000) -> None:
        """Show ``name`` and place it at the first feasible uniform target in the box."""
        self.show(name)
        lo, hi = self.placement_box
        for _ in range(tries):
            if self.try_place(name, rng.uniform(lo, hi)):
                return
        raise RuntimeError(f"could not place {name!r} in scene {self.scene.name!r}")

    def try_place(
        self, name: str, target: Vec3 | np.ndarray | list[float], min_move: float = 0.0
    ) -> bool:
        """Move ``name`` so that its centre lands below ``target``; False leaves it as it was.

        The object is lowered from the target point (its centre) onto whatever lies beneath.
        The placement is feasible (eq. 2, r = +1) iff that is a designated surface, the whole
        footprint lies on it, the object then intersects no other body, and (for a move) its
        centre has moved at least ``min_move`` m: staying put is no new sample.
        """
        old_base, old_surface = self._base[name], self._surface[name]
        old_centre = self.centre(name)
        self._set_pose(name, (0.0, 0.0, -40.0))  # out of the rays
        placed = self._place(name, target)
        moved = placed is not None and math.dist(self.centre(name), old_centre) >= min_move
        if not moved:
            placed = None
        if placed is None:
            self._set_pose(name, old_base)
            self._surface[name] = old_surface
            return False
        self._surface[name] = placed
        return True

    def _place(self, name: str, target: Vec3 | np.ndarray | list[float]) -> Furniture | None:
        cid, body = self.cid, self.body[name]
        x, y, z = (float(v) for v in target)
        hit_body, _, _, hit_pos, hit_normal = p.rayTest(
            (x, y, z), (x, y, -1.0), physicsClientId=cid
        )[0]
        surface = self.surface_body.get(hit_body)
        # A ray that starts inside furniture passes through it: the object would be inside.
        if surface is None or hit_normal[2] < 0.99 or abs(hit_pos[2] - surface.top) > 1e-4:
            return None
        ox, oy, _ = self._offset_t[name]
        bx, by = x - ox, y - oy
        corners = [(bx + dx, by + dy) for dx, dy in self._corner_list[name]]
        top = surface.top
        hits = p.rayTestBatch(
            [(cx, cy, top + 0.01) for cx, cy in corners],
            [(cx, cy, top - 0.01) for cx, cy in corners],
            physicsClientId=cid,
        )
        if any(h[0] != hit_body for h in hits):
            return None  # part of the footprint hangs off the surface (or lies on another body)
        base = (bx, by, top + GAP - float(self._footprint[name].lo[2]))
        self._set_pose(name, base)
        lo, hi = p.getAABB(body, physicsClientId=cid)
        for other, _link in p.getOverlappingObjects(lo, hi, physicsClientId=cid) or ():
            # The support is skipped: the object rests GAP above its top, inside its bounds.
            if other not in (body, hit_body) and p.getClosestPoints(
                body, other, 0.0, physicsClientId=cid
            ):
                return None
        return surface

    # ------------------------------------------------------------------ rendering
    def render(self, camera: int, size: int, shadows: bool = False) -> np.ndarray:
        """An RGB image (size x size x 3, uint8) from camera pose ``camera`` (TinyRenderer on
        the CPU unless ``RLS3_RENDERER=egl``)."""
        view, projection = self._matrices[camera]
        rgba = self.render_raw(view, projection, size, shadows)
        return np.ascontiguousarray(np.asarray(rgba).reshape(size, size, 4)[:, :, :3])

    def camera_matrices(self, camera: int) -> tuple[list[float], list[float]]:
        """View and projection matrices of camera pose ``camera``."""
        return self._matrices[camera]

    def render_raw(
        self, view: list[float], projection: list[float], size: int, shadows: bool = False
    ) -> np.ndarray:
        """The bare ``getCameraImage`` call (the render benchmark's baseline)."""
        _, _, rgba, _, _ = self.client.getCameraImage(
            size,
            size,
            view,
            projection,
            shadow=int(shadows),
            lightDirection=self.scene.light_direction,
            renderer=self.renderer,
            flags=p.ER_NO_SEGMENTATION_MASK,
        )
        return rgba

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
