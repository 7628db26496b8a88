"""``rls3 perf gpu``: the prepared GPU command, run here at test sizes (``--small``) on the CPU.

Its figures say nothing about a GPU; the test checks that every part runs and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.cli import main


def test_the_small_run_measures_every_part_and_writes_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], one_torch_thread: None
) -> None:
    """One torch thread, as the runs use: the figures are not what is checked, and two threads
    beside the other test worker's processes run several times slower."""
    out = tmp_path / "gpu.json"
    assert main(["perf", "gpu", "--small", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["command"] == "rls3 perf gpu --small" and result["wall_seconds"] > 0
    for part in ("clip", "paligemma"):
        r = result[part]
        assert "error" not in r, r
        assert r["batch"] == 4 and min(r["eval_api"], r["eval_bare"], r["finetune_api"]) > 0
        assert r["evaluate_ratio"] == r["eval_api"] / r["eval_bare"]
    assert result["clip"]["parameters"] > 150_000_000  # ViT-B-32, full size, at 32 px
    loop = result["loop"]
    assert "error" not in loop, loop
    assert loop["profile"] == "smoke" and loop["renderer"] in ("egl", "tiny")
    assert loop["generated"] > 0 and 0 < sum(loop["phases"].values()) <= loop["wall"]
    assert "loop overhead" in printed and f"wrote {out}" in printed
