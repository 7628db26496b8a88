"""The placement environment (spec section 3; the paper's section 4.1-4.2 and Fig. 3).

Each step moves one active object. The slot to move goes round-robin over the 3 active objects
(``slot = step % 3``); the active scene goes round-robin over the environment's scenes every
``scene_period`` steps (default 4, so a T0 = 32 episode of the train environment visits every
scene); before a step, the slot's object may be swapped (probability ``swap_prob``) for one of
the inactive objects, which takes its place if it fits there. The observation says which object
will move.

Action ``a`` in [-1, 1]^3 picks the moving object's new spot, scaled to the scene's designated
surfaces (its displacement is that spot minus where it stands): ``a[2] < 0`` picks the lower
surface, ``a[2] >= 0`` the upper one, and ``a[0], a[1]`` span that surface's top from edge to edge
less ``SURFACE_INSET`` on each side (``x = centre_x + a[0] * (half_x - SURFACE_INSET)``, likewise
y). So every designated surface is reachable from anywhere in one step, and the valid region of
``a`` has the same shape in every scene. The object is lowered from just above the surface onto
whatever lies beneath (see ``world.SceneWorld.try_place``): it may still hang over an edge, hit
another object or furniture above (a shelf over a counter), or not move the 10 cm a new sample
needs. (A displacement folded into the scene's placement box was tried first: SAC learned it too
slowly to reach the valid-rate contract.)

Reset: a seeded reset (and the first) draws every scene's 3 active objects, their poses and the
cameras afresh; a reset without a seed keeps the arrangement the last episode left, so the scenes
go on and only the episode's counters and the scene cycle start again (from the first scene, or
``options={"scene": name}``).

Reward (eq. 2): +1 for a feasible placement, -1 otherwise; an infeasible step leaves the scene
unchanged and renders nothing. On a feasible step ``info["image"]`` holds the rendered RGB image
and ``info["sample"]`` its metadata (JSON-ready). The episode ends (``terminated``) after ``t0``
valid samples, or is truncated at ``max_steps`` steps; ``info`` always carries the counts.

Observation (Box(32), each field scaled to [-1, 1] by the room's half-sizes):

====== =================================================================
index  field
====== =================================================================
0      slot of the object to move (0, 1, 2 -> -1, 0, 1)
1      vocabulary id of the object to move (0..8 -> -1..1)
2      index of the active scene in the environment's cycle
3      episode progress: valid samples so far / t0
4-8    lower designated surface: centre x, centre y, top z, half-size x, half-size y (box frame)
9-13   upper designated surface: same fields
14-25  the object to move, then the next two slots: u, v, s, yaw / pi, where (u, v, s) is the
       action that aims at the object's centre (the frame of the action: u, v on its surface,
       s = -0.5 on the lower surface, +0.5 on the upper)
26-28  camera position x, y, z
29-30  camera yaw / pi and pitch / (pi / 2)
31     +1 if the object to move was just swapped in, else -1
====== =================================================================
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from benchmark.sim.scenes import Camera, Environment, Scene, environment_scenes, object_names
from benchmark.sim.world import SceneWorld

N_ACTIVE = 3
OBS_SIZE = 32
MAX_STEPS_FACTOR = 8  # a library default only: the pipeline passes its sim.max_steps_factor
BOX_SPAN = 1.5  # the box frame (surface fields) leaves room for 1.5 box half-widths out
MIN_MOVE = 0.1  # m: a placement must move the object's centre at least this far
SURFACE_INSET = 0.05  # m: the action spans each surface less this margin on every side
DROP_HEIGHT = 0.02  # m above the chosen surface from which the object is lowered


def camera_angles(eye: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Yaw (from +x, counter-clockwise) and pitch (up positive) of a camera, radians."""
    d = np.asarray(target, dtype=float) - np.asarray(eye, dtype=float)
    return math.atan2(d[1], d[0]), math.atan2(d[2], math.hypot(d[0], d[1]))


def _camera_metadata(index: int, cam: Camera) -> dict[str, Any]:
    """The camera block of a sample's metadata (static per camera pose)."""
    yaw, pitch = camera_angles(np.asarray(cam.eye), np.asarray(cam.target))
    forward = np.asarray(cam.target) - np.asarray(cam.eye)
    return {
        "index": index,
        "position": list(cam.eye),
        "target": list(cam.target),
        "forward": (forward / np.linalg.norm(forward)).tolist(),
        "up": [0.0, 0.0, 1.0],
        "fov_deg": cam.fov,
        "yaw_deg": math.degrees(yaw),
        "pitch_deg": math.degrees(pitch),
    }


