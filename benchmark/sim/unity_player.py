"""The embedded player: the Unity side of the ML-Agents protocol, serving the embedded scenes.

``unity_build/RLS3Embedded.x86_64`` runs this module. mlagents-envs' ``UnityEnvironment``
launches it exactly as it launches a Unity build (``--mlagents-port P``, ``-batchmode``,
``-nographics``, ``-logFile F``), and it then behaves as the ML-Agents C# package does: it is the
gRPC *client* of the Python process's ``UnityToExternalProto`` server, and speaks in
``communicator_objects`` messages (mlagents-envs' generated protobuf classes):

1. ``Exchange(UnityOutput{rl_initialization_output})`` -> ``UnityInput{rl_initialization_input}``
   (the academy's name, communication version and capabilities; back come the seed and
   Python's versions);
2. ``Exchange(header only)`` -> the first ``UnityInput{rl_input}`` (a RESET);
3. then per command: run it (RESET: reset the scenes; STEP: apply the agent's action), and
   ``Exchange(UnityOutput{rl_output})`` with the agent's info, the side-channel messages and,
   with the first output, the behaviour's ``BrainParameters``; the answer is the next command.
   A header status other than 200 (``UnityEnvironment.close``) or a QUIT ends the process.

The scenes are ``PlacementEnv``'s, built at the first reset from the environment parameters; the
agent's info carries the rendered image (PNG) and the 32-float vector; the sample channel carries
the step's info record (unity_build/README.md has the contract).
"""

from __future__ import annotations

import io
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from benchmark.sim import unity_contract as uc


