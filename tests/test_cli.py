"""The ``rls3`` command line: real commands, real files, clear errors."""

import numpy as np
import pytest
from PIL import Image

from benchmark.cli import main


def test_scene_preview_writes_a_png_of_the_scene(tmp_path) -> None:
    out = tmp_path / "kitchen.png"
    assert main(["scene", "preview", "--scene", "kitchen", "--out", str(out), "--size", "96"]) == 0
    image = np.asarray(Image.open(out))
    assert image.shape == (96, 96, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind


def test_an_unknown_scene_is_a_clear_error_listing_the_scenes(tmp_path, capsys) -> None:
    out = tmp_path / "attic.png"
    assert main(["scene", "preview", "--scene", "attic", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown scene 'attic'" in err
    for name in ("kitchen", "bedroom", "living room", "dining room", "study"):
        assert name in err
    assert not out.exists()


def test_a_camera_the_scene_lacks_is_a_clear_error(tmp_path, capsys) -> None:
    assert (
        main(
            [
                "scene",
                "preview",
                "--scene",
                "study",
                "--camera",
                "3",
                "--out",
                str(tmp_path / "s.png"),
            ]
        )
        == 2
    )
    assert "camera poses 0..0" in capsys.readouterr().err


def test_scene_list_names_both_environments(capsys) -> None:
    assert main(["scene", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("train: kitchen, bedroom, living room")
    assert "test: dining room, workshop, study" in out


def test_perf_sim_prints_rates_and_the_ratio(capsys) -> None:
    assert main(["perf", "sim", "--samples", "20", "--rounds", "1", "--sizes", "32"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "ratio" in out[0]
    size, samples, env_rate, bare_rate, ratio, valid_rate, _ = out[1].split()
    assert (size, samples) == ("32", "20")
    assert float(ratio) == pytest.approx(float(bare_rate) / float(env_rate), rel=0.01)
    assert 0.3 < float(valid_rate) < 0.8
