"""Benchmark: reporting a journal stays near linear in its size, in time and in memory.

For each size N, a journal of N activities and N secret values: failing probes each of their own
name (N subjects of outages), faults and the restores that end them, processes echoing the
secrets (masked in every string). Each size is reported in a process of its own, which reads the
journal file (``load_runs``: JSON, masking, figures) and renders every format; it prints the
journal's size, the read and render times (wall clock), the CPU time of the whole (steadier on a
shared machine), and the process's peak memory (its maximum resident set, the interpreter
included: the baseline line gives that of an empty report). Then the ratio of the largest size
to the smallest, in CPU time, side by side with the ratio of their sizes: equal ratios are
linear growth, a square would be that ratio squared.

    python bench/report.py                  # 10k and 100k activities and secrets
    python bench/report.py --quick          # 1k and 10k, 0.02 MB of hostile text: well under a minute
    python bench/report.py --sizes 400000   # e.g. a ~180 MB journal

Then the masking of hostile free text (runs that a credential pattern could start in), at one
size and ten times that.

Last, trends across runs (issue 35): a directory of E experiments x N nightly journals, each a
copy of a real master-netcut journal (tests/data/alerts.json, 40 KB, with its impact recording
and alerts) under its own title and night, its API outage and recovery varying and now and then
slower. ``chaosali report DIR`` is timed in a process of its own, reading every journal (on every
CPU) and rendering each format; it prints the read and render times, the HTML page's size, and the
peak memory of the report's process and of its largest reading worker.

    python bench/report.py --trend-experiments 15 --trend-nights 365   # a year of 15 nightly drills
"""

import argparse
import copy
import datetime as dt
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cli import parse  # bench/_cli.py

_START = dt.datetime(2026, 1, 10, 10, 0, tzinfo=dt.timezone.utc)


