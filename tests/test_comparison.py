"""``comparison.json`` as typed records (``benchmark/comparison.py``): the committed reports'
files read back and written again byte for byte, and read strictly."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmark.comparison import Comparison, Difference, Estimate, SeedFigures
from benchmark.records import UnknownColumn
from benchmark.report.stats import json_ready
from tests.pipeline import ROOT

REPORTS = sorted((ROOT / "results" / "report").glob("*/comparison.json"))


def _written(comparison: Comparison) -> str:
    """The text ``write_report`` gives the comparison (``atomic_write_json``)."""
    return json.dumps(json_ready(comparison), indent=2) + "\n"


@pytest.mark.parametrize("path", REPORTS, ids=[p.parent.name for p in REPORTS])
def test_a_committed_comparison_reads_back_and_writes_the_same_bytes(path: Path) -> None:
    text = path.read_text()
    comparison = Comparison.from_json(json.loads(text))
    assert _written(comparison) == text
    assert comparison.margin is not None and comparison.margin > 0
    assert comparison.claims and comparison.decomposition and comparison.fingerprint
    sac = comparison.arms["sac"]
    assert sac.n_seeds == len(sac.seeds) > 0
    assert sac.stats["final_metric"].n == sac.n_seeds
    assert math.isclose(
        sac.stats["final_metric"].mean, sum(s.final_metric for s in sac.seeds) / sac.n_seeds
    )
    headline = comparison.differences["sac - random"]["final_metric"]
    assert comparison.difference["final_metric"] == headline
    assert headline.poi is not None and headline.equivalence_margin == comparison.margin
    assert comparison.by_term.sac_minus_random.keys() == sac.seeds[0].terms.keys()


def test_both_reference_reports_are_read() -> None:
    assert [p.parent.name for p in REPORTS] == ["clip", "paligemma"]


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_an_unknown_key_is_an_error_naming_it() -> None:
    data = _json(REPORTS[0])
    data["arms"]["sac"]["stats"]["final_metric"]["median"] = 0.5
    with pytest.raises(UnknownColumn, match="Estimate has no key 'median'"):
        Comparison.from_json(data)
    data = _json(REPORTS[0])
    data["arms"]["sac"]["seeds"][0]["term/under"] = 0.5  # a family's prefix, an unknown term
    seed = SeedFigures.from_json(data["arms"]["sac"]["seeds"][0])
    with pytest.raises(UnknownColumn, match="'term/nowhere'"):
        seed.value("term/nowhere")
    assert seed.value("term/under") == 0.5  # read into its family, as the file has it
    data = _json(REPORTS[0])
    data["arms"]["sac"]["seeds"][0]["final_metrik"] = 0.5
    with pytest.raises(UnknownColumn, match="'final_metrik'"):
        Comparison.from_json(data)


def test_a_missing_key_is_an_error() -> None:
    data = _json(REPORTS[0])
    del data["differences"]["sac - random"]["auc"]["mde"]
    with pytest.raises(UnknownColumn, match=r"Difference without the keys \['mde'\]"):
        Comparison.from_json(data)


def test_null_is_nan_in_a_figure_and_none_where_none_means_something() -> None:
    """A figure written as null (NaN: not measured) reads back as NaN; the margin's null (no
    equivalence test) and a run that has not stopped read back as None; an optional key the
    file leaves out reads back as None and is left out again."""
    data = _json(REPORTS[0])
    data["margin"] = None
    data["arms"]["sac"]["stats"]["hardness"]["ci_low"] = None
    data["arms"]["sac"]["seeds"][0]["stopped"] = None
    data["differences"]["sac - random"]["final_metric"]["poi"] = None
    comparison = Comparison.from_json(data)
    assert comparison.margin is None
    assert math.isnan(comparison.arms["sac"].stats["hardness"].ci_low)
    assert comparison.arms["sac"].seeds[0].stopped is None
    assert math.isnan(comparison.differences["sac - random"]["final_metric"].poi or 0.0)
    hardness = comparison.differences["sac - random"]["hardness"]
    assert hardness.poi is None and hardness.equivalence_p is None
    assert "poi" not in hardness.to_json() and "equivalence_p" not in hardness.to_json()
    assert json.loads(_written(comparison)) == data


def test_a_seed_reads_each_figure_by_its_column_name() -> None:
    seed = Comparison.from_json(_json(REPORTS[0])).arms["random"].seeds[0]
    assert seed.value("final_metric") == seed.final_metric
    assert seed.value("term/left") == seed.terms["left"]
    assert seed.value("n_terms/2") == seed.n_terms["2"]
    for name in ("seed", "stopped", "terms", "term/", "n_terms/9"):
        with pytest.raises(UnknownColumn):
            seed.value(name)


def test_a_difference_is_an_estimate_with_its_per_seed_values_last() -> None:
    d = Difference(mean=0.1, ci_low=0.0, ci_high=0.2, n=2, sd=0.05, mde=0.3, per_seed=[0.1, 0.1])
    assert isinstance(d, Estimate)
    assert list(d.to_json()) == ["mean", "ci_low", "ci_high", "n", "sd", "mde", "per_seed"]
