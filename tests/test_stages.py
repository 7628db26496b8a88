"""dvc.yaml's code dependencies: each stage lists every module its code imports, and the run and
agent stages depend on the check's digest of the one list a run or an agent records as its code
(``provenance.CODE_PATHS``, ``AGENT_CODE_PATHS``: results/check/run_code.json, agent_code.json),
which covers every module they import. A module a stage imports but does not list would let DVC
call a result up to date after the code that made it changed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from benchmark.provenance import AGENT_CODE_PATHS, CODE_PATHS
from tests.code_graph import ROOT, import_closure

# The module (or package) that each stage's command runs, for the stages that list their code;
# `check` runs on every repro, and writes the code digests the run and agent stages depend on.
ENTRIES = {
    "scene_preview": "benchmark/sim/preview.py",
    "datasets": "benchmark/datasets.py",
    "base_model": "benchmark/pretrain.py",
    "probe_learnability": "benchmark/probe.py",
    "report": "benchmark/report",
    "report_index": "benchmark/report",
}
RUN_CODE = "results/check/run_code.json"
AGENT_CODE = "results/check/agent_code.json"


def stages() -> dict[str, dict[str, Any]]:
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in raw.items()}


def paths(entries: list[Any]) -> list[str]:
    """The paths of a stage's ``deps`` or ``outs`` (an entry with options is a one-key dict)."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries]


def deps(stage: dict[str, Any]) -> list[str]:
    return paths(stage.get("deps", []))


def code_deps(stage: dict[str, Any]) -> list[str]:
    return [d for d in deps(stage) if d.startswith("benchmark")]


def covered(file: str, deps: list[str]) -> bool:
    return any(file == d or file.startswith(d + "/") for d in deps)


def test_every_stage_with_code_is_named_here() -> None:
    with_code = {name for name, stage in stages().items() if code_deps(stage)}
    assert with_code == set(ENTRIES)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_a_stage_lists_every_module_it_imports(name: str) -> None:
    deps = code_deps(stages()[name])
    missing = sorted(f for f in import_closure(ENTRIES[name]) if not covered(f, deps))
    assert not missing, f"dvc.yaml stage {name}: add {missing} to its deps"
    assert all((ROOT / d).exists() for d in deps), deps


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_a_stage_lists_no_module_it_does_not_import(name: str) -> None:
    """A code dep the stage never imports makes DVC re-run it for nothing: a change to the
    report's records would retrain the base models."""
    closure = import_closure(ENTRIES[name])
    extra = [d for d in code_deps(stages()[name]) if not any(covered(f, [d]) for f in closure)]
    assert not extra, f"dvc.yaml stage {name}: {extra} is not imported; remove it from its deps"


def test_run_stages_depend_on_the_digest_of_the_code_a_run_records() -> None:
    """Each run stage's one code dep is the check's digest of ``CODE_PATHS``; it lists no module
    itself (a second list to keep in step)."""
    runs = {n: s for n, s in stages().items() if n.startswith("run_")}
    assert len(runs) == 5
    for name, stage in runs.items():
        assert RUN_CODE in deps(stage) and AGENT_CODE not in deps(stage), name
        assert code_deps(stage) == [], f"dvc.yaml stage {name}: its code is {RUN_CODE}'s"


def test_the_agent_stage_depends_on_the_digest_of_the_code_an_agent_records() -> None:
    agent = stages()["agent"]
    assert AGENT_CODE in deps(agent) and RUN_CODE not in deps(agent)
    assert code_deps(agent) == []


def test_the_check_writes_the_code_digests() -> None:
    assert {RUN_CODE, AGENT_CODE} <= set(paths(stages()["check"]["outs"]))
    assert stages()["check"]["always_changed"] is True  # so the digests are never stale


def test_the_recorded_code_covers_what_it_imports() -> None:
    """A change to any module the loop (an agent's training) imports starts a run (trains an
    agent) afresh: the digest covers it."""
    for entry, paths in (
        ("benchmark/loop.py", CODE_PATHS),
        ("benchmark/agents.py", AGENT_CODE_PATHS),
    ):
        listed = [f"benchmark/{p}" for p in paths]
        assert {f for f in import_closure(entry) if not covered(f, listed)} == set(), entry


def test_the_closure_follows_imports_inside_functions() -> None:
    """The helper sees a function-level import (the package imports heavy modules lazily)."""
    closure = import_closure("benchmark/agents.py")
    assert "benchmark/provenance.py" in closure  # imported inside a function only
    assert not any(f.startswith("benchmark/vlm/") for f in closure)  # agents never load a VLM
