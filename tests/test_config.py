"""params.yaml and its schema: every profile loads; a bad value names its key."""

from pathlib import Path

import pytest
import yaml

from benchmark.config import (
    ClipEvaluate,
    ClipFinetune,
    ClipPretrainConfig,
    ClipVLMConfig,
    LearnabilityConfig,
    PaligemmaEvaluate,
    PaligemmaFinetune,
    PaligemmaPretrainConfig,
    PaligemmaVLMConfig,
    ParamsError,
    Weights,
    load_params,
    missing_keys,
    override,
    parse_params,
)
from benchmark.families import MODELS

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def _raw() -> dict:
    return yaml.safe_load(PARAMS.read_text())


@pytest.mark.parametrize("profile", ["paper", "bench", "smoke"])
def test_every_profile_of_the_shipped_file_loads(profile: str) -> None:
    params = load_params(PARAMS, profile)
    assert params.profile == profile
    assert params.active.loop.t0 >= 1


def test_the_paper_profile_holds_the_papers_values() -> None:
    paper = load_params(PARAMS, "paper").active
    loop = paper.loop
    assert (loop.t0, loop.eta, loop.episodes, loop.beta) == (200, 0.5, 20, 10)
    assert (paper.clip.k, paper.paligemma.k) == (10, 256)
    assert paper.agent.pretrain_steps == 100_000
    assert (paper.datasets.validation, paper.datasets.test) == (500, 1000)
    assert (paper.clip.seeds, paper.paligemma.seeds) == (3, 5)
    es = paper.clip.early_stopping, paper.paligemma.early_stopping
    assert [(e.patience, e.min_iterations) for e in es] == [(5, 10), (10, 15)]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("loop", "eta"), 1.5, r"profiles\.bench\.loop\.eta = 1\.5 .* a number in \(0, 1\]"),
        (("loop", "t0"), "many", r"profiles\.bench\.loop\.t0 = 'many' .* an int"),
        (("sim", "swap_prob"), -0.1, r"profiles\.bench\.sim\.swap_prob .* \[0, 1\]"),
        (("agent", "gamma"), 2, r"profiles\.bench\.agent\.gamma = 2 .* a number in \[0, 1\]"),
        (("agent", "hidden"), [64, 0], r"agent\.hidden\[1\] = 0 .* an int >= 1"),
        (("loop", "episodes"), "4", r"profiles\.bench\.loop\.episodes = '4' .* an int >= 1"),
        (("clip", "finetune"), {"lr": 0}, r"profiles\.bench\.clip\.finetune\.lr = 0 .* > 0"),
        (
            ("clip", "finetune"),
            {"lock_image": 1},
            r"profiles\.bench\.clip\.finetune\.lock_image = 1 .* true or false",
        ),
        (
            ("paligemma", "pretrain"),
            {"stepz": 4},
            r"unknown key profiles\.bench\.paligemma\.pretrain\.stepz; allowed keys .*'steps'",
        ),
        (
            ("paligemma", "pretrain"),
            {"image_size": 48},  # the profile's sim.image_size, not a knob of its own
            r"unknown key profiles\.bench\.paligemma\.pretrain\.image_size",
        ),
        (("clip", "probe"), {"epochs": 0}, r"profiles\.bench\.clip\.probe\.epochs = 0 .* >= 1"),
        (
            ("paligemma", "weights"),
            {"path": "/w", "arch": "ViT-B-32"},
            r"profiles\.bench\.paligemma\.weights\.arch = 'ViT-B-32' .* null",
        ),
        (("clip", "weights"), 5, r"profiles\.bench\.clip\.weights = 5 .* a local path"),
        (("clip", "seeds"), 11, r"profiles\.bench\.clip\.seeds = 11 .* an int in \[1, 10\]"),
        (("loop", "etaa"), 0.5, r"unknown key profiles\.bench\.loop\.etaa; allowed keys .*'eta'"),
        (
            ("sim", "backend"),
            "unit",
            r"profiles\.bench\.sim\.backend = 'unit' .* \['embedded', 'unity'\]",
        ),
        (("grid", "gpus"), -1, r"profiles\.bench\.grid\.gpus = -1 .* a number >= 0"),
    ],
)
def test_a_bad_value_names_its_key_and_the_allowed_values(path, value, message) -> None:
    raw = _raw()
    raw["profiles"]["bench"][path[0]][path[1]] = value
    with pytest.raises(ParamsError, match=message):
        parse_params(raw)


def test_an_unknown_profile_lists_the_profiles() -> None:
    with pytest.raises(ParamsError, match=r"profile = 'papr' .* \['bench', 'paper', 'smoke'\]"):
        load_params(PARAMS, "papr")


