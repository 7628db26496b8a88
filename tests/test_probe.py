"""The learnability probe at a smoke size: real datasets, a real base CLIP, the loop's finetune."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.captions import rubric_score
from benchmark.cli import main
from benchmark.config import (
    ClipEvaluate,
    ClipPretrainConfig,
    PaligemmaEvaluate,
    PaligemmaPretrainConfig,
    SimParams,
)
from benchmark.datasets import build_dataset, derangement, read_dataset, shuffled_images
from benchmark.pretrain import run as pretrain
from benchmark.probe import (
    LearnabilityConfig,
    learnability,
    targets,
)
from benchmark.sampling import collect_samples
from benchmark.vlm.clip import ClipVLM, ClipVLMConfig
from benchmark.vlm.paligemma import PaligemmaVLM, PaligemmaVLMConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test set and a (tiny) base CLIP, as the pipeline lays them out."""
    root = tmp_path_factory.mktemp("probe")
    build_dataset("test", 24, 2, root / "datasets", sim=SimParams(), t0=32)
    pretrain(
        "clip",
        ClipPretrainConfig(samples=48, epochs=1, batch_size=16, test_samples=8),
        SimParams(),
        32,
        ClipEvaluate(),
        root / "results" / "vlm" / "clip" / "base",
    )
    return root


def _load(project: Path) -> ClipVLM:
    config = ClipVLMConfig(lr=3e-3, batch_size=8, lock_image=True)
    return ClipVLM.load(project / "results" / "vlm" / "clip" / "base", config=config)


@pytest.mark.parametrize("n", [2, 3, 24])
def test_the_control_never_pairs_a_sample_with_its_own_image(n: int) -> None:
    donors = derangement(n, seed=3)
    assert sorted(donors.tolist()) == list(range(n))  # a permutation: every image used once
    assert (donors != np.arange(n)).all()
    assert (derangement(n, seed=3) == donors).all()  # seeded


def test_the_probe_scores_the_same_test_samples_before_and_after(project: Path) -> None:
    config = LearnabilityConfig(samples=16, epochs=2, seed=5, draws=1)
    result = learnability(
        lambda: _load(project), project / "datasets", config, "clip", sim=SimParams(), t0=32
    )
    test = read_dataset(project / "datasets" / "test").samples
    assert result["test_samples"] == len(test) == 24
    assert result["sample_passes"] == 32

    # "before" is the base model on the whole test set and on its image-shuffled copy
    base = _load(project)
    control = shuffled_images(test, derangement(len(test), config.seed))
    assert result["before"]["metric"] == base.metric(base.evaluate(test))
    assert result["before"]["control"] == base.metric(base.evaluate(control))
    # the control really is on other images: each sample's image differs from its own
    assert all(not np.array_equal(c.image, t.image) for c, t in zip(control, test, strict=True))

    # "after" is that same base fine-tuned by the loop's own finetune, same samples and seed
    tuned = _load(project)
    tuned.finetune(collect_samples("train", 16, 5, sim=SimParams(), t0=32), 2, seed=5)
    assert result["after"]["metric"] == tuned.metric(tuned.evaluate(test))
    assert result["after"]["control"] == tuned.metric(tuned.evaluate(control))
    assert result["gain"] == result["after"]["metric"] - result["before"]["metric"]
    terms = [k for k in result["before"] if k.startswith("test/term/")]
    assert terms and all(k in result["after"] for k in terms)


