"""Every benchmark runs in CI, in its quick mode, so that none can rot unnoticed.

Each script under bench/ (not the ``_`` modules they share) runs with ``--quick`` in a process of
its own, as a user would run it: it must exit 0 and print its figure lines. The figures are not
judged (this machine is noisy), but the test log shows them. A benchmark that brings up a lab of
its own is marked ``lab`` and holds the test session's lab lock while it runs; its lab's name and
range are used by nothing else here, so it never meets the tests' labs.
"""

from __future__ import annotations

import ast
import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

BENCH = REPO / "bench"
SCRIPTS = sorted(path for path in BENCH.glob("*.py") if not path.name.startswith("_"))
QUICK_SECONDS = 300  # a quick run takes well under a minute alone; the machine is shared

# The lines each benchmark prints its figures in (quick sizes: 4 hosts, 1 trial). A benchmark not
# named here must print at least one ratio (the team's rule: ratios measured side by side).
FIGURES = {
    "discover.py": [r"^chaostoolkit-ali / chaostoolkit-kubernetes: time [\d.]+ \(aim <= [\d.]+\), cpu [\d.]+, "
                    r"peak memory [\d.]+"],
    "fanout.py": [r"^parallel fan-out +t\(4\)/t\(1\) = [\d.]+", r"^sequential loop +t\(4\)/t\(1\) = [\d.]+",
                  r"^ssh sessions only t\(4\)/t\(1\) = [\d.]+",
                  r"start_together: skew across 4 hosts median +[\d.]+ ms", r"plain fan-out: skew across 4 hosts"],
    "halt.py": [r"^ 1 host\(s\): sample -> healed [\d.]+ s, fan-out floor [\d.]+ s, healed / floor x[\d.]+",
                r"^ 4 host\(s\): sample -> healed [\d.]+ s", r"revert check [\d.]+ s \([\d.]+ s per host"],
    "impact.py": [r"polling / recorder: requests x[\d.]+, bytes x[\d,]+", r"recorder CPU \(child process",
                  r"recorder memory \(RSS", r"recorder memory vs churn", r"measure\(\): pods_lost \d+"],
    "monitoring.py": [r"^lab up without monitoring: +[\d.]+ s", r"^lab up with monitoring: +[\d.]+ s",
                      r"^ratio with / without: +x[\d.]+", r"^monitoring CPU while idle: [\d.]+ CPU-s"],
    # the stressed replica's p95 ratio against the other's (a fresh lab spreads the two replicas)
    "real_nodes.py": [r"^stressed replica's p95 ratio / the other's: [\d.]+(, [\d.]+)* \(median [\d.]+"],
    "recovery.py": [r"^restore -> API answers +: median +[\d.]+ s", r"^end of duration -> API answers +: median +-?[\d.]+ s"],
    "report.py": [r"^\d+/\d+: size x[\d.]+, CPU time x[\d.]+, peak memory above the baseline x[\d.]+",
                  r"^ +options: [\d.]+s, [\d.]+s: x[\d.]+",
                  r"^trend: \d+ experiments x \d+ nights = \d+ journals .*: read [\d.]+s, html [\d.]+s",
                  r"peak memory: the report \d+ MiB, its largest reading worker \d+ MiB"],
    "scale.py": [r"^naive / chaosali: time x[\d.]+, bytes x\d+", r"count_pods: +[\d.]+ ms; ratio x[\d.]+"],
    "soak.py": [r"^network cut: \d/1 healed within duration", r"^kubelet fault: \d/1 healed within duration"],
}
RATIO = r"\bx\d|\bratio\b|\d\s*/\s*\d|\S / \S.*\d"
_LAB = re.compile(r"""name["']?\s*[:=]\s*"(\w+)",\s*["']?subnet["']?\s*[:=]\s*"([\d./]+)\"""")


def needs_lab(script: Path) -> bool:
    """Whether the benchmark brings up a lab: it imports the lab's hosts or cluster (chaosali.lab, not its
    build alone), or bench/_cluster.py."""
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name == "_cluster" or (name.startswith("chaosali.lab") and name != "chaosali.lab.k8sbuild")
               for name in names):
            return True
    return False