def test_a_missing_key_is_named() -> None:
    raw = _raw()
    del raw["profiles"]["smoke"]["loop"]
    with pytest.raises(ParamsError, match=r"missing key profiles\.smoke\.loop"):
        parse_params(raw)


def test_every_knob_is_in_the_file_not_a_default_in_the_code() -> None:
    """A knob the file leaves out is an error naming it and what it takes, even where the code
    has a default: the pipeline reads no default from the code."""
    raw = _raw()
    del raw["profiles"]["smoke"]["paligemma"]["evaluate"]["max_new_tokens"]
    with pytest.raises(
        ParamsError,
        match=r"missing key profiles\.smoke\.paligemma\.evaluate\.max_new_tokens \(an int >= 1\): "
        r"params\.yaml sets every knob",
    ):
        parse_params(raw)
    raw = _raw()
    raw["profiles"]["smoke"]["datasets"]["external"] = [{"name": "a", "path": "x"}]
    with pytest.raises(
        ParamsError, match=r"missing key profiles\.smoke\.datasets\.external\[0\]\.format"
    ):
        parse_params(raw)
    raw["profiles"]["smoke"]["datasets"]["external"] = [
        {"name": "a", "path": "x", "format": "rls3"}
    ]
    parse_params(raw)  # an external set's images may be left out: where its layout keeps them
    assert missing_keys(_raw()) == []


def test_profiles_share_identical_blocks_through_anchors() -> None:
    """Blocks the profiles share are written once: loading gives the same object."""
    profiles = _raw()["profiles"]
    assert profiles["paper"]["clip"]["pretrain"] is profiles["bench"]["clip"]["pretrain"]
    assert profiles["paper"]["sim"]["unity"] is profiles["smoke"]["sim"]["unity"]
    assert profiles["bench"]["grid"] is profiles["smoke"]["grid"]


def test_a_models_run_time_record_defaults_to_its_blocks_defaults() -> None:
    """One home per default: the record that ``vlm_config`` builds takes its defaults from the
    ``evaluate`` and ``finetune`` blocks, so the two cannot drift apart."""
    assert ClipVLMConfig() == ClipVLMConfig.of(ClipEvaluate(), ClipFinetune())
    assert PaligemmaVLMConfig() == PaligemmaVLMConfig.of(PaligemmaEvaluate(), PaligemmaFinetune())


@pytest.mark.parametrize("profile", ["paper", "bench", "smoke"])
def test_every_profiles_vlm_blocks_are_the_families_typed_configs(profile: str) -> None:
    p = load_params(PARAMS, profile).active
    assert isinstance(p.clip.finetune, ClipFinetune) and p.clip.finetune.lr > 0
    assert isinstance(p.paligemma.finetune, PaligemmaFinetune)
    # a run's model knobs: both blocks in one record, every field from the file
    clip, paligemma = p.clip.vlm_config(seed=3), p.paligemma.vlm_config(seed=3)
    assert isinstance(clip, ClipVLMConfig) and isinstance(paligemma, PaligemmaVLMConfig)
    assert clip.eval_batch_size == p.clip.evaluate.batch_size and clip.seed == 3
    assert clip.lr == p.clip.finetune.lr and clip.lock_image == p.clip.finetune.lock_image
    assert paligemma.max_new_tokens == p.paligemma.evaluate.max_new_tokens
    assert paligemma.prompt_prefix == p.paligemma.evaluate.prompt_prefix
    assert paligemma.trainable == p.paligemma.finetune.trainable
    assert isinstance(p.clip.pretrain, ClipPretrainConfig) and p.clip.pretrain.epochs >= 1
    assert isinstance(p.paligemma.pretrain, PaligemmaPretrainConfig)
    for model in MODELS:
        assert isinstance(p.model(model).probe, LearnabilityConfig)


def test_the_short_form_of_weights_is_a_path() -> None:
    paper = load_params(PARAMS, "paper").active
    assert paper.clip.weights == Weights(path="/weights/open_clip-ViT-B-32-openai")
    assert paper.paligemma.weights is not None and paper.paligemma.weights.arch is None


def test_an_override_goes_through_the_schema_and_names_its_key() -> None:
    block = load_params(PARAMS, "bench").active.clip.pretrain
    assert override(block, "k", samples=7).samples == 7
    with pytest.raises(ParamsError, match=r"profiles\.x\.clip\.pretrain\.samples = 0 .* >= 1"):
        override(block, "profiles.x.clip.pretrain", samples=0)
    with pytest.raises(ParamsError, match=r"unknown key profiles\.x\.clip\.pretrain\.steps"):
        override(block, "profiles.x.clip.pretrain", steps=3)
