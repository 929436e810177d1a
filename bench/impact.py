"""Benchmark: the impact recorder against naive 1-second polling, on a cluster with many nodes and pods.

Fills a lab cluster of its own with --nodes Node objects and --pods Pod objects in one namespace
(as bench/scale.py does), waits for the node controller to settle, then for a window of --seconds,
while a churn thread deletes and re-creates --churn pods per second (its own client, not
metered), measures side by side:

1. the recorder (chaosali.impact.recorder.Recorder on the namespace), in a child process that
   runs nothing else, against a 1-second poller (list the namespace's pods, list the nodes) in
   this process: API requests, connections and response bytes of each (bench/_cluster.py's Meter,
   one per client: every byte read from the HTTP connection, streamed watches included), and the
   ratios;
2. the recorder's CPU seconds (the child's getrusage: its own split into initial lists and window,
   and RUSAGE_CHILDREN for the whole process) and memory (RSS from /proc: peak and deltas);
3. then, with the recorder alone, for each of --memory-churn rates over the same window: its Python
   heap (tracemalloc, all threads of the child) after the initial lists and its growth in the
   window, to show what grows with churn and what with the cluster;
4. whether the recording holds every deletion and re-creation the churn made, its errors, and
   measures.measure() on it.

Needs root: brings up its own lab (csimpact, 10.221.0.0/24; with --quick csqimpact, 10.235.0.0/24)
and brings it down at the end.

    python bench/impact.py [--nodes 1000] [--pods 10000] [--seconds 300] [--churn 2] [--memory-churn 1 4]
    python bench/impact.py --quick      # 20 nodes, 200 pods, 5 s windows, one memory window
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from chaosali.cluster.api import new_api_client
from chaosali.impact.measures import measure
from chaosali.impact.recorder import Recorder, Scope

from _cli import parse  # bench/_cli.py
from _cluster import Meter, fill, lab_cluster, pod_body

NAMESPACE = "impact"
_LAG_SECONDS = 3.0  # after the churn stops, for the recorder's watches to deliver the last events
_MiB = 1024 * 1024


# ---- the recorder, in a child process ----------------------------------------------------------


def record(spec_path: str) -> None:
    """Child: start a metered recorder, say "started", record until a line (or EOF) on stdin,
    then write what was measured to ``<spec>.out``."""
    spec = json.loads(Path(spec_path).read_text())
    if spec["trace"]:
        tracemalloc.start()
    logs = _LogCount()
    logger = logging.getLogger("chaostoolkit")
    logger.addHandler(logs)  # everything, counted; only warnings and errors reach stderr
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    warnings = logging.StreamHandler()
    warnings.setLevel(logging.WARNING)
    logger.addHandler(warnings)
    crashes: list[str] = []

    def crashed(hook: Any) -> None:  # a recorder thread that dies: counted, and its traceback on stderr
        crashes.append(f"{hook.thread.name if hook.thread else '?'}: {hook.exc_type.__name__}: {hook.exc_value}")
        threading.__excepthook__(hook)

    threading.excepthook = crashed
    meter = Meter()
    configuration = {"kubeconfig_path": spec["kubeconfig"]}
    recorder = Recorder(lambda: meter.attach(new_api_client(configuration, retries=0)),
                        Scope((spec["namespace"],)), cap=spec["cap"])
    # measured from the outside (the recorder's public interface and its HTTP traffic), so that
    # no change inside the recorder can break this benchmark silently
    threads_before = set(threading.enumerate())
    points: dict[str, dict] = {}

    def point(name: str) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        points[name] = {
            "cpu": usage.ru_utime + usage.ru_stime, "wall": time.monotonic(), **meter.snapshot(),
            "rss": int(status["VmRSS"].split()[0]) * 1024, "rss_peak": int(status["VmHWM"].split()[0]) * 1024,
            "traced": tracemalloc.get_traced_memory() if spec["trace"] else None,
        }

    point("before")
    recorder.start()
    point("started")
    # the initial lists' first pages, by path; a list that starts again after this is a relist
    listed = {key: count for key, (count, _) in meter.split().items() if not key.endswith((" watch", " page"))}
    if spec["trace"]:
        tracemalloc.reset_peak()  # from here on, the peak is the window's
    print("started", flush=True)
    sys.stdin.readline()
    point("window")
    recorder.stop()
    point("stopped")
    by = meter.split()
    out = {
        "points": points, "by": by, "logs": logs.summary(), "crashes": crashes,
        "relists": {key: by[key][0] - count for key, count in listed.items() if by[key][0] > count},
        "alive": [t.name for t in threading.enumerate() if t not in threads_before],
        "recording": recorder.recording(),
    }
    Path(spec_path + ".out").write_text(json.dumps(out))


class _LogCount(logging.Handler):
    """What the recorder logged, by level and message template, with one example each."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: dict[str, list] = {}

    def emit(self, entry: logging.LogRecord) -> None:
        seen = self.seen.setdefault(f"{entry.levelname} {entry.msg}", [0, entry.getMessage()[:300]])
        seen[0] += 1

    def summary(self) -> dict[str, list]:
        # new_api_client's line for every client made (the API sampler makes one a second) is noise
        return {k: v for k, v in self.seen.items() if not k.startswith("DEBUG Kubernetes API %s from")}


