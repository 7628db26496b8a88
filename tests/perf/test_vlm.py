"""``rls3 perf vlm`` through the command line, on tiny sizes."""

from __future__ import annotations

import re

import pytest

from benchmark.cli import main


@pytest.mark.parametrize("model", ["clip", "paligemma"])
def test_perf_vlm_prints_api_and_bare_throughput_with_their_ratio(
    model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["perf", "vlm", "--model", model, "--batch", "4", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    print(out)
    for row in ("evaluate", "finetune"):
        match = re.search(rf"^{row}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.MULTILINE)
        assert match, out
        api, bare, ratio = (float(g) for g in match.groups())
        assert api > 0 and bare > 0
        assert ratio == pytest.approx(api / bare, rel=0.1, abs=0.01)
