"""requirements.lock is the single source of installs: it must agree with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\]+)")


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    every = project["dependencies"] + project["optional-dependencies"]["test"]
    return {canonicalize_name(r.name): r for r in map(Requirement, every)}


def _locked() -> dict[str, tuple[str, bool]]:
    """name -> (version, whether pyproject.toml asks for it directly), from the lock's entries."""
    entries: dict[str, tuple[str, bool]] = {}
    name = ""
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            name = canonicalize_name(match.group(1))
            entries[name] = (match.group(2), False)
        elif name and "rls3-benchmark (pyproject.toml)" in line:
            entries[name] = (entries[name][0], True)
    return entries


def test_every_declared_dependency_is_pinned_within_its_bounds() -> None:
    locked = _locked()
    for name, requirement in _declared().items():
        assert name in locked, (
            f"{name} is in pyproject.toml but not in requirements.lock: make lock"
        )
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside pyproject's {requirement}: "
            "make lock"
        )


def test_the_lock_asks_for_nothing_that_pyproject_dropped() -> None:
    direct = {name for name, (_, is_direct) in _locked().items() if is_direct}
    assert direct == set(_declared()), "requirements.lock is older than pyproject.toml: make lock"


def test_every_pin_has_a_hash_so_pip_installs_it_in_require_hashes_mode() -> None:
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert len(entries) > 100
    for entry in entries:
        assert "==" in entry.split()[0] and "--hash=sha256:" in entry, entry[:80]
