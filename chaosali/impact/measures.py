"""Measures derived from a recording, and limits judged against them (pure: no API, no clock).

Times are seconds on the recording's own clock (``t``: seconds since it started). The fault's
end, when known, is given on that clock too; recoveries are measured from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from chaosali.core import args, extensions
from chaosali.core.errors import InvalidArgument
from chaosali.core.windows import Windows

__all__ = ["measure", "http_between", "judge", "detections", "declared_alerts", "expected_alerts", "fault_span",
           "sorted_alerts", "Limit", "LIMITS",
           "IMPACTS", "BARE_PODS", "NOT_DETECTED", "ALERT_MOMENTS", "RECORDING_EVIDENCE"]

IMPACTS = ("none", "partial", "core")
BARE_PODS = "pods without a controller"
#: What the run's evidence calls the recording's sightings (its figures are the measures', told once)
RECORDING_EVIDENCE = "the impact recording"
_DAY = 86400.0


@dataclass(frozen=True)
class Limit:
    """One impact limit, as ``impact_within``, the FMEA, the report and the docs all read it."""

    name: str
    means: str  # what it bounds
    unit: str  # "pods", "samples", "seconds" or "percent": how its bound is read and shown
    phrase: str  # the check as reports name it; "{}" is the bound, shown in its unit
    measured: Callable[[dict[str, Any]], Any]  # what it bounds, from the measures
    met: Callable[[Any, float], bool]  # whether the measured value is within the bound

    def bound(self, value: Any) -> float:
        """The bound, checked: the one reader of impact_within's arguments and the FMEA's fields."""
        if self.unit in ("pods", "samples"):
            return args.whole(value, self.name, 0, 100_000)
        if self.unit == "percent":
            return args.percent(value, f"{self.name} (per cent)", zero=True)
        return args.number(value, f"{self.name} (seconds)", 0, _DAY)


LIMITS = {limit.name: limit for limit in (
    Limit("max_pods_lost", "pods deleted or evicted during the drill, in scope", "pods",
          "pods lost at most {}", lambda m: m["pods_lost"], lambda lost, bound: lost <= bound),
    Limit("max_unavailable_seconds", "seconds any workload ran below its desired ready replicas", "seconds",
          "each workload below desired at most {}",
          lambda m: {name: w["seconds_below_desired"] for name, w in m["workloads"].items()},
          lambda below, bound: all(value <= bound for value in below.values())),
    Limit("max_recovery_seconds", "seconds from the fault's end until every workload and node recovered", "seconds",
          "workloads and nodes recovered within {}", lambda m: m["recovery_seconds"],
          lambda took, bound: took is not None and took <= bound),
    Limit("min_availability", "per cent of HTTP samples that succeeded, for every HTTP target", "percent",
          "HTTP availability at least {} %",
          lambda m: {name: target["availability"] for name, target in m["http"].items()},
          lambda seen, bound: all(value is not None and value >= bound for value in seen.values())),
    Limit("max_failure_streak", "failed HTTP samples in a row, for every HTTP target", "samples",
          "HTTP failures in a row at most {}",
          lambda m: {name: target["longest_failure_streak"] for name, target in m["http"].items()},
          lambda seen, bound: all(value <= bound for value in seen.values())),
    Limit("max_api_down_seconds", "seconds the API server did not answer", "seconds",
          "API down at most {}", lambda m: m["api_down_seconds"], lambda down, bound: down <= bound),
)}


def measure(recording: dict[str, Any], fault_end: float | None = None) -> dict[str, Any]:
    """Per workload, node and HTTP target: what broke, for how long, how fast it came back."""
    end = float(recording.get("seconds") or 0.0)
    timeline = recording.get("timeline") or []
    workloads = _workloads(timeline, end, fault_end)
    nodes = _nodes(timeline, end, fault_end)
    started, _ = fault_span(recording.get("fault_starts") or {}, {})
    during = None if started is None else (started, end if fault_end is None else fault_end)
    http = {name: _http(target, during, started) for name, target in (recording.get("http") or {}).items()}
    # an outage not seen back lasts until the recording's own end (it may be read mid-run)
    api_down = sum(max(0.0, (end if outage.get("to") is None else outage["to"]) - outage["from"])
                   for outage in recording.get("api_outages") or [])
    lost = [pod for workload in workloads.values() for pod in workload["lost"]]
    measures = {
        "pods_lost": len(lost),
        "pods_deleted_by_mistake": sum(pod["reason"] == "deleted by mistake" for pod in lost),
        "api_down_seconds": round(api_down, 3),
        "workloads": workloads,
        "nodes": nodes,
        "http": http,
        "recovery_seconds": _recovery(workloads, nodes),
        "complete": not recording.get("dropped") and not recording.get("errors"),
    }
    measures["impact"] = _impact(measures)
    return measures


def judge(measures: dict[str, Any], limits: dict[str, Any], max_impact: str | None = None) -> list[dict[str, Any]]:
    """Each limit given, with what was measured and whether it was met; ``max_impact``: the most
    impact (none, partial, core) the FMEA expects, a lower one is met."""
    checks = []
    for name, limit in limits.items():
        if limit is None:
            continue
        if name not in LIMITS:
            raise InvalidArgument(f"unknown impact limit {name!r}: use {', '.join(LIMITS)}")
        bound, measured = LIMITS[name].bound(limit), LIMITS[name].measured(measures)
        checks.append({"limit": name, "bound": bound, "measured": measured, "met": LIMITS[name].met(measured, bound),
                       "means": LIMITS[name].means})
    if max_impact is not None:
        most = args.choice(max_impact, "max_impact", IMPACTS)
        checks.append({"limit": "max_impact", "bound": most, "measured": measures["impact"],
                       "met": IMPACTS.index(measures["impact"]) <= IMPACTS.index(most),
                       "means": "the most impact the FMEA expects: none, partial or core"})
    return checks


def _workloads(timeline: list[dict], end: float, fault_end: float | None) -> dict[str, dict]:
    found: dict[str, list[tuple[float, int, int]]] = {}
    short_at_start: set[str] = set()
    for entry in timeline:
        if entry["kind"] == "workload":
            found.setdefault(entry["workload"], []).append((entry["t"], entry["desired"], entry["ready"]))
            if entry["what"] == "initial" and entry["ready"] < entry["desired"]:
                short_at_start.add(entry["workload"])
    pods_by_workload: dict[str, list[dict]] = {}
    for entry in timeline:
        if entry["kind"] == "pod":
            pods_by_workload.setdefault(entry.get("workload") or BARE_PODS, []).append(entry)
    result: dict[str, dict[str, Any]] = {}
    for name in sorted(set(found) | set(pods_by_workload)):
        states = found.get(name, [])
        below = _below(states, end)
        if name in short_at_start and below:  # short before the drill began: not the drill's doing
            below = below[1:]
        result[name] = {
            "desired": states[-1][1] if states else None,
            "min_ready": min((ready for _, _, ready in states), default=None),
            "short_at_start": name in short_at_start,
            "seconds_below_desired": round(sum(stop - start for start, stop in below), 3),
            "below_desired": [{"from": round(start, 3), "to": round(stop, 3)} for start, stop in below],
            "recovered_after_fault_seconds": _after(below, end, fault_end),
            "lost": _lost(pods_by_workload.get(name, [])),
        }
        result[name]["pods_lost"] = len(result[name]["lost"])
    return result


def _below(states: list[tuple[float, int, int]], end: float) -> list[tuple[float, float]]:
    """The intervals during which a workload had fewer ready replicas than desired."""
    below = Windows()
    for t, desired, ready in states:
        below.sample(ready >= desired, t)
    below.close(end)
    return [(span["from"], span["to"]) for span in below.spans]


def _after(bad: list[tuple[float, float]], end: float, fault_end: float | None) -> float | None:
    """Seconds from the fault's end until the last bad interval ended (0: fine by then, or never
    bad); None while still bad at the end of the recording, or when the fault's end is unknown."""
    if not bad:
        return 0.0
    if bad[-1][1] >= end or fault_end is None:
        return None
    return round(max(0.0, bad[-1][1] - fault_end), 3)


