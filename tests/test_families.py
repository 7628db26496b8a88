"""The family registry is the only place that maps a model's name to its parts: every part it
names exists, and no module outside it (and the families' own packages) branches on a name."""

from __future__ import annotations

import ast
import dataclasses

import pytest

from benchmark.families import FAMILIES, MODELS, PARTS, family
from tests.code_graph import PACKAGE, ROOT

# the registry, and each family's own package (which may name itself)
OWN = ("benchmark/families.py", *(f"benchmark/vlm/{name}/" for name in MODELS))


def name_branches(tree: ast.AST, names: tuple[str, ...]) -> list[int]:
    """Lines of ``tree`` that compare a value with one of ``names`` (``==``, ``!=``, ``in``, a
    ``match`` case) or key a mapping literal by one."""

    def named(node: ast.AST | None) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(named(e) for e in node.elts)
        return False

    def branches(node: ast.AST) -> bool:
        if isinstance(node, ast.Compare):
            return any(named(n) for n in (node.left, *node.comparators))
        if isinstance(node, ast.MatchValue):
            return named(node.value)
        if isinstance(node, ast.Dict):
            return any(named(k) for k in node.keys)
        return False

    lines = [node.lineno for node in ast.walk(tree) if branches(node)]  # type: ignore[attr-defined]
    return lines


def test_no_module_outside_the_registry_branches_on_a_model_name() -> None:
    found = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        rel = str(file.relative_to(ROOT))
        if rel.startswith(OWN):
            continue
        lines = name_branches(ast.parse(file.read_text()), MODELS)
        if lines:
            found[rel] = lines
    assert found == {}, f"ask benchmark.families instead: {found}"


def test_the_check_finds_a_branch_on_a_name() -> None:
    code = 'if model == "clip":\n    pass\nunit = {"paligemma": 1}[m]\nok = model in MODELS\n'
    assert name_branches(ast.parse(code), MODELS) == [1, 3]


@pytest.mark.parametrize("name", MODELS)
def test_every_part_a_family_names_exists(name: str) -> None:
    record = family(name)
    assert record.name == name
    for field in PARTS:
        assert callable(record.part(field)), (name, field)
    parts = {f.name for f in dataclasses.fields(record) if f.name in PARTS}
    assert parts == set(PARTS)  # every part field is listed, so every one is checked above
    assert record.part("vlm").family == name  # the VLM class knows its family
    assert record.k_unit in ("epochs", "steps")


def test_an_unknown_family_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"model = 'blip' is not allowed; expected one of"):
        family("blip")
    assert tuple(FAMILIES) == MODELS


def test_each_family_is_one_package_with_the_same_modules() -> None:
    """A family is its package: the modules the registry's parts name, in each."""
    for name in MODELS:
        package = PACKAGE / "vlm" / name
        modules = {p.stem for p in package.glob("*.py")}
        assert {"model", "pretrain", "checkpoint", "contract", "perf"} <= modules, name
        assert (package / "configs").is_dir()


def test_the_registry_imports_nothing_heavy() -> None:
    """The params schema reads the families' names: the registry must not import torch."""
    tree = ast.parse((PACKAGE / "families.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert imported <= {"__future__", "importlib", "dataclasses", "typing"}, imported
