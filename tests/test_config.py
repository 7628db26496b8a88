"""params.yaml and its schema: every profile loads; a bad value names its key."""

from pathlib import Path

import pytest
import yaml

from benchmark.config import ParamsError, load_params, parse_params

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
        (("agent", "gamma"), 2, r"profiles\.bench\.agent.*gamma = 2\.0; expected .* \[0, 1\]"),
        (("clip", "seeds"), 6, r"profiles\.bench\.clip\.seeds = 6 .* an int in \[1, 5\]"),
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


@pytest.mark.parametrize("profile", ["paper", "bench", "smoke"])
def test_every_profiles_vlm_blocks_map_onto_the_families_configs(profile: str) -> None:
    from benchmark.vlm.clip import ClipVLMConfig
    from benchmark.vlm.paligemma import PaligemmaVLMConfig
    from benchmark.vlm.pretrain import pretrain_config

    p = load_params(PARAMS, profile).active
    assert ClipVLMConfig(**p.clip.finetune).lr > 0
    assert PaligemmaVLMConfig(**p.paligemma.finetune).batch_size >= 1
    for model in ("clip", "paligemma"):
        assert pretrain_config(model, **p.model(model).pretrain).samples >= 1