def _lost(entries: list[dict]) -> list[dict]:
    """Pods deleted, each with the time until a replacement of the same workload was Ready."""
    created = [e for e in entries if e["what"] == "created"]
    ready_at: dict[str, float] = {}
    for entry in entries:
        if entry["what"] == "ready":
            ready_at.setdefault(entry["pod"], entry["t"])
    used: set[str] = set()
    lost = []
    for deleted in (e for e in entries if e["what"] == "deleted"):
        replacement = next((c for c in created if c["t"] >= deleted["t"] and c["pod"] not in used
                            and c["pod"] != deleted["pod"]), None)
        replaced_after = None
        if replacement is not None:
            used.add(replacement["pod"])
            if replacement["pod"] in ready_at:
                replaced_after = round(ready_at[replacement["pod"]] - deleted["t"], 3)
        lost.append({"pod": deleted["pod"], "node": deleted.get("node"), "reason": deleted.get("reason"),
                     "at": deleted["at"], "t": deleted["t"], "replacement": replacement and replacement["pod"],
                     "replaced_after_seconds": replaced_after})
    return lost


def _nodes(timeline: list[dict], end: float, fault_end: float | None) -> dict[str, dict]:
    states: dict[str, list[tuple[float, bool]]] = {}
    taints: dict[str, set[str]] = {}
    not_ready_at_start: set[str] = set()
    for entry in timeline:
        if entry["kind"] != "node":
            continue
        name = entry["node"]
        if entry["what"] == "initial":  # the recorder writes one for nodes not Ready at the start
            states.setdefault(name, []).append((entry["t"], entry["ready"]))
            if not entry["ready"]:
                not_ready_at_start.add(name)
        elif entry["what"] in ("ready", "not-ready"):
            states.setdefault(name, []).append((entry["t"], entry["what"] == "ready"))
        elif entry["what"] == "tainted":
            taints.setdefault(name, set()).add(entry["taint"])
    result = {}
    for name, changes in sorted(states.items()):
        down = _below([(t, 1, int(ready)) for t, ready in changes], end)
        if name in not_ready_at_start and down:  # NotReady before the drill began
            down = down[1:]
        result[name] = {
            "not_ready_at_start": name in not_ready_at_start,
            "seconds_not_ready": round(sum(stop - start for start, stop in down), 3),
            "not_ready": [{"from": round(start, 3), "to": round(stop, 3)} for start, stop in down],
            "ready_after_fault_seconds": _after(down, end, fault_end),
            "taints_seen": sorted(taints.get(name, ())),
        }
    return result


