"""REPORT.md, the JSON files and the DVC plots from hand-made run files (report/markdown.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.comparison import Comparison
from benchmark.config import ARMS
from benchmark.report import (
    DIFFERENCES,
    METRICS_KEY,
    format_stat,
    hardness_rows,
    write_index,
    write_report,
)
from tests.report.helpers import _log, _strict, _write_five_arms, _write_run


def test_hardness_plot_rows_average_the_seeds_per_iteration() -> None:
    runs = {
        "sac": [
            _log("sac", 0, [0.3, 0.4, 0.5], hardness=[1.0, 2.0]),
            _log("sac", 1, [0.3, 0.4], hardness=[3.0]),
        ],
        "random": [_log("random", 0, [0.3, 0.4, 0.5])],
    }
    assert hardness_rows(runs) == [
        {"iteration": 1, "sac_hardness": 2.0, "random_hardness": None},
        {"iteration": 2, "sac_hardness": 2.0, "random_hardness": None},
    ]


def test_the_report_of_three_arms_is_written_with_strict_json(tmp_path: Path) -> None:
    for seed in range(3):
        for arm, gain in (("sac", 0.02), ("random", 0.0), ("sac-dense", 0.01)):
            _write_run(tmp_path, arm, seed, gain + 0.002 * seed)
    report = write_report(tmp_path, "clip", tmp_path / "report", margin=0.02).read_text()
    out = tmp_path / "report"
    comparison = _strict((out / "comparison.json").read_text())
    metrics = _strict((out / "metrics.json").read_text())
    assert comparison["arms"]["sac-dense"]["n_seeds"] == 3
    for key in ("auc_mean", "auc_ci_low", "auc_ci_high", "final_metric_mean", "hardness_n"):
        assert key in metrics["sac_minus_random"]
        assert key in metrics["sac_dense_minus_random"]
    assert "| figure | sac | random | sac-dense | sac - random | sac-dense - random |" in report
    assert "Student t" in report and "bootstrap" not in report.split("## Where")[0]
    assert "a `null` means not measured" in report
    assert "supported (n = 3 paired seeds)" in report
    assert "seeds: 3 sac, 3 random, 3 sac-dense (sac-nofeedback, random-hardest: no runs" in report
    assert "three" not in report
    for name in ("fig_hardness", "fig_term_distribution"):
        assert f"figures/{name}.png" in report
        assert (out / "figures" / f"{name}.png").is_file()
    with (out / "plots" / "grounded_gain.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == list(range(5))  # the base model on
    assert float(rows[0]["sac_grounded_gain"]) == pytest.approx(0.0, abs=1e-9)
    assert float(rows[-1]["sac_grounded_gain"]) > float(rows[-1]["random_grounded_gain"]) > 0
    with (out / "plots" / "hardness.csv").open() as f:
        assert next(csv.reader(f)) == [
            "iteration",
            "sac_hardness",
            "random_hardness",
            "sac-dense_hardness",
        ]


def _rows(report: str, section: str, which: int = 0) -> list[list[str]]:
    """The cells of the body of table ``which`` (0: the first) under the heading ``section``."""
    lines = report.split(f"\n{section}\n", 1)[1].split("\n#", 1)[0].splitlines()
    tables: list[list[list[str]]] = []
    for i, line in enumerate(lines):
        if line.startswith("| ") and (i == 0 or not lines[i - 1].startswith("|")):
            tables.append([])
        elif line.startswith("| ") and not line.startswith("| ---"):
            tables[-1].append([cell.strip() for cell in line.strip("|").split(" | ")])
    return tables[which]


def test_the_report_of_five_arms_and_ten_seeds(tmp_path: Path) -> None:
    _write_five_arms(tmp_path, 10)
    report = write_report(tmp_path, "clip", tmp_path / "report", margin=0.02).read_text()
    out = tmp_path / "report"
    comparison = _strict((out / "comparison.json").read_text())
    metrics = _strict((out / "metrics.json").read_text())
    assert "seeds: 10 sac, 10 random, 10 sac-dense, 10 sac-nofeedback, 10 random-hardest" in report
    assert "Paired seeds: 0-9 (every measured difference)" in report
    assert "delta = 0.02 in the test metric, set by the params key `profiles.test.clip.margin`" in (
        report
    )
    assert "compares every run of one arm with every run of the other" in report

    decomposition = _rows(report, "## Where the headline difference comes from")
    assert [row[:2] for row in decomposition] == [
        ["feasibility", "sac-nofeedback - random"],
        ["the VLM's feedback", "sac - sac-nofeedback"],
        ["hard-sample selection without RL", "random-hardest - random"],
        ["dense reward", "sac-dense - sac"],
        ["the paper's headline", "sac - random"],
    ]
    for row in decomposition:
        assert len(row) == 9
        assert row[4].endswith("(n = 10 paired seeds)")
        assert "n/a" not in row
    assert [row["verdict"] for row in comparison["decomposition"]] == [
        row[4] for row in decomposition
    ]
    headline = comparison["differences"]["sac - random"]["final_metric"]
    assert decomposition[-1][2].startswith(f"{headline['mean']:+.3f} [")
    assert decomposition[-1][5] == f"{headline['mde']:.3f} / " + (
        f"{comparison['differences']['sac - random']['auc']['mde']:.3f}"
    )
    assert decomposition[-1][6].startswith(f"{headline['poi']:.2f} [")
    headline_auc = comparison["differences"]["sac - random"]["auc"]
    assert decomposition[-1][8] == (
        f"{headline['seeds_for_margin']:.0f} / {headline_auc['seeds_for_margin']:.0f}"
    )

    differences = _rows(report, "### Every paired difference")
    assert len(differences[0]) == 1 + len(DIFFERENCES)
    assert differences[-1] == ["paired seeds (n)", *["10"] * len(DIFFERENCES)]
    mde = next(
        row for row in differences if row[0] == "minimum detectable difference, final metric"
    )
    poi = next(row for row in differences if row[0] == "probability of improvement, AUC / budget")
    seeds = next(
        row for row in differences if row[0] == "paired seeds for an MDE of ±0.02, AUC / budget"
    )
    for name, mde_cell, poi_cell, seeds_cell in zip(
        DIFFERENCES, mde[1:], poi[1:], seeds[1:], strict=True
    ):
        diff = comparison["differences"][name]
        assert mde_cell == f"{diff['final_metric']['mde']:.3f}"
        assert poi_cell.startswith(f"{diff['auc']['poi']:.2f} [")
        assert seeds_cell == f"{diff['auc']['seeds_for_margin']:.0f}"
        assert metrics[METRICS_KEY[name]]["auc_seeds_for_margin"] == diff["auc"]["seeds_for_margin"]

    table = {row[0]: row[1:] for row in _rows(report, "## Comparison of the arms")}
    grounded = table["**grounded gain**: final metric - control"]
    record = Comparison.from_json(comparison)  # format_stat reads the records
    for arm, cell in zip(ARMS, grounded, strict=False):
        stat = comparison["arms"][arm]["stats"]["grounded_gain"]
        assert stat["n"] == 10 and stat["ci_low"] > 0
        assert cell == format_stat(record.arms[arm].stats["grounded_gain"])
    headline_gain = record.differences["sac - random"]["grounded_gain"]
    assert grounded[len(ARMS)] == format_stat(headline_gain, signed=True)  # sac - random
    (verdict,) = [c["verdict"] for c in comparison["claims"] if "grounded" in c["claim"]]
    assert verdict == "supported (n = 10 per-arm seeds; every interval above 0)"
    assert (out / "figures" / "fig_grounded.png").stat().st_size > 10_000

    terms = _rows(report, "## Per spatial term and by number of terms")
    assert [row[0] for row in terms] == ["above", "below", "behind", "in front of", "left", "right"]
    assert all(len(row) == 1 + len(ARMS) + 2 for row in terms)
    assert all(row[-1].endswith("(n = 10 paired seeds)") for row in terms)
    n_terms = _rows(report, "## Per spatial term and by number of terms", 1)
    assert [row[0] for row in n_terms] == ["1 term", "2 terms", "3 terms"]
    assert all(row[-1].endswith("(n = 10 paired seeds)") for row in n_terms)

    balance = _rows(report, "## Reward balance")
    assert [row[:2] for row in balance] == [
        ["sac", "episode_end"],
        ["random", "none"],
        ["sac-dense", "dense"],
        ["sac-nofeedback", "none"],
        ["random-hardest", "none"],
    ]
    assert balance[1][4] == "0.0 [0.0, 0.0]" and balance[1][5] == "0.0% [0.0%, 0.0%]"
    assert comparison["arms"]["sac"]["stats"]["vlm_share"]["mean"] > 0.5

    for name, key in METRICS_KEY.items():
        block = metrics[key]
        for part in ("final_metric_mde", "auc_poi", "auc_poi_ci_low", "final_metric_equivalence_p"):
            assert block[part] is not None, (name, part)
    assert metrics["sac_minus_random"]["verdict"] == decomposition[-1][4]
    assert metrics["sac_minus_random"]["effect"] == "the paper's headline"
    assert metrics["margin"] == 0.02 and metrics["margin_key"] == "profiles.test.clip.margin"
    assert metrics["by_term"]["random-hardest"]["above_mean"] is not None
    assert metrics["by_term"]["sac_minus_random"]["above_verdict"] == terms[0][-1]
    assert metrics["by_n_terms"]["sac"]["1_n"] == 10
    assert comparison["by_n_terms"]["sac - random"]["2"]["n"] == 10
    assert metrics["sac-nofeedback"]["vlm_share_mean"] == 0.0


def test_older_results_without_the_new_arms_or_episodes(tmp_path: Path) -> None:
    for seed in range(3):
        for arm, gain in (("sac", 0.02), ("random", 0.0)):
            _write_run(tmp_path, arm, seed, gain)
            (tmp_path / "runs" / "clip" / arm / f"seed{seed}" / "episodes.csv").unlink()
    report = write_report(tmp_path, "clip", tmp_path / "report", margin=0.05).read_text()
    decomposition = _rows(report, "## Where the headline difference comes from")
    absent = "not measured (n = 0 paired seeds; no seed ran both arms)"
    assert [row[4] for row in decomposition[:4]] == [absent] * 4
    assert decomposition[0][2:4] == ["n/a", "n/a"]
    assert decomposition[4][4].endswith("(n = 3 paired seeds)")
    assert "| figure | sac | random | sac - random |" in report
    assert "Not measured (an arm without runs): sac-dense - random, sac-dense - sac" in report
    balance = _rows(report, "## Reward balance")
    assert [row[0] for row in balance] == ["sac", "random"]
    assert balance[0][2:] == ["n/a"] * 4
    metrics = _strict((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["sac_nofeedback_minus_random"]["final_metric_mean"] is None
    assert metrics["sac_nofeedback_minus_random"]["verdict"] == absent


def test_the_index_lists_every_arm(tmp_path: Path) -> None:
    _write_five_arms(tmp_path, 3)
    write_report(tmp_path, "clip", tmp_path / "report" / "clip", margin=0.02)
    index = write_index(tmp_path / "report", ["clip"]).read_text()
    header, rule, row = index.splitlines()[2:5]
    assert header.startswith(f"| model | seeds ({' / '.join(ARMS)}) |")
    assert header.count("|") == rule.count("|") == row.count("|")
    assert row.startswith("| clip | 3 / 3 / 3 / 3 / 3 |")


def test_rls3_report_takes_the_margin_from_the_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["profiles"][params["profile"]]["clip"]["margin"] = 0.035
    _write_five_arms(tmp_path, 3)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["report", "--model", "clip", "--results", ".", "--out", "report"]) == 0
    report = (tmp_path / "report" / "REPORT.md").read_text()
    key = f"profiles.{params['profile']}.clip.margin"
    assert f"delta = 0.035 in the test metric, set by the params key `{key}`" in report
    comparison = _strict((tmp_path / "report" / "comparison.json").read_text())
    assert comparison["margin"] == 0.035
    assert comparison["differences"]["sac - random"]["auc"]["equivalence_margin"] == 0.035


def test_the_setting_says_in_bold_where_fine_tuning_departs_from_the_paper() -> None:
    from benchmark.report.markdown import _finetune_line

    whole = _finetune_line("paligemma", {"k": 64, "finetune": {"trainable": "language_model"}})
    assert whole.startswith("K = 64 steps; trainable 'language_model'.")
    assert "**The whole language model trains**" in whole
    paper = _finetune_line("paligemma", {"k": 256, "finetune": {"trainable": "attention"}})
    assert "**" not in paper
    locked = _finetune_line("clip", {"k": 24, "finetune": {"lock_image": True}})
    assert "**The image trunk is locked**" in locked and "language model" not in locked
