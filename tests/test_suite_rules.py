"""Rules of the test suite itself: shared helpers come from helpers.py, and no test file silently
drops conftest's autouse checks (the run memory emptied, the verified revert, no fault left) by
defining a fixture of the same name."""

from __future__ import annotations

import ast

from helpers import REPO

AUTOUSE = {"fresh_run_memory", "no_fault_left"}


def _tests() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text()) for path in (REPO / "tests").glob("*.py") if path.name != "conftest.py"}


def test_no_test_file_redefines_an_autouse_check_of_conftest():
    redefined = [f"{name}: {node.name}" for name, tree in _tests().items() for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef) and node.name in AUTOUSE]
    assert redefined == []


def test_tests_take_shared_helpers_from_helpers_not_from_conftest():
    importing = [name for name, tree in _tests().items() for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module == "conftest"
                 or isinstance(node, ast.Import) and any(alias.name == "conftest" for alias in node.names)]
    assert importing == []
