"""The ``unity`` backend: ``PlacementEnv``'s contract, served by a Unity build over ML-Agents.

``UnityPlacementEnv`` is a ``gymnasium.Env`` over mlagents-envs' ``UnityEnvironment``, with the
embedded env's spaces, rewards, episode ends and ``info`` (counts, ``valid``, and on a valid step
``sample`` and ``image``), so the loop, the agent's pre-training and the datasets use it as they
use ``PlacementEnv``. The build is either a Unity player built from unity_build/ or the embedded
player (``unity_build/RLS3Embedded.x86_64``), which mlagents-envs launches the same way.

How each part travels (unity_build/README.md has the contract):

- the configuration (environment, t0, max_steps, image size, ...) and each reset's seed: floats
  on mlagents-envs' ``EnvironmentParametersChannel``, sent with the reset;
- the action: the behaviour's 3 continuous actions (float32, as ML-Agents sends them);
- the observation: the agent's vector observation (32 floats) and its camera (PNG);
- the reward: the agent's reward; the episode's end: a terminal step (``max_step_reached`` for a
  truncation at ``max_steps``);
- the info record (counts, validity, the sample's metadata): JSON on the sample side channel.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from benchmark.sim import unity_contract as uc
from benchmark.sim.env import MAX_STEPS_FACTOR, OBS_SIZE
from benchmark.sim.scenes import Environment, environment_scenes
from benchmark.sim.unity_contract import UnityBackendError


def _sample_channel() -> Any:
    """The sample side channel's Python end: it keeps the last info record the build sent."""
    from mlagents_envs.side_channel.side_channel import IncomingMessage, SideChannel

    class SampleChannel(SideChannel):
        def __init__(self) -> None:
            super().__init__(uc.SAMPLE_CHANNEL_ID)
            self.records: list[dict[str, Any]] = []

        def on_message_received(self, msg: IncomingMessage) -> None:
            self.records.append(json.loads(msg.read_string()))

    return SampleChannel()


_WORKERS: set[int] = set()  # the worker offsets (port = base_port + offset) held in this process


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound, as mlagents-envs' ``RpcCommunicator.check_port`` tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("localhost", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port that nothing listens on now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


__all__ = ["UnityBackendError", "UnityPlacementEnv", "free_port"]


