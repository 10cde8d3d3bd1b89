"""The package's shape: no import cycles, and the modules the workflow definition imports need
nothing beyond the standard library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
PACKAGE = SCRIPTS / "lambdabeta"


def module_name(path: Path) -> str:
    parts = path.relative_to(SCRIPTS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its text (at the top or inside a
    function): ``from .x import y`` names the submodule ``x.y`` if there is one, else ``x``."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module → modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle_and_its_modules():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # a lazy import inside a function counts: it closes a cycle as surely as one at the top
    assert "lambdabeta.linear.study" in imported_modules(
        "lambdabeta.linear.shards", MODULES["lambdabeta.linear.shards"]
    ) or "lambdabeta.linear.adamw" in imported_modules(
        "lambdabeta.linear.shards", MODULES["lambdabeta.linear.shards"]
    )


WORKFLOW_IMPORTS = [
    "lambdabeta.grid",
    "lambdabeta.settings",
    "lambdabeta.scores",
    "lambdabeta.evaluation.settings",
    "lambdabeta.linear.settings",
    "lambdabeta.claims.tables",
    *sorted(name for name in MODULES if name.startswith("lambdabeta.plan")),
]


@pytest.mark.parametrize("module", WORKFLOW_IMPORTS)
def test_what_the_workflow_definition_imports_needs_only_the_standard_library(module):
    """The Snakemake process imports these (workflow/rules/*.smk); its environment need not
    have numpy, pandas or torch."""
    script = (
        f"import sys; sys.path.insert(0, {str(SCRIPTS)!r}); import {module}; "
        "print(sorted({'numpy', 'pandas', 'torch', 'scipy', 'sklearn'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("folder", ["training", "plan", "claims"])
def test_modules_of_the_split_packages_stay_small(folder):
    """Each module of these packages owns one concern (its docstring says which)."""
    for path in (PACKAGE / folder).glob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 360, f"{path.name}: {lines} lines"
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.name} has no docstring"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_of_the_package_owns_one_concern(name):
    """No module of the package grows past 400 lines, and each says what it owns."""
    text = MODULES[name].read_text()
    lines = len(text.splitlines())
    assert lines <= 400, f"{name}: {lines} lines; split it by concern"
    assert ast.get_docstring(ast.parse(text)), f"{name} has no docstring"
