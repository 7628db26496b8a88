"""Real weights (spec section 5): checkpoints checked, recorded and followed; pickles refused."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from benchmark.vlm.clip import BUILTIN_MODEL, ClipVLM
from benchmark.vlm.paligemma import PaligemmaVLM
from benchmark.vlm.pointer import WeightsError, record, resolve
from benchmark.vlm.weights import inspect
from tests.checkpoints import save_small_paligemma, save_vit_b32


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_vit_b32(tmp_path_factory.mktemp("clip") / "ViT-B-32")


@pytest.fixture(scope="module")
def small_paligemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_small_paligemma(tmp_path_factory.mktemp("pg") / "paligemma-small")


class Marker:
    """A pickle that, if it were ever unpickled, would create a file: the proof it was not."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def test_a_full_size_vit_b32_in_open_clips_local_format_is_checked_and_loads(
    vit_b32: Path,
) -> None:
    ckpt = inspect("clip", vit_b32)
    assert ckpt.family == "clip" and ckpt.arch is None and ckpt.image_size == 32
    assert {f.name for f in ckpt.files} == {"open_clip_config.json", "open_clip_model.safetensors"}
    vlm = ClipVLM.load(vit_b32)
    assert sum(p.numel() for p in vlm.model.parameters()) > 150_000_000  # ViT-B-32: 151M


def test_an_arch_name_and_a_bare_file_is_checked_against_that_architecture(
    tmp_path: Path,
) -> None:
    builtin = ClipVLM.builtin()
    file = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in builtin.model.state_dict().items()}, str(file))
    assert inspect("clip", file, BUILTIN_MODEL).image_size == 64
    with pytest.raises(WeightsError, match="name its architecture"):
        inspect("clip", file)
    with pytest.raises(WeightsError, match="does not load as open_clip ViT-B-32"):
        inspect("clip", file, "ViT-B-32")
    with pytest.raises(WeightsError, match="not an open_clip architecture"):
        inspect("clip", file, "ViT-Q-99")


def test_a_paligemma_snapshot_is_checked_from_its_headers_and_processor(
    small_paligemma: Path, tmp_path: Path
) -> None:
    ckpt = inspect("paligemma", small_paligemma)
    assert ckpt.image_size == 32
    names = {f.name for f in ckpt.files}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    # another model's config beside these weights: the parameter count gives it away
    other = tmp_path / "mixed"
    other.mkdir()
    for f in small_paligemma.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    config = json.loads((other / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 3
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match=r"numbers, the model its config.json describes"):
        inspect("paligemma", other)


def test_a_checkpoint_of_the_other_family_is_named_as_such(
    vit_b32: Path, small_paligemma: Path
) -> None:
    with pytest.raises(WeightsError, match=r"open_clip \(CLIP\) checkpoint.*clip key"):
        inspect("paligemma", vit_b32)
    with pytest.raises(WeightsError, match="Hugging Face paligemma snapshot"):
        inspect("clip", small_paligemma)
    with pytest.raises(WeightsError, match=r"open_clip \(CLIP\) model's weights"):
        inspect("paligemma", vit_b32 / "open_clip_model.safetensors")


def test_a_missing_path_or_a_directory_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"not found.*never from a hub"):
        inspect("clip", tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="holds no weights"):
        inspect("clip", tmp_path / "empty", "ViT-B-32")
    (tmp_path / "empty" / "config.json").write_text('{"model_type": "paligemma"}')
    with pytest.raises(WeightsError, match="holds no weights"):
        inspect("paligemma", tmp_path / "empty")


def test_a_checkpoint_containing_a_pickle_is_refused_without_unpickling_it(
    tmp_path: Path, small_paligemma: Path
) -> None:
    marker = tmp_path / "unpickled"
    # a pickled weights file beside a config: the only weights there
    snapshot = tmp_path / "pickled-snapshot"
    snapshot.mkdir()
    (snapshot / "config.json").write_text((small_paligemma / "config.json").read_text())
    torch.save({"weights": Marker(marker)}, snapshot / "pytorch_model.bin")
    with pytest.raises(WeightsError, match=r"only pickled weights \(pytorch_model.bin\)"):
        inspect("paligemma", snapshot)
    # a pickle named .safetensors, and a plain pickle
    disguised = tmp_path / "open_clip_model.safetensors"
    torch.save({"weights": Marker(marker)}, disguised)
    with pytest.raises(WeightsError, match=r"pickled checkpoint \(torch.save\)"):
        inspect("clip", disguised, "ViT-B-32")
    plain = tmp_path / "weights.safetensors"
    plain.write_bytes(pickle.dumps(Marker(marker), protocol=4))
    with pytest.raises(WeightsError, match="pickled checkpoint"):
        inspect("clip", plain, "ViT-B-32")
    with pytest.raises(WeightsError, match="pickled checkpoint, which is never loaded"):
        inspect("clip", snapshot / "pytorch_model.bin", "ViT-B-32")
    assert not marker.exists()


def test_a_truncated_download_is_caught_from_its_header(tmp_path: Path, vit_b32: Path) -> None:
    part = tmp_path / "ViT-B-32"
    part.mkdir()
    (part / "open_clip_config.json").write_bytes((vit_b32 / "open_clip_config.json").read_bytes())
    data = (vit_b32 / "open_clip_model.safetensors").read_bytes()
    (part / "open_clip_model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or padded"):
        inspect("clip", part)


def test_a_recorded_checkpoint_is_its_digest_and_loads_through_the_same_loader(
    tmp_path: Path, small_paligemma: Path
) -> None:
    ckpt = inspect("paligemma", small_paligemma)
    pointer = record(ckpt, tmp_path / "base")
    assert json.loads((tmp_path / "base" / "weights.json").read_text()) == pointer
    for f in pointer["files"]:
        data = (small_paligemma / f["name"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["size"] == len(data)
    assert pointer["bytes"] == sum(f.stat().st_size for f in ckpt.files)
    assert resolve(tmp_path / "base") == (small_paligemma.resolve(), None)
    loaded = PaligemmaVLM.load(tmp_path / "base")
    direct = PaligemmaVLM.load(small_paligemma)
    for (name, a), b in zip(
        loaded.model.state_dict().items(), direct.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    # the checkpoint changes under the record: loading says so instead of loading it
    (small_paligemma / "generation_config.json").write_text("{}")
    try:
        with pytest.raises(WeightsError, match=r"gone or changed.*dvc repro"):
            PaligemmaVLM.load(tmp_path / "base")
    finally:
        direct.model.generation_config.save_pretrained(small_paligemma)


def test_the_identity_that_check_writes_changes_with_the_files(tmp_path: Path) -> None:
    ckpt_dir = save_small_paligemma(tmp_path / "pg")
    before = inspect("paligemma", ckpt_dir).identity()
    (ckpt_dir / "tokenizer_config.json").write_text(
        (ckpt_dir / "tokenizer_config.json").read_text() + "\n"
    )
    after = inspect("paligemma", ckpt_dir).identity()
    assert before["path"] == after["path"] and before != after
