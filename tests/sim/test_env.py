"""The gymnasium environment: API checkers, the valid-rate contract, determinism, episodes."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from benchmark.sim.env import OBS_SIZE, SURFACE_INSET, PlacementEnv
from benchmark.sim.scenes import object_names


def _random_steps(env: PlacementEnv, steps: int, seed: int) -> list[tuple[float, dict]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 3))
        out.append((reward, info))
        if terminated or truncated:
            env.reset()
    return out


@pytest.mark.parametrize("environment", ["train", "test"])
def test_gymnasium_and_sb3_checkers_accept_the_env(environment: str) -> None:
    env = PlacementEnv(environment, t0=8, image_size=16)  # type: ignore[arg-type]
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)
    env.close()


def test_registered_ids_make_the_env() -> None:
    import benchmark.sim  # noqa: F401  (registers the ids)

    env = gym.make("RLS3/Placement-test-v0", t0=4, image_size=16)
    assert env.unwrapped.environment == "test"  # type: ignore[attr-defined]
    env.close()


@pytest.mark.parametrize("environment", ["train", "test"])
def test_a_uniform_random_policy_is_valid_on_40_to_70_percent(environment: str) -> None:
    """spec section 3's valid-rate contract; 3000 steps put the standard error near 1%."""
    env = PlacementEnv(environment, t0=64, render_images=False)  # type: ignore[arg-type]
    env.reset(seed=123)
    rewards = [r for r, _ in _random_steps(env, 3000, seed=7)]
    rate = float(np.mean(np.asarray(rewards) > 0))
    print(f"{environment}: random-policy valid rate {rate:.3f} over {len(rewards)} steps")
    assert 0.40 <= rate <= 0.70
    env.close()


def test_same_seed_gives_byte_identical_images_and_metadata() -> None:
    runs = []
    for _ in range(2):
        env = PlacementEnv("train", t0=12, image_size=32, swap_prob=0.5)
        obs, _ = env.reset(seed=42)
        runs.append((obs, _random_steps(env, 40, seed=3)))
        env.close()
    (obs_a, steps_a), (obs_b, steps_b) = runs
    assert np.array_equal(obs_a, obs_b)
    images = 0
    for (ra, ia), (rb, ib) in zip(steps_a, steps_b, strict=True):
        assert ra == rb
        assert ia.get("sample") == ib.get("sample")
        if "image" in ia:
            assert ia["image"].tobytes() == ib["image"].tobytes()
            images += 1
    assert images >= 10
    # And a different seed gives a different episode.
    env = PlacementEnv("train", t0=12, image_size=32, swap_prob=0.5)
    env.reset(seed=43)
    other = _random_steps(env, 40, seed=3)
    env.close()
    assert [i.get("sample") for _, i in other] != [i.get("sample") for _, i in steps_a]


def test_valid_steps_carry_an_image_and_metadata_invalid_steps_nothing(env: PlacementEnv) -> None:
    env.reset(seed=0)
    seen_valid = seen_invalid = False
    for reward, info in _random_steps(env, 60, seed=1):
        if reward > 0:
            seen_valid = True
            image = info["image"]
            assert image.shape == (32, 32, 3) and image.dtype == np.uint8
            assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # a picture, not a fill
            sample = info["sample"]
            assert sample["environment"] == env.environment
            assert len(sample["objects"]) == 3
            assert sample["moved"] in {o["name"] for o in sample["objects"]}
            assert math.isclose(np.linalg.norm(sample["camera"]["forward"]), 1.0)
        else:
            seen_invalid = True
            assert "image" not in info and "sample" not in info
    assert seen_valid and seen_invalid


def test_metadata_positions_are_pybullets_poses(
    env: PlacementEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a swap after the step would park an object of the sample
    monkeypatch.setattr(env, "swap_prob", 0.0)
    env.reset(seed=5)
    checked = 0
    rng = np.random.default_rng(2)
    while checked < 10:
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 3))
        if terminated or truncated:
            env.reset()
        if reward < 0:
            continue
        world = env.worlds[info["sample"]["scene_index"]]
        for obj in info["sample"]["objects"]:
            pos, orn = world.client.getBasePositionAndOrientation(world.body[obj["name"]])
            assert obj["position"] == list(pos)
            assert obj["rotation"] == list(orn)
            surface = next(s for s in world.scene.surfaces if s.name == obj["surface"])
            bottom = world.client.getAABB(world.body[obj["name"]])[0][2]
            assert bottom == pytest.approx(surface.top, abs=4e-3)  # resting on its surface
        checked += 1


