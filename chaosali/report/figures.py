"""A journal in figures: the timeline of its activities, its fault windows, what was seen down and
for how long, and the recovery time measured next to the one its FMEA expects.

Everything is read from the redacted journal (``chaosali.report.redact``), so what a renderer
shows cannot hold a secret.

Measured recovery time
----------------------
The **recovery clock starts** when the last fault is gone:

- a host fault (an output with ``fault_id``, ``started_at``, ``heals_at``, or each one of the
  ``faults`` of an ``inject_random_faults`` output) is gone at the end
  of the first restore whose output (``{"restored": {host: [ids]}}``) lists its id, from the
  method or the rollbacks; otherwise at ``heals_at``, when its dead-man timer healed it;
- a one-shot action (reboot, restart: an output with ``action`` and ``at``) is gone at ``at``;
- with no such output, the clock starts when the rollbacks start (what they undo is the
  fault), else when the method ends.

The **clock stops** at the first moment the system was seen healthy for good, i.e. the first
healthy sighting after the last unhealthy one. Sightings are what the journal observed:

- a watch (``watch_api``, ``watch_nodes``: an output with ``changes``): each change
  (``down_at``, ``back_at``...), and a down sighting at its end if it ended down;
- ``wait_for_hosts`` (the seconds it waited): silent from its start, answering at its end;
- a method probe that returned a boolean: a sighting at its end;
- a steady-state hypothesis (before, during, after) met: healthy, for everything, at the end
  of its last probe; not met: unhealthy at that moment.

Sightings are kept per subject (the API, the nodes, a probe): the API coming back says
nothing about the nodes. The recovery ends when every subject seen down is seen up for good.
Measured recovery = max(0, stop - start): 0 when the system came back while the fault was still
on (it coped). No unhealthy sighting at all: no outage seen, 0 s. Unhealthy at the last
sighting: not recovered, which exceeds any expectation. Nothing injected (no fault, no method),
or nothing watched the system once the injection began: not measured.

A run's outages ("impact seen") come from the same sightings: per subject, from a down
sighting to the next healthy one, e.g. "the API down 10.1 s", "nodes NotReady 4.26 s".

Impact level
------------
The FMEA ``impact`` (none, partial, core) is the most a run may show: **core** when the API
itself was seen down (nothing in the cluster can change then), **partial** for any other outage
(nodes, hosts, a probe, the steady state), **none** without one. When the recovery was not
measured, nothing watched the drill and the level is unknown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from chaosali.core.errors import InvalidArgument
from chaosali.report.fmea import CHOICES, validate_fmea
from chaosali.report.redact import redact
from chaosali.report.story import exit_status, status_words, stderr_tail, unexpected_exit

__all__ = ["Activity", "FaultWindow", "Outage", "Recovery", "Run", "SteadyCheck", "read_run", "seconds_text"]

# Recovery states, in the words a report shows.
RECOVERED, NO_OUTAGE, NOT_RECOVERED, NOT_MEASURED = "recovered", "no outage seen", "not recovered", "not measured"
STEADY = "steady state"

# What a watch or a probe is about, by its provider function: (subject, how its outage reads).
_SUBJECTS = {"watch_api": ("api", "the API down"), "watch_nodes": ("nodes", "nodes NotReady")}
_CORE_SUBJECTS = {"api"}


@dataclass(frozen=True)
class Activity:
    """One run of an activity, from a steady-state hypothesis, the method or the rollbacks."""

    phase: str  # before, method, during, after, rollback
    name: str
    type: str  # action or probe
    func: str
    start: dt.datetime | None
    end: dt.datetime | None
    status: str
    output: Any
    error: str  # the exception text, if it failed
    tolerance_met: bool | None  # steady-state probes only
    tolerance: Any = None

    @property
    def error_line(self) -> str:
        """The exception's last line: what a traceback says in one line."""
        return next((line for line in reversed(self.error.splitlines()) if line.strip()), "")

    @property
    def unexpected_exit(self) -> int | None:
        return unexpected_exit(self.output, self.tolerance)

    @property
    def status_text(self) -> str:
        """chaoslib's status, flagged when a process exited non-zero (chaoslib says "succeeded")."""
        return status_words(self.status, self.unexpected_exit)


