"""The DVC pipeline end to end: a copy of the repository, ``dvc repro`` with the smoke profile.

Every stage is the real command on the real simulator and models; the assertions read what the
stages wrote. The test that changes a param does so in its own copy, so the tests run in any
order.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from benchmark.arms import ARMS
from benchmark.config import MAX_SEEDS
from benchmark.slots import run_stage, run_stage_prefix
from tests.pipeline import (
    EXTERNAL_SET,
    ROOT,
    SEED_SLOTS_LINE,
    dvc,
    params_reads,
    rls3,
)

FIGURES = (
    "fig5_efficiency",
    "fig6_terms",
    "fig7_n_terms",
    "fig8_loss",
    "fig9_validation",
    "valid_rate_iterations",
    "fig_hardness",
    "fig_term_distribution",
)


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def _stages(repo: Path) -> set[str]:
    listed = dvc(repo, "stage", "list", "--name-only")
    assert listed.returncode == 0, listed.stderr
    return set(listed.stdout.split())


def test_every_stage_ran(smoke_pipeline: tuple[Path, str]) -> None:
    repo, output = smoke_pipeline
    stages = _stages(repo)
    # the copy's two seed slots: the check, 8 previews, datasets, 2 base models, 2 learnability
    # probes, 2 agents, 20 runs (5 arms x 2 models x 2 slots), 3 reports
    assert len(stages) == 1 + 8 + 1 + 2 + 2 + 2 + len(ARMS) * 2 * 2 + 3 == 39
    assert {"probe_learnability@clip", "probe_learnability@paligemma"} <= stages
    # the scene previews do not depend on the profile: where the committed dvc.lock and
    # pictures are current, DVC skips them
    previews = {s for s in stages if s.startswith("scene_preview@")}
    assert len(previews) == 8
    assert stages - previews <= _ran(output) <= stages


def test_the_real_pipeline_has_a_stage_per_seed_slot_and_arm() -> None:
    """The repository's own dvc.yaml (the tests' copies have two seed slots): MAX_SEEDS slots,
    an agent per slot and a run per arm, model and slot; DVC lists it without running it."""
    assert SEED_SLOTS_LINE in (ROOT / "dvc.yaml").read_text()
    stages = _stages(ROOT)
    assert len(stages) == 1 + 8 + 1 + 2 + 2 + MAX_SEEDS + len(ARMS) * 2 * MAX_SEEDS + 3 == 127
    for arm in ARMS:
        for model in ("clip", "paligemma"):
            slots = {s for s in stages if s.startswith(run_stage_prefix(arm, model))}
            assert slots == {run_stage(arm, model, i) for i in range(MAX_SEEDS)}


def test_the_report_and_its_figures_exist(smoke_pipeline: tuple[Path, str]) -> None:
    repo, _ = smoke_pipeline
    for model in ("clip", "paligemma"):
        report = repo / "results" / "report" / model
        text = (report / "REPORT.md").read_text()
        assert "## The paper's claims beside this run" in text
        assert f"- Base model: the built-in {model}, base-trained without spatial words" in text
        for name in FIGURES:
            png = report / "figures" / f"{name}.png"
            assert f"figures/{name}.png" in text
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
            assert pixels.shape[0] > 300 and pixels.std() > 5  # drawn on, not blank
    index = (repo / "results" / "report" / "REPORT.md").read_text()
    assert "[clip/REPORT.md]" in index and "[paligemma/REPORT.md]" in index


def test_the_comparison_is_read_from_the_runs(smoke_pipeline: tuple[Path, str]) -> None:
    repo, _ = smoke_pipeline
    comparison = json.loads((repo / "results/report/clip/comparison.json").read_text())
    for arm in ARMS:
        with (repo / f"results/runs/clip/{arm}/seed0/metrics.csv").open() as f:
            rows = list(csv.DictReader(f))
        (seed,) = comparison["arms"][arm]["seeds"]
        assert seed["final_metric"] == float(rows[-1]["test/metric"])
        assert seed["generated_samples"] == float(rows[-1]["generated_samples"])
    sac, rnd = (comparison["arms"][a]["seeds"][0] for a in ("sac", "random"))
    for arm in ARMS:  # every arm spent the sac run's budget
        assert comparison["arms"][arm]["seeds"][0]["generated_samples"] == sac["generated_samples"]
    assert comparison["difference"]["auc"]["per_seed"] == [sac["auc"] - rnd["auc"]]
    # unused seed slots are markers, not runs
    marker = json.loads((repo / "results/runs/clip/sac/seed1/summary.json").read_text())
    assert "profile smoke uses 1 seed" in marker["skipped"]


def test_dvc_metrics_and_plots_show_the_comparison(smoke_pipeline: tuple[Path, str]) -> None:
    repo, _ = smoke_pipeline
    shown = dvc(repo, "metrics", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    metrics = json.loads(shown.stdout)
    data = next(iter(metrics.values()))["data"]
    clip = data["results/report/clip/metrics.json"]["data"]
    for key in ("auc_mean", "auc_n", "final_metric_mean", "hardness_mean"):
        assert key in clip["sac_minus_random"]
    assert "auc_mean" in clip["sac_dense_minus_random"]
    assert [clip[arm]["n_seeds"] for arm in ARMS] == [1] * len(ARMS)
    # one seed gives no interval: null in metrics.json, which `dvc metrics show` leaves out
    written = json.loads((repo / "results/report/clip/metrics.json").read_text())
    assert written["sac_minus_random"]["auc_ci_low"] is None
    assert "auc_ci_low" not in clip["sac_minus_random"]
    plots = dvc(repo, "plots", "show", "--json")
    assert plots.returncode == 0, plots.stderr
    assert "efficiency" in plots.stdout and "finetune_loss" in plots.stdout


def test_the_learnability_probe_is_a_dvc_metric(smoke_pipeline: tuple[Path, str]) -> None:
    repo, _ = smoke_pipeline
    probe = json.loads((repo / "results/probe/clip/learnability.json").read_text())
    assert probe["train_samples"] == 16 and probe["sample_passes"] == 32  # smoke's probe block
    assert probe["test_samples"] == 24  # the smoke test set, scored before and after
    shown = dvc(repo, "metrics", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert "results/probe/clip/learnability.json" in shown.stdout


# Keys a stage depends on that its command does not read in the smoke pipeline, and why.
NOT_READ: dict[str, tuple[tuple[str, ...], str]] = {
    "*": (
        ("sim.unity",),
        "the Unity player's block is read on that backend alone (the smoke profile's is "
        "embedded; tests/sim/test_unity.py runs the other)",
    ),
}


def _leaves(key: str, value: object) -> list[str]:
    """The keys of every value under ``key`` (a list is one value, as a read of it is)."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(f"{key}.{k}", v)]
    return [key]