def http_between(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per HTTP target, the measures of the samples taken between two readings of one recording
    (e.g. before a fault and once it ended): the phases of a drill, side by side. Samples past the
    recording's cap keep no latency, so the percentiles may cover fewer; streaks and error windows
    are the whole recording's, not a phase's."""
    between = {}
    for name, now in (later.get("http") or {}).items():
        then = (earlier.get("http") or {}).get(name) or {}
        kept = len(then.get("latencies") or [])
        measured = _http({"samples": now["samples"] - (then.get("samples") or 0),
                          "failures": now["failures"] - (then.get("failures") or 0),
                          "latencies": (now.get("latencies") or [])[kept:]})
        between[name] = {key: measured[key] for key in ("samples", "availability", "p50", "p95", "p99")}
    return between


def _http(target: dict[str, Any], during: tuple[float, float] | None = None,
          fault_started: float | None = None) -> dict[str, Any]:
    """The target's measures over the recording; with ``during`` (the faults' span on its clock),
    ``during_fault`` too: the latencies of the attempts begun in it, which the whole recording's
    percentiles dilute with the calm before and after. Failing from the first sample until a first
    answer that came before the first fault began (``fault_started``) is how the drill found the
    target, not its doing (as a workload short at the start): those samples and that stretch are
    left out."""
    latencies = sorted(target.get("latencies") or [])
    windows = target.get("error_windows") or []
    at_start = target.get("failing_at_start") or 0
    answered_at = _moment(windows[0].get("to")) if windows else None
    if at_start and fault_started is not None and (answered_at is None or answered_at >= fault_started):
        at_start = 0  # it answered only once a fault was on: those failures may be the fault's
    samples, failures = (target.get("samples") or 0) - at_start, (target.get("failures") or 0) - at_start
    measured = {
        "samples": samples,
        "availability": round(100 * (samples - failures) / samples, 2) if samples else None,
        "p50": _percentile(latencies, 50),
        "p95": _percentile(latencies, 95),
        "p99": _percentile(latencies, 99),
        "longest_failure_streak": target.get("longest_streak") or 0,
        "error_windows": windows[1:] if at_start else windows,
        "failing_at_start": at_start,
    }
    at, kept = target.get("latency_at") or [], target.get("latencies") or []
    if during is not None and len(at) == len(kept):  # a recording before 2026-12 has none
        inside = sorted(latency for latency, t in zip(kept, at) if during[0] <= t <= during[1])
        measured["during_fault"] = {"samples": len(inside), "p50": _percentile(inside, 50),
                                    "p95": _percentile(inside, 95)}
    return measured


def _percentile(values: list[float], rank: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(round(rank / 100 * (len(values) - 1))))]


def _recovery(workloads: dict[str, dict], nodes: dict[str, dict]) -> float | None:
    """The slowest recovery after the fault's end (0 when nothing needed one); None if something
    never recovered, or its recovery cannot be placed after the fault's end."""
    after = [w["recovered_after_fault_seconds"] for w in workloads.values()]
    after += [n["ready_after_fault_seconds"] for n in nodes.values()]
    return None if None in after else max(after, default=0.0)


