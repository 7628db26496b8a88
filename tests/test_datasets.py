"""The fixed evaluation sets: written once, read back identical, tamper-evident."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from benchmark.config import SimParams
from benchmark.datasets import build_dataset, read_dataset


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("datasets")
    return out, build_dataset(
        "validation", 12, seed=5, out_dir=out, sim=SimParams(image_size=32), t0=32
    )


def test_reading_back_gives_identical_records_images_and_metadata(built) -> None:
    out, ds = built
    back = read_dataset(out / "validation")
    assert back.content_hash == ds.content_hash
    assert len(back.samples) == 12
    for a, b in zip(ds.samples, back.samples, strict=True):
        assert np.array_equal(a.image, b.image) and a.image.shape == (32, 32, 3)
        assert a.record == b.record
        assert a.metadata == b.metadata
    assert {dict(s.metadata or {}).get("environment") for s in back.samples} == {"train"}
    table = pq.read_table(out / "validation" / "records.parquet")
    assert table.num_rows == 12 and "caption" in table.column_names


def test_the_same_seed_rebuilds_the_same_content_and_another_seed_does_not(built, tmp_path) -> None:
    _, ds = built
    again = build_dataset(
        "validation", 12, seed=5, out_dir=tmp_path, sim=SimParams(image_size=32), t0=32
    )
    other = build_dataset(
        "validation", 12, seed=6, out_dir=tmp_path / "o", sim=SimParams(image_size=32), t0=32
    )
    assert again.content_hash == ds.content_hash
    assert other.content_hash != ds.content_hash


def test_a_modified_image_is_detected(built, tmp_path) -> None:
    out, _ = built
    import shutil

    copy = tmp_path / "validation"
    shutil.copytree(out / "validation", copy)
    path = copy / "images" / "00003.png"
    pixels = np.asarray(Image.open(path)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(path)
    with pytest.raises(ValueError, match="content hash"):
        read_dataset(copy)


def test_test_split_comes_from_the_test_environment(tmp_path) -> None:
    ds = build_dataset("test", 4, seed=1, out_dir=tmp_path, sim=SimParams(image_size=16), t0=32)
    assert {dict(s.metadata or {}).get("environment") for s in ds.samples} == {"test"}
    assert read_dataset(tmp_path / "test").manifest["environment"] == "test"


def test_clear_errors_for_missing_sets_and_unknown_splits(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="rls3 build-datasets"):
        read_dataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown split 'train'"):
        build_dataset("train", 4, seed=1, out_dir=tmp_path, sim=SimParams(image_size=16), t0=32)