def test_every_designated_surface_is_reachable_by_an_action(
    env: PlacementEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index, scene in enumerate(env.scenes):
        for surface in scene.surfaces:
            env.reset(seed=index, options={"scene": scene.name})
            monkeypatch.setattr(env, "scene_period", 10**6)  # stay in this scene
            reached = False
            # Aim at points across the surface, one step each, until one lands there.
            for fx in np.linspace(-0.3, 0.3, 5):
                for fy in np.linspace(-0.3, 0.3, 3):
                    target = np.array(
                        [
                            surface.at[0] + fx * surface.size[0],
                            surface.at[1] + fy * surface.size[1],
                            surface.top + 0.1,
                        ]
                    )
                    mover = env.moving_object
                    _, reward, *_ = env.step(env.action_towards(target))
                    if reward > 0 and env.world.surface_of(mover) == surface:
                        reached = True
                        break
                if reached:
                    break
            assert reached, f"{scene.name}: no action reached {surface.name}"


def test_an_overlapping_action_is_rejected_and_leaves_the_scene_unchanged(
    env: PlacementEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.reset(seed=11)
    monkeypatch.setattr(env, "swap_prob", 0.0)
    monkeypatch.setattr(env, "scene_period", 10**6)
    world = env.world
    names = env.active_objects()
    target = world.centre(names[1])  # the slot-0 object aimed at the slot-1 object's spot
    poses = {n: world.pose(n) for n in names}
    before = env.render()
    _, reward, _, _, info = env.step(env.action_towards(target))
    assert reward == -1.0 and not info["valid"] and "image" not in info
    assert {n: world.pose(n) for n in names} == poses
    assert env.active_objects() == names
    assert np.array_equal(env.render(), before)


def test_episode_ends_after_t0_valid_samples_or_at_the_step_cap() -> None:
    env = PlacementEnv("train", t0=5, image_size=16)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    while True:
        _, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 3))
        assert not truncated
        if terminated:
            break
    assert info["valid_samples"] == 5 and info["steps"] >= 5
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3))
    capped = PlacementEnv("train", t0=1000, max_steps=10, image_size=16)
    capped.reset(seed=0)
    for i in range(10):  # staying put is never valid: the cap, not T0, ends this episode
        stay = capped.action_towards(capped.world.centre(capped.moving_object))
        action = rng.uniform(-1, 1, 3) if i % 2 else stay
        _, _, terminated, truncated, info = capped.step(action)
        assert truncated == (i == 9) and not terminated
    assert info["steps"] == 10 and 0 < info["valid_samples"] <= 5
    env.close()
    capped.close()


def test_slots_round_robin_scenes_cycle_and_the_observation_names_the_mover() -> None:
    env = PlacementEnv("train", t0=100, image_size=16, swap_prob=0.5, scene_period=4)
    obs, _ = env.reset(seed=3)
    names = object_names()
    scenes_seen, swaps = [], 0
    for step in range(40):
        assert obs.shape == (OBS_SIZE,) and env.observation_space.contains(obs)
        assert env.slot == step % 3 and obs[0] == env.slot - 1
        assert obs[1] == pytest.approx(2 * names.index(env.moving_object) / 8 - 1)
        assert len(set(env.active_objects())) == 3
        scenes_seen.append(env.scene.name)
        swaps += obs[31] > 0
        obs, *_ = env.step(env.action_space.sample())
    assert scenes_seen[:20:4] == [s.name for s in env.scenes]
    assert all(len(set(scenes_seen[i : i + 4])) == 1 for i in range(0, 40, 4))
    assert swaps > 5
    env.close()


def test_bad_arguments_and_options_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="swap_prob"):
        PlacementEnv("train", swap_prob=1.5)
    env = PlacementEnv("test", t0=4, image_size=16)
    with pytest.raises(ValueError, match=r"'kitchen' is not a test scene.*dining room"):
        env.reset(options={"scene": "kitchen"})
    env.close()


def test_staying_put_is_not_a_new_sample(
    env: PlacementEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Aiming at its own spot would always be feasible; the 10 cm minimum move rejects it."""
    env.reset(seed=21)
    monkeypatch.setattr(env, "swap_prob", 0.0)
    world, names = env.world, env.active_objects()
    poses = {n: world.pose(n) for n in names}
    _, reward, _, _, info = env.step(env.action_towards(world.centre(env.moving_object)))
    assert reward == -1.0 and "image" not in info
    assert {n: world.pose(n) for n in names} == poses


def test_object_centres_are_observed_in_the_frame_of_the_action(
    env: PlacementEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """obs[14:17] is the action that aims at the mover's own centre: u, v on its surface."""
    obs, _ = env.reset(seed=8)
    world, mover = env.world, env.moving_object
    surface = world.surface_of(mover)
    assert surface is not None
    level = env.scene.surfaces.index(surface)
    centre = world.centre(mover)
    half = np.array(surface.size[:2]) / 2 - SURFACE_INSET
    expected = (np.array(centre[:2]) - np.array(surface.at)) / half
    assert obs[14:16] == pytest.approx(np.clip(expected, -1, 1), abs=1e-6)
    assert obs[16] == (-0.5 if level == 0 else 0.5)
    # Stepping with the observed aim of another object lands on it: rejected.
    monkeypatch.setattr(env, "swap_prob", 0.0)
    _, reward, *_ = env.step(obs[18:21])
    assert reward == -1.0


@pytest.mark.parametrize("environment", ["train", "test"])
def test_the_objects_of_a_sample_are_in_the_picture(environment: str) -> None:
    """A caption about an object outside the frame would be noise: at most 2% may be."""
    env = PlacementEnv(environment, t0=64, render_images=False)  # type: ignore[arg-type]
    env.reset(seed=3)
    outside = total = 0
    for reward, info in _random_steps(env, 1500, seed=0):
        if reward < 0:
            continue
        meta = info["sample"]
        view, projection = env.worlds[meta["scene_index"]].camera_matrices(meta["camera"]["index"])
        to_clip = np.array(projection).reshape(4, 4).T @ np.array(view).reshape(4, 4).T
        for obj in meta["objects"]:
            clip = to_clip @ np.append(obj["center"], 1.0)
            outside += bool(np.any(np.abs(clip[:2] / clip[3]) > 1.0))
            total += 1
    env.close()
    assert total > 1000 and outside / total <= 0.02
