"""The fingerprint and ``rls3 bench --check-reference``: byte identity on the same fingerprint
(the first file and line that differ are named), the conclusions on another (figures against
the reference's intervals, every verdict the same). Hand-made run trees and comparisons whose
answers are known, then the session's real smoke pipeline."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmark.comparison import (
    ArmFigures,
    ByTerms,
    Claim,
    Comparison,
    DecompositionRow,
    Difference,
    Estimate,
    TermVerdicts,
)
from benchmark.reference import (
    RUN_FILES_JSON,
    check,
    compare_conclusions,
    digests,
    fingerprint,
    first_difference,
    outcome,
    write_run_files,
)
from benchmark.report.stats import json_ready
from tests.pipeline import rls3

NAN = float("nan")
FP = {
    "cpu_vendor": "AuthenticAMD",
    "cpu_model": "AMD EPYC",
    "cpu_capability": "AVX2",
    "threads": 1,
    "lock_sha256": "0" * 64,
    "python": "3.11.7",
    "code_paths": {},
}


def _bench_tree(results: Path) -> None:
    """A bench's files as the loop writes them: a base model and two runs."""
    base = results / "vlm" / "clip" / "base"
    base.mkdir(parents=True)
    (base / "open_clip_model.safetensors").write_bytes(bytes(range(256)))
    for arm, final in (("sac", "0.47"), ("random", "0.43")):
        run = results / "runs" / "clip" / arm / "seed0"
        run.mkdir(parents=True)
        rows = ["iteration,test_metric", "0,0.266", "1,0.31", f"2,{final}"]
        (run / "metrics.csv").write_text("\n".join(rows) + "\n")
        (run / "episodes.csv").write_text("episode,j1\n0,3\n1,5\n")
        (run / "finetune_loss.csv").write_text("step,loss\n0,5.1\n1,4.2\n")
        (run / "summary.json").write_text('{"seconds": 1.5}')  # wall time: not digested


def _comparison(final: float, verdict: str = "supported (n = 10 paired seeds)") -> Comparison:
    """A comparison whose figures are known: sac's final metric ``final`` ± 0.02 and sac - random
    0.4 below it, one figure never measured, and ``verdict`` for the claim and the decomposition."""

    def stat(mean: float) -> Estimate:
        return Estimate(mean=mean, ci_low=mean - 0.02, ci_high=mean + 0.02, n=10)

    def diff(mean: float) -> Difference:
        low, high = mean - 0.02, mean + 0.02
        return Difference(mean=mean, ci_low=low, ci_high=high, n=10, sd=NAN, mde=NAN, per_seed=[])

    never = Estimate(mean=NAN, ci_low=NAN, ci_high=NAN, n=0)  # not measured
    sac = ArmFigures(seeds=[], stats={"final_metric": stat(final), "never": never}, n_seeds=0)
    differences = {"sac - random": {"final_metric": diff(final - 0.4)}}
    no_terms = ByTerms(arms={}, sac_minus_random={})
    return Comparison(
        interval="...",
        min_seeds_for_verdict=3,
        margin=None,
        equivalence="...",
        detectable_difference="...",
        probability_of_improvement="...",
        arms={"sac": sac},
        difference=differences["sac - random"],
        differences=differences,
        paired_seeds=[],
        paired={},
        by_term=no_terms,
        by_n_terms=no_terms,
        claims=[Claim(claim="sac beats random", found="...", verdict=verdict)],
        decomposition=[
            DecompositionRow(
                effect="feasibility",
                difference="sac-nofeedback - random",
                n=10,
                verdict=verdict,
                final_metric=diff(final - 0.4),
                auc=diff(final - 0.4),
            )
        ],
        term_verdicts=TermVerdicts(
            by_term={"left": "inconclusive (n = 10 paired seeds; ...)"}, by_n_terms={}
        ),
    )


