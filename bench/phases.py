"""Where the build's and the test suite's time goes, read from their own logs.

The build: ``chaosali/lab/k8sbuild.py`` appends each step, with its time, to
``<cache>/k8s-<version>/build/k8sbuild.log``; this prints the newest run that built something, one
line per module (its dependencies' download, which overlaps the previous module's compile, and its
compile), and the newest cached run.

The suite: ``scripts/test`` keeps each run's JUnit report under ``<cache>/test-runs/``; this prints
the newest run beside the one before it: wall time, the lab tests' time (they run in order on one
worker), the unit tests' time (beside them, on the others), each test file's time and what
changed most. So the change that makes the suite slower is seen in the run that has it.

    python3 bench/phases.py                   # the newest logs
    python3 bench/phases.py --junit A.xml B.xml --build-log k8sbuild.log
    python3 bench/phases.py --quick           # two runs of a small suite of its own, compared
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from _cli import parse

from chaosali.lab.k8sbuild import build_log, cache_root

REPO = Path(__file__).resolve().parent.parent
_STEP = re.compile(r"\] (?P<module>[\w-]+): (?P<what>built|modules downloaded) in (?P<seconds>[\d.]+)s")
_RUN = re.compile(r"\] start: ")
_TOTAL = re.compile(r"\] binaries ready in (?P<seconds>[\d.]+)s")


def test_runs() -> Path:
    """Where scripts/test keeps each run's JUnit report."""
    return cache_root() / "test-runs"


@dataclass
class Suite:
    """One test run, from its JUnit report."""

    path: Path
    wall: float
    files: dict[str, float] = field(default_factory=dict)
    lab: float = 0.0
    unit: float = 0.0
    tests: int = 0
    groups: dict[str, float] = field(default_factory=dict)  # pytest-xdist's loadgroup: a worker's time each


def read_suite(path: Path, lab_tests: set[str]) -> Suite:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    suite = Suite(path, sum(float(s.get("time") or 0) for s in suites))
    files: dict[str, float] = defaultdict(float)
    groups: dict[str, float] = defaultdict(float)
    for case in root.iter("testcase"):
        module = (case.get("classname") or "").replace(".", "/") + ".py"
        name = Path(module).name
        seconds = float(case.get("time") or 0)
        files[name] += seconds
        suite.tests += 1
        # under --dist loadgroup a test's name ends with its group: "test_x@cluster"
        grouped = re.fullmatch(r"(.*)@([\w.-]+)", case.get("name") or "")
        test, group = grouped.groups() if grouped else (case.get("name"), None)
        if group:
            groups[group] += seconds
        if f"{module}::{test}" in lab_tests:
            suite.lab += seconds
        else:
            suite.unit += seconds
    suite.files, suite.groups = dict(files), dict(groups)
    return suite


def lab_tests(root: Path = REPO) -> set[str]:
    """The lab tests' ids (``tests/test_x.py::test_y``): those tests/conftest.py marks ``lab``."""
    listed = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-m", "lab",
                             "-p", "no:cacheprovider", "tests"], capture_output=True, text=True, cwd=root).stdout
    return {line for line in listed.splitlines() if "::" in line}


def print_suites(newest: Suite, before: Suite | None) -> None:
    print(f"suite: {newest.path.name}, {newest.tests} tests, wall {newest.wall:.0f} s; "
          f"lab tests {newest.lab:.0f} s (in order, on the workers of their labs), "
          f"unit tests {newest.unit:.0f} s (beside them)")
    for group, seconds in sorted(newest.groups.items()):
        was = before.groups.get(group) if before else None
        print(f"  group {group}: {seconds:.0f} s on its worker" + ("" if was is None else f" (previous {was:.0f} s)"))
    if before:
        print(f"suite wall / previous run's ({before.path.name}): x{newest.wall / max(before.wall, 0.001):.2f}; "
              f"lab tests x{newest.lab / max(before.lab, 0.001):.2f}, unit tests x{newest.unit / max(before.unit, 0.001):.2f}")
    print(f"  {'file':44} {'seconds':>8} {'previous':>9} {'change':>8}")
    ranked = sorted(newest.files, key=lambda name: -newest.files[name])
    for name in ranked[:25]:
        was = before.files.get(name) if before else None
        change = f"{newest.files[name] - was:+8.0f}" if was is not None else f"{'new':>8}"
        print(f"  {name:44} {newest.files[name]:8.0f} {'' if was is None else f'{was:9.0f}'} {change}")
    if len(ranked) > 25:
        print(f"  ... {len(ranked) - 25} more files, {sum(newest.files[n] for n in ranked[25:]):.0f} s")


def print_build(log: Path) -> None:
    if not log.exists():
        print(f"build: no log at {log} (python3 chaosali/lab/k8sbuild.py writes it)")
        return
    runs: list[list[str]] = []
    for line in log.read_text().splitlines():
        if _RUN.search(line) or not runs:
            runs.append([])
        runs[-1].append(line)
    built = [run for run in runs if any("built in" in line for line in run)]
    if not built:
        print(f"build: {len(runs)} run(s) in {log}, every binary cached")
        return
    run = built[-1]
    steps: dict[str, dict[str, float]] = defaultdict(dict)
    for line in run:
        match = _STEP.search(line)
        if match:
            steps[match["module"]][match["what"]] = float(match["seconds"])
    total = next((float(m["seconds"]) for m in map(_TOTAL.search, run) if m), None)
    print(f"build: newest run that built ({run[0].split()[0]}), {len(built)} of {len(runs)} runs built something")
    compiled = sum(step.get("built", 0.0) for step in steps.values())
    for module, step in steps.items():
        print(f"  {module:12} download {step.get('modules downloaded', 0):6.1f} s (beside the previous compile)"
              f"   compile {step.get('built', 0):6.1f} s")
    if total:
        print(f"build total {total:.0f} s; compiling / total: x{compiled / total:.2f} (the rest: waiting for downloads)")


_QUICK_TESTS = """
import time

import pytest


@pytest.mark.lab
def test_a_lab_test_that_waits():
    time.sleep(0.2)


def test_a_unit_test():
    assert True
"""


def quick_runs(directory: Path) -> list[Path]:
    """Two runs of a small suite of its own (a lab test, a unit test), kept as scripts/test keeps them."""
    (directory / "tests").mkdir()
    (directory / "tests" / "test_quick.py").write_text(_QUICK_TESTS)
    (directory / "pytest.ini").write_text("[pytest]\nmarkers =\n    lab: needs the lab\n")
    paths = []
    for index in (1, 2):
        path = directory / f"quick-{index}.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={path}",
                        "tests"], cwd=directory, capture_output=True, check=True)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--junit", nargs="*", type=Path, help="JUnit reports, oldest first (default: the two "
                        f"newest under {test_runs()})")
    parser.add_argument("--build-log", type=Path, default=build_log())
    args = parse(parser, {})
    with tempfile.TemporaryDirectory() as scratch:
        reports = args.junit or (quick_runs(Path(scratch)) if args.quick
                                 else sorted(test_runs().glob("*.xml"))[-2:])
        print_build(args.build_log)
        if not reports:
            print(f"suite: no JUnit report under {test_runs()} yet (scripts/test keeps one per run)")
            return
        labs = lab_tests(Path(scratch) if args.quick and not args.junit else REPO)
        suites = [read_suite(path, labs) for path in reports[-2:]]
        print_suites(suites[-1], suites[0] if len(suites) > 1 else None)


if __name__ == "__main__":
    main()
