"""The unity backend against the embedded player: a real process that mlagents-envs launches as it
launches a Unity build, speaking the real ML-Agents gRPC protocol. No mock communicator."""

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlagents_envs.base_env import ActionTuple
from mlagents_envs.environment import UnityEnvironment
from mlagents_envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)

from benchmark.cli import main
from benchmark.sim import unity_contract as uc
from benchmark.sim.env import PlacementEnv
from benchmark.sim.unity import UnityBackendError, UnityPlacementEnv, free_port

ROOT = Path(__file__).resolve().parents[2]
PLAYER = ROOT / "unity_build" / "RLS3Embedded.x86_64"
ENV_ARGS: dict[str, Any] = {"t0": 4, "max_steps": 16, "image_size": 32, "swap_prob": 0.5}


def _same_info(unity: dict[str, Any], local: dict[str, Any]) -> None:
    assert set(unity) == set(local)
    for key, value in local.items():
        if key == "image":
            assert unity[key].dtype == value.dtype and np.array_equal(unity[key], value)
        else:
            assert unity[key] == value, key


def test_the_player_announces_the_contracts_behaviour() -> None:
    """mlagents-envs' own UnityEnvironment, launching the player by file name."""
    params = EnvironmentParametersChannel()
    config = {"environment": 1.0, "t0": 4.0, "max_steps": 32.0, "image_size": 24.0}
    config |= {"swap_prob": 0.25, "scene_period": 4.0, "render_images": 1.0, "shadows": 0.0}
    for key, value in config.items():
        params.set_float_parameter(key, value)
    env = UnityEnvironment(
        file_name=str(PLAYER), base_port=free_port(), no_graphics=True, side_channels=[params]
    )
    try:
        env.reset()
        assert list(env.behavior_specs) == [uc.BEHAVIOR_ID] == ["RLS3Placement?team=0"]
        spec = env.behavior_specs[uc.BEHAVIOR_ID]
        assert spec.action_spec.continuous_size == 3 and spec.action_spec.discrete_size == 0
        assert [o.shape for o in spec.observation_specs] == [(24, 24, 3), (32,)]
        assert [o.name for o in spec.observation_specs] == ["CameraSensor", "VectorSensor"]
        decision, terminal = env.get_steps(uc.BEHAVIOR_ID)
        assert list(decision.agent_id) == [0] and len(terminal) == 0
        local = PlacementEnv("test", t0=4, image_size=24)
        obs, _ = local.reset(seed=0)  # a first reset without a seed uses UnityEnvironment's seed
        assert np.array_equal(decision.obs[1][0], obs)
        env.set_actions(uc.BEHAVIOR_ID, ActionTuple(continuous=np.zeros((1, 3), np.float32)))
        env.step()
        decision, _ = env.get_steps(uc.BEHAVIOR_ID)
        assert decision.reward[0] in (1.0, -1.0)
        local.close()
    finally:
        env.close()


def test_a_seeded_episode_is_identical_over_the_protocol_and_in_process() -> None:
    """Every observation, reward, end flag, image and metadata record, over three episodes: a
    seeded one that ends on T0, one truncated at max_steps, and one re-seeded in another scene."""
    unity = UnityPlacementEnv("train", build=PLAYER, **ENV_ARGS)
    local = PlacementEnv("train", **ENV_ARGS)
    rng = np.random.default_rng(7)
    ends: list[tuple[bool, bool]] = []
    images = 0
    try:
        for reset in ({"seed": 11}, {}, {"seed": 12, "options": {"scene": "bedroom"}}):
            (o_u, i_u), (o_l, i_l) = unity.reset(**reset), local.reset(**reset)
            assert np.array_equal(o_u, o_l) and o_u.dtype == np.float32
            _same_info(i_u, i_l)
            done = False
            while not done:
                action = rng.uniform(-1.05, 1.05, 3).astype(np.float32)
                if len(ends) == 1:  # the second episode: aim off every surface, to truncate
                    action = np.array([1.0, 1.0, -1.0], np.float32)
                out_u, out_l = unity.step(action), local.step(action)
                assert np.array_equal(out_u[0], out_l[0])
                assert out_u[1:4] == out_l[1:4]
                _same_info(out_u[4], out_l[4])
                images += "image" in out_l[4]
                done = out_u[2] or out_u[3]
            ends.append(out_u[2:4])
    finally:
        unity.close()
        local.close()
    # T0 reached, the step cap reached (one spot, again and again), T0 reached
    assert ends == [(True, False), (False, True), (True, False)]
    assert images >= 2 * ENV_ARGS["t0"]