def journal(size: int) -> dict:
    """N activities (a third failing probes, a third faults, a third processes) and N secrets."""
    # as random as real secrets: no common prefix that a regular expression could factor out
    secrets = {f"key{n}": hashlib.blake2b(str(n).encode(), digest_size=12).hexdigest() for n in range(size)}

    def at(seconds: float) -> str:
        return (_START + dt.timedelta(seconds=seconds)).isoformat()

    def entry(n: int, kind: str, output: object, name: str) -> dict:
        return {"activity": {"type": kind, "name": name, "provider": {"type": "python", "func": "f"}},
                "output": output, "status": "succeeded", "start": at(n), "end": at(n + 0.5), "duration": 0.5}

    run, rollbacks = [], []
    for n in range(size):
        if n % 3 == 0:
            run.append(entry(n, "probe", False, f"probe-{n}"))  # each a subject seen down, never back
        elif n % 3 == 1:
            run.append(entry(n, "action", {"fault_id": f"f{n}", "kind": "netem", "started_at": at(n),
                                           "heals_at": at(n + 60), "hosts": [{"host": "h1", "ok": True}]},
                             f"inject-{n}"))
            rollbacks.append(entry(size + n, "action", {"restored": {"h1": [f"f{n}"]}}, f"restore-{n}"))
        else:
            run.append(entry(n, "action", {"status": 0, "stdout": f"logged in with {secrets[f'key{n}']}\n",
                                           "stderr": ""}, f"process-{n}"))
    return {"chaoslib-version": "1.44.0", "status": "completed", "deviated": False, "start": at(0),
            "end": at(2 * size + 1), "duration": 2.0 * size + 1,
            "experiment": {"title": "report bench", "secrets": {"api": secrets}, "method": []},
            "steady_states": {"before": None, "after": None, "during": []}, "run": run, "rollbacks": rollbacks}


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from chaosali.report.render import FORMATS, load_runs, render
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
started, cpu_started = time.perf_counter(), cpu()
runs = load_runs([Path(sys.argv[1])]) if sys.argv[1] != "-" else []
read = time.perf_counter() - started
sizes = [len(render(runs, fmt)) for fmt in FORMATS] if runs else []
print(json.dumps({"read": read, "render": time.perf_counter() - started - read, "cpu": cpu() - cpu_started,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


# texts made to make a regular expression backtrack: runs that a credential's name, an option, a
# URL, a PEM block, a JWT or a printed Secret's JSON could start in, repeated
_HOSTILE = {"letters": "a", "dashes": "-", "dots": "a.", "JWT starts": "eyJ", "PEM starts": "-----BEGIN RSA PRIVATE KEY-----x",
            "URL schemes": "a://b:", "header names": "authorization ", "names": "x_password ", "options": "--a-",
            "JSON openings": '{"Secret data":\n'}  # nested objects a printed Secret could start, never closed


def hostile(megabytes: float) -> None:
    """Masking time of hostile free text, at one size and ten times that: the ratio shows linearity."""
    from chaosali.report.redact import redact
    print(f"hostile text, {megabytes:g} MB and {10 * megabytes:g} MB in one output:")
    for name, unit in _HOSTILE.items():
        times = []
        for size in (megabytes, 10 * megabytes):
            text = unit * int(size * 1e6 / len(unit))
            started = time.process_time()
            redact({"experiment": {}, "run": [{"output": text}]})
            times.append(time.process_time() - started)
        print(f"  {name:>13}: {times[0]:.2f}s, {times[1]:.2f}s: x{times[1] / max(times[0], 1e-3):.1f}")


_TREND_CHILD = """
import json, resource, sys, time
from pathlib import Path
from chaosali.report.render import FORMATS, load_report, render
started = time.perf_counter()
report = load_report([Path(sys.argv[1])])
read = time.perf_counter() - started
formats = {}
for fmt in FORMATS:
    began = time.perf_counter()
    formats[fmt] = [len(render(report, fmt).encode()), time.perf_counter() - began]
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"read": read, "formats": formats, "total": time.perf_counter() - started,
                  "journals": len(report.points), "regressions": len(report.regressions), "full": len(report.runs),
                  "peak": usage.ru_maxrss, "workers_peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""
_REAL = Path(__file__).resolve().parent.parent / "tests" / "data" / "alerts.json"  # master-netcut on the lab
_REAL_DAY = "2026-12-03T"  # the day it ran: every moment in it


def nightly(directory: Path, experiments: int, nights: int) -> float:
    """E experiments x N nights of a real journal, one directory per night; their size in MB."""
    base = json.loads(_REAL.read_text())
    title = base["experiment"]["title"]
    randomly = random.Random(35)
    size = 0
    for night in range(nights):
        folder = directory / f"{night:03d}"
        folder.mkdir()
        day = (_START + dt.timedelta(days=night)).date().isoformat()
        for number in range(experiments):
            journal = copy.copy(base)  # only the parts changed below are new objects
            journal["experiment"] = {**base["experiment"], "title": f"{title} #{number + 1}"}
            slow = randomly.random() < 0.02  # now and then a night much slower than the others
            down = round(randomly.uniform(8, 10) * (2.5 if slow else 1), 2)
            journal["extensions"] = [{**entry, "measures": {**entry["measures"], "api_down_seconds": down}}
                                     if entry.get("name") == "chaosali-impact" else entry for entry in base["extensions"]]
            text = json.dumps(journal).replace(_REAL_DAY, f"{day}T")  # every moment of the run on its night
            (folder / f"{number + 1:02d}.json").write_text(text)
            size += len(text)
    return size / 1e6


def trend(experiments: int, nights: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        megabytes = nightly(Path(tmp), experiments, nights)
        made = time.perf_counter() - started
        done = subprocess.run([sys.executable, "-c", _TREND_CHILD, tmp], capture_output=True, text=True, check=True)
        result = json.loads(done.stdout)
    html_bytes, html_seconds = result["formats"]["html"]
    print(f"trend: {experiments} experiments x {nights} nights = {result['journals']} journals ({megabytes:.0f} MB, "
          f"made in {made:.1f}s): read {result['read']:.1f}s, html {html_seconds:.2f}s ({html_bytes / 1e6:.1f} MB), "
          f"all {len(result['formats'])} formats: {result['total']:.1f}s in all")
    print("  render per format: " + ", ".join(f"{fmt} {seconds:.2f}s ({size / 1e6:.1f} MB)"
                                              for fmt, (size, seconds) in result["formats"].items()))
    print(f"  regressions {result['regressions']}, runs reported in full {result['full']}; peak memory: the report "
          f"{result['peak'] / 1024:.0f} MiB, its largest reading worker {result['workers_peak'] / 1024:.0f} MiB")


def measure(path: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated activity / secret counts")
    parser.add_argument("--hostile-mb", type=float, default=0.1,
                        help="hostile text masked at this size and ten times it (default 0.1 MB)")
    parser.add_argument("--trend-experiments", type=int, default=15, help="experiments of the trend (default 15)")
    parser.add_argument("--trend-nights", type=int, default=365, help="nightly runs of each (default 365: a year)")
    args = parse(parser, {"sizes": "1000,10000", "hostile_mb": 0.02, "trend_experiments": 3, "trend_nights": 70})
    sizes = [int(size) for size in args.sizes.split(",")]
    baseline = measure("-")
    print(f"baseline (interpreter and imports): peak {baseline['peak'] / 1024:.0f} MiB")
    print(f"{'activities':>10} {'secrets':>8} {'journal':>10} {'read':>8} {'render':>8} {'total':>8} {'CPU':>8} {'peak':>9}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / f"journal-{size}.json"
            path.write_text(json.dumps(journal(size)))
            megabytes = path.stat().st_size / 1e6
            result = measure(str(path))
            total = result["read"] + result["render"]
            results.append((size, result["cpu"], result["peak"]))
            print(f"{size:>10} {size:>8} {megabytes:>7.1f} MB {result['read']:>7.2f}s {result['render']:>7.2f}s "
                  f"{total:>7.2f}s {result['cpu']:>7.2f}s {result['peak'] / 1024:>5.0f} MiB")
            path.unlink()
    if len(results) > 1:
        (small, small_time, small_peak), (large, large_time, large_peak) = results[0], results[-1]
        print(f"{large}/{small}: size x{large / small:.1f}, CPU time x{large_time / small_time:.1f}, "
              f"peak memory above the baseline x{(large_peak - baseline['peak']) / max(1, small_peak - baseline['peak']):.1f}")
    print(f"(this process: peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, generating)")
    hostile(args.hostile_mb)
    trend(args.trend_experiments, args.trend_nights)


if __name__ == "__main__":
    main()