def _under(key: str, block: str) -> bool:
    return key == block or key.startswith(f"{block}.")


def test_each_stage_depends_on_exactly_the_params_it_reads(
    smoke_pipeline: tuple[Path, str],
) -> None:
    """Every command of the smoke pipeline recorded the params keys it read
    (``benchmark.paramreads.READS_ENV``). For each stage in dvc.lock: every key its command read is
    among its params deps (else a changed value would not re-run it), and every key of those
    deps is read (else a change re-runs it for nothing), but for the keys ``NOT_READ`` excuses,
    each with its reason. A slot the profile leaves unused reads less than the stage
    declares (its seeds alone), so only the first holds there. ``check`` has no params deps:
    it runs on every ``dvc repro``."""
    repo, _ = smoke_pipeline
    reads: dict[tuple[str, ...], set[str]] = {}
    for record in params_reads(repo).glob("*.json"):
        data = json.loads(record.read_text())
        reads.setdefault(tuple(data["argv"]), set()).update(data["reads"])
    locked = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    stages = {name: locked[name] for name in _stages(repo)}  # the copy's (it has two slots)
    profile = "profiles.smoke."
    checked = 0
    for name, stage in stages.items():
        argv = tuple(shlex.split(stage["cmd"])[1:])
        declared: dict[str, object] = stage.get("params", {}).get("params.yaml", {})
        if name == "check":
            assert not declared
            continue
        read = reads.get(argv, set())  # a command that reads no params records nothing
        assert ("profile" in read) == ("profile" in declared), name
        undeclared = sorted(k for k in read if not any(_under(k, d) for d in declared))
        assert not undeclared, f"{name} reads params it does not depend on: {undeclared}"
        summaries = [repo / o["path"] / "summary.json" for o in stage.get("outs", [])]
        if any(s.is_file() and "skipped" in json.loads(s.read_text()) for s in summaries):
            continue
        unread = {
            leaf
            for key, value in declared.items()
            for leaf in _leaves(key, value)
            if not any(_under(leaf, k) or _under(k, leaf) for k in read)
        }
        excused = {
            leaf
            for leaf in unread
            for stage in ("*", name)
            if any(_under(leaf, profile + k) for k in NOT_READ.get(stage, ((), ""))[0])
        }
        assert unread == excused, f"{name} depends on params it never reads: {unread - excused}"
        if name in NOT_READ:  # an excuse that no longer holds goes
            assert {profile + k for k in NOT_READ[name][0]} <= unread, name
        checked += 1
    # every kind of stage was held to both: previews, datasets, base models, probes, an agent,
    # the used slot's 10 runs and the 3 reports
    assert checked == 8 + 1 + 2 + 2 + 1 + len(ARMS) * 2 + 3


