"""The ``rls3`` command line: real commands, real files, clear errors."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from benchmark.cli import main
from benchmark.tracking import experiment_name, tracking_uri


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


# what `rls3 run` does before its loop, in a process of its own, from a given moment on
_OPEN_AT = """
import sys, time
from pathlib import Path
import benchmark.tracking  # MLflow imported before the moment both processes wait for
from benchmark.cli import _prepare_tracking
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
_prepare_tracking(Path(sys.argv[1]), "clip")
"""


def test_two_runs_started_at_once_on_a_new_store_both_open_it(tmp_path) -> None:
    """Two processes creating a new SQLite store at once race in MLflow's schema migrations,
    and one dies ("Online migration expected to match one row"); `rls3 run` takes a lock."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    for attempt in range(2):
        results = tmp_path / f"results{attempt}"
        moment = time.time() + 10  # after both have imported MLflow, even on a busy machine
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AT, str(results), str(moment)],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        errors = [p.communicate(timeout=300)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        client = MlflowClient(tracking_uri=tracking_uri(results))
        names = [e.name for e in client.search_experiments()]
        assert names.count(experiment_name("clip")) == 1