class UnityPlacementEnv(gym.Env[np.ndarray, np.ndarray]):
    """``PlacementEnv``'s interface over a Unity build driven by mlagents-envs."""

    metadata = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)

    def __init__(
        self,
        environment: Environment = "train",
        *,
        build: str | Path,
        base_port: int | None = None,
        timeout_s: int = 60,
        t0: int = 32,
        max_steps: int | None = None,
        image_size: int = 64,
        swap_prob: float = 0.25,
        scene_period: int = 4,
        render_images: bool = True,
        shadows: bool = False,
    ) -> None:
        """
        Args:
            environment, t0, ...: as ``PlacementEnv``'s (sent to the build as parameters).
            build: the player executable (``sim.unity.build``).
            base_port: the port of the ML-Agents connection (``sim.unity.base_port``); ``None``
                takes a free one.
            timeout_s: how long to wait for the build to answer (``sim.unity.timeout_s``).
        """
        from mlagents_envs.environment import UnityEnvironment
        from mlagents_envs.exception import UnityTimeOutException, UnityWorkerInUseException
        from mlagents_envs.side_channel.environment_parameters_channel import (
            EnvironmentParametersChannel,
        )

        path = Path(build)
        if not path.is_file():
            raise UnityBackendError(
                f"sim.unity.build: no Unity player at {path}; build one as unity_build/README.md "
                f"says and put it there, or set sim.unity.build to its path (the embedded player "
                f"is unity_build/RLS3Embedded.x86_64)"
            )
        if not os.access(path, os.X_OK):
            raise UnityBackendError(f"sim.unity.build: {path} is not executable (chmod +x it)")
        self.environment = environment
        self.scene_names = [s.name for s in environment_scenes(environment)]
        max_steps = max_steps if max_steps is not None else MAX_STEPS_FACTOR * t0
        self.render_images = render_images
        self.build = path
        self._worker: int | None = None
        if base_port is None:
            self.port = free_port()
        else:  # a second env in this process (SAC's evaluation env) takes the next port
            self._worker = min(set(range(len(_WORKERS) + 1)) - _WORKERS)
            _WORKERS.add(self._worker)
            self.port = base_port + self._worker
        if not port_is_free(self.port):  # before mlagents-envs, whose atexit hook would trip
            self._release()
            raise self._port_in_use()
        self.log_dir = Path(tempfile.mkdtemp(prefix="rls3-unity-"))
        self.log_file = self.log_dir / "Player-0.log"
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (OBS_SIZE,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (uc.N_ACTIONS,), np.float32)
        self._parameters = EnvironmentParametersChannel()
        self._samples = _sample_channel()
        config = {
            "environment": uc.ENVIRONMENT_CODES[environment],
            "t0": t0,
            "max_steps": max_steps,
            "image_size": image_size,
            "swap_prob": swap_prob,
            "scene_period": scene_period,
            "render_images": float(render_images),
            "shadows": float(shadows),
        }
        for key, value in config.items():
            self._parameters.set_float_parameter(key, float(value))
        # The embedded player runs on this interpreter (its launcher reads RLS3_PYTHON).
        os.environ.setdefault("RLS3_PYTHON", sys.executable)
        try:
            self._unity = UnityEnvironment(
                file_name=str(path),
                base_port=self.port,
                seed=0,
                no_graphics=True,
                timeout_wait=timeout_s,
                side_channels=[self._parameters, self._samples],
                log_folder=str(self.log_dir),
            )
        except UnityWorkerInUseException as err:
            self._release()
            raise self._port_in_use() from err
        except UnityTimeOutException as err:
            self._release()
            raise UnityBackendError(
                f"the Unity player {path} did not connect on port {self.port} within "
                f"{timeout_s} s (sim.unity.timeout_s); its log: {self.log_file}"
            ) from err
        except Exception as err:  # mlagents-envs' UnityEnvironmentException and the like
            self._release()
            raise UnityBackendError(
                f"the Unity player {path} did not start: {err}; its log: {self.log_file}"
            ) from err
        self._open = True
        self._episode_steps = 0

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            high, low = uc.split_seed(seed)
            self._parameters.set_float_parameter(uc.SEED_HIGH, high)
            self._parameters.set_float_parameter(uc.SEED_LOW, low)
        name = (options or {}).get("scene")
        if name is not None:
            if name not in self.scene_names:
                raise ValueError(
                    f"reset option 'scene': {name!r} is not a {self.environment} scene; "
                    f"choose one of {self.scene_names}"
                )
            self._parameters.set_float_parameter(uc.SCENE, float(self.scene_names.index(name)))
        self._exchange("reset")
        self._episode_steps = 0
        obs, _, _, _, record, _ = self._read()
        return obs, self._info(record)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        from mlagents_envs.base_env import ActionTuple

        a = np.asarray(action, dtype=np.float32).reshape(1, uc.N_ACTIONS)
        self._unity.set_actions(uc.BEHAVIOR_ID, ActionTuple(continuous=a))
        self._exchange("step")
        self._episode_steps += 1
        obs, reward, done, interrupted, record, image = self._read()
        info = self._info(record)
        if info["valid"] and self.render_images:
            info["image"] = image
        return obs, reward, done and not interrupted, done and interrupted, info

    def close(self) -> None:
        """Stop the player; its log folder goes with it (an error keeps it: see ``_stop``)."""
        self._stop()
        if hasattr(self, "log_dir"):
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def _stop(self) -> None:
        """Stop the player and free its port slot, keeping the log an error message names."""
        if getattr(self, "_open", False):
            self._open = False
            self._unity.close()
        self._release()

    def _port_in_use(self) -> UnityBackendError:
        return UnityBackendError(
            f"sim.unity.base_port: port {self.port} is in use (another player or process "
            f"holds it); set sim.unity.base_port to a free port, or null to take one"
        )

    def _release(self) -> None:
        if getattr(self, "_worker", None) is not None:
            _WORKERS.discard(self._worker)
            self._worker = None

    # ------------------------------------------------------------------ the protocol
    def _exchange(self, what: str) -> None:
        """One reset or step over the connection; a stopped build is a clear error."""
        try:
            if what == "reset":
                self._unity.reset()
            else:
                self._unity.step()
        except Exception as err:  # UnityEnvironmentException, ...StoppedException, TimeOut
            self._stop()
            raise UnityBackendError(
                f"the Unity player {self.build} stopped serving during a {what} (step "
                f"{self._episode_steps} of the episode): {err}; its log: {self.log_file}. "
                f"A run keeps its last completed iteration: run the same command again to resume"
            ) from err

    def _read(self) -> tuple[np.ndarray, float, bool, bool, dict[str, Any], np.ndarray]:
        """The agent's step after an exchange: (vector, reward, done, interrupted, record,
        image as uint8)."""
        decision, terminal = self._unity.get_steps(uc.BEHAVIOR_ID)
        steps, done = (terminal, True) if len(terminal) else (decision, False)
        interrupted = bool(terminal.interrupted[0]) if done else False
        image = np.rint(steps.obs[0][0] * 255.0).astype(np.uint8)
        vector = np.asarray(steps.obs[1][0], dtype=np.float32)
        if not self._samples.records:
            raise UnityBackendError(
                f"the Unity player {self.build} sent no info record on the sample channel "
                f"({uc.SAMPLE_CHANNEL_ID}); see unity_build/README.md"
            )
        record = self._samples.records[-1]
        self._samples.records.clear()
        return vector, float(steps.reward[0]), done, interrupted, record, image

    @staticmethod
    def _info(record: dict[str, Any]) -> dict[str, Any]:
        """``PlacementEnv``'s info from the build's record (the image is added by ``step``)."""
        return {k: v for k, v in record.items() if k not in ("event", "terminated", "truncated")}