@dataclass(frozen=True)
class FaultWindow:
    """A fault window: from its injection to its restore, its timer, or its one shot."""

    kind: str
    fault_id: str  # empty for one-shot actions
    hosts: list[str]
    start: dt.datetime
    end: dt.datetime
    ended_by: str
    heals_at: dt.datetime | None
    activity: str

    @property
    def seconds(self) -> float:
        return round((self.end - self.start).total_seconds(), 3)


@dataclass(frozen=True)
class Sighting:
    at: dt.datetime
    up: bool
    subject: str
    what: str  # how the journal saw it, e.g. "watch-api: up"
    outage: str  # what a down sighting of this subject reads as, e.g. "the API down"


@dataclass(frozen=True)
class Outage:
    subject: str
    label: str
    start: dt.datetime
    end: dt.datetime | None  # None: not seen back
    seconds: float

    def text(self) -> str:
        if self.end:
            return f"{self.label} {seconds_text(self.seconds)}"
        if self.subject == STEADY:
            return self.label  # checked once at the end: there was nothing after it to come back in
        return f"{self.label} ≥ {seconds_text(self.seconds)}, not seen back" if self.seconds else f"{self.label}, not seen back"


@dataclass(frozen=True)
class Recovery:
    state: str
    measured: float | None
    expected: float | None
    started: dt.datetime | None
    started_by: str
    healthy: dt.datetime | None
    healthy_by: str

    @property
    def exceeded(self) -> bool | None:
        """True when the measured recovery is longer than expected, or never came."""
        if self.state == NOT_RECOVERED:
            return True
        if self.measured is None or self.expected is None:
            return None
        return self.measured > self.expected


@dataclass(frozen=True)
class SteadyCheck:
    phase: str
    met: bool | None
    end: dt.datetime | None
    probes: list[Activity]


@dataclass
class Run:
    """The figures of one journal."""

    source: str
    title: str
    status: str
    deviated: bool
    start: dt.datetime | None
    end: dt.datetime | None
    duration: float | None
    fmea: dict[str, Any] | None
    fmea_error: str | None
    steady: list[SteadyCheck]
    activities: list[Activity]
    faults: list[FaultWindow]
    outages: list[Outage]
    recovery: Recovery
    journal: dict[str, Any] = field(repr=False)  # redacted

    @property
    def impact_seen(self) -> str:
        return ", ".join(outage.text() for outage in self.outages) or "none"

    @property
    def impact_level(self) -> str | None:
        """none, partial or core (see the module doc); None when nothing watched the drill."""
        if self.recovery.state == NOT_MEASURED:
            return None
        if not self.outages:
            return "none"
        return "core" if any(o.subject in _CORE_SUBJECTS for o in self.outages) else "partial"

    @property
    def impact_exceeded(self) -> bool | None:
        """True when the impact seen is worse than the FMEA's, None when either is unknown."""
        if self.fmea is None or self.impact_level is None:
            return None
        levels = CHOICES["impact"]
        return levels.index(self.impact_level) > levels.index(self.fmea["impact"])

    def offset(self, moment: dt.datetime | None) -> float | None:
        """Seconds since the journal started."""
        return None if moment is None or self.start is None else round((moment - self.start).total_seconds(), 3)

    def figures(self) -> dict[str, Any]:
        """The JSON-able figures (``--format json``)."""
        recovery = self.recovery
        return {
            "journal": self.source,
            "title": self.title,
            "status": self.status,
            "deviated": self.deviated,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "duration": self.duration,
            "fmea": self.fmea,
            "fmea_error": self.fmea_error,
            "steady_states": [
                {"phase": check.phase, "met": check.met,
                 "probes": [{"name": p.name, "met": p.tolerance_met, "status": p.status} for p in check.probes]}
                for check in self.steady
            ],
            "activities": [
                {"phase": a.phase, "name": a.name, "type": a.type, "status": a.status,
                 "start": _iso(a.start), "end": _iso(a.end),
                 "start_offset": self.offset(a.start), "end_offset": self.offset(a.end),
                 "duration": _span(a.start, a.end),
                 **({"error_line": a.error_line, "error": a.error} if a.error else {}), **_process_figures(a)}
                for a in self.activities
            ],
            "faults": [
                {"kind": f.kind, "fault_id": f.fault_id or None, "hosts": f.hosts, "activity": f.activity,
                 "start": _iso(f.start), "end": _iso(f.end), "seconds": f.seconds,
                 "ended_by": f.ended_by, "heals_at": _iso(f.heals_at)}
                for f in self.faults
            ],
            "outages": [
                {"subject": o.subject, "what": o.label, "start": _iso(o.start), "end": _iso(o.end),
                 "seconds": o.seconds, "seen_back": o.end is not None}
                for o in self.outages
            ],
            "impact_seen": self.impact_seen,
            "impact": {"level": self.impact_level, "expected": self.fmea["impact"] if self.fmea else None,
                       "exceeded": self.impact_exceeded},
            "recovery": {
                "state": recovery.state,
                "measured_seconds": recovery.measured,
                "expected_seconds": recovery.expected,
                "exceeded": recovery.exceeded,
                "from": _iso(recovery.started), "from_what": recovery.started_by,
                "to": _iso(recovery.healthy), "to_what": recovery.healthy_by,
            },
        }


