"""The contract between the ``unity`` backend and a Unity build (unity_build/README.md).

Both sides of the ML-Agents protocol in this repository read their names and numbers from here:
the backend (``benchmark.sim.unity``, the Python side, a gRPC server) and the embedded player
(``benchmark.sim.unity_player``, the Unity side, a gRPC client). The C# reference scripts in
``unity_build/Assets/Scripts`` repeat them; unity_build/README.md is the contract in words.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterator, Mapping
from typing import Any


class UnityBackendError(RuntimeError):
    """The Unity build cannot be started, or stopped serving; the message says what to do."""


# The behaviour: one agent, as the ML-Agents ``BehaviorParameters`` name it. Unity appends the
# team id, so mlagents-envs sees ``RLS3Placement?team=0``.
BEHAVIOR_NAME = "RLS3Placement"
BEHAVIOR_ID = f"{BEHAVIOR_NAME}?team=0"
AGENT_ID = 0
N_ACTIONS = 3  # continuous, in [-1, 1]
VECTOR_SIZE = 32  # the embedded env's observation, field by field (benchmark/sim/env.py)
# Observations in the order ML-Agents sorts sensors (by name): the camera, then the vector.
CAMERA_SENSOR = "CameraSensor"
VECTOR_SENSOR = "VectorSensor"

# The ML-Agents communication version the player announces (mlagents-envs 0.28.0's API).
COMMUNICATION_VERSION = "1.5.0"
PACKAGE_VERSION = "2.2.1-exp.1"  # com.unity.ml-agents that pairs with mlagents-envs 0.28.0

# The custom side channel that carries, on every step and reset, the step's info record as JSON:
# the counts (steps, valid_samples, scene), ``valid``, and on a valid step ``sample`` (the
# metadata). ASCII JSON, written as ML-Agents writes a string (int32 length, then the bytes).
SAMPLE_CHANNEL_ID = uuid.UUID("6a0bd5b3-9f2e-4c1a-8e7d-2f5c0e3b9d41")
# mlagents-envs' own EnvironmentParametersChannel (the player reads it; Python writes it).
ENV_PARAMETERS_CHANNEL_ID = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")
PARAM_TYPE_FLOAT = 0

# Environment parameters (floats, EnvironmentParametersChannel), read by the player at a reset.
# The configuration is fixed by the first reset; a later change is an error in the player.
CONFIG_PARAMETERS = (
    "environment",  # 0 train, 1 test
    "t0",
    "max_steps",
    "image_size",
    "swap_prob",
    "scene_period",
    "render_images",  # 0 or 1
    "shadows",  # 0 or 1
)
ENVIRONMENT_CODES = {"train": 0.0, "test": 1.0}
# Per reset: a seed re-draws every scene's objects, poses and cameras (a reset without one keeps
# the arrangement the last episode left). float32 holds 24 bits exactly, so the 32-bit seed
# travels as two 16-bit halves, both sent with the reset they apply to.
SEED_HIGH, SEED_LOW = "seed_high", "seed_low"
SCENE = "scene"  # optional: the index of the scene the episode starts in


def split_seed(seed: int) -> tuple[float, float]:
    """A seed in [0, 2**32) as two float32-exact halves (high, low)."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"a unity backend seed must be in [0, 2**32), got {seed}")
    return float(seed >> 16), float(seed & 0xFFFF)


def join_seed(high: float, low: float) -> int:
    """The inverse of :func:`split_seed`."""
    return (int(high) << 16) | int(low)


# ---------------------------------------------------------------------------- side channel bytes
def pack_side_channel(messages: list[tuple[uuid.UUID, bytes]]) -> bytes:
    """ML-Agents' side-channel framing: per message, the channel's UUID (``bytes_le``), an int32
    length and the payload (as ``SideChannelManager`` reads it)."""
    out = bytearray()
    for channel, payload in messages:
        out += channel.bytes_le + struct.pack("<i", len(payload)) + payload
    return bytes(out)


def unpack_side_channel(data: bytes) -> Iterator[tuple[uuid.UUID, bytes]]:
    """The messages of a packed side-channel buffer, in order."""
    offset = 0
    while offset < len(data):
        channel = uuid.UUID(bytes_le=bytes(data[offset : offset + 16]))
        (length,) = struct.unpack_from("<i", data, offset + 16)
        start = offset + 20
        payload = bytes(data[start : start + length])
        if len(payload) != length:
            raise ValueError(f"side-channel message of channel {channel} is cut short")
        yield channel, payload
        offset = start + length


def encode_string(text: str) -> bytes:
    """A string as ML-Agents' ``OutgoingMessage.write_string`` writes it."""
    raw = text.encode("ascii")
    return struct.pack("<i", len(raw)) + raw


def decode_float_parameter(payload: bytes) -> tuple[str, float]:
    """(key, value) of an EnvironmentParametersChannel FLOAT message."""
    (n,) = struct.unpack_from("<i", payload, 0)
    key = payload[4 : 4 + n].decode("ascii")
    (kind,) = struct.unpack_from("<i", payload, 4 + n)
    if kind != PARAM_TYPE_FLOAT:
        raise ValueError(f"environment parameter {key!r}: only FLOAT parameters are supported")
    (value,) = struct.unpack_from("<f", payload, 8 + n)
    return key, value


def encode_record(record: Mapping[str, Any]) -> bytes:
    """The sample channel's payload: an info record as an ML-Agents string of ASCII JSON."""
    return encode_string(json.dumps(record, ensure_ascii=True, allow_nan=False))
