"""External evaluation sets: the layouts and their converters, bad files, the check's hashes,
and scoring with the real built-in models (What'sUp- and VSR-layout folders made from renders)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from benchmark.captions import question, rubric_score
from benchmark.check import check, write
from benchmark.cli import main
from benchmark.config import ExternalSetParams, ParamsError, load_params, parse_params
from benchmark.external import (
    MANIFEST,
    ExternalSet,
    ExternalSetError,
    convert,
    read_external,
    score,
)
from benchmark.vlm.clip import ClipVLM
from benchmark.vlm.paligemma import CHOICE_PROMPT, PaligemmaVLM
from benchmark.vlm.paligemma.builtin import build_builtin
from tests.external_sets import write_vsr, write_whatsup, write_whatsup_coco_qa

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """The built-in models are tiny: one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def whatsup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_whatsup(tmp_path_factory.mktemp("whatsup") / "data")


@pytest.fixture(scope="module")
def vsr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vsr(tmp_path_factory.mktemp("vsr"))


@pytest.fixture(scope="module")
def paligemma(tmp_path_factory: pytest.TempPathFactory) -> PaligemmaVLM:
    return PaligemmaVLM.load(build_builtin(tmp_path_factory.mktemp("pg") / "builtin", seed=0))


def _spec(path: Path, layout: str = "rls3", name: str = "set") -> ExternalSetParams:
    return ExternalSetParams(name=name, path=str(path), format=layout)  # type: ignore[arg-type]


def _rls3_copy(source: Path, tmp: Path, lines: list[dict]) -> Path:
    """An rls3-layout folder at ``tmp`` with ``source``'s images and ``lines``."""
    shutil.copytree(source, tmp)
    (tmp / MANIFEST).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return tmp


# ---------------------------------------------------------------------------- the layouts


def test_whatsup_reads_its_four_captions_the_true_one_first_and_the_relation_from_the_name(
    whatsup: Path,
) -> None:
    entries = json.loads(whatsup.read_text())
    got = read_external(_spec(whatsup, "whatsup"))
    assert len(got.items) == len(entries) == 8
    for entry, item in zip(entries, got.items, strict=True):
        assert item.options == entry["caption_options"]  # order kept: the true caption first
        name = Path(entry["image_path"]).stem  # <subject>_<preposition>_<reference>
        subject, *preposition, reference = name.split("_")
        expected = {"left_of": "left", "right_of": "right", "on": "above", "under": "below"}
        assert item.terms == (expected["_".join(preposition)],)
        assert (item.subject, item.reference) == (
            subject.replace("-", " "),
            reference.replace("-", " "),
        )
        assert (got.image_dir / item.image).is_file()
    assert got.asks_questions


def test_vsr_keeps_the_true_captions_of_the_six_terms_with_the_opposite_as_alternative(
    vsr: Path,
) -> None:
    lines = [json.loads(line) for line in vsr.read_text().splitlines()]
    got = read_external(_spec(vsr, "vsr"))
    assert got.skipped == 2  # the false caption and the relation that is not a term
    kept = [line for line in lines if line["label"] == 1 and line["relation"] != "touching"]
    assert [i.caption for i in got.items] == [line["caption"] for line in kept]
    opposite = {"left of": "right of", "right of": "left of", "above": "below",
                "below": "above", "in front of": "behind", "behind": "in front of"}  # fmt: skip
    for line, item in zip(kept, got.items, strict=True):
        flipped = line["caption"].replace(
            f" {line['relation']} ", f" {opposite[line['relation']]} "
        )
        assert item.alternatives == (flipped,)
        assert item.image == line["image"] and (got.image_dir / item.image).is_file()


