"""The package's import structure: the lab stays at arm's length, and no import circle exists."""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import chaosali

PACKAGE = Path(chaosali.__file__).resolve().parent
# what users load: the package (discovery), the CLI (`chaosali report`), the reports, and every activity
ENTRY_POINTS = ["chaosali", "chaosali.cli", "chaosali.report.render"]


def module_files() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def activity_modules() -> list[str]:
    return [name for name in module_files() if name.rsplit(".", 1)[-1] in ("actions", "probes", "controls")]


def imports_of(name: str, path: Path, known: set[str]) -> dict[str, int]:
    """The package's modules that ``name`` imports, anywhere in it (module level, functions,
    TYPE_CHECKING blocks), each with the line of its first import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        while target and target not in known:  # `import a.b.attr` or `from a.b import attr`: the module a.b
            target = target.rpartition(".")[0]
        if target and target != name:
            found.setdefault(target, line)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            for alias in node.names:
                add(f"{base}.{alias.name}", node.lineno)
    return found


@functools.cache
def import_graph() -> dict[str, dict[str, int]]:
    modules = module_files()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "chaosali.lab.hosts" in graph["chaosali.lab.cluster"]  # module level
    assert "chaosali.lab.cluster" in graph["chaosali.cli"]  # inside a function


def test_nothing_but_the_lab_commands_loads_the_lab():
    modules = ENTRY_POINTS + activity_modules()
    # a fresh interpreter: this one may have imported the lab already; the first module that pulls
    # it in is named
    script = (
        "import importlib, json, sys\n"
        "for module in sys.argv[1:]:\n"
        "    importlib.import_module(module)\n"
        "    lab = sorted(m for m in sys.modules if m == 'chaosali.lab' or m.startswith('chaosali.lab.'))\n"
        "    if lab:\n"
        "        print(json.dumps([module, lab]))\n"
        "        break\n"
    )
    result = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "", "{} imports {}: only the `chaosali lab` command may, inside its function".format(
        *json.loads(result.stdout)
    )
    assert {"chaosali.host.actions", "chaosali.cluster.probes", "chaosali.lock.controls"} <= set(modules)


def test_only_the_cli_imports_the_lab():
    importers = {
        name: line
        for name, targets in import_graph().items()
        if not name.startswith("chaosali.lab")
        for target, line in targets.items()
        if target == "chaosali.lab" or target.startswith("chaosali.lab.")
    }
    assert set(importers) <= {"chaosali.cli"}, f"modules that import the lab (module: line): {importers}"


def test_no_import_circle():
    graph = import_graph()
    found = circles(graph)
    described = [
        "; ".join(
            f"{name} imports " + ", ".join(f"{target} (line {graph[name][target]})"
                                           for target in sorted(graph[name]) if target in circle)
            for name in circle
        )
        for circle in found
    ]
    assert found == [], "import circles, break each so that arrows point one way:\n" + "\n".join(described)


def test_no_private_module_is_imported_from_outside_its_package():
    graph = import_graph()
    outsiders = {
        f"{name} (line {line})": target
        for name, targets in graph.items()
        for target, line in targets.items()
        if target.rpartition(".")[2].startswith("_") and not name.startswith(target.rpartition(".")[0] + ".")
    }
    assert outsiders == {}, f"private modules imported from outside their package: {outsiders}"


def test_the_report_reads_only_the_core_and_the_impact_measures():
    allowed = ("chaosali.core", "chaosali.impact.measures", "chaosali.report")
    reads = {
        f"{name} (line {line})": target
        for name, targets in import_graph().items() if name.startswith("chaosali.report")
        for target, line in targets.items()
        if not any(target == one or target.startswith(one + ".") for one in allowed)
    }
    assert reads == {}, f"the report reads beyond the core and the impact measures: {reads}"


def test_the_impact_never_imports_the_report():
    """The report reads the impact's entry in the journal: an arrow back up (the impact control's
    judgement of its alerts imported the report's reading, late) is a circle in waiting."""
    reads = {
        f"{name} (line {line})": target
        for name, targets in import_graph().items() if name.startswith("chaosali.impact")
        for target, line in targets.items() if target.startswith("chaosali.report")
    }
    assert reads == {}, f"the impact imports the report: {reads}"


def test_the_core_imports_no_domain():
    reads = {
        f"{name} (line {line})": target
        for name, targets in import_graph().items() if name.startswith("chaosali.core")
        for target, line in targets.items() if not target.startswith("chaosali.core")
    }
    assert reads == {}, f"the core imports a domain: {reads}"
