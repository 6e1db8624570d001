"""Imports point one way (ARCHITECTURE.md, "Layers of code"): tiers and app.py compose, functions/ serve,
layers/ and shared/ are served. Read from the source with ast, so a lazy import inside a function counts."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module a file names: `import x`, `from x import y` (`from . import y` resolves to nothing of
    interest here) and a string literal given to importlib.import_module / __import__."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
            elif isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
                found.append((node.lineno, str(first.values[0].value)))  # f"functions.{name}.models"
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in ("import_module", "__import__")


def _violations(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    violations = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for line, module in _imported_modules(tree):
                top = module.split(".")[0]
                if top in forbidden:
                    violations.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return violations


def test_layers_and_shared_import_no_capability_no_tier_and_not_the_app() -> None:
    # GIVEN the shared layers and the kernel
    # WHEN their imports are read
    violations = _violations(("layers", "shared"), forbidden=("app", "tiers", "functions"))

    # THEN none reaches up into what they serve (a layer asks through a port app.py fills)
    assert violations == []


def test_capabilities_import_no_tier_and_not_the_app() -> None:
    # GIVEN every capability
    # WHEN its imports are read
    violations = _violations(("functions",), forbidden=("app", "tiers"))

    # THEN none imports the composition root or an entry point
    assert violations == []


@pytest.mark.parametrize(("source", "module"), [
    ("import functions", "functions"),
    ("from functions.deals.service import close_deal_as_lost", "functions.deals.service"),
    ("import importlib\nimportlib.import_module('app')", "app"),
    ("from importlib import import_module\ndef f(n):\n    return import_module(f'functions.{n}.models')",
     "functions."),
])
def test_the_scan_sees_every_form_of_import(source: str, module: str) -> None:
    # GIVEN a source with one import in a given form
    # WHEN it is scanned THEN the module is found
    assert [name for _, name in _imported_modules(ast.parse(source)) if name.startswith(module.split(".")[0])] \
        == [module]
