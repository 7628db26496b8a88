"""``rls3 perf vlm`` and ``rls3 pretrain-vlm`` through the command line, on tiny sizes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmark.cli import main


@pytest.mark.parametrize("model", ["clip", "paligemma"])
def test_perf_vlm_prints_api_and_bare_throughput_with_their_ratio(
    model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["perf", "vlm", "--model", model, "--batch", "4", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    print(out)
    for row in ("evaluate", "finetune"):
        match = re.search(rf"^{row}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.MULTILINE)
        assert match, out
        api, bare, ratio = (float(g) for g in match.groups())
        assert api > 0 and bare > 0
        assert ratio == pytest.approx(api / bare, rel=0.1, abs=0.01)


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