def test_the_figures_after_fine_tuning_are_the_mean_and_range_of_independent_draws(
    project: Path,
) -> None:
    """Two draws: each a fresh base fine-tuned on its own samples (seeds 5 and 6); the report's
    "after" is their mean, "after_range" their min and max, and the targets read the mean."""
    config = LearnabilityConfig(samples=16, epochs=2, seed=5, draws=2)
    result = learnability(
        lambda: _load(project), project / "datasets", config, "clip", sim=SimParams(), t0=32
    )
    test = read_dataset(project / "datasets" / "test").samples
    control = shuffled_images(test, derangement(len(test), config.seed))
    metrics = []
    for seed in (5, 6):
        tuned = _load(project)
        tuned.finetune(collect_samples("train", 16, seed, sim=SimParams(), t0=32), 2, seed=seed)
        metrics.append((tuned.metric(tuned.evaluate(test)), tuned.metric(tuned.evaluate(control))))
    assert [d["seed"] for d in result["per_draw"]] == [5, 6] and result["draws"] == 2
    assert [d["after"]["metric"] for d in result["per_draw"]] == [m[0] for m in metrics]
    assert result["after"]["metric"] == pytest.approx(np.mean([m[0] for m in metrics]))
    assert result["after"]["control"] == pytest.approx(np.mean([m[1] for m in metrics]))
    assert result["after_range"]["metric"] == [
        min(m[0] for m in metrics),
        max(m[0] for m in metrics),
    ]
    assert result["targets"] == targets(result["before"], result["after"], "clip")


def test_paligemmas_controls_are_other_samples_images_and_other_samples_terms(
    project: Path, tmp_path: Path
) -> None:
    """PaliGemma's probe: K counts steps (epochs x minibatches); its image-shuffled control asks
    each question of another sample's image, and its term-shuffled control scores each answer
    against the terms of that same other sample."""
    base = tmp_path / "base"
    pretrain(
        "paligemma",
        PaligemmaPretrainConfig(
            samples=16, vision_steps=2, vision_batch_size=8, steps=2, batch_size=8, test_samples=4
        ),
        SimParams(),
        32,
        PaligemmaEvaluate(),
        base,
    )
    config = LearnabilityConfig(samples=12, epochs=2, seed=5, draws=1)
    load = lambda: PaligemmaVLM.load(base, PaligemmaVLMConfig(batch_size=8))  # noqa: E731
    result = learnability(load, project / "datasets", config, "paligemma", sim=SimParams(), t0=32)
    assert result["finetune_k"] == 2 * 2  # 12 samples in minibatches of 8: 2 steps an epoch
    assert set(result["targets"]) == set(targets(result["before"], result["after"], "paligemma"))

    test = read_dataset(project / "datasets" / "test").samples
    donors = derangement(len(test), config.seed)
    tuned = load()
    tuned.finetune(collect_samples("train", 12, 5, sim=SimParams(), t0=32), 4, seed=5)
    answers = tuned.evaluate(test)
    assert result["after"]["metric"] == tuned.metric(answers)
    assert result["after"]["control"] == tuned.metric(tuned.evaluate(shuffled_images(test, donors)))
    blind = [
        rubric_score(r.answer, test[int(j)].record.terms)
        for r, j in zip(answers, donors, strict=True)
    ]
    assert result["after"]["control_terms"] == pytest.approx(float(np.mean(blind)))
    # never the sample's own terms: against them the same answers score the metric
    own = [rubric_score(r.answer, t.record.terms) for r, t in zip(answers, test, strict=True)]
    assert float(np.mean(own)) == result["after"]["metric"]