def read_run(journal: Any, source: str = "journal") -> Run:
    """The figures of a Chaos Toolkit journal (a ``chaos run --journal-path`` file's content)."""
    if not isinstance(journal, dict) or not isinstance(journal.get("experiment"), dict):
        raise InvalidArgument(f"{source}: not a Chaos Toolkit journal (no experiment in it)")
    journal = redact(journal)
    experiment = journal["experiment"]
    try:
        fmea, fmea_error = validate_fmea(experiment), None
    except InvalidArgument as error:
        fmea, fmea_error = None, str(error)
    steady = _steady_checks(journal.get("steady_states") or {})
    activities = sorted(
        [p for check in steady for p in check.probes]
        + [_activity("method", run) for run in journal.get("run") or []]
        + [_activity("rollback", run) for run in journal.get("rollbacks") or []],
        key=lambda a: (a.start is None, a.start or dt.datetime.min.replace(tzinfo=dt.timezone.utc)),
    )
    faults = _faults(activities)
    sightings = _sightings(activities, steady)
    start, end = _time(journal.get("start")), _time(journal.get("end"))
    return Run(
        source=source,
        title=str(experiment.get("title") or "experiment"),
        status=str(journal.get("status")),
        deviated=bool(journal.get("deviated")),
        start=start,
        end=end or max((a.end for a in activities if a.end), default=None),
        duration=journal.get("duration"),
        fmea=fmea,
        fmea_error=fmea_error,
        steady=steady,
        activities=activities,
        faults=faults,
        outages=_outages(sightings),
        recovery=_recovery(sightings, faults, activities, fmea),
        journal=journal,
    )


def seconds_text(seconds: float | None) -> str:
    """Seconds for people: "0.19 s", "10.1 s", "30 s", "3 min 0 s"."""
    if seconds is None:
        return "-"
    if seconds >= 120:
        return f"{int(seconds // 60)} min {seconds % 60:.0f} s"
    if float(seconds).is_integer():
        return f"{seconds:.0f} s"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