# ---- the load and the baseline, in this process ------------------------------------------------


class Churn(threading.Thread):
    """Deletes and re-creates pod after pod at a steady rate, with a client of its own."""

    def __init__(self, configuration: dict, rate: float, nodes: int, pods: int, first: int) -> None:
        super().__init__(name="churn", daemon=True)
        self.configuration, self.rate, self.nodes, self.pods, self.first = configuration, rate, nodes, pods, first
        self.stopping = threading.Event()
        self.done: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with new_api_client(self.configuration) as api:
            core = client.CoreV1Api(api)
            started, k = time.monotonic(), 0
            while not self.stopping.wait(max(0.0, started + k / self.rate - time.monotonic())):
                i = (self.first + k) % self.pods
                body = pod_body(i, self.nodes, steady=True)
                name = body["metadata"]["name"]
                try:
                    # at once: a fake node has no kubelet to end a graceful deletion, and the
                    # name would stay taken by a Terminating pod
                    core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0, _request_timeout=30)
                    core.create_namespaced_pod(NAMESPACE, body, _request_timeout=30)
                    self.done.append(name)
                except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
                    self.errors.append(f"{name}: {str(error).splitlines()[0]}")
                k += 1


class Poller(threading.Thread):
    """The naive baseline: every --interval, list the namespace's pods and the nodes (at once
    again when a round took longer)."""

    def __init__(self, configuration: dict, interval: float) -> None:
        super().__init__(name="poller", daemon=True)
        self.configuration, self.interval = configuration, interval
        self.meter = Meter()
        self.stopping = threading.Event()
        self.rounds: list[float] = []
        self.errors: list[str] = []
        self.cpu = 0.0

    def run(self) -> None:
        with self.meter.attach(new_api_client(self.configuration)) as api:
            core = client.CoreV1Api(api)
            due = time.monotonic()
            while not self.stopping.wait(max(0.0, due - time.monotonic())):
                started = time.monotonic()
                try:
                    # parsed as a poller that compares states must; raw JSON spares it the models
                    json.loads(core.list_namespaced_pod(NAMESPACE, _preload_content=False, _request_timeout=60).data)
                    json.loads(core.list_node(_preload_content=False, _request_timeout=60).data)
                    self.rounds.append(time.monotonic() - started)
                except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
                    self.errors.append(str(error).splitlines()[0])
                due = max(started + self.interval, time.monotonic())
        self.cpu = time.thread_time()


