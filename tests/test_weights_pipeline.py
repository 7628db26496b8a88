"""The pipeline with real weights (spec sections 5, 7): an open_clip ViT-S-32 in open_clip's local
format (the paper's ViT-B-32 is loaded and inspected in tests/vlm/test_weights.py, evaluated and
fine-tuned in tests/perf/test_gpu.py; here, through the pipeline's 27 stages and a checkpoint per
run, it would cost minutes more) and a
PaliGemma of the real model class, both saved locally and randomly initialised, named by
``weights:`` in the smoke profile; ``dvc repro`` of both reports, end to end, with no base
training."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from benchmark.arms import ARMS
from benchmark.config import load_params
from benchmark.datasets import read_dataset
from benchmark.vlm.clip import ClipVLM
from benchmark.vlm.paligemma import PaligemmaVLM
from tests.checkpoints import save_small_paligemma, save_vit_s32
from tests.pipeline import copy_repository, dvc

pytestmark = pytest.mark.slow  # its fixture: a whole smoke pipeline on real weights (minutes)


@pytest.fixture(scope="module")
def weights_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], str]:
    # the used seed slot alone: the smoke pipeline covers the unused slot's stages
    repo = copy_repository(tmp_path_factory.mktemp("repo"), unused_slot=False)
    outside = tmp_path_factory.mktemp("weights")
    checkpoints = {
        "clip": save_vit_s32(outside / "open_clip-ViT-S-32"),
        "paligemma": save_small_paligemma(outside / "paligemma-small"),
    }
    params = repo / "params.yaml"
    data = yaml.safe_load(params.read_text())
    for model, path in checkpoints.items():
        data["profiles"]["smoke"][model]["weights"] = str(path)
    # one fine-tuning iteration, and half the smoke profile's validation and test sets: the base
    # model's weights are what this module checks, and a 12-layer model on 2 cores takes a
    # minute per iteration, most of it evaluating the sets' captions
    smoke = data["profiles"]["smoke"]
    smoke["loop"]["max_iterations"] = 1
    smoke["datasets"]["validation"] //= 2
    smoke["datasets"]["test"] //= 2
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    done = dvc(repo, "repro", "report@clip", "report@paligemma")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return repo, checkpoints, done.stdout


def test_the_base_model_stage_records_the_checkpoints_instead_of_training(
    weights_pipeline: tuple[Path, dict[str, Path], str],
) -> None:
    repo, checkpoints, output = weights_pipeline
    ran = set(re.findall(r"Running stage '([^']+)'", output))
    assert {"check", "base_model@clip", "base_model@paligemma"} <= ran
    assert output.index("Running stage 'check'") < output.index("Running stage 'datasets'")
    for model, path in checkpoints.items():
        pointer = json.loads((repo / "results/vlm" / model / "base/weights.json").read_text())
        assert pointer["path"] == str(path.resolve()) and pointer["image_size"] == 32
        assert len(pointer["sha256"]) == 64
        assert pointer["bytes"] == sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        metrics = json.loads((repo / "results/vlm" / model / "base_metrics.json").read_text())
        assert metrics["train_seconds"] == 0.0 and metrics["weights"]["sha256"] == pointer["sha256"]
        assert [p.name for p in (repo / "results/vlm" / model / "base").iterdir()] == [
            "weights.json"
        ]


def test_every_arm_ran_from_the_checkpoints_own_weights(
    weights_pipeline: tuple[Path, dict[str, Path], str],
) -> None:
    """The runs' starting test metric is the checkpoint's own, evaluated here directly."""
    repo, checkpoints, _ = weights_pipeline
    params = load_params(repo / "params.yaml", "smoke").active
    test = read_dataset(repo / "datasets" / "test").samples
    clip = ClipVLM.load(checkpoints["clip"], config=params.clip.vlm_config())
    paligemma = PaligemmaVLM.load(checkpoints["paligemma"], params.paligemma.vlm_config())
    scores = {
        "clip": clip.metric(clip.evaluate(test)),
        "paligemma": paligemma.metric(paligemma.evaluate(test)),
    }
    for model, expected in scores.items():
        for arm in ARMS:
            summary = json.loads(
                (repo / "results/runs" / model / arm / "seed0" / "summary.json").read_text()
            )
            # sac stops at max_iterations; the others run until sac's generated samples are spent
            assert summary["iterations"] == 1 if arm == "sac" else summary["iterations"] >= 1
            assert summary["initial_test_metric"] == pytest.approx(expected, abs=1e-9), (model, arm)
        report = (repo / "results/report" / model / "REPORT.md").read_text()
        assert "## The paper's claims beside this run" in report
        pointer = json.loads((repo / "results/vlm" / model / "base/weights.json").read_text())
        assert f"SHA-256 `{pointer['sha256'][:16]}`; no base training" in report
