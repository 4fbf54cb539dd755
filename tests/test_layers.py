"""The package's imports point one way down the loop (DESIGN.md, "Shape")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ALKIT = Path(__file__).resolve().parents[1] / "alkit"
#: A stage may import only the stages listed before it (and ``alkit.errors``).
ORDER = (
    "data",
    "sim",
    "detector",
    "ensemble",
    "query",
    "annotate",
    "evaluate",
    "config",
    "loop",
    "experiments",
    "workflow",
    "serve",
)
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py", "errors.py"}


def _alkit_imports(path: Path) -> list[str]:
    """Every ``alkit.*`` module a file imports (module level and inside functions)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "alkit" and [a.name for a in node.names] == ["__version__"]:
                continue  # the package's version, not its API
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [n for n in names if n == "alkit" or n.startswith("alkit.")]


def test_top_level_holds_only_the_entry_points():
    loose = {p.name for p in ALKIT.glob("*.py")} - TOP_LEVEL
    assert not loose, f"modules loose at alkit/'s top: {sorted(loose)}"
    stages = {p.name for p in ALKIT.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert stages == set(ORDER)


@pytest.mark.parametrize("stage", ORDER)
def test_a_stage_imports_only_stages_below_it(stage):
    allowed = {"alkit.errors", *(f"alkit.{s}" for s in ORDER[: ORDER.index(stage) + 1])}
    wrong = []
    for path in sorted((ALKIT / stage).rglob("*.py")):
        for name in _alkit_imports(path):
            top = ".".join(name.split(".")[:2])
            if top not in allowed:
                wrong.append(f"{path.relative_to(ALKIT)} imports {name}")
    assert not wrong, "\n".join(wrong)