def settle(configuration: dict, quiet: float = 10.0, timeout: float = 900.0) -> float:
    """Wait until ``quiet`` seconds of watching see no change to the namespace's pods and at most
    one to the fake nodes. After the fill the node controller works through the 1,000 silent
    nodes for minutes (not-ready taint off, unreachable taint on, node after node), then goes on
    tainting at its eviction rate, 0.1 node per second, the trickle allowed: that is cluster
    noise, neither the churn's nor the recorder's."""
    started = time.monotonic()
    with new_api_client(configuration) as api:
        core = client.CoreV1Api(api)
        # (call, its arguments): watch.Watch reads the return type from the call's docstring;
        # the lab's own nodes (kwok heartbeats) are left out
        lists = {"pods": (core.list_namespaced_pod, (NAMESPACE,), {}),
                 "nodes": (core.list_node, (), {"label_selector": "type=fake"})}
        versions = {kind: call(*args, limit=1, **kw).metadata.resource_version
                    for kind, (call, args, kw) in lists.items()}
        rounds = 0
        while time.monotonic() - started < timeout:
            events: Counter[str] = Counter()
            for kind, (call, args, kw) in lists.items():
                for event in watch.Watch().stream(call, *args, resource_version=versions[kind], **kw,
                                                  timeout_seconds=int(quiet / 2), _request_timeout=quiet + 30):
                    events[kind] += 1
                    versions[kind] = event["object"].metadata.resource_version
            if not events["pods"] and events["nodes"] <= 1:
                return time.monotonic() - started
            rounds += 1
            if rounds % 6 == 0:
                print(f"  settling: {dict(events)} changes in the last {quiet:g} s", flush=True)
    raise RuntimeError(f"the pods of {NAMESPACE} or the nodes were still changing after {timeout:.0f} s")