def test_whatsups_coco_qa_layout_reads_id_named_images_and_parses_the_terms(
    tmp_path: Path,
) -> None:
    annotations = write_whatsup_coco_qa(tmp_path / "whatsup", n=4)
    entries = json.loads(annotations.read_text())
    got = read_external(_spec(annotations, "whatsup"))
    assert [i.image for i in got.items] == [f"{e[0]:012d}.jpg" for e in entries]
    assert got.image_dir == annotations.parent / "val2017"
    for entry, item in zip(entries, got.items, strict=True):
        assert item.options == entry[1:]
        assert item.terms == (("left",) if "to the left of" in entry[1] else ("right",))
    assert not got.asks_questions  # the QA subsets do not name the objects apart
    annotations.write_text(json.dumps([["x", "A a to the left of a b", "A a to the right of a b"]]))
    with pytest.raises(ExternalSetError, match=r"entry 0: the COCO image id 'x' is not a number"):
        read_external(_spec(annotations, "whatsup"))


@pytest.mark.parametrize("layout", ["whatsup", "vsr"])
def test_a_converted_set_reads_back_as_the_same_items_and_image_bytes(
    layout: str, whatsup: Path, vsr: Path, tmp_path: Path
) -> None:
    source = whatsup if layout == "whatsup" else vsr
    original = read_external(_spec(source, layout))
    out = tmp_path / "converted"
    written = convert(_spec(source, layout), out)
    back = read_external(_spec(out))  # the rls3 layout, terms read from captions.jsonl
    assert back.items == original.items and written.items == original.items
    for item in back.items:
        assert (out / item.image).read_bytes() == (original.image_dir / item.image).read_bytes()
    assert written.skipped == original.skipped


def test_rls3_terms_are_parsed_from_the_caption_where_not_given(
    whatsup: Path, tmp_path: Path
) -> None:
    line = {
        "image": _first_image(whatsup),
        "caption": "a mug to the left of a plate",
        "alternatives": ["a mug above a plate"],
    }
    folder = _rls3_copy(whatsup.parent / "controlled_images", tmp_path / "set", [line])
    item = read_external(_spec(folder)).items[0]
    assert item.terms == ("left",) and item.subject is None


# ---------------------------------------------------------------------------- bad files


def _first_image(whatsup: Path) -> str:
    return sorted(p.name for p in (whatsup.parent / "controlled_images").iterdir())[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image": "nope.jpg"}, r"set/captions\.jsonl:2: the image .*nope\.jpg is missing"),
        (
            {"alternatives": ["a mug under a plate", " "]},
            r"captions\.jsonl:2: an alternative "
            r"caption is empty",
        ),
        ({"alternatives": []}, r"captions\.jsonl:2: no alternative caption"),
        (
            {"caption": "a mug and a plate", "subject": "mug", "reference": "plate"},
            r"captions\.jsonl:2: the caption 'a mug and a plate' states no spatial term",
        ),
        ({"terms": ["near"]}, r"captions\.jsonl:2: unknown terms \['near'\]"),
        ({"colour": "red"}, r"captions\.jsonl:2: unknown keys \['colour'\]"),
    ],
)
def test_a_bad_line_is_one_error_naming_the_file_and_the_line(
    change: dict, message: str, whatsup: Path, tmp_path: Path
) -> None:
    good = {"image": _first_image(whatsup), "caption": "a mug to the left of a plate",
            "alternatives": ["a mug to the right of a plate"]}  # fmt: skip
    folder = _rls3_copy(whatsup.parent / "controlled_images", tmp_path / "set",
                        [good, {**good, **change}])  # fmt: skip
    with pytest.raises(ExternalSetError, match=message):
        read_external(_spec(folder))


def test_a_whatsup_caption_without_a_term_and_a_missing_image_name_their_entry(
    whatsup: Path, tmp_path: Path
) -> None:
    entries = json.loads(whatsup.read_text())
    bad = tmp_path / "data" / "controlled_images_dataset.json"
    shutil.copytree(whatsup.parent, bad.parent)
    termless = [*entries[:3], {"image_path": "data/controlled_images/a_beside_b.jpeg",
                               "caption_options": ["A a beside a b", "A a near a b"]}]  # fmt: skip
    bad.write_text(json.dumps(termless))
    with pytest.raises(ExternalSetError, match=r"entry 3: the caption 'A a beside a b' states no"):
        read_external(_spec(bad, "whatsup"))
    missing = [*entries[:2], {**entries[2], "image_path": "data/controlled_images/x_on_y.jpeg"}]
    bad.write_text(json.dumps(missing))
    with pytest.raises(ExternalSetError, match=r"entry 2: the image .*x_on_y\.jpeg is missing"):
        read_external(_spec(bad, "whatsup"))


