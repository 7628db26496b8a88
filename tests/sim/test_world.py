"""Feasibility from PyBullet's own queries: what is accepted, what is rejected, what is left."""

from collections.abc import Iterator

import numpy as np
import pytest

from benchmark.sim.scenes import get_scene, object_names, scene_names
from benchmark.sim.world import GAP, SceneWorld


@pytest.fixture(scope="module")
def worlds() -> Iterator[dict[str, SceneWorld]]:
    built = {name: SceneWorld(get_scene(name)) for name in scene_names()}
    yield built
    for world in built.values():
        world.close()


def _bottom(world: SceneWorld, name: str) -> float:
    return world.client.getAABB(world.body[name])[0][2]


@pytest.mark.parametrize("scene", scene_names())
def test_an_object_lands_on_each_designated_surface_and_rests_on_it(
    worlds: dict[str, SceneWorld], scene: str
) -> None:
    world = worlds[scene]
    name = object_names()[0]
    world.show(name)
    for surface in world.scene.surfaces:
        target = (surface.at[0], surface.at[1], surface.top + 0.1)
        assert world.try_place(name, target), f"{scene}: cannot place on {surface.name}"
        assert world.surface_of(name) == surface
        centre = world.centre(name)
        assert centre[:2] == pytest.approx(target[:2], abs=1e-9)
        # Resting: the collision bounds sit GAP above the top (AABB margin aside, 2 mm).
        assert _bottom(world, name) == pytest.approx(surface.top + GAP, abs=2.5e-3)
    world.hide(name)


def test_floor_overhang_and_inside_furniture_are_rejected_and_change_nothing(
    worlds: dict[str, SceneWorld],
) -> None:
    world = worlds["living room"]
    mug = "red mug"
    world.show(mug)
    lower, upper = world.scene.surfaces
    assert world.try_place(mug, (lower.at[0], lower.at[1], lower.top + 0.2))
    before = world.pose(mug)
    rejected = {
        "floor": (0.0, -1.5, 0.3),
        "hanging off the edge": (lower.at[0] + lower.size[0] / 2, lower.at[1], lower.top + 0.2),
        "inside the sideboard": (upper.at[0], upper.at[1], upper.top - 0.2),
    }
    for why, target in rejected.items():
        assert not world.try_place(mug, target), why
        assert world.pose(mug) == before, why
        assert world.surface_of(mug) == lower, why
    world.hide(mug)


def test_an_overlapping_placement_is_rejected(worlds: dict[str, SceneWorld]) -> None:
    world = worlds["kitchen"]
    duck, box = "yellow duck", "blue box"
    counter = world.scene.surfaces[0]
    for name in (duck, box):
        world.show(name)
    assert world.try_place(duck, (counter.at[0], counter.at[1], counter.top + 0.2))
    assert world.try_place(box, (counter.at[0] + 0.6, counter.at[1], counter.top + 0.2))
    before = world.pose(box)
    # Onto the duck's spot, and half overlapping it: both rejected by getClosestPoints / rays.
    for dx in (0.0, 0.12):
        assert not world.try_place(box, (counter.at[0] + dx, counter.at[1], counter.top + 0.4))
        assert world.pose(box) == before
    # Far enough away it fits.
    assert world.try_place(box, (counter.at[0] - 0.6, counter.at[1], counter.top + 0.2))
    for name in (duck, box):
        world.hide(name)


def test_hidden_objects_cost_no_pixels(worlds: dict[str, SceneWorld]) -> None:
    world = worlds["office"]
    empty = world.render(0, 48)
    name = "teddy bear"
    desk = world.scene.surfaces[0]
    world.show(name)
    assert world.try_place(name, (desk.at[0], desk.at[1], desk.top + 0.1))
    with_bear = world.render(0, 48)
    world.hide(name)
    assert np.array_equal(world.render(0, 48), empty)
    assert not np.array_equal(with_bear, empty)