def window(configuration: dict, args: argparse.Namespace, churn: float, poll: bool, trace: bool,
           first: int, work: Path) -> dict:
    """One measured window: the recorder in a child, the churn (and the poller) here."""
    spec = work / f"recorder-{churn:g}-{'poll' if poll else 'alone'}.json"
    spec.write_text(json.dumps({"kubeconfig": configuration["kubeconfig_path"], "namespace": NAMESPACE,
                                "cap": args.cap, "trace": trace}))
    stderr = spec.with_suffix(".stderr")
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with stderr.open("w") as errors:
        child = subprocess.Popen([sys.executable, __file__, "--record", str(spec)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        if not select.select([child.stdout], [], [], 300)[0] or child.stdout.readline().strip() != "started":
            raise RuntimeError(f"the recorder did not start: {stderr.read_text()[-3000:]}")
        churner = Churn(configuration, churn, args.nodes, args.pods, first)
        poller = Poller(configuration, args.interval) if poll else None
        started = time.monotonic()
        for thread in (churner, poller):
            if thread:
                thread.start()
        time.sleep(args.seconds)
        for thread in (churner, poller):
            if thread:
                thread.stopping.set()
                thread.join()
        elapsed = time.monotonic() - started
        time.sleep(_LAG_SECONDS)
        child.communicate("stop\n", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode:
        raise RuntimeError(f"the recorder exited {child.returncode}: {stderr.read_text()[-3000:]}")
    out = json.loads(Path(f"{spec}.out").read_text())
    out["stderr"] = stderr.read_text()
    out["process_cpu"] = (children_after.ru_utime + children_after.ru_stime
                          - children_before.ru_utime - children_before.ru_stime)
    out["churn"] = {"rate": churn, "done": churner.done, "errors": churner.errors, "seconds": elapsed}
    out["poller"] = None if not poller else {
        **poller.meter.snapshot(), "by": dict(poller.meter.by), "rounds": poller.rounds,
        "errors": poller.errors, "cpu": poller.cpu,
    }
    return out


# ---- the report ---------------------------------------------------------------------------------


def check(run: dict) -> dict:
    """The churn against the recording: every deletion and re-creation seen?"""
    recording = run["recording"]
    seen: dict[str, Counter[str]] = {"deleted": Counter(), "created": Counter()}
    kinds: Counter[str] = Counter()
    for entry in recording["timeline"]:
        kinds[f"{entry['kind']} {entry['what']}"] += 1
        if entry["kind"] == "pod" and entry["what"] in seen:
            seen[entry["what"]][entry["pod"].partition("/")[2]] += 1
    churned = Counter(run["churn"]["done"])
    started = time.process_time()
    measures = measure(recording)
    return {
        "missed": {what: sorted((churned - counts).elements()) for what, counts in seen.items()},
        "unexpected": {what: sorted((counts - churned).elements()) for what, counts in seen.items()},
        "kinds": kinds, "measures": measures, "measure_cpu": time.process_time() - started,
    }


def _row(name: str, requests: int, connections: int, size: int, seconds: float | None) -> str:
    rate = f"{size / 1024 / seconds:>14,.1f}" if seconds else f"{'-':>14}"
    return f"  {name:<30}{requests:>10,}{connections:>13,}{size / _MiB:>16,.2f}{rate}"


def report(args: argparse.Namespace, main_run: dict, memory_runs: list[dict]) -> None:
    points, poller, churn = main_run["points"], main_run["poller"], main_run["churn"]
    seconds = churn["seconds"]
    start = {k: points["started"][k] - points["before"][k] for k in ("requests", "connections", "bytes")}
    during = {k: points["window"][k] - points["started"][k] for k in ("requests", "connections", "bytes")}
    total = {k: points["window"][k] - points["before"][k] for k in ("requests", "connections", "bytes")}
    recorder_seconds = points["window"]["wall"] - points["started"]["wall"]
    print(f"\nimpact recorder vs {args.interval:g}-second polling: {args.nodes:,} nodes, {args.pods:,} pods in "
          f"namespace {NAMESPACE!r}; window {seconds:.0f} s; churn {churn['rate']:g}/s "
          f"({len(churn['done'])} pods deleted and re-created, {len(churn['errors'])} errors)")
    print(f"  {'':<30}{'requests':>10}{'connections':>13}{'MiB received':>16}{'KiB/s':>14}")
    print(_row("recorder: initial lists", start["requests"], start["connections"], start["bytes"], None))
    print(_row(f"recorder: watching ({recorder_seconds:.0f} s)", during["requests"], during["connections"],
               during["bytes"], recorder_seconds))
    print(_row("recorder: total", total["requests"], total["connections"], total["bytes"], seconds))
    rounds = poller["rounds"]
    print(_row(f"polling: {len(rounds)} rounds", poller["requests"], poller["connections"], poller["bytes"], seconds))
    print(f"  polling / recorder: requests x{poller['requests'] / max(total['requests'], 1):.1f}, "
          f"bytes x{poller['bytes'] / max(total['bytes'], 1):,.0f} (aim: x50 or more); bytes per second, "
          f"watching only: x{poller['bytes'] / seconds / max(during['bytes'] / recorder_seconds, 1):,.0f}")
    if rounds:
        print(f"  polling rounds: median {statistics.median(rounds):.2f} s, max {max(rounds):.2f} s, "
              f"{sum(r > args.interval for r in rounds)} longer than {args.interval:g} s; "
              f"{len(poller['errors'])} errors; poller thread CPU {poller['cpu']:.1f} s")
    print("  recorder requests by kind (requests, MiB):")
    for key, (requests, size) in sorted(main_run["by"].items(), key=lambda kv: -kv[1][1]):
        print(f"    {key:<60}{requests:>8,}{size / _MiB:>12,.3f}")

    cpu_start = points["started"]["cpu"] - points["before"]["cpu"]
    cpu_window = points["window"]["cpu"] - points["started"]["cpu"]
    print(f"\n  recorder CPU (child process, getrusage): initial lists {cpu_start:.2f} s; watching {cpu_window:.2f} s "
          f"({cpu_window / recorder_seconds * 100:.1f}% of a core); whole process incl. interpreter, imports and "
          f"stop {main_run['process_cpu']:.2f} s (RUSAGE_CHILDREN)")
    base = points["before"]["rss"]
    print(f"  recorder memory (RSS, /proc/self/status): {base / _MiB:.0f} MiB before start (interpreter and "
          f"imports); +{(points['started']['rss'] - base) / _MiB:.1f} MiB after the initial lists; "
          f"+{(points['window']['rss'] - base) / _MiB:.1f} MiB at the window's end; peak (VmHWM) "
          f"+{(points['window']['rss_peak'] - base) / _MiB:.1f} MiB")

    for run in [main_run, *memory_runs]:
        label = f"churn {run['churn']['rate']:g}/s{', with polling' if run['poller'] else ''}"
        checked, recording = check(run), run["recording"]
        print(f"\n  recording ({label}): {len(recording['timeline']):,} entries (cap {args.cap:,}), "
              f"{recording['dropped']} dropped, "
              f"{len(recording['errors'])} errors, {len(recording['api_outages'])} API outages; "
              f"relists {run['relists'] or 0}; threads still alive after stop: {run['alive'] or 'none'}; "
              f"thread crashes: {run['crashes'] or 'none'}")
        for what in ("deleted", "created"):
            missed, unexpected = checked["missed"][what], checked["unexpected"][what]
            print(f"    churned pods {what}: {len(run['churn']['done']) - len(missed)}/{len(run['churn']['done'])} "
                  f"seen{f', missed {missed[:5]}…' if missed else ''}"
                  f"{f'; {len(unexpected)} not churned: {unexpected[:5]}' if unexpected else ''}")
        print(f"    entries by kind: {dict(checked['kinds'].most_common(8))}")
        measures = checked["measures"]
        print(f"    measure(): pods_lost {measures['pods_lost']}, deleted by mistake "
              f"{measures['pods_deleted_by_mistake']}, impact {measures['impact']!r}, complete {measures['complete']}, "
              f"in {checked['measure_cpu']:.2f} s CPU")
        for error in recording["errors"][:5]:
            print(f"    recorder error: {error}")
        for count, example in run["logs"].values():
            print(f"    log x{count}: {example}")
        if run["stderr"].strip():
            print("    child stderr:\n" + "\n".join(f"      {line}" for line in run["stderr"].splitlines()[-40:]))

    if memory_runs:
        print(f"\n  recorder memory vs churn (recorder alone, same {args.seconds:g} s window; tracemalloc: the "
              "Python heap of every thread of the child):")
        print(f"  {'churn/s':>8}{'churned':>9}{'entries':>9}{'peak in lists':>15}{'after lists':>13}"
              f"{'window growth':>15}{'window peak':>13}{'RSS growth':>12}{'CPU watching':>14}")
        for run in memory_runs:
            p = run["points"]
            traced_start, traced_window = p["started"]["traced"], p["window"]["traced"]
            print(f"  {run['churn']['rate']:>8g}{len(run['churn']['done']):>9,}{len(run['recording']['timeline']):>9,}"
                  f"{traced_start[1] / _MiB:>12.1f} MiB{traced_start[0] / _MiB:>10.1f} MiB"
                  f"{(traced_window[0] - traced_start[0]) / _MiB:>12.2f} MiB{traced_window[1] / _MiB:>10.1f} MiB"
                  f"{(p['window']['rss'] - p['started']['rss']) / _MiB:>9.1f} MiB"
                  f"{p['window']['cpu'] - p['started']['cpu']:>12.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=300, help="each measured window (default 300)")
    parser.add_argument("--churn", type=float, default=2.0, help="pods deleted and re-created per second")
    parser.add_argument("--memory-churn", type=float, nargs="*", default=[1.0, 4.0],
                        help="churn rates of the recorder-alone memory windows (none: skip them)")
    parser.add_argument("--interval", type=float, default=1.0, help="the poller's period")
    parser.add_argument("--cap", type=int, default=5000, help="the recorder's timeline cap")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds without change after the fill that count as settled (default 10)")
    parser.add_argument("--out", type=Path, help="a directory to keep each window's raw figures and recording in")
    parser.add_argument("--record", help=argparse.SUPPRESS)  # the child process
    args = parse(parser, {"nodes": 20, "pods": 200, "seconds": 5, "memory_churn": [2.0], "settle": 2.0},
                 labs=({"name": "csimpact", "subnet": "10.221.0.0/24"},
                       {"name": "csqimpact", "subnet": "10.235.0.0/24"}))
    if args.record:
        record(args.record)
        return

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # fill's 16 threads, a pool of 10
    with (tempfile.TemporaryDirectory(prefix="impact-bench-") as work,
          lab_cluster(**args.lab) as configuration):
        started = time.perf_counter()
        fill(configuration, args.nodes, args.pods, NAMESPACE, steady=True)
        print(f"filled {args.nodes} nodes and {args.pods} pods in {time.perf_counter() - started:.0f} s", flush=True)
        print(f"settled in {settle(configuration, args.settle):.0f} s", flush=True)
        runs, first = [], 0
        for churn, poll, trace in [(args.churn, True, False), *((rate, False, True) for rate in args.memory_churn)]:
            print(f"window: churn {churn:g}/s, {'recorder and poller' if poll else 'recorder alone'}, "
                  f"{args.seconds:g} s", flush=True)
            runs.append(window(configuration, args, churn, poll, trace, first, Path(work)))
            first += len(runs[-1]["churn"]["done"])  # each window churns pods the others did not
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"window-{len(runs)}.json").write_text(json.dumps(runs[-1], default=list))
        report(args, runs[0], runs[1:])


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    main()
