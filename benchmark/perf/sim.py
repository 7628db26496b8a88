"""``rls3 perf sim``: what the environment costs per valid sample, against a bare render.

The target (issue: foundation and simulator) is that the env costs at most 1.15x the bare
``getCameraImage`` call per valid sample: physics queries, invalid steps, observations and
metadata must stay small next to rendering. Both sides are measured in one run, in alternating
rounds, on the same scenes, cameras and objects, so that machine noise hits both alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from benchmark.sim.env import PlacementEnv
from benchmark.sim.scenes import Environment


@dataclass(frozen=True)
class SimPerf:
    size: int  # image side, px
    samples: int  # valid samples (and bare renders) timed on each side
    env_seconds: float
    bare_seconds: float
    valid_rate: float  # valid steps / steps of the env side

    @property
    def env_rate(self) -> float:
        """Valid samples per second through ``PlacementEnv.step`` (resets included)."""
        return self.samples / self.env_seconds

    @property
    def bare_rate(self) -> float:
        """Images per second from bare ``getCameraImage`` calls."""
        return self.samples / self.bare_seconds

    @property
    def ratio(self) -> float:
        """Env cost per valid sample over bare render cost per image (target <= 1.15)."""
        return self.env_seconds / self.bare_seconds


def measure(
    size: int,
    samples: int = 300,
    rounds: int = 3,
    environment: Environment = "train",
    seed: int = 0,
) -> SimPerf:
    """Time ``samples`` valid env samples and as many bare renders, ``rounds`` times each."""
    env = PlacementEnv(environment, image_size=size)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    env_s = bare_s = 0.0
    steps = valid = 0
    try:
        for _ in range(rounds):
            rendered: list[tuple[int, int]] = []  # (scene, camera) of every env image
            start = time.perf_counter()
            while len(rendered) < samples:
                _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 3))
                steps += 1
                if reward > 0:
                    rendered.append(
                        (info["sample"]["scene_index"], info["sample"]["camera"]["index"])
                    )
                if terminated or truncated:
                    env.reset()
            env_s += time.perf_counter() - start
            valid += len(rendered)
            # The same render calls on the same scenes (as they stand now), in the same order.
            calls = [(env.worlds[i], *env.worlds[i].camera_matrices(c)) for i, c in rendered]
            start = time.perf_counter()
            for world, view, projection in calls:
                world.render_raw(view, projection, size)
            bare_s += time.perf_counter() - start
    finally:
        env.close()
    return SimPerf(size, samples * rounds, env_s, bare_s, valid / steps)


def format_sim_perf(results: list[SimPerf]) -> str:
    """A table, one row per image size, and the verdict against the 1.15x target."""
    lines = [
        f"{'size':>5} {'samples':>8} {'env valid/s':>12} {'bare img/s':>11} "
        f"{'ratio':>6} {'valid rate':>10}  target ratio <= 1.15"
    ]
    for r in results:
        verdict = "ok" if r.ratio <= 1.15 else "OVER"
        lines.append(
            f"{r.size:>5} {r.samples:>8} {r.env_rate:>12.1f} {r.bare_rate:>11.1f} "
            f"{r.ratio:>6.3f} {r.valid_rate:>10.2f}  {verdict}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- over the protocol
EMBEDDED_PLAYER = "unity_build/RLS3Embedded.x86_64"


@dataclass(frozen=True)
class ProtocolPerf:
    size: int  # image side, px
    samples: int  # valid samples timed on each side
    unity_seconds: float  # through UnityPlacementEnv (mlagents-envs, gRPC, the player)
    process_seconds: float  # through PlacementEnv in this process
    identical: bool  # every observation, reward, image and record equal on both sides

    @property
    def unity_rate(self) -> float:
        return self.samples / self.unity_seconds

    @property
    def process_rate(self) -> float:
        return self.samples / self.process_seconds

    @property
    def ratio(self) -> float:
        """Samples/s over the protocol over samples/s in process (1.0: no cost)."""
        return self.unity_rate / self.process_rate


def measure_unity(
    size: int,
    samples: int = 300,
    rounds: int = 3,
    environment: Environment = "train",
    seed: int = 0,
    build: str = EMBEDDED_PLAYER,
) -> ProtocolPerf:
    """Time ``samples`` valid samples through the unity backend and in process, on the same
    seed and the same actions, in alternating rounds (the player's start is not timed)."""
    from benchmark.sim.unity import UnityPlacementEnv

    unity = UnityPlacementEnv(environment, build=build, image_size=size)
    local = PlacementEnv(environment, image_size=size)
    rng = np.random.default_rng(seed)
    seconds = {"unity": 0.0, "process": 0.0}
    identical = True
    try:
        unity.reset(seed=seed)
        local.reset(seed=seed)
        for _ in range(rounds):
            actions: list[np.ndarray] = []
            images: dict[str, list[np.ndarray]] = {"unity": [], "process": []}
            for name, env in (("unity", unity), ("process", local)):
                steps = 0
                start = time.perf_counter()
                while len(images[name]) < samples:
                    if steps == len(actions):
                        actions.append(rng.uniform(-1, 1, 3).astype(np.float32))
                    _, reward, terminated, truncated, info = env.step(actions[steps])
                    steps += 1
                    if reward > 0:
                        images[name].append(info["image"])
                    if terminated or truncated:
                        env.reset()
                seconds[name] += time.perf_counter() - start
            identical &= all(
                np.array_equal(a, b)
                for a, b in zip(images["unity"], images["process"], strict=True)
            )
    finally:
        unity.close()
        local.close()
    return ProtocolPerf(size, samples * rounds, seconds["unity"], seconds["process"], identical)


def format_unity_perf(results: list[ProtocolPerf]) -> str:
    """A table, one row per image size: samples/s over the protocol and in process."""
    lines = [
        f"{'size':>5} {'samples':>8} {'unity valid/s':>14} {'in-process valid/s':>19} "
        f"{'ratio':>6}  identical"
    ]
    for r in results:
        lines.append(
            f"{r.size:>5} {r.samples:>8} {r.unity_rate:>14.1f} {r.process_rate:>19.1f} "
            f"{r.ratio:>6.3f}  {'yes' if r.identical else 'NO'}"
        )
    return "\n".join(lines)
