"""The base model stage (benchmark/pretrain.py, ``rls3 pretrain-vlm``): what it refuses, what it
writes. Each family's base training has its tests beside its model (tests/vlm/<family>/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.config import ClipEvaluate, ClipPretrainConfig, SimParams
from benchmark.pretrain import run

CLIP = ClipEvaluate()  # the model's evaluate block

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # as the VLM tests


def test_base_training_refuses_an_image_size_the_built_in_models_are_not_made_for(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match=r"sim.image_size = 48: .*\[32, 64, 224\]"):
        run(
            "clip",
            ClipPretrainConfig(samples=4),
            SimParams(image_size=48),
            32,
            CLIP,
            tmp_path / "base",
        )
    assert not (tmp_path / "base").exists()


def test_pretrain_vlm_command_writes_checkpoint_and_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "clip" / "base"
    argv = ["pretrain-vlm", "--model", "clip", "--out", str(out), "--samples", "16"]
    assert main([*argv, "--steps", "1", "--test-samples", "8", "--seed", "3"]) == 0
    assert (out / "open_clip_model.safetensors").is_file()
    metrics = json.loads((tmp_path / "clip" / "base_metrics.json").read_text())
    assert metrics["config"]["seed"] == 3 and metrics["config"]["epochs"] == 1
    assert "object_accuracy" in capsys.readouterr().out


def test_pretrain_vlm_command_reports_a_bad_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pretrain-vlm", "--model", "paligemma", "--samples", "0"]) == 2
    err = capsys.readouterr().err
    assert "profiles.bench.paligemma.pretrain.samples = 0 is not allowed" in err
    assert "an int >= 1" in err