def test_a_model_that_learnt_only_text_priors_has_a_grounded_gain_of_about_0(
    one_torch_thread: None, tmp_path: Path
) -> None:
    """Fine-tuned on image-shuffled samples (every question with another sample's image), the
    built-in PaliGemma learns the answers' form and their common terms, which no image tells:
    its test metric rises, and its image-shuffled control with it, so the grounded gain (metric
    - control, as every run records it) stays about 0. A control left at the base model's
    value fails here by the metric's whole rise. (A control scored on the real images would
    also give a gap of 0 here: the loop's test, which compares the control with a re-evaluation
    on the deranged images, catches that.)"""
    base = tmp_path / "base"
    pretrain(
        "paligemma",
        PaligemmaPretrainConfig(
            samples=16, vision_steps=2, vision_batch_size=8, steps=2, batch_size=8, test_samples=4
        ),
        SimParams(),
        32,
        PaligemmaEvaluate(),
        base,
    )
    build_dataset("test", 96, 2, tmp_path / "datasets", sim=SimParams(), t0=32)
    test = read_dataset(tmp_path / "datasets" / "test").samples
    control = shuffled_images(test, derangement(len(test), 7))
    train = collect_samples("train", 64, 5, sim=SimParams(), t0=32)
    image_blind = shuffled_images(train, derangement(len(train), 11))
    assert all(s.image is not t.image for s, t in zip(image_blind, train, strict=True))
    vlm = PaligemmaVLM.load(base, PaligemmaVLMConfig(lr=3e-3, batch_size=16))
    before = vlm.metric(vlm.evaluate(test))
    vlm.finetune(image_blind, 120, seed=0)
    metric, shuffled = vlm.metric(vlm.evaluate(test)), vlm.metric(vlm.evaluate(control))
    assert metric - before >= 0.5  # it learnt something: the form and the common terms
    assert abs(metric - shuffled) <= 0.15  # none of it needs the image


def test_paligemmas_targets_ask_a_rubric_0_8_above_both_controls() -> None:
    before = {"metric": 1.8, "control": 1.8, "control_terms": 1.8, "test/term/left": 1.5}
    good = {"metric": 3.0, "control": 2.1, "control_terms": 2.05, "test/term/left": 2.9}
    assert all(targets(before, good, "paligemma").values())
    prior = {**good, "control_terms": 2.2}  # answers fit any sample's terms: a text prior
    found = targets(before, prior, "paligemma")
    assert found["0.8_above_the_image_shuffled_control"]
    assert not found["0.8_above_the_term_shuffled_control"]
    blind = targets(before, {**good, "control": 2.5}, "paligemma")
    assert not blind["0.8_above_the_image_shuffled_control"]
    term = targets(before, {**good, "test/term/left": 1.5}, "paligemma")
    assert not term["every_term_above_base"]


def test_the_targets_fail_when_the_model_does_not_gain_or_learns_a_text_prior() -> None:
    before = {"metric": 0.30, "control": 0.25, "test/term/left": 0.3, "test/term/above": 0.3}
    good = {"metric": 0.65, "control": 0.30, "test/term/left": 0.7, "test/term/above": 0.6}
    assert all(targets(before, good, "clip").values())
    prior = {**good, "control": 0.50}  # the control rose with the model: text priors
    assert not targets(before, prior, "clip")["control_within_0.10_of_base"]
    assert not targets(before, prior, "clip")["control_0.20_below_finetuned"]
    flat = {**good, "metric": 0.40, "test/term/above": 0.3}
    assert not targets(before, flat, "clip")["finetuned_at_least_0.60"]
    assert not targets(before, flat, "clip")["every_term_above_base"]


def test_the_command_writes_the_figures_and_names_a_bad_param(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "learnability.json"
    code = main(
        [
            "probe",
            "learnability",
            "--model",
            "clip",
            "--params",
            str(ROOT / "params.yaml"),
            "--profile",
            "smoke",
            "--base",
            str(project / "results" / "vlm" / "clip" / "base"),
            "--datasets",
            str(project / "datasets"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    written = json.loads(out.read_text())
    assert written["model"] == "clip" and written["finetune_config"]["lock_image"] is True
    assert set(written["targets"]) == set(targets(written["before"], written["after"], "clip"))
    assert "sample passes" in capsys.readouterr().out

    params = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    bad = text.replace("&smoke_probe {samples: 16,", "&smoke_probe {samples: 16, sampels: 3,")
    assert bad != text
    params.write_text(bad)
    assert main(["probe", "learnability", "--model", "clip", "--params", str(params),
                 "--profile", "smoke"]) == 2  # fmt: skip
    assert "profiles.smoke.clip.probe" in capsys.readouterr().err