def _impact(measures: dict[str, Any]) -> str:
    """core: the API or a whole workload (or an HTTP target) was down; partial: something was
    degraded (pods lost, replicas missing, a node NotReady, failed HTTP samples); none otherwise."""
    workloads, http = measures["workloads"].values(), measures["http"].values()
    if measures["api_down_seconds"] > 0 or any(
        w["desired"] and w["min_ready"] == 0 and not w["short_at_start"] for w in workloads) or any(
        t["availability"] is not None and t["longest_failure_streak"] >= max(1, t["samples"] // 2) for t in http
    ):
        return "core"
    if measures["pods_lost"] or any(w["seconds_below_desired"] for w in workloads) or any(
        n["seconds_not_ready"] for n in measures["nodes"].values()
    ) or any(t["availability"] is not None and t["availability"] < 100 for t in http):
        return "partial"
    return "none"


NOT_DETECTED = "NOT DETECTED"
#: An alert's moments in a recording, on its clock (seconds since it started; None: not seen).
ALERT_MOMENTS = ("pending_at", "firing_at", "resolved_at")


def declared_alerts(experiment: Any) -> list[dict[str, Any]]:
    """The alerts an experiment's FMEA declares in its ``detection`` (``expected_alerts``): none
    without one, or for a malformed one (the FMEA's validation names it). The run's judgement and
    the report's read them alike, whatever else the FMEA holds."""
    fmea = next((entry.get("fmea") for entry in extensions.entries(experiment, extensions.FMEA)), None)
    try:
        return expected_alerts(fmea.get("detection")) if isinstance(fmea, dict) else []
    except InvalidArgument:
        return []


def fault_span(starts: dict[str, Any], ends: dict[str, Any]) -> tuple[float | None, float | None]:
    """The first fault's start and the last one's end, on a recording's clock, from the moments the
    run recorded (fault id -> seconds); the end is None while a fault has none (yet)."""
    started = [t for t in starts.values() if _moment(t) is not None]
    ended = list(ends.values())
    last = None if not ended or any(_moment(t) is None for t in ended) else max(ended)
    return (min(started) if started else None), last


def expected_alerts(detection: Any) -> list[dict[str, Any]]:
    """The alerts an FMEA's ``detection`` expects: [{"alert", "within_seconds" (None: any time)}];
    none for a plain name (a probe's, say). Raise ``InvalidArgument`` for a malformed one."""
    if detection is None or isinstance(detection, str):
        return []
    listed = detection if isinstance(detection, list) else [detection]
    alerts = []
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("alert"), str) or not item["alert"] \
                or set(item) - {"alert", "within_seconds"}:
            raise InvalidArgument(f"detection {item!r}: give {{\"alert\": NAME, \"within_seconds\": N}} "
                                  "(within_seconds optional) or a plain name")
        within = item.get("within_seconds")
        if within is not None and (isinstance(within, bool) or not isinstance(within, (int, float))):
            raise InvalidArgument(f"detection {item['alert']}: within_seconds {within!r} must be a number of seconds")
        alerts.append({"alert": item["alert"],
                       "within_seconds": None if within is None else args.number(within, "within_seconds", 0, 86400)})
    if not alerts:
        raise InvalidArgument("detection []: name at least one alert, or give a plain name")
    return alerts


