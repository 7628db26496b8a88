"""``rls3 check``: each problem found in seconds, one line naming its key and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.provenance import AGENT_CODE_PATHS, code_digest
from tests.checkpoints import save_small_paligemma, save_vit_b32
from tests.pipeline import ROOT


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weights")
    return {
        "clip": save_vit_b32(root / "ViT-B-32"),
        "paligemma": save_small_paligemma(root / "paligemma-small"),
    }


def _check(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    edit: dict[str, Any] | None = None,
    sim: dict[str, Any] | None = None,
    device: str | None = None,
) -> tuple[int, list[str], str]:
    """``rls3 check`` on the smoke profile with ``edit`` (model -> weights) applied; its exit
    code, its FAIL lines and its whole output."""
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    smoke = data["profiles"]["smoke"]
    for model, weights in (edit or {}).items():
        smoke[model]["weights"] = weights
    for key, value in (sim or {}).items():  # a nested block keeps the keys it does not name
        current = smoke["sim"].get(key)
        smoke["sim"][key] = {**current, **value} if isinstance(current, dict) else value
    if device is not None:
        smoke["device"] = device
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**data, "profile": "smoke"}, sort_keys=False))
    args = ["check", "--params", str(params), "--datasets", str(tmp_path / "datasets")]
    code = main([*args, "--results", str(tmp_path / "results"), *extra])
    out = capsys.readouterr().out
    fails = [
        line.strip().removeprefix("FAIL").strip() for line in out.splitlines() if "FAIL" in line
    ]
    return code, fails, out


def test_the_smoke_profile_with_real_checkpoints_passes_and_writes_their_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoints: dict[str, Path]
) -> None:
    edit = {m: str(p) for m, p in checkpoints.items()}
    code, fails, out = _check(tmp_path, capsys, "--write", str(tmp_path / "check"), edit=edit)
    assert code == 0 and fails == [], out
    assert "rls3 check: 0 problem(s); passed" in out
    written = json.loads((tmp_path / "check" / "clip.json").read_text())
    identity = written["weights"]
    assert identity["path"] == str(checkpoints["clip"].resolve()) and identity["image_size"] == 32
    sizes = {f["name"]: f["size"] for f in identity["files"]}
    assert sizes["open_clip_model.safetensors"] > 600_000_000  # 151M float32 parameters
    assert json.loads((tmp_path / "check" / "passed.json").read_text()) == {"checks": "passed"}
    # the code digests the run and agent stages depend on: those a run and an agent record
    run_code = json.loads((tmp_path / "check" / "run_code.json").read_text())
    assert run_code["digest"] == code_digest() and "loop.py" in run_code["files"]
    agent_code = json.loads((tmp_path / "check" / "agent_code.json").read_text())
    assert agent_code["digest"] == code_digest(paths=AGENT_CODE_PATHS)
    assert "loop.py" not in agent_code["files"]  # a changed loop leaves the agents as they are


@pytest.mark.parametrize(
    ("model", "weights", "expected"),
    [
        ("clip", "{tmp}/nowhere/ViT-B-32", "{tmp}/nowhere/ViT-B-32 not found"),  # missing
        ("paligemma", "{tmp}", "{tmp} has no config.json"),  # not a snapshot
        ("clip", "{tmp}", "{tmp} holds no weights"),  # a directory without weights
        ("paligemma", "{clip}", "{clip} is an open_clip (CLIP) checkpoint"),  # the other family
        ("clip", "{paligemma}", "{paligemma} is a Hugging Face paligemma snapshot"),
    ],
)
def test_each_bad_weights_path_is_one_line_naming_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    checkpoints: dict[str, Path],
    model: str,
    weights: str,
    expected: str,
) -> None:
    names = {"tmp": str(tmp_path), **{k: str(v) for k, v in checkpoints.items()}}
    code, fails, out = _check(tmp_path, capsys, edit={model: weights.format(**names)})
    assert code == 1
    assert len(fails) == 1, out
    key = f"profiles.smoke.{model}.weights: "
    assert fails[0].startswith(key + expected.format(**names)), fails[0]
    assert not (tmp_path / "check").exists()


def test_a_pickled_checkpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "config.json").write_text('{"model_type": "paligemma"}')
    torch.save({"w": torch.zeros(2)}, snapshot / "pytorch_model.bin")
    code, fails, _ = _check(tmp_path, capsys, edit={"paligemma": str(snapshot)})
    assert code == 1 and len(fails) == 1
    assert fails[0].startswith("profiles.smoke.paligemma.weights:")
    assert "only pickled weights (pytorch_model.bin), which are never loaded" in fails[0]


def test_an_image_size_the_checkpoint_does_not_take_is_one_line_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoints: dict[str, Path]
) -> None:
    code, fails, _ = _check(
        tmp_path, capsys, edit={"clip": str(checkpoints["clip"])}, sim={"image_size": 48}
    )
    assert code == 1
    assert fails == [
        f"profiles.smoke.sim.image_size: 48 px, but the clip checkpoint at "
        f"{checkpoints['clip'].resolve()} takes 32 px: set sim.image_size: 32"
    ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_profile_that_needs_cuda_fails_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, fails, _ = _check(tmp_path, capsys, device="cuda")
    assert code == 1 and len(fails) == 1
    assert fails[0].startswith("profiles.smoke.device: cuda, but no CUDA device is visible")


def test_an_mlflow_store_that_cannot_be_written_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/mlflow.db")
    code, fails, _ = _check(tmp_path, capsys)
    assert code == 1 and len(fails) == 1
    assert fails[0].startswith(f"MLFLOW_TRACKING_URI: {blocker} is not writable")


def test_base_training_above_64_px_on_a_cpu_says_how_long_and_asks_for_yes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    code, fails, _ = _check(tmp_path, capsys, sim={"image_size": 96})
    assert code == 1 and len(fails) == 1
    line = fails[0]
    assert line.startswith("profiles.smoke.sim.image_size: 96 px with built-in models on the CPU")
    assert "clip about" in line and "paligemma about" in line and "--yes" in line
    monkeypatch.setenv("RLS3_YES", "1")
    code, fails, out = _check(tmp_path, capsys, sim={"image_size": 96})
    assert code == 0 and fails == [], out
    assert "go-ahead given" in out


def test_a_relative_sqlite_store_is_checked_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///rel.db is relative to the working directory (SQLAlchemy's form)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///a-file/mlflow.db")
    code, fails, _ = _check(tmp_path, capsys)
    assert code == 1 and fails == [
        "MLFLOW_TRACKING_URI: a-file is not writable (File exists): set "
        "MLFLOW_TRACKING_URI to a writable store"
    ]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///store/mlflow.db")
    code, fails, out = _check(tmp_path, capsys)
    assert code == 0 and "MLFLOW_TRACKING_URI: store/mlflow.db is writable" in out


def test_the_unity_backend_needs_its_player_and_a_free_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    missing = {"backend": "unity", "unity": {"build": str(tmp_path / "RLS3.x86_64")}}
    code, fails, _ = _check(tmp_path, capsys, sim=missing)
    assert code == 1 and len(fails) == 1
    assert fails[0].startswith(f"profiles.smoke.sim.unity.build: no Unity player at {tmp_path}")
    player = str(ROOT / "unity_build" / "RLS3Embedded.x86_64")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("localhost", 0))
        held.listen()
        port = held.getsockname()[1]
        busy = {"backend": "unity", "unity": {"build": player, "base_port": port}}
        code, fails, out = _check(tmp_path, capsys, sim=busy)
    assert code == 1 and fails == [f"profiles.smoke.sim.unity.base_port: port {port} is in use: "
                                   "choose another, or null"]  # fmt: skip
    assert "profiles.smoke.sim.unity.build: " in out and "is there and executable" in out


def test_the_unity_players_identity_goes_into_passed_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stages that ran the simulator depend on passed.json: a new player re-runs them."""
    player = tmp_path / "RLS3.x86_64"
    player.write_text("#!/bin/sh\n")
    player.chmod(0o755)
    sim = {"backend": "unity", "unity": {"build": str(player)}}
    out = tmp_path / "check"
    code, fails, _ = _check(tmp_path, capsys, "--write", str(out), sim=sim)
    assert code == 0 and fails == []
    first = json.loads((out / "passed.json").read_text())
    assert first["unity_build"]["path"] == str(player) and first["unity_build"]["size"] == 10
    player.write_text("#!/bin/sh\nexit 0\n")
    _check(tmp_path, capsys, "--write", str(out), sim=sim)
    assert json.loads((out / "passed.json").read_text())["unity_build"]["size"] == 17
    _check(tmp_path, capsys, "--write", str(out))
    assert json.loads((out / "passed.json").read_text()) == {"checks": "passed"}
