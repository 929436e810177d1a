"""Benchmark: `chaos discover` of chaosali vs chaostoolkit-kubernetes, as whole fresh processes.

Runs `chaos --no-log-file discover --no-install PACKAGE` for chaostoolkit-ali and, side by side,
chaostoolkit-kubernetes, plus `chaos --no-log-file --help` (the floor: the `chaos` command alone),
interleaved after a warm-up, and prints for each the median wall time, CPU time (user + system)
and peak memory (the process's max RSS, from wait4), then chaosali's ratios to the peer (aim: time
<= 0.6). The `chaos` next to this Python is used, without a pyenv shim in front.

    python bench/discover.py [--runs 10]
    python bench/discover.py --quick    # 3 runs each
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cli import parse  # bench/_cli.py

PACKAGES = ["chaostoolkit-ali", "chaostoolkit-kubernetes"]
FLOOR = "chaos alone (--help)"
AIM = 0.6


def chaos_command() -> Path:
    chaos = Path(sys.executable).parent / "chaos"
    if not chaos.exists():
        sys.exit(f"{chaos} not found: install the chaos command for this Python (pip install chaostoolkit)")
    return chaos


def measure(command: list[str], cwd: Path) -> dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one fresh process; its output goes to files in ``cwd``."""
    with open(cwd / "output.txt", "w") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        # wait4, not Popen.wait: it returns this child's own resource usage (peak memory included)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({process.returncode}):\n{(cwd / 'output.txt').read_text()}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def discovered(cwd: Path) -> int:
    """How many activities the last discovery in ``cwd`` found: `chaos discover` exits 0 even when it fails."""
    path = cwd / "discovery.json"
    if not path.exists():
        sys.exit(f"chaos discover wrote no {path.name}:\n{(cwd / 'output.txt').read_text()}")
    count = len(json.loads(path.read_text())["activities"])
    path.unlink()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per command (default 10)")
    args = parse(parser, {"runs": 3})

    chaos = str(chaos_command())
    commands = {package: [chaos, "--no-log-file", "discover", "--no-install", package] for package in PACKAGES}
    commands[FLOOR] = [chaos, "--no-log-file", "--help"]
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    activities: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-discover-") as directory:
        cwd = Path(directory)
        for command in commands.values():  # warm-up: page cache, bytecode caches
            measure(command, cwd)
        for _ in range(args.runs):  # interleaved, so that the machine's noise hits every command alike
            for name, command in commands.items():
                figures[name].append(measure(command, cwd))
                if name in PACKAGES:
                    activities[name] = discovered(cwd)

    medians = {name: {key: statistics.median(sample[key] for sample in samples) for key in ("wall", "cpu", "rss")}
               for name, samples in figures.items()}
    print(f"median of {args.runs} fresh processes each, interleaved after a warm-up:")
    print(f"  {'':24} {'wall s':>7} {'cpu s':>7} {'peak MiB':>9} {'activities':>11}")
    for name, median in medians.items():
        print(f"  {name:24} {median['wall']:7.3f} {median['cpu']:7.3f} {median['rss']:9.1f} "
              f"{activities.get(name, '-'):>11}")
    ours, peer = medians[PACKAGES[0]], medians[PACKAGES[1]]
    print(f"chaostoolkit-ali / chaostoolkit-kubernetes: time {ours['wall'] / peer['wall']:.2f} (aim <= {AIM}), "
          f"cpu {ours['cpu'] / peer['cpu']:.2f}, peak memory {ours['rss'] / peer['rss']:.2f}")


if __name__ == "__main__":
    main()