def detections(alerts: list[dict[str, Any]] | None, expected: list[dict[str, Any]],
               fault_start: float | None, fault_end: float | None) -> list[dict[str, Any]]:
    """Each expected alert ({"alert": name, "within_seconds": N or None}) judged against the alerts
    recorded (``Recorder``'s): its time to detect (first firing at or after the fault's start,
    minus that start), its time to resolve after the heal (``fault_end``), and whether it fired
    in time. Every moment is on the recording's clock (seconds since it started). ``met`` is None
    when it cannot be judged (no alerts recorded, no fault)."""
    judged = []
    for wanted in expected:
        name, within = wanted["alert"], wanted.get("within_seconds")
        entry: dict[str, Any] = {"alert": name, "within_seconds": within, "firing_at": None, "seconds_to_detect": None,
                                 "resolved_at": None, "seconds_to_resolve": None}
        if alerts is None or fault_start is None:
            why = "no alerts recorded (no Prometheus in the configuration)" if alerts is None else "no fault injected"
            judged.append({**entry, "met": None, "why": why})
            continue
        fired = [(at, a) for a in alerts if a.get("alert") == name
                 and (at := _moment(a.get("firing_at"))) is not None and at >= fault_start]
        if not fired:
            judged.append({**entry, "met": False, "why": f"{NOT_DETECTED}: {name} did not fire after the fault started"})
            continue
        firing, first = min(fired, key=lambda pair: pair[0])
        detect = round(firing - fault_start, 3)
        resolved = _moment(first.get("resolved_at"))
        resolve = round(max(0.0, resolved - fault_end), 3) if resolved is not None and fault_end is not None else None
        met = within is None or detect <= within
        judged.append({**entry, "firing_at": first["firing_at"], "seconds_to_detect": detect,
                       "resolved_at": first.get("resolved_at"), "seconds_to_resolve": resolve, "met": met,
                       **({} if met else {"why": f"{name} fired {detect:g} s after the fault started, "
                                                 f"later than {within:g} s"})})
    return judged


def sorted_alerts(alerts: list[dict[str, Any]] | None, expected: list[dict[str, Any]], fault_start: float | None,
                  faulted: dict[str, str | None]) -> dict[str, list[dict[str, Any]]]:
    """The alerts that fired, sorted by what they are about (the FMEA's declared ones are judged by
    ``detections``): ``on_faulted`` fired on a faulted target after the fault started, a detection of
    it with its time to detect; ``before_fault`` were firing already, declared or not; ``unexpected``
    fired elsewhere after the fault started (noise is a finding). ``faulted``: the hosts the run
    faulted, address -> name; an alert is about one when its ``instance`` (address:port), ``node``
    or ``host`` label names it."""
    declared = {wanted["alert"] for wanted in expected}
    known = {**{address: name or address for address, name in faulted.items()},
             **{name: name for name in faulted.values() if name}}
    found: dict[str, list[dict[str, Any]]] = {"on_faulted": [], "before_fault": [], "unexpected": []}
    for alert in alerts or []:
        firing = _moment(alert.get("firing_at"))
        if firing is None:
            continue
        labels = alert.get("labels") or {}
        entry = {"alert": alert.get("alert"), "labels": labels, "firing_at": firing,
                 "resolved_at": alert.get("resolved_at"), "at_start": bool(alert.get("at_start"))}
        target = next((known[value] for value in _targets_named(labels) if value in known), None)
        if entry["at_start"] or fault_start is not None and firing < fault_start:
            found["before_fault"].append(entry)
        elif entry["alert"] in declared:
            continue
        elif target is not None and fault_start is not None:
            found["on_faulted"].append({**entry, "target": target, "seconds_to_detect": round(firing - fault_start, 3)})
        else:
            found["unexpected"].append(entry)
    return found


def _targets_named(labels: dict[str, Any]) -> list[str]:
    """What an alert's labels say it is about: its ``instance``'s host (an address:port, an IPv6
    address in brackets), its ``node``, its ``host``."""
    named = [str(labels[key]) for key in ("node", "host") if labels.get(key)]
    instance = str(labels.get("instance") or "")
    if instance.startswith("["):
        named.append(instance[1:].partition("]")[0])
    elif instance:
        named.append(instance.rpartition(":")[0] if instance.count(":") == 1 else instance)
    return named


def _moment(t: Any) -> float | None:
    return None if isinstance(t, bool) or not isinstance(t, (int, float)) else float(t)