def run_quick(script: Path, capsys: pytest.CaptureFixture, state: Path) -> None:
    # a ledger of its own: a benchmark that kills its drills mid-fault (soak.py) leaves records of
    # dead runs on a lab that is gone once it ends, which no test's cleanup must meet
    run = subprocess.Popen([sys.executable, str(script), "--quick"], cwd=REPO, text=True,
                           env={**os.environ, "CHAOSALI_STATE_DIR": str(state)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output = run.communicate(timeout=QUICK_SECONDS)[0]
    except subprocess.TimeoutExpired:
        run.terminate()  # SIGTERM: the benchmark still brings its lab down (bench/_cli.py)
        output = run.communicate(timeout=120)[0]
        pytest.fail(f"bench/{script.name} --quick did not end within {QUICK_SECONDS} s:\n{output[-5000:]}")
    with capsys.disabled():  # the figures, in the test log
        print(f"\n---- bench/{script.name} --quick (exit {run.returncode})\n{output.rstrip()}\n----")
    assert run.returncode == 0, f"bench/{script.name} --quick failed:\n{output[-5000:]}"
    for pattern in FIGURES.get(script.name, [RATIO]):
        assert re.search(pattern, output, re.MULTILINE), f"bench/{script.name} --quick printed no line like {pattern!r}"


@pytest.mark.parametrize("script", [s for s in SCRIPTS if needs_lab(s)], ids=lambda s: s.name)
def test_benchmark_runs_quick_on_a_lab_of_its_own(script: Path, one_test_session_at_a_time: None,
                                                   capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    run_quick(script, capsys, tmp_path)


@pytest.mark.parametrize("script", [s for s in SCRIPTS if not needs_lab(s)], ids=lambda s: s.name)
def test_benchmark_runs_quick(script: Path, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    run_quick(script, capsys, tmp_path)


def test_benchmark_labs_meet_no_other_lab() -> None:
    """Each benchmark's lab has a name and a range of its own: not another benchmark's, not the
    tests', the demo's or scripts/test-pythons' (any address range written anywhere else here)."""
    elsewhere = [path for folder in ("tests", "scripts", "chaosali") for path in (REPO / folder).rglob("*")
                 if path.is_file() and path.suffix in ("", ".py", ".sh")]
    taken: dict[str, Path] = {}
    ranges = [(ipaddress.ip_network(cidr, strict=False), path) for path in elsewhere
              for cidr in re.findall(r"\b10\.\d+\.\d+\.\d+/\d+\b", path.read_text(errors="replace"))]
    names = {name: path for path in elsewhere for name, _ in _LAB.findall(path.read_text(errors="replace"))}
    for script in (s for s in SCRIPTS if needs_lab(s)):
        labs = _LAB.findall(script.read_text())
        assert labs, f"bench/{script.name}: name its lab as name=\"...\", subnet=\"...\" (this test reads it)"
        for name, subnet in labs:
            assert taken.setdefault(name, script) == script, f"lab {name!r}: bench/{script.name} and {taken[name]}"
            assert name not in names, f"lab {name!r} of bench/{script.name} is also {names[name]}'s"
            network = ipaddress.ip_network(subnet)
            overlaps = [str(path) for other, path in ranges if other.overlaps(network) and path != script]
            assert not overlaps, f"{subnet} of bench/{script.name} is also used in {overlaps}"
            ranges.append((network, script))


def test_benchmarks_use_only_public_names() -> None:
    """No ``x._name`` and no ``from chaosali… import _name`` in bench/ (its own ``self._…`` aside):
    a rename inside the code measured must not break a benchmark silently."""
    found = []
    for script in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    found.append(f"bench/{script.name}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chaosali"):
                names = node.module.split(".") + [alias.name for alias in node.names]
                found += [f"bench/{script.name}:{node.lineno} {name}" for name in names if _private(name)]
    assert not found, f"private names used (give the code a public hook, or measure from the outside): {found}"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")
