"""Rules of the test suite itself: shared helpers come from helpers.py, no test file silently
drops conftest's autouse checks (the run memory emptied, the verified revert, no fault left) by
defining a fixture of the same name, and each shared lab's tests run in one pytest-xdist worker."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

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


_GROUPS_PLUGIN = '''
import json

def pytest_collection_finish(session):
    for item in session.items:
        if item.get_closest_marker("lab"):
            groups = sorted({mark.args[0] for mark in item.iter_markers("xdist_group")})
            print("LAB-TEST", json.dumps({"test": item.nodeid, "groups": groups, "fixtures": item.fixturenames}))
'''


def test_each_shared_lab_lives_in_one_xdist_worker(tmp_path):
    """scripts/test spreads the lab tests over pytest-xdist workers by group: every test of one
    shared lab must be in that lab's one group, or two workers would bring up the same lab at once."""
    (tmp_path / "lab_groups.py").write_text(_GROUPS_PLUGIN)
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "lab_groups",
                             "-p", "no:cacheprovider", "tests"], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"})
    tests = [json.loads(line.split(" ", 1)[1]) for line in listed.stdout.splitlines() if line.startswith("LAB-TEST ")]
    assert len(tests) > 100, listed.stdout[-3000:] + listed.stderr[-3000:]
    assert [t["test"] for t in tests if len(t["groups"]) != 1] == []
    for lab in ("lab", "kube", "monitored", "ha_cluster"):
        groups = {t["groups"][0] for t in tests if lab in t["fixtures"]}
        assert len(groups) == 1, f"the tests of the {lab!r} lab are spread over the groups {groups}"