def test_the_fingerprint_names_what_the_bits_depend_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("torch==2.5.1\n")
    fp = fingerprint(3, lock)
    assert fp["threads"] == 3 and fp["python"].count(".") == 2
    assert fp["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "NO AVX")
    assert fp["code_paths"] == {}
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    pinned = fingerprint(3, lock)
    assert pinned["code_paths"] == {"MKL_CBWR": "AVX2"} and pinned != fp
    lock.write_text("torch==2.6.0\n")
    assert fingerprint(3, lock)["lock_sha256"] != fp["lock_sha256"]


def test_the_digests_cover_the_base_and_every_run_file_and_nothing_that_varies(
    tmp_path: Path,
) -> None:
    _bench_tree(tmp_path)
    files = digests(tmp_path, "clip")
    assert list(files) == [
        "vlm/clip/base/open_clip_model.safetensors",
        *(
            f"runs/clip/{arm}/seed0/{name}"
            for arm in ("sac", "random")
            for name in ("metrics.csv", "episodes.csv", "finetune_loss.csv")
        ),
    ]
    assert files["vlm/clip/base/open_clip_model.safetensors"]["rows"] is None  # bytes only
    assert len(files["runs/clip/sac/seed0/metrics.csv"]["rows"] or "") == 8 * 4  # 4 lines


def test_the_first_file_and_line_that_differ_are_named(tmp_path: Path) -> None:
    _bench_tree(tmp_path)
    reference = digests(tmp_path, "clip")
    assert first_difference(reference, digests(tmp_path, "clip")) is None
    metrics = tmp_path / "runs" / "clip" / "random" / "seed0" / "metrics.csv"
    metrics.write_text(metrics.read_text().replace("0,0.266", "0,0.267"))
    episodes = tmp_path / "runs" / "clip" / "random" / "seed0" / "episodes.csv"
    episodes.write_text("changed too\n")
    assert first_difference(reference, digests(tmp_path, "clip")) == (
        "runs/clip/random/seed0/metrics.csv: line 2 differs (the first that does)"
    )
    metrics.write_text(metrics.read_text().replace("0,0.267", "0,0.266") + "3,0.5\n")
    assert first_difference(reference, digests(tmp_path, "clip")) == (
        "runs/clip/random/seed0/metrics.csv: 5 lines where the reference has 4 "
        "(the first 4 are identical)"
    )
    metrics.unlink()
    assert first_difference(reference, digests(tmp_path, "clip")) == (
        "runs/clip/random/seed0/metrics.csv: missing (the reference has it)"
    )
    weights = tmp_path / "vlm" / "clip" / "base" / "open_clip_model.safetensors"
    weights.write_bytes(b"\xff" + weights.read_bytes()[1:])
    assert first_difference(reference, digests(tmp_path, "clip")) == (
        "vlm/clip/base/open_clip_model.safetensors: its bytes differ"
    )


def test_a_file_the_reference_lacks_is_a_difference(tmp_path: Path) -> None:
    _bench_tree(tmp_path)
    reference = digests(tmp_path, "clip")
    extra = tmp_path / "runs" / "clip" / "sac" / "seed1"
    extra.mkdir()
    (extra / "metrics.csv").write_text("iteration,test_metric\n")
    assert first_difference(reference, digests(tmp_path, "clip")) == (
        "runs/clip/sac/seed1/metrics.csv: not in the reference (1 such file(s))"
    )


def test_outcomes_are_compared_without_their_n_and_reasons() -> None:
    assert outcome("supported (n = 10 paired seeds)") == "supported"
    assert outcome("equivalent within ±0.02 (n = 10 paired seeds)") == "equivalent"
    assert outcome("inconclusive (n = 3 paired seeds; AUC interval includes 0)") == "inconclusive"
    assert outcome("partly (n = 3 sac seeds)") == "partly"


def test_the_conclusions_pass_on_the_same_verdicts_and_list_the_figures_outside() -> None:
    reference = _comparison(0.46)
    inside = compare_conclusions(reference, _comparison(0.47))
    assert inside.passed and inside.mode == "conclusions"
    assert inside.lines[0] == "figures: 2 of 2 within the reference's 95% interval"
    assert inside.lines[-1] == "verdicts: 3 of 3 the same"
    # another CPU: one figure outside its interval is listed, and does not fail the check
    outside = compare_conclusions(reference, _comparison(0.49))
    assert outside.passed
    assert outside.lines[0] == "figures: 0 of 2 within the reference's 95% interval; 2 outside:"
    assert "  outside: sac: final_metric = 0.49, reference 0.46 [0.44, 0.48]" in outside.lines
    # a verdict that changed fails it, named
    changed = compare_conclusions(reference, _comparison(0.47, "inconclusive (n = 10 ...)"))
    assert not changed.passed
    assert "verdicts: 1 of 3 the same; 2 differ:" in changed.lines
    assert (
        "  claim: sac beats random: reference supported, here inconclusive (n = 10 ...)"
        in changed.lines
    )
    missing = replace(_comparison(0.47), decomposition=[])
    assert not compare_conclusions(reference, missing).passed


def _checked_bench(tmp_path: Path, fp: dict[str, Any]) -> Path:
    """A finished hand-made bench: its files and the run_files.json its report would write."""
    results = tmp_path / "results"
    _bench_tree(results)
    report = results / "report" / "clip"
    report.mkdir(parents=True)
    write_run_files(results, "clip", report, fp)
    (report / "comparison.json").write_text(json.dumps(json_ready(_comparison(0.47))))
    return results


def test_the_check_wants_bytes_on_the_same_fingerprint(tmp_path: Path) -> None:
    results = _checked_bench(tmp_path, FP)
    reference = json.loads((results / "report" / "clip" / RUN_FILES_JSON).read_text())
    same = check(results, "clip", reference, _comparison(0.46))
    assert same.passed and same.mode == "bytes"
    assert same.lines[-1] == "same fingerprint: all 7 files byte-identical to the reference"
    finetune = results / "runs" / "clip" / "sac" / "seed0" / "finetune_loss.csv"
    data = bytearray(finetune.read_bytes())
    data[-2] ^= 1  # one byte of the last line
    finetune.write_bytes(bytes(data))
    broken = check(results, "clip", reference, _comparison(0.46))
    assert not broken.passed and broken.mode == "bytes"
    assert broken.lines[-1] == (
        "same fingerprint, but a file differs: runs/clip/sac/seed0/finetune_loss.csv: line 3 "
        "differs (the first that does)"
    )


def test_the_check_compares_conclusions_on_another_fingerprint(tmp_path: Path) -> None:
    results = _checked_bench(tmp_path, FP)
    reference = json.loads((results / "report" / "clip" / RUN_FILES_JSON).read_text())
    reference["fingerprint"] = dict(FP, cpu_vendor="GenuineIntel", cpu_model="Intel Xeon")
    other = check(results, "clip", reference, _comparison(0.46))
    assert other.passed and other.mode == "conclusions"
    assert any("cpu_model, cpu_vendor differ(s)" in line for line in other.lines)
    flipped = check(results, "clip", reference, _comparison(0.46, "contradicted (n = 10)"))
    assert not flipped.passed
    # the report must be the one made from the runs on disk
    (results / "runs" / "clip" / "sac" / "seed0" / "episodes.csv").write_text("other\n")
    with pytest.raises(ValueError, match=r"dvc repro report@clip"):
        check(results, "clip", reference, _comparison(0.46))


def test_the_check_needs_a_finished_bench(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make bench MODEL=clip"):
        check(tmp_path, "clip", {"fingerprint": FP, "files": {}}, _comparison(0.46))


@pytest.mark.integration
def test_the_check_on_the_smoke_pipeline(smoke_pipeline: tuple[Path, str], tmp_path: Path) -> None:
    """The smoke pipeline's report wrote run_files.json with this machine's fingerprint: the
    pipeline passes against a copy of its own report, fails naming the file after one byte of
    a run file changes, and compares conclusions once the reference's fingerprint is edited."""
    repo = tmp_path / "repo"
    shutil.copytree(smoke_pipeline[0], repo, symlinks=True)
    reference = tmp_path / "reference"
    shutil.copytree(repo / "results" / "report" / "clip", reference)
    recorded = json.loads((reference / RUN_FILES_JSON).read_text())
    assert recorded["fingerprint"]["threads"] == 1  # profiles.smoke.threads
    assert "- Fingerprint (what the runs' bits depend on" in (reference / "REPORT.md").read_text()
    args = ("bench", "--model", "clip", "--check-reference", "--reference", str(reference))
    same = rls3(repo, *args)
    assert same.returncode == 0, same.stdout + same.stderr
    n = len(recorded["files"])
    assert f"same fingerprint: all {n} files byte-identical to the reference" in same.stdout
    assert "check of clip against the reference (byte identity): passed" in same.stdout
    metrics = repo / "results" / "runs" / "clip" / "random-hardest" / "seed0" / "metrics.csv"
    data = bytearray(metrics.read_bytes())
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")
    metrics.write_bytes(bytes(data))
    broken = rls3(repo, *args)
    assert broken.returncode == 1
    assert "runs/clip/random-hardest/seed0/metrics.csv: line" in broken.stdout
    assert "check of clip against the reference (byte identity): FAILED" in broken.stdout
    # another machine's reference: the conclusions, once the report is made from these runs
    recorded["fingerprint"]["cpu_vendor"] = "SomeOtherVendor"
    (reference / RUN_FILES_JSON).write_text(json.dumps(recorded))
    stale = rls3(repo, *args)
    assert stale.returncode == 2 and "dvc repro report@clip" in stale.stderr
    metrics.write_bytes((smoke_pipeline[0] / metrics.relative_to(repo)).read_bytes())
    other = rls3(repo, *args)
    assert other.returncode == 0, other.stdout + other.stderr
    assert "another fingerprint (cpu_vendor differ(s))" in other.stdout
    assert "within the reference's 95% interval" in other.stdout
    assert "check of clip against the reference (same conclusions): passed" in other.stdout
