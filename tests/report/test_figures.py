"""The figures draw from hand-made runs (benchmark/report/figures.py)."""

from __future__ import annotations

from pathlib import Path

from benchmark.report import (
    fig_hardness,
    fig_term_distribution,
)
from tests.report.helpers import _log, _with_batch_terms


def test_the_hardness_and_term_figures_draw_with_and_without_the_columns(tmp_path: Path) -> None:
    with_columns = {
        "sac": [
            _with_batch_terms(
                _log("sac", 0, [0.3, 0.4, 0.5], hardness=[1.0, 2.0]),
                [{"left": 2}, {"above": 1}],
                False,
            )
        ],
        "random": [_log("random", 0, [0.3, 0.4, 0.5], hardness=[0.5, 0.6])],
    }
    old = {"sac": [_log("sac", 0, [0.3, 0.4])]}
    for name, runs in (("new", with_columns), ("old", old)):
        for draw in (fig_hardness, fig_term_distribution):
            path = draw(runs, "clip", tmp_path / f"{name}_{draw.__name__}.png")
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
