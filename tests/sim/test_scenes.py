"""The scene and object data: the contract of spec section 3 on the shipped files."""

import re

import pytest

from benchmark.sim.scenes import (
    SceneError,
    _parse_scene,
    environment_scenes,
    get_scene,
    object_names,
    scene_names,
)

SPATIAL_WORDS = re.compile(r"\b(above|below|under|over|behind|front|back|left|right|top)\b")


def test_train_has_five_scenes_with_the_papers_rooms_and_test_three_others() -> None:
    train, test = scene_names("train"), scene_names("test")
    assert len(train) == 5 and len(test) == 3
    assert {"kitchen", "bedroom", "living room"} <= set(train)
    assert not set(train) & set(test)
    assert [s.name for s in environment_scenes("train")][:3] == [
        "kitchen",
        "bedroom",
        "living room",
    ]


def test_test_scenes_share_no_layout_colours_or_camera_poses_with_train() -> None:
    def features(env: str) -> tuple[set, set, set]:
        scenes = environment_scenes(env)  # type: ignore[arg-type]
        layouts = {(f.size, f.at) for s in scenes for f in s.furniture}
        colours = {f.rgba for s in scenes for f in s.furniture}
        cameras = {(c.eye, c.target) for s in scenes for c in s.cameras}
        return layouts, colours, cameras

    for train_part, test_part in zip(features("train"), features("test"), strict=True):
        assert not train_part & test_part


def test_every_scene_has_two_surfaces_at_different_heights_and_a_camera() -> None:
    for name in scene_names():
        scene = get_scene(name)
        lower, upper = scene.surfaces
        assert upper.top - lower.top >= 0.2
        assert scene.cameras


def test_nine_uniquely_named_objects_without_spatial_words() -> None:
    names = object_names()
    assert len(names) == 9 == len(set(names))
    assert not [n for n in names if SPATIAL_WORDS.search(n)]


def test_unknown_scene_is_an_error_that_lists_the_scenes() -> None:
    with pytest.raises(SceneError) as err:
        get_scene("attic")
    assert "attic" in str(err.value)
    for name in scene_names():
        assert name in str(err.value)


def test_a_scene_with_one_designated_surface_is_rejected() -> None:
    raw = {
        "name": "closet",
        "environment": "train",
        "room": {"size": [3, 3, 2.5], "floor_rgba": [1, 1, 1, 1], "wall_rgba": [1, 1, 1, 1]},
        "furniture": [
            {
                "name": "shelf",
                "kind": "box",
                "size": [1, 0.5, 1],
                "at": [0, 1],
                "rgba": [1, 0, 0, 1],
                "designated": True,
            }
        ],
        "cameras": [{"eye": [0, -1, 1.5], "target": [0, 1, 1]}],
        "light_direction": [0, 0, 1],
    }
    with pytest.raises(SceneError, match="exactly 2 designated surfaces"):
        _parse_scene(raw)