def test_external_params_name_the_key_and_what_is_allowed() -> None:
    base = load_params(ROOT / "params.yaml")
    data = _smoke_with([{"name": "a", "path": "x"}, {"name": "a", "path": "y"}])
    with pytest.raises(ParamsError, match=r"datasets: external: each set needs its own name; "
                       r"given twice: \['a'\]"):  # fmt: skip
        parse_params(data)
    data = _smoke_with([{"name": "a", "path": "x", "format": "coco"}])
    with pytest.raises(ParamsError, match=r"external\[0\]\.format = 'coco' is not allowed; "
                       r"expected one of \['rls3', 'whatsup', 'vsr'\]"):  # fmt: skip
        parse_params(data)
    assert base.profiles["bench"].datasets.external == ()  # the default profile scores none


def _smoke_with(external: list[dict[str, str]]) -> dict[str, Any]:
    """params.yaml's smoke profile alone, with ``external`` as its external sets."""
    smoke = yaml.safe_load((ROOT / "params.yaml").read_text())["profiles"]["smoke"]
    smoke["datasets"]["external"] = external
    return {"profile": "smoke", "profiles": {"smoke": smoke}}


def test_the_check_writes_each_sets_hash_and_a_changed_image_changes_it(
    whatsup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "whatsup"
    shutil.copytree(whatsup.parent, copy)
    data = _smoke_with([{"name": "whatsup", "path": str(copy / whatsup.name), "format": "whatsup"}])
    params = parse_params(data)
    monkeypatch.chdir(tmp_path)
    report = check(params, datasets=tmp_path / "datasets", results=tmp_path / "results")
    assert not report.failures
    write(report, tmp_path / "check")
    first = json.loads((tmp_path / "check" / "external.json").read_text())["whatsup"]
    assert first["items"] == 8 and first["format"] == "whatsup"
    image = sorted((copy / "controlled_images").iterdir())[0]
    image.write_bytes(image.read_bytes() + b"\0")  # one byte more
    second = check(params, datasets=tmp_path / "datasets", results=tmp_path / "results")
    assert second.external["whatsup"]["content_hash"] != first["content_hash"]
    image.unlink()
    third = check(params, datasets=tmp_path / "datasets", results=tmp_path / "results")
    assert any("external[whatsup]" in f and "is missing" in f for f in third.failures)


# ---------------------------------------------------------------------------- scoring


def test_fitting_an_image_first_changes_nothing_the_preprocessing_sees(
    whatsup: Path, paligemma: PaligemmaVLM
) -> None:
    """Photographs are fitted once to the model's input; preprocessing the fitted image gives
    the tensor that preprocessing the original gives (for a size the renders do not have)."""
    rendered = read_external(_spec(whatsup, "whatsup")).images()[0]
    image = np.asarray(Image.fromarray(rendered).resize((97, 71)))
    clip = ClipVLM.builtin()
    for vlm, pixels in ((clip, clip.images_tensor), (paligemma, paligemma.pixels)):
        fitted = vlm.fit_image(image)
        assert fitted.dtype == np.uint8 and fitted.shape[:2] == (64, 64)
        assert torch.equal(pixels([fitted]), pixels([image]))


def test_clip_scores_a_reversed_set_as_the_complement(whatsup: Path, vsr: Path) -> None:
    """Two captions an image, true first: accuracy on the set with the captions swapped is
    1 - accuracy (no ties), and per term likewise; the scores are the model's similarities."""
    external = read_external(_spec(vsr, "vsr"))
    clip = ClipVLM.builtin()
    images = [clip.fit_image(im) for im in external.images()]
    got = score(clip, external, images)
    swapped = ExternalSet(
        external.name, external.source, external.image_dir,
        [type(i)(i.image, i.alternatives[0], (i.caption,), i.terms) for i in external.items],
        external.content_hash,
    )  # fmt: skip
    flipped = score(clip, swapped, images)
    assert 0 < got["metric"] < 1
    assert flipped["metric"] == pytest.approx(1 - got["metric"])
    for key in got:
        assert flipped[key] == pytest.approx(1 - got[key])
    sims = clip.caption_scores(images[:1], [external.items[0].options])[0]
    with torch.inference_mode():
        zi = torch.nn.functional.normalize(
            clip.model.encode_image(clip.images_tensor(images[:1])), dim=-1
        )
        zt = clip.model.encode_text(clip.texts_tensor(external.items[0].options))
        zt = torch.nn.functional.normalize(zt, dim=-1)
    np.testing.assert_allclose(sims, (zt @ zi[0]).numpy(), atol=1e-5)


def test_paligemma_ranks_captions_by_their_mean_token_log_likelihood(
    vsr: Path, paligemma: PaligemmaVLM
) -> None:
    external = read_external(_spec(vsr, "vsr"))
    image = paligemma.fit_image(external.images()[0])
    options = external.items[0].options
    scores = paligemma.caption_scores([image], [options])[0]
    for text, got in zip(options, scores, strict=True):
        batch = paligemma.inputs([image], [CHOICE_PROMPT], [text])
        with torch.inference_mode():
            loss = float(paligemma.loss(batch))  # the mean token loss of the answer
        assert got == pytest.approx(-loss, abs=1e-5)


def test_paligemma_asks_the_position_question_where_the_items_name_their_objects(
    whatsup: Path, vsr: Path, paligemma: PaligemmaVLM, tmp_path: Path
) -> None:
    """What'sUp's items name their objects: the rubric of the answer (the untrained model
    answers nothing spatial: 1 each); without the objects, a choice among the captions."""
    asked = read_external(_spec(whatsup, "whatsup"))
    images = [paligemma.fit_image(im) for im in asked.images()]
    got = score(paligemma, asked, images)
    answers = paligemma.generate(
        images, [question(str(i.subject), str(i.reference)) for i in asked.items]
    )
    rubric = [rubric_score(a, i.terms) for a, i in zip(answers, asked.items, strict=True)]
    assert got["metric"] == pytest.approx(np.mean(rubric)) and 1 <= got["metric"] <= 5
    out = tmp_path / "plain"
    convert(_spec(vsr, "vsr"), out)
    lines = [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]
    for line in lines:
        del line["subject"], line["reference"]
    (out / MANIFEST).write_text("".join(json.dumps(line) + "\n" for line in lines))
    plain = read_external(_spec(out))
    assert not plain.asks_questions
    chosen = score(paligemma, plain, [paligemma.fit_image(im) for im in plain.images()])
    ranked = paligemma.caption_scores(
        [paligemma.fit_image(im) for im in plain.images()], [i.options for i in plain.items]
    )
    assert chosen["metric"] == pytest.approx(np.mean([s[0] > s[1] for s in ranked]))


def test_rls3_eval_scores_a_checkpoint_and_names_a_missing_set(
    whatsup: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _smoke_with([{"name": "whatsup", "path": str(whatsup), "format": "whatsup"}])
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(data))
    base = ClipVLM.builtin().save(tmp_path / "clip")
    out = tmp_path / "scores.json"
    args = ["eval", "--params", str(params), "--model", "clip", "--base", str(base)]
    assert main([*args, "--set", "whatsup", "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    external = read_external(_spec(whatsup, "whatsup"))
    vlm = ClipVLM.load(base)
    expected = score(vlm, external, [vlm.fit_image(im) for im in external.images()])
    assert scores["scores"] == pytest.approx(expected) and scores["items"] == 8
    assert f"{expected['metric']:.4f}" in capsys.readouterr().out
    assert main([*args, "--set", "vsr"]) == 2
    assert "has no such set; its sets: ['whatsup']" in capsys.readouterr().err