class PlacementEnv(gym.Env[np.ndarray, np.ndarray]):
    """Place objects on designated surfaces of indoor scenes; valid placements yield samples."""

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012 (gymnasium's convention)

    def __init__(
        self,
        environment: Environment = "train",
        *,
        t0: int = 32,
        max_steps: int | None = None,
        image_size: int = 64,
        swap_prob: float = 0.25,
        scene_period: int = 4,
        render_images: bool = True,
        shadows: bool = False,
        render_mode: str | None = None,
    ) -> None:
        """
        Args:
            environment: ``train`` (5 scenes) or ``test`` (3 other scenes).
            t0: valid samples that end an episode (the paper's T0).
            max_steps: step cap of an episode (default ``MAX_STEPS_FACTOR * t0``).
            image_size: side of the rendered square images, px.
            swap_prob: probability that the next object to move is swapped for an inactive one.
            scene_period: steps between changes of the active scene.
            render_images: render an image on each valid step (off for intrinsic-only training).
            shadows: TinyRenderer shadows (about twice the render cost).
        """
        if t0 < 1 or image_size < 8 or scene_period < 1 or not 0.0 <= swap_prob <= 1.0:
            raise ValueError(
                f"bad PlacementEnv arguments: t0={t0} (>= 1), image_size={image_size} (>= 8), "
                f"scene_period={scene_period} (>= 1), swap_prob={swap_prob} (in [0, 1])"
            )
        self.environment = environment
        self.scenes: tuple[Scene, ...] = environment_scenes(environment)
        self.t0 = t0
        self.max_steps = max_steps if max_steps is not None else MAX_STEPS_FACTOR * t0
        self.image_size = image_size
        self.swap_prob = swap_prob
        self.scene_period = scene_period
        self.render_images = render_images
        self.shadows = shadows
        self.render_mode = render_mode
        self.object_names = object_names()
        self.worlds = [SceneWorld(s) for s in self.scenes]
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (OBS_SIZE,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self._boxes = [w.placement_box for w in self.worlds]
        self._static_obs = [self._scene_features(i) for i in range(len(self.scenes))]
        self._camera_obs = [
            [self._camera_features(i, c) for c in range(len(s.cameras))]
            for i, s in enumerate(self.scenes)
        ]
        self._camera_meta = [
            [_camera_metadata(c, cam) for c, cam in enumerate(s.cameras)] for s in self.scenes
        ]
        n_objects = len(self.object_names)
        self._object_code = {
            n: 2.0 * i / (n_objects - 1) - 1.0 for i, n in enumerate(self.object_names)
        }
        # The frame of the action on each designated surface: (centre x, y, half x, y, top).
        self._rects = [
            [
                (
                    f.at[0],
                    f.at[1],
                    f.size[0] / 2 - SURFACE_INSET,
                    f.size[1] / 2 - SURFACE_INSET,
                    f.top,
                )
                for f in s.surfaces
            ]
            for s in self.scenes
        ]
        # The fields that depend only on the scene and camera, filled in once.
        self._obs_template = [
            [
                np.concatenate(
                    [
                        [0.0, 0.0, 2.0 * i / max(len(self.scenes) - 1, 1) - 1.0, 0.0],
                        self._static_obs[i],
                        np.zeros(12),
                        self._camera_obs[i][c],
                        [0.0],
                    ]
                ).astype(np.float32)
                for c in range(len(scene.cameras))
            ]
            for i, scene in enumerate(self.scenes)
        ]
        self._active: list[list[str]] = []
        self._camera = [0] * len(self.scenes)
        self._scene = 0
        self._steps = 0
        self._valid = 0
        self._swapped = False
        self._episode_started = False

    # ------------------------------------------------------------------ geometry helpers
    def _norm_xyz(self, scene: Scene, xyz: np.ndarray) -> np.ndarray:
        """Room frame: the room's half-sizes map to [-1, 1] (for the camera)."""
        w, d, h = scene.room.size
        return np.array([xyz[0] / (w / 2), xyz[1] / (d / 2), xyz[2] / (h / 2) - 1.0])

    def _box_xyz(self, index: int, xyz: np.ndarray) -> np.ndarray:
        """Box frame, for the surface fields: the placement box maps to +-1 / BOX_SPAN."""
        lo, hi = self._boxes[index]
        return ((np.asarray(xyz) - (lo + hi) / 2) / ((hi - lo) / 2)) / BOX_SPAN

    def _scene_features(self, index: int) -> np.ndarray:
        """Observation fields 4-13, which only change with the scene."""
        lo, hi = self._boxes[index]
        feats = []
        for f in self.scenes[index].surfaces:
            centre = self._box_xyz(index, np.array([f.at[0], f.at[1], f.top]))
            half = np.array(f.size[:2]) / 2 / ((hi - lo)[:2] / 2) / BOX_SPAN
            feats.extend([*centre, *half])
        return np.asarray(feats, dtype=np.float32)

    def _camera_features(self, index: int, camera: int) -> np.ndarray:
        """Observation fields 26-30: the camera's position (room frame), yaw and pitch."""
        scene = self.scenes[index]
        cam = scene.cameras[camera]
        yaw, pitch = camera_angles(np.asarray(cam.eye), np.asarray(cam.target))
        pos = self._norm_xyz(scene, np.asarray(cam.eye))
        return np.array([*pos, yaw / math.pi, pitch / (math.pi / 2)], dtype=np.float32)

    @property
    def scene(self) -> Scene:
        """The active scene."""
        return self.scenes[self._scene]

    @property
    def world(self) -> SceneWorld:
        """The active scene's PyBullet world."""
        return self.worlds[self._scene]

    @property
    def slot(self) -> int:
        """Slot (0-2) of the object that the next step moves."""
        return self._steps % N_ACTIVE

    @property
    def moving_object(self) -> str:
        """Name of the object that the next step moves."""
        return self._active[self._scene][self.slot]

    def active_objects(self, scene_index: int | None = None) -> list[str]:
        """Names of the 3 active objects of a scene, by slot."""
        return list(self._active[self._scene if scene_index is None else scene_index])

    def action_towards(self, target: Any) -> np.ndarray:
        """The action that aims the moving object's centre at ``target`` (a point above a
        designated surface of the active scene: the highest one below it, else the lower)."""
        return np.array(self._action_frame(self._scene, target), dtype=np.float32)

    def _action_frame(self, index: int, point: Any) -> tuple[float, float, float]:
        """(u, v, s): the action that aims at ``point`` (clipped to [-1, 1])."""
        x, y, z = (float(v) for v in point)
        rects = self._rects[index]
        level = 0
        for k, (cx, cy, hx, hy, top) in enumerate(rects):
            inside = abs(x - cx) <= hx + SURFACE_INSET and abs(y - cy) <= hy + SURFACE_INSET
            if inside and z >= top - 1e-6:
                level = k
        cx, cy, hx, hy, _ = rects[level]
        u = min(max((x - cx) / hx, -1.0), 1.0)
        v = min(max((y - cy) / hy, -1.0), 1.0)
        return u, v, -0.5 if level == 0 else 0.5

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or not self._active:
            self._arrange()
        self._swapped = False
        self._scene = self._scene_option(options)
        self._steps = 0
        self._valid = 0
        self._episode_started = True
        return self._observation(), self._counts()

    def _arrange(self) -> None:
        """Draw every scene's active objects, their poses and cameras afresh (seeded reset).

        A reset without a seed keeps the arrangement the last episode left: the scenes go on,
        only the episode's counters start again (and a reset is then nearly free).
        """
        rng = self.np_random
        previous = self._active or [list(self.object_names)] * len(self.worlds)
        self._active = []
        for index, world in enumerate(self.worlds):
            for name in previous[index]:  # the others are hidden already
                world.hide(name)
            chosen = rng.choice(len(self.object_names), size=N_ACTIVE, replace=False)
            names = [self.object_names[int(i)] for i in chosen]
            for name in names:
                world.set_yaw(name, float(rng.uniform(-math.pi, math.pi)))
                world.place_randomly(name, rng)
            self._active.append(names)
            self._camera[index] = int(rng.integers(len(self.scenes[index].cameras)))

    def _scene_option(self, options: dict[str, Any] | None) -> int:
        """``options={"scene": name}`` starts the episode in that scene instead of the first."""
        name = (options or {}).get("scene")
        if name is None:
            return 0
        names = [s.name for s in self.scenes]
        if name not in names:
            raise ValueError(
                f"reset option 'scene': {name!r} is not a {self.environment} scene; "
                f"choose one of {names}"
            )
        return names.index(name)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._episode_started:
            raise RuntimeError("call reset() before step()")
        world, name = self.world, self.moving_object
        # Plain floats: numpy's per-call cost would exceed the arithmetic here.
        a = [
            min(max(v, -1.0), 1.0) for v in np.asarray(action, dtype=np.float64).reshape(3).tolist()
        ]
        cx, cy, hx, hy, top = self._rects[self._scene][0 if a[2] < 0 else 1]
        target = (cx + a[0] * hx, cy + a[1] * hy, top + DROP_HEIGHT)
        valid = world.try_place(name, target, min_move=MIN_MOVE)
        info: dict[str, Any] = {"valid": valid}
        if valid:
            self._valid += 1
            info["sample"] = self.sample_metadata(moved=name)
            if self.render_images:
                info["image"] = world.render(
                    self._camera[self._scene], self.image_size, self.shadows
                )
        self._steps += 1
        terminated = self._valid >= self.t0
        truncated = not terminated and self._steps >= self.max_steps
        if terminated or truncated:
            self._episode_started = False
        else:
            self._advance()
        info.update(self._counts())
        return self._observation(), 1.0 if valid else -1.0, terminated, truncated, info

    def _advance(self) -> None:
        """Prepare the next step: cycle the scene, maybe swap the next object (Fig. 3)."""
        if self._steps % self.scene_period == 0:
            self._scene = (self._scene + 1) % len(self.scenes)
            if self._steps // self.scene_period >= len(self.scenes):  # a revisit: next camera
                self._camera[self._scene] = (self._camera[self._scene] + 1) % len(
                    self.scene.cameras
                )
        rng = self.np_random
        self._swapped = False
        if rng.random() < self.swap_prob:
            active = self._active[self._scene]
            inactive = [n for n in self.object_names if n not in active]
            incoming = inactive[int(rng.integers(len(inactive)))]
            yaw = float(rng.uniform(-math.pi, math.pi))
            self._swapped = self._swap(self.slot, incoming, yaw)

    def _swap(self, slot: int, incoming: str, yaw: float) -> bool:
        """Put ``incoming`` where the slot's object stands, if it fits there.

        The incoming object is tried while still transparent; visuals change only on success.
        """
        world = self.world
        outgoing = self._active[self._scene][slot]
        x, y, _ = world.centre(outgoing)
        surface = world.surface_of(outgoing)
        assert surface is not None
        old_position = world.base_position(outgoing)
        world.park(outgoing)
        world.set_yaw(incoming, yaw)
        if world.try_place(incoming, (x, y, surface.top + 0.02)):
            world.hide(outgoing)
            world.show(incoming)
            self._active[self._scene][slot] = incoming
            return True
        # A failed try_place left the incoming object parked and transparent, as it was.
        world.restore(outgoing, old_position, surface, visible_already=True)
        return False

    def _counts(self) -> dict[str, Any]:
        return {"steps": self._steps, "valid_samples": self._valid, "scene": self.scene.name}

    def _observation(self) -> np.ndarray:
        world, index = self.world, self._scene
        active = self._active[index]
        slot = self.slot
        obs = self._obs_template[index][self._camera[index]].copy()
        obs[0] = slot - 1.0
        obs[1] = self._object_code[active[slot]]
        obs[3] = 2.0 * min(self._valid / self.t0, 1.0) - 1.0
        # The object to move first, then the others in slot order, each as the action that aims
        # at it: staying clear of them is then the same rule in every scene.
        for k in range(N_ACTIVE):
            name = active[(slot + k) % N_ACTIVE]
            obs[14 + 4 * k : 17 + 4 * k] = self._action_frame(index, world.centre(name))
            obs[17 + 4 * k] = world.yaw(name) / math.pi
        obs[31] = 1.0 if self._swapped else -1.0
        return obs

    # ------------------------------------------------------------------ samples
    def sample_metadata(self, moved: str | None = None) -> dict[str, Any]:
        """The ground truth of the active scene as it is now (spec section 3, "Sample")."""
        world = self.world
        objects = []
        for slot, name in enumerate(self._active[self._scene]):
            pose = world.pose(name)
            surface = world.surface_of(name)
            objects.append(
                {
                    "name": name,
                    "slot": slot,
                    "position": list(pose.position),
                    "rotation": list(pose.orientation),
                    "yaw_deg": math.degrees(world.yaw(name)),
                    "center": list(world.centre(name)),
                    "size": world.size(name).tolist(),
                    "surface": surface.name if surface else None,
                }
            )
        return {
            "environment": self.environment,
            "scene": self.scene.name,
            "scene_index": self._scene,
            "step": self._steps,
            "moved": moved,
            "image_size": self.image_size,
            "camera": dict(self._camera_meta[self._scene][self._camera[self._scene]]),
            "objects": objects,
        }

    def render(self) -> np.ndarray:
        """The active scene from its current camera (``render_mode="rgb_array"``)."""
        return self.world.render(self._camera[self._scene], self.image_size, self.shadows)

    def close(self) -> None:
        for world in self.worlds:
            world.close()
        self.worlds = []
