"""Digests of the code a result depends on: ``code_digest`` and the manifest the check writes."""

from __future__ import annotations

from pathlib import Path

from benchmark.provenance import code_digest, code_manifest


def _tree(root: Path) -> Path:
    (root / "sim" / "__pycache__").mkdir(parents=True)
    (root / "loop.py").write_text("LOOP = 1\n")
    (root / "sim" / "env.py").write_text("ENV = 1\n")
    (root / "sim" / "__pycache__" / "env.cpython-311.pyc").write_bytes(b"\0bytecode")
    (root / "report.py").write_text("REPORT = 1\n")
    return root


def test_the_manifest_names_each_source_file_and_carries_the_digest(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    paths = ("loop.py", "sim")
    manifest = code_manifest(root, paths)
    assert manifest["paths"] == ["loop.py", "sim"]
    assert sorted(manifest["files"]) == ["loop.py", "sim/env.py"]  # no bytecode, no report.py
    assert manifest["digest"] == code_digest(root, paths)


def test_a_changed_module_changes_the_digest_and_its_own_hash_alone(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    paths = ("loop.py", "sim")
    before = code_manifest(root, paths)
    (root / "sim" / "__pycache__" / "env.cpython-311.pyc").write_bytes(b"\0other bytecode")
    (root / "report.py").write_text("REPORT = 2\n")  # outside the paths
    assert code_manifest(root, paths) == before
    (root / "sim" / "env.py").write_text("ENV = 2\n")
    after = code_manifest(root, paths)
    assert after["digest"] != before["digest"]
    changed = {f for f in before["files"] if before["files"][f] != after["files"][f]}
    assert changed == {"sim/env.py"}
