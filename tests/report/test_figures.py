"""The figures draw from hand-made runs (benchmark/report/figures.py), five arms and ten seeds
included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.config import ARMS
from benchmark.report import (
    BRACKETS,
    COLOURS,
    LINE_STYLES,
    MARKERS,
    compare,
    fig_efficiency,
    fig_hardness,
    fig_loss,
    fig_n_terms,
    fig_term_distribution,
    fig_terms,
    fig_valid_rate,
    fig_validation,
    load_runs,
    seed_ranges,
    stop_groups,
)
from tests.report.helpers import _log, _with_batch_terms, _write_five_arms


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


def test_every_arm_has_a_colour_a_line_style_a_marker_and_brackets() -> None:
    for style in (COLOURS, LINE_STYLES, MARKERS, BRACKETS):
        assert set(style) == set(ARMS)
    for style in (COLOURS, MARKERS, BRACKETS):
        assert len(set(style.values())) == len(ARMS)  # no two arms alike
    assert len({str(v) for v in LINE_STYLES.values()}) == len(ARMS)


def test_every_figure_draws_five_arms_and_ten_seeds(tmp_path: Path) -> None:
    _write_five_arms(tmp_path, 10)
    runs = load_runs(tmp_path, "clip")
    comparison = compare(runs)
    drawn = [
        draw(runs, "clip", tmp_path / f"{draw.__name__}.png")
        for draw in (
            fig_efficiency,
            fig_terms,
            fig_n_terms,
            fig_loss,
            fig_validation,
            fig_hardness,
            fig_term_distribution,
        )
    ]
    drawn.append(fig_valid_rate(comparison, "clip", tmp_path / "fig_valid_rate.png"))
    for path in drawn:
        pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
        assert pixels.shape[0] > 300 and pixels.std() > 5, path.name


def test_the_stopping_points_are_grouped_for_the_legend(tmp_path: Path) -> None:
    _write_five_arms(tmp_path, 10)
    sac = load_runs(tmp_path, "clip")["sac"]
    # seed s stops after 5 + s % 4 iterations, by early stopping unless s % 3 == 0
    assert stop_groups(sac) == [
        (5, "early_stopping", [4, 8]),
        (5, "max_iterations", [0]),
        (6, "early_stopping", [1, 5]),
        (6, "max_iterations", [9]),
        (7, "early_stopping", [2]),
        (7, "max_iterations", [6]),
        (8, "early_stopping", [7]),
        (8, "max_iterations", [3]),
    ]


def test_seed_lists_are_written_as_ranges() -> None:
    assert seed_ranges([3, 0, 1, 2, 5, 7, 8]) == "0-3, 5, 7-8"
    assert seed_ranges([4]) == "4"
    assert seed_ranges(list(range(10))) == "0-9"
