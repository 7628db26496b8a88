"""REPORT.md, the JSON files and the DVC plots from hand-made run files (report/markdown.py)."""

from __future__ import annotations

import csv
from pathlib import Path

from benchmark.report import (
    hardness_rows,
    write_report,
)
from tests.report.helpers import _log, _strict, _write_run


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
    report = write_report(tmp_path, "clip", tmp_path / "report").read_text()
    out = tmp_path / "report"
    comparison = _strict((out / "comparison.json").read_text())
    metrics = _strict((out / "metrics.json").read_text())
    assert comparison["arms"]["sac-dense"]["n_seeds"] == 3
    for key in ("auc_mean", "auc_ci_low", "auc_ci_high", "final_metric_mean", "hardness_n"):
        assert key in metrics["sac_minus_random"]
        assert key in metrics["sac_dense_minus_random"]
    assert "| figure | sac | random | sac-dense | sac - random | sac-dense - random |" in report
    assert "Student t" in report and "bootstrap" not in report
    assert "a `null` means not measured" in report
    assert "supported (n = 3 paired seeds)" in report
    for name in ("fig_hardness", "fig_term_distribution"):
        assert f"figures/{name}.png" in report
        assert (out / "figures" / f"{name}.png").is_file()
    with (out / "plots" / "hardness.csv").open() as f:
        assert next(csv.reader(f)) == [
            "iteration",
            "sac_hardness",
            "random_hardness",
            "sac-dense_hardness",
        ]
