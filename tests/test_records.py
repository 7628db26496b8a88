"""The run files' typed rows: what the loop writes is what the records say, and a name no run
file has is an error wherever it is read."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.records import (
    EPISODE_COLUMNS,
    ITERATION_COLUMNS,
    IterationRow,
    RunSummary,
    UnknownColumn,
    iteration_column,
)
from benchmark.report.runs import RunLog, load_runs


def _row(**extra: float) -> dict[str, float]:
    row = {col: float(i) for i, col in enumerate(ITERATION_COLUMNS.values())}
    return {**row, **extra}


def test_an_iteration_row_round_trips_in_the_written_column_order() -> None:
    row = _row(**{"test/term/left": 0.5, "external/whatsup/metric": 0.25,
                  "batch_terms/left": 3.0, "batch_terms_cum/left": 7.0})  # fmt: skip
    record = IterationRow.from_row(row)
    assert record.test_grounded_gain == row["test/grounded_gain"]
    assert record.subsets == {"test/term/left": 0.5}
    assert record.external == {"external/whatsup/metric": 0.25}
    assert record.to_row() == row and list(record.to_row()) == list(row)


@pytest.mark.parametrize("name", ["test/metrc", "hardnes", "test/term/", "batch_term/left"])
def test_an_unknown_column_is_an_error(name: str) -> None:
    with pytest.raises(UnknownColumn, match=r"metrics\.csv has no column"):
        iteration_column(name)
    with pytest.raises(UnknownColumn):
        IterationRow.from_row(_row(**{name: 1.0}))
    log = RunLog("sac", 0, {}, [_row()], [])
    with pytest.raises(UnknownColumn):
        log.column(name)
    assert np.isnan(log.column("test/term/left")).all()  # a known column, not recorded: NaN


def test_a_row_without_a_fixed_column_is_an_error() -> None:
    row = _row()
    del row["test/control"]
    with pytest.raises(UnknownColumn, match=r"without the columns \['test/control'\]"):
        IterationRow.from_row(row)


def test_an_episode_column_is_checked_too() -> None:
    log = RunLog("sac", 0, {}, [], [], [{name: 1.0 for name in EPISODE_COLUMNS}])
    assert log.episode_column("j1").tolist() == [1.0]
    with pytest.raises(UnknownColumn, match=r"episodes\.csv has no column 'j3'"):
        log.episode_column("j3")


def test_a_run_file_with_an_unknown_column_does_not_load(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "clip" / "sac" / "seed0"
    run.mkdir(parents=True)
    summary = {"seed": 0, "finished": True}
    (run / "summary.json").write_text(json.dumps(summary))
    with (run / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*_row(), "test/metrc"])
        writer.writeheader()
        writer.writerow({**_row(), "test/metrc": 1.0})
    with pytest.raises(UnknownColumn, match="'test/metrc'"):
        load_runs(tmp_path, "clip")


def test_a_summary_keeps_its_keys_and_leaves_out_external_hashes_without_sets() -> None:
    summary = RunSummary("clip", "sac", 0, "smoke", 1, 0.99, {"batch_size": 64}, {"lr": 0.1}, True,
                         "budget", 3, 30, 20, 2 / 3, None, 0.3, 0.4, 0.5, 1.0, "id",
                         {"test": "h"})  # fmt: skip
    written = summary.to_dict()
    assert "external_hashes" not in written
    assert list(written)[:4] == ["model", "arm", "seed", "profile"]
    with_sets = RunSummary(**{**written, "external_hashes": {"whatsup": "h"}})
    assert with_sets.to_dict()["external_hashes"] == {"whatsup": "h"}