def _parse_args(argv: Sequence[str]) -> dict[str, Any]:
    """Unity's player arguments: ``--mlagents-port``, ``-logFile``; others are accepted and
    ignored (``-batchmode``, ``-nographics``, and whatever a Unity player would ignore)."""
    args: dict[str, Any] = {"port": None, "log": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--mlagents-port" and i + 1 < len(argv):
            args["port"] = int(argv[i + 1])
            i += 1
        elif a.lower() == "-logfile" and i + 1 < len(argv):
            args["log"] = argv[i + 1]
            i += 1
        i += 1
    return args


class EmbeddedPlayer:
    """One academy with one agent over ``PlacementEnv`` (the state of the Unity side)."""

    def __init__(self, log: TextIO) -> None:
        self.log = log
        self.params: dict[str, float] = {}
        self.config: dict[str, float] | None = None
        self.env: Any = None
        self.init_seed = 0
        self.episode_over = True
        self.brain_sent = False
        self.steps_served = 0

    def say(self, text: str) -> None:
        self.log.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self.log.flush()

    # ------------------------------------------------------------------ protocol messages
    def initialization_output(self) -> Any:
        from mlagents_envs.communicator_objects.capabilities_pb2 import UnityRLCapabilitiesProto
        from mlagents_envs.communicator_objects.unity_rl_initialization_output_pb2 import (
            UnityRLInitializationOutputProto,
        )

        caps = UnityRLCapabilitiesProto(
            baseRLCapabilities=True,
            concatenatedPngObservations=True,
            compressedChannelMapping=True,
            hybridActions=True,
            trainingAnalytics=True,
            variableLengthObservation=True,
            multiAgentGroups=True,
        )
        return UnityRLInitializationOutputProto(
            name="RLS3 Embedded",
            communication_version=uc.COMMUNICATION_VERSION,
            package_version=uc.PACKAGE_VERSION,
            capabilities=caps,
        )

    def brain_parameters(self) -> Any:
        from mlagents_envs.communicator_objects.brain_parameters_pb2 import (
            ActionSpecProto,
            BrainParametersProto,
        )
        from mlagents_envs.communicator_objects.space_type_pb2 import continuous

        return BrainParametersProto(
            vector_action_size_deprecated=[uc.N_ACTIONS],
            vector_action_space_type_deprecated=continuous,
            brain_name=uc.BEHAVIOR_ID,
            is_training=True,
            action_spec=ActionSpecProto(num_continuous_actions=uc.N_ACTIONS),
        )

    def agent_info(
        self, vector: np.ndarray, image: np.ndarray | None, reward: float, done: bool, cut: bool
    ) -> Any:
        from mlagents_envs.communicator_objects.agent_info_pb2 import AgentInfoProto
        from mlagents_envs.communicator_objects.observation_pb2 import (
            NONE,
            PNG,
            ObservationProto,
        )
        from PIL import Image

        assert self.config is not None  # built at the first reset, before any output
        size = int(self.config["image_size"])
        pixels = image if image is not None else np.zeros((size, size, 3), np.uint8)
        png = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(png, format="PNG")
        camera = ObservationProto(
            shape=[size, size, 3],
            compression_type=PNG,
            compressed_data=png.getvalue(),
            dimension_properties=[2, 2, 1],  # translational equivariance x2, none
            name=uc.CAMERA_SENSOR,
        )
        vec = ObservationProto(
            shape=[uc.VECTOR_SIZE], compression_type=NONE, dimension_properties=[1],
            name=uc.VECTOR_SENSOR,
        )  # fmt: skip
        vec.float_data.data.extend(np.asarray(vector, np.float32).tolist())
        return AgentInfoProto(
            reward=reward,
            done=done,
            max_step_reached=cut,
            id=uc.AGENT_ID,
            observations=[camera, vec],
        )

    # ------------------------------------------------------------------ commands
    def read_side_channel(self, data: bytes) -> set[str]:
        """Apply the environment parameters of one input; the keys it set."""
        keys: set[str] = set()
        for channel, payload in uc.unpack_side_channel(data):
            if channel == uc.ENV_PARAMETERS_CHANNEL_ID:
                key, value = uc.decode_float_parameter(payload)
                self.params[key] = value
                keys.add(key)
            # other channels (e.g. mlagents-envs' training analytics) are not for this player
        return keys

    def build(self) -> None:
        """The scenes, from the environment parameters (once: the configuration is fixed)."""
        config = {k: self.params[k] for k in uc.CONFIG_PARAMETERS if k in self.params}
        if self.config is not None:
            if config != self.config:
                raise RuntimeError(
                    f"environment parameters changed after the first reset: {self.config} -> "
                    f"{config}; start a new player for a new configuration"
                )
            return
        missing = [k for k in uc.CONFIG_PARAMETERS if k not in config]
        if missing:
            raise RuntimeError(f"environment parameters missing at the first reset: {missing}")
        from benchmark.sim.env import PlacementEnv

        codes = {v: k for k, v in uc.ENVIRONMENT_CODES.items()}
        self.env = PlacementEnv(
            codes[config["environment"]],  # type: ignore[arg-type]
            t0=int(config["t0"]),
            max_steps=int(config["max_steps"]),
            image_size=int(config["image_size"]),
            swap_prob=config["swap_prob"],
            scene_period=int(config["scene_period"]),
            render_images=bool(config["render_images"]),
            shadows=bool(config["shadows"]),
        )
        self.config = config
        self.say(f"scenes built: {config}")

    def reset(self, keys: set[str]) -> tuple[Any, bytes]:
        first = self.config is None
        self.build()
        seed: int | None = None
        if uc.SEED_HIGH in keys and uc.SEED_LOW in keys:
            seed = uc.join_seed(self.params[uc.SEED_HIGH], self.params[uc.SEED_LOW])
        elif first:
            seed = self.init_seed  # as Unity seeds its Random from the academy's seed
        options = None
        if uc.SCENE in keys:
            options = {"scene": self.env.scenes[int(self.params[uc.SCENE])].name}
        obs, info = self.env.reset(seed=seed, options=options)
        self.episode_over = False
        self.say(f"reset seed={seed} options={options}")
        record = {"event": "reset", **info}
        return self.agent_info(obs, None, 0.0, False, False), uc.encode_record(record)

    def step(self, action: Sequence[float]) -> tuple[Any, bytes]:
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(action, np.float32))
        image = info.pop("image", None)
        self.episode_over = terminated or truncated
        self.steps_served += 1
        if self.steps_served % 100 == 0:
            self.say(f"steps served: {self.steps_served}")
        record = {"event": "step", "terminated": terminated, "truncated": truncated, **info}
        done = terminated or truncated
        return self.agent_info(obs, image, reward, done, truncated), uc.encode_record(record)

    def handle(self, rl_input: Any) -> Any:
        """One command in, the output that answers it."""
        from mlagents_envs.communicator_objects.command_pb2 import RESET
        from mlagents_envs.communicator_objects.unity_output_pb2 import UnityOutputProto
        from mlagents_envs.communicator_objects.unity_rl_initialization_output_pb2 import (
            UnityRLInitializationOutputProto,
        )
        from mlagents_envs.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto

        keys = self.read_side_channel(rl_input.side_channel)
        actions = (
            rl_input.agent_actions[uc.BEHAVIOR_ID].value
            if uc.BEHAVIOR_ID in rl_input.agent_actions
            else []
        )
        if rl_input.command == RESET or self.episode_over or not actions:
            # A STEP after the episode's end resets it, as a Unity agent starts its next episode.
            info, message = self.reset(keys)
        else:
            info, message = self.step(actions[0].continuous_actions)
        out = UnityOutputProto(
            rl_output=UnityRLOutputProto(
                side_channel=uc.pack_side_channel([(uc.SAMPLE_CHANNEL_ID, message)])
            )
        )
        out.rl_output.agentInfos[uc.BEHAVIOR_ID].value.extend([info])
        if not self.brain_sent:  # a new behaviour's parameters go with its first output
            out.rl_initialization_output.CopyFrom(
                UnityRLInitializationOutputProto(brain_parameters=[self.brain_parameters()])
            )
            self.brain_sent = True
        return out

    # ------------------------------------------------------------------ the session
    def serve(self, port: int) -> int:
        import grpc
        from mlagents_envs.communicator_objects.command_pb2 import QUIT
        from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
        from mlagents_envs.communicator_objects.unity_output_pb2 import UnityOutputProto
        from mlagents_envs.communicator_objects.unity_to_external_pb2_grpc import (
            UnityToExternalProtoStub,
        )

        channel = grpc.insecure_channel(f"localhost:{port}")
        stub = UnityToExternalProtoStub(channel)

        def exchange(output: Any | None) -> Any:
            message = UnityMessageProto()
            message.header.status = 200
            if output is not None:
                message.unity_output.CopyFrom(output)
            return stub.Exchange(message, wait_for_ready=True)

        self.say(f"pid {os.getpid()}: connecting to the trainer on port {port}")
        first = exchange(UnityOutputProto(rl_initialization_output=self.initialization_output()))
        init = first.unity_input.rl_initialization_input
        self.init_seed = int(init.seed)
        self.say(
            f"connected: python {init.package_version}, communication "
            f"{init.communication_version}, seed {init.seed}"
        )
        answer = exchange(None)
        while True:
            if answer.header.status != 200:
                self.say(f"the trainer closed the session (status {answer.header.status})")
                break
            rl_input = answer.unity_input.rl_input
            if rl_input.command == QUIT:
                self.say("quit")
                break
            answer = exchange(self.handle(rl_input))
        channel.close()
        if self.env is not None:
            self.env.close()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(list(sys.argv[1:] if argv is None else argv))
    log: TextIO = open(args["log"], "a") if args["log"] else sys.stderr  # noqa: SIM115
    if args["log"]:  # as a Unity player: everything it prints (PyBullet, gRPC) goes to its log
        sys.stdout.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    player = EmbeddedPlayer(log)
    if args["port"] is None:
        player.say("no --mlagents-port: this player is launched by mlagents-envs' UnityEnvironment")
        return 2
    try:
        return player.serve(args["port"])
    except Exception as err:  # a crash of the player: say it in its log, as Unity's would
        player.say(f"player crashed: {err!r}\n{traceback.format_exc()}")
        return 1
    finally:
        if log is not sys.stderr:
            log.close()


if __name__ == "__main__":
    sys.exit(main())