def test_a_missing_player_is_a_clear_error_that_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(UnityBackendError, match=r"sim\.unity\.build: no Unity player at"):
        UnityPlacementEnv("train", build=tmp_path / "RLS3.x86_64")
    params = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    params.write_text(text)
    import yaml

    data = yaml.safe_load(text)
    unity = {"build": "nowhere/P", "base_port": None, "timeout_s": 60}
    data["profiles"]["smoke"]["sim"] |= {"backend": "unity", "unity": unity}
    params.write_text(yaml.safe_dump(data))
    out = tmp_path / "datasets"
    args = ["build-datasets", "--params", str(params), "--profile", "smoke", "--out", str(out)]
    assert main(args) == 1
    assert not out.exists()


def test_a_port_in_use_is_a_clear_error_that_names_the_key() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("localhost", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(UnityBackendError, match=rf"sim\.unity\.base_port: port {port} is in"):
            UnityPlacementEnv("train", build=PLAYER, base_port=port)


def test_a_second_env_of_a_process_takes_the_next_port() -> None:
    port = free_port()
    first = UnityPlacementEnv("train", build=PLAYER, base_port=port, image_size=16)
    second = UnityPlacementEnv("train", build=PLAYER, base_port=port, image_size=16)
    try:
        assert (first.port, second.port) == (port, port + 1)
        assert np.array_equal(first.reset(seed=3)[0], second.reset(seed=3)[0])
    finally:
        first.close()
        second.close()
    assert not first.log_dir.exists() and not second.log_dir.exists()  # a clean close tidies up


def test_a_player_that_dies_mid_episode_is_a_clear_error() -> None:
    unity = UnityPlacementEnv("train", build=PLAYER, timeout_s=10, **ENV_ARGS)
    unity.reset(seed=1)
    unity.step(np.zeros(3, np.float32))
    process = unity._unity._process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(UnityBackendError, match=r"stopped serving during a step.*SIGKILL"):
        unity.step(np.zeros(3, np.float32))
    assert time.monotonic() - start < 10  # noticed by mlagents-envs' process poll, no timeout
    assert unity.log_file.parent.is_dir()  # the log the message names is still there
    unity.close()
    assert not unity.log_dir.exists()


def test_the_side_channel_framing_matches_mlagents_envs() -> None:
    """The player's own framing, read back by mlagents-envs' SideChannelManager."""
    from mlagents_envs.side_channel.side_channel_manager import SideChannelManager

    params = EnvironmentParametersChannel()
    params.set_float_parameter(uc.SEED_HIGH, 65535.0)
    packed = bytes(SideChannelManager([params]).generate_side_channel_messages())
    [(channel, payload)] = list(uc.unpack_side_channel(packed))
    assert channel == uc.ENV_PARAMETERS_CHANNEL_ID
    assert uc.decode_float_parameter(payload) == (uc.SEED_HIGH, 65535.0)

    from benchmark.sim.unity import _sample_channel

    sample = _sample_channel()
    record = {"valid": True, "steps": 3, "scene": "kitchen"}
    SideChannelManager([sample]).process_side_channel_message(
        uc.pack_side_channel([(uc.SAMPLE_CHANNEL_ID, uc.encode_record(record))])
    )
    assert sample.records == [record]
    assert uc.join_seed(*uc.split_seed(4_000_000_007)) == 4_000_000_007
    with pytest.raises(ValueError, match="2\\*\\*32"):
        uc.split_seed(2**32)


def test_the_datasets_and_the_agents_pretraining_run_on_the_unity_backend(tmp_path: Path) -> None:
    """The other users of the env: the same dataset (content hash) on both backends, and SAC's
    pre-training (its env and its evaluation env, two players) with the same valid rates."""
    import dataclasses

    from benchmark.agents import pretrain_sac
    from benchmark.config import SimParams, UnityParams, load_params
    from benchmark.datasets import build_dataset
    from benchmark.sim.backends import profile_env_kwargs

    p = load_params(ROOT / "params.yaml", "smoke").active
    unity = SimParams(backend="unity", unity=UnityParams(build=str(PLAYER)), image_size=16)
    hashes = [
        build_dataset("test", 12, 5, tmp_path / name, sim=sim, t0=32).content_hash
        for name, sim in (("embedded", SimParams(image_size=16)), ("unity", unity))
    ]
    assert hashes[0] == hashes[1]
    agent = dataclasses.replace(p.agent, pretrain_steps=120, learning_starts=100)
    kwargs = profile_env_kwargs(p.sim, p.loop.t0)
    reports = [
        pretrain_sac(agent, 0, tmp_path / f"sac-{name}", env_kwargs=kwargs, sim=sim, eval_steps=40)
        for name, sim in (("embedded", SimParams(image_size=16)), ("unity", unity))
    ]
    assert reports[0].valid_rate_before == reports[1].valid_rate_before
    assert reports[0].valid_rate_after == reports[1].valid_rate_after