# -- reading the journal --------------------------------------------------------------------------


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # older chaoslib wrote naive UTC times
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _span(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def _process_figures(activity: Activity) -> dict[str, Any]:
    status = exit_status(activity.output)
    if status is None:
        return {}
    return {"exit_status": status, "unexpected_exit": activity.unexpected_exit is not None,
            "stderr_tail": stderr_tail(activity.output)[1]}


def _activity(phase: str, run: dict[str, Any]) -> Activity:
    activity = run.get("activity") or {}
    provider = activity.get("provider") or {}
    exception = run.get("exception") or ""
    return Activity(
        phase=phase,
        name=str(activity.get("name") or "?"),
        type=str(activity.get("type") or "?"),
        func=str(provider.get("func") or provider.get("path") or provider.get("url") or ""),
        start=_time(run.get("start")),
        end=_time(run.get("end")),
        status=str(run.get("status") or "not finished"),
        output=run.get("output"),
        # chaoslib keeps traceback.format_exception(): a list of lines
        error="".join(exception).strip() if isinstance(exception, list) else str(exception).strip(),
        tolerance_met=run.get("tolerance_met"),
        tolerance=activity.get("tolerance"),
    )


def _steady_checks(states: dict[str, Any]) -> list[SteadyCheck]:
    hypotheses = [("before", states.get("before"))]
    hypotheses += [("during", state) for state in states.get("during") or []]
    hypotheses.append(("after", states.get("after")))
    checks = []
    for phase, state in hypotheses:
        if not isinstance(state, dict):
            continue
        probes = [_activity(phase, run) for run in state.get("probes") or []]
        end = max((p.end for p in probes if p.end), default=None)
        checks.append(SteadyCheck(phase, state.get("steady_state_met"), end, probes))
    return checks


def _faults(activities: list[Activity]) -> list[FaultWindow]:
    restores = sorted(
        (a for a in activities if isinstance(a.output, dict) and isinstance(a.output.get("restored"), dict)
         and a.end),
        key=lambda a: a.end,
    )
    faults = []
    for activity, output in ((a, o) for a in activities for o in _fault_outputs(a.output)):
        hosts = [str(h.get("host")) for h in output.get("hosts") or [] if isinstance(h, dict) and h.get("ok", True)]
        if output.get("fault_id") and _time(output.get("started_at")):
            started, heals_at = _time(output["started_at"]), _time(output.get("heals_at"))
            restore = next(
                (r for r in restores if r.end >= started
                 and any(output["fault_id"] in (ids or []) for ids in r.output["restored"].values())),
                None,
            )
            if restore:
                end, ended_by = restore.end, f"restored by {restore.name}"
            else:
                end, ended_by = heals_at or started, "healed by its timer"
            faults.append(FaultWindow(str(output.get("kind") or "fault"), str(output["fault_id"]), hosts,
                                started, end, ended_by, heals_at, activity.name))
        elif output.get("action") and _time(output.get("at")):
            at = _time(output["at"])
            faults.append(FaultWindow(str(output["action"]), "", hosts, at, at, "one shot", None, activity.name))
    return faults


def _fault_outputs(output: Any) -> list[dict[str, Any]]:
    """An activity's output, and the fault outputs it gathers (``inject_random_faults``: ``faults``)."""
    if not isinstance(output, dict):
        return []
    nested = output.get("faults")
    return [output] + ([f for f in nested if isinstance(f, dict)] if isinstance(nested, list) else [])


def _sightings(activities: list[Activity], steady: list[SteadyCheck]) -> list[Sighting]:
    sightings = []
    for check in steady:
        if check.end and check.met is not None:
            sightings.append(Sighting(check.end, bool(check.met), STEADY, f"steady state {check.phase} "
                                      f"{'met' if check.met else 'not met'}", f"steady state not met {check.phase}"))
    for activity in activities:
        if activity.phase != "method" or not activity.end:
            continue
        output, name = activity.output, activity.name
        if isinstance(output, dict) and isinstance(output.get("changes"), list):  # a watch
            subject, label = _SUBJECTS.get(activity.func, (name, f"{name}: down"))
            for change in output["changes"]:
                at = _time(change.get("at")) if isinstance(change, dict) else None
                if at:
                    up = bool(change.get("up"))
                    sightings.append(Sighting(at, up, subject, f"{name}: {'up' if up else 'down'}", label))
            if output.get("last") is False:
                sightings.append(Sighting(activity.end, False, subject, f"{name}: still down at its end", label))
        elif activity.func == "wait_for_hosts" and activity.status == "succeeded" and isinstance(output, (int, float)):
            label = f"{name}: hosts silent"
            if output > 0 and activity.start:
                sightings.append(Sighting(activity.start, False, name, label, label))
            sightings.append(Sighting(activity.end, True, name, f"{name}: hosts answer", label))
        elif activity.type == "probe" and isinstance(output, bool):
            sightings.append(Sighting(activity.end, output, name, f"{name}: {str(output).lower()}", f"{name}: false"))
    return sorted(sightings, key=lambda s: s.at)


def _relevant(sightings: list[Sighting], subject: str) -> list[Sighting]:
    """A subject's own sightings, and the steady state met: that is healthy for everything."""
    return [s for s in sightings if s.subject == subject or (s.subject == STEADY and s.up)]


def _outages(sightings: list[Sighting]) -> list[Outage]:
    """Per subject, from a down sighting of its own to the next healthy one."""
    outages = []
    for subject in dict.fromkeys(s.subject for s in sightings if not s.up):
        down: Sighting | None = None
        for sighting in _relevant(sightings, subject):
            if not sighting.up and down is None:
                down = sighting
            elif sighting.up and down is not None:
                outages.append(Outage(subject, down.outage, down.at, sighting.at, _span(down.at, sighting.at)))
                down = None
        if down is not None:
            last = max(s.at for s in sightings if s.subject == subject)
            outages.append(Outage(subject, down.outage, down.at, None, _span(down.at, last)))
    return sorted(outages, key=lambda o: o.start)


def _recovery(sightings: list[Sighting], faults: list[FaultWindow], activities: list[Activity],
              fmea: dict[str, Any] | None) -> Recovery:
    expected = float(fmea["recovery_seconds"]) if fmea else None
    started, started_by = _clock_start(faults, activities)
    if started is None:
        return Recovery(NOT_MEASURED, None, expected, None, started_by, None, "")
    injected = min([f.start for f in faults] + [a.start for a in activities if a.phase == "method" and a.start],
                   default=started)
    if not any(s.at >= injected for s in sightings):
        return Recovery(NOT_MEASURED, None, expected, started, started_by, None,
                        "nothing watched the system after the injection")
    if all(s.up for s in sightings):
        return Recovery(NO_OUTAGE, 0.0, expected, started, started_by, None, "never seen down")
    healthy: Sighting | None = None
    for subject in dict.fromkeys(s.subject for s in sightings if not s.up):
        seen = _relevant(sightings, subject)
        last_down = max(i for i, s in enumerate(seen) if not s.up)
        if last_down == len(seen) - 1:
            return Recovery(NOT_RECOVERED, None, expected, started, started_by, None,
                            f"still down at the last sighting ({seen[last_down].what})")
        back = seen[last_down + 1]
        healthy = back if healthy is None or back.at > healthy.at else healthy
    assert healthy is not None
    measured = max(0.0, round((healthy.at - started).total_seconds(), 2))
    return Recovery(RECOVERED, measured, expected, started, started_by, healthy.at, healthy.what)


def _clock_start(faults: list[FaultWindow], activities: list[Activity]) -> tuple[dt.datetime | None, str]:
    if faults:
        last = max(faults, key=lambda f: f.end)
        what = f"{last.kind} {last.fault_id}".strip()
        return last.end, f"{what} {last.ended_by}" if last.ended_by != "one shot" else f"{what} done"
    rollbacks = [a.start for a in activities if a.phase == "rollback" and a.start]
    if rollbacks:
        return min(rollbacks), "the rollbacks started"
    method = [a.end for a in activities if a.phase == "method" and a.end]
    if method:
        return max(method), "the method ended"
    return None, "nothing was injected"