def test_a_second_repro_does_nothing(smoke_pipeline: tuple[Path, str]) -> None:
    repo, _ = smoke_pipeline
    again = dvc(repo, "repro")
    assert again.returncode == 0, again.stderr
    # the check runs every time (in seconds); what it wrote is unchanged, so nothing else runs
    assert _ran(again.stdout) == {"check"}
    assert "rls3 check: 0 problem(s); passed" in again.stdout
    skipped = set(re.findall(r"Stage '([^']+)' didn't change, skipping", again.stdout))
    assert skipped == _stages(repo) - {"check"}


def test_changing_one_param_reruns_only_its_dependants(
    smoke_pipeline: tuple[Path, str], tmp_path: Path
) -> None:
    """CLIP's K changed: DVC finds exactly CLIP's run stages changed (every arm, both seed
    slots), none upstream of them (datasets, base models, probes, agents) and none of
    PaliGemma's; the reports follow the runs' outputs. The sac run, re-run alone, starts afresh
    (its checkpoint came from other params) and fine-tunes K = 2 epochs an iteration."""
    repo = tmp_path / "repo"  # a copy: the session's pipeline stays as its fixture made it
    shutil.copytree(smoke_pipeline[0], repo, symlinks=True)
    params = repo / "params.yaml"
    data = yaml.safe_load(params.read_text())
    data["profiles"]["smoke"]["clip"]["k"] = 2  # CLIP's fine-tuning epochs
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    status = dvc(repo, "status", "--json")
    assert status.returncode == 0, status.stderr
    changed = set(json.loads(status.stdout)) - {"check"}  # the check is always changed
    prefixes = tuple(run_stage_prefix(a, "clip") for a in ARMS)
    assert changed == {s for s in _stages(repo) if s.startswith(prefixes)}
    assert len(changed) == len(ARMS) * 2
    sac = run_stage("sac", "clip", 0)
    done = dvc(repo, "repro", "--single-item", sac)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _ran(done.stdout) == {sac}
    # the sac run started afresh (its checkpoint came from other params) and used the new K
    with (repo / "results/runs/clip/sac/seed0/finetune_loss.csv").open() as f:
        losses = list(csv.DictReader(f))
    with (repo / "results/runs/clip/sac/seed0/metrics.csv").open() as f:
        batches = [int(r["batch_size"]) for r in csv.DictReader(f)][1:]
    batch = 8  # profiles.smoke.clip.finetune.batch_size
    steps_per_epoch = [-(-b // batch) for b in batches]
    assert len(losses) == 2 * sum(steps_per_epoch)
    status = dvc(repo, "status", "--json")
    assert set(json.loads(status.stdout)) - {"check"} == changed - {sac} | {"report@clip"}


def test_every_run_scores_the_external_set_and_the_report_shows_it(
    smoke_pipeline: tuple[Path, str],
) -> None:
    """The copy's What'sUp-layout set: a score in every metrics.csv row of every run; each
    report's table and claims row; ``rls3 eval`` on a run's final checkpoint gives its last
    score (PaliGemma here: the rubric of its answers; CLIP in tests/test_loop.py)."""
    repo, _ = smoke_pipeline
    for model in ("clip", "paligemma"):
        for arm in ARMS:
            with (repo / f"results/runs/{model}/{arm}/seed0/metrics.csv").open() as f:
                rows = list(csv.DictReader(f))
            assert all(r["external/whatsup/metric"] != "" for r in rows), (model, arm)
        comparison = json.loads((repo / f"results/report/{model}/comparison.json").read_text())
        sac = comparison["external"]["whatsup"]["sac"]
        with (repo / f"results/runs/{model}/sac/seed0/metrics.csv").open() as f:
            rows = list(csv.DictReader(f))
        first, last = (float(r["external/whatsup/metric"]) for r in (rows[0], rows[-1]))
        assert sac["seeds"][0]["gain"] == pytest.approx(last - first)
        text = (repo / f"results/report/{model}/REPORT.md").read_text()
        assert "## External sets" in text and "**whatsup**" in text
        claim = next(c for c in comparison["claims"] if "carry over to whatsup" in c["claim"])
        assert claim["verdict"].startswith("inconclusive (n = 1 per-arm seed")  # one seed
        metrics = json.loads((repo / f"results/report/{model}/metrics.json").read_text())
        assert metrics["external_whatsup"]["sac"]["final_mean"] == pytest.approx(last, abs=1e-5)
    out = repo / "eval_paligemma.json"
    done = rls3(repo, "eval", "--model", "paligemma", "--set", "whatsup", "--json", str(out),
                "--base", "results/runs/paligemma/sac/seed0/checkpoint/vlm")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(out.read_text())["scores"]["metric"] == last
    assert "rubric S_PG (1-5) of the answer to the position question" in done.stdout


def test_a_changed_module_of_the_loop_makes_the_runs_changed_and_nothing_else(
    smoke_pipeline: tuple[Path, str], tmp_path: Path
) -> None:
    """The run stages' code dep is the check's digest of ``CODE_PATHS``
    (results/check/run_code.json): a changed loop.py, once the check has run, makes every run
    stage (and only those) changed; the agents, whose code does not include the loop, stay up
    to date, and the file names the module."""
    repo = tmp_path / "repo"  # a copy: the session's pipeline stays as its fixture made it
    shutil.copytree(smoke_pipeline[0], repo, symlinks=True)
    loop = repo / "benchmark" / "loop.py"
    loop.write_text(loop.read_text() + "\n# changed\n")
    before = json.loads((repo / "results/check/run_code.json").read_text())
    done = dvc(repo, "repro", "--single-item", "check")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    after = json.loads((repo / "results/check/run_code.json").read_text())
    changed_files = {f for f in after["files"] if after["files"][f] != before["files"].get(f)}
    assert changed_files == {"loop.py"} and after["digest"] != before["digest"]
    status = dvc(repo, "status", "--json")
    assert status.returncode == 0, status.stderr
    changed = set(json.loads(status.stdout)) - {"check"}  # the check is always changed
    runs = {s for s in _stages(repo) if s.startswith("run_")}
    assert changed == runs and len(runs) == len(ARMS) * 2 * 2


def test_a_changed_external_image_reruns_the_runs_that_score_it_and_nothing_else(
    smoke_pipeline: tuple[Path, str], tmp_path: Path
) -> None:
    """The check records each set's content hash (results/check/external.json), which every run
    stage depends on: one changed image leaves the datasets, base models, probes and agents
    up to date and makes every run stage (and only those) changed."""
    repo = tmp_path / "repo"  # a copy: the session's pipeline stays as its fixture made it
    shutil.copytree(smoke_pipeline[0], repo, symlinks=True)
    image = sorted((repo / EXTERNAL_SET.parent / "controlled_images").iterdir())[0]
    image.write_bytes(image.read_bytes() + b"\0")
    done = dvc(repo, "repro", "--single-item", "check")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    status = dvc(repo, "status", "--json")
    assert status.returncode == 0, status.stderr
    changed = set(json.loads(status.stdout)) - {"check"}  # the check is always changed
    runs = {s for s in _stages(repo) if s.startswith("run_")}
    assert changed == runs and len(runs) == len(ARMS) * 2 * 2
