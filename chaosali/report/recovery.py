"""The recovery analysis of a run: what the journal saw down and up (sightings), the outages they
make, and the recovery time measured next to the one the FMEA expects.

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
- a steady-state hypothesis (before, during, after) whose probes were met: healthy, for
  everything, at the end of its last probe; one not met: unhealthy at that moment. The probes
  that judge the run rather than the system (``impact_within``: the impact against the FMEA,
  ``faults_observed``: the fault proven) are left out: each is a check of its own, and an impact
  worse than the FMEA's is not the system being down (a hypothesis of nothing else says nothing);
- the impact recording, when the journal has one: each workload's windows below its desired
  ready replicas, each node's NotReady windows, the API's outages and each HTTP target's error
  windows, down at a window's start and back at its end (a window not closed: still down). These
  subjects are watched all along: a steady state met does not bring them back.

Sightings are kept per subject (the API, the nodes, a probe, a workload): the API coming back says
nothing about the nodes. The recovery ends when every subject seen down is seen up for good.
Measured recovery = max(0, stop - start): 0 when the system came back while the fault was still
on (it coped). No unhealthy sighting at all: no outage seen, 0 s. Unhealthy at the last
sighting: not recovered, which exceeds any expectation. Nothing injected (no fault, no method),
or nothing watched the system once the injection began: not measured.

A run's outages ("impact seen") come from the same sightings: per subject, from a down
sighting to the next healthy one, e.g. "the API down 10.1 s", "nodes NotReady 4.26 s".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from chaosali.report.model import Activity, FaultWindow, Recording, SteadyCheck, seconds_text, span, time_of

__all__ = ["CORE_SUBJECTS", "RECORDED_SUBJECTS", "NOT_MEASURED", "NOT_RECOVERED", "NO_OUTAGE", "Outage", "RECOVERED", "Recovery", "STEADY",
           "Sighting", "outages_of", "recovery_of", "sightings_of"]


# Recovery states, in the words a report shows.
RECOVERED, NO_OUTAGE, NOT_RECOVERED, NOT_MEASURED = "recovered", "no outage seen", "not recovered", "not measured"
STEADY = "steady state"

# What a watch or a probe is about, by its provider function: (subject, how its outage reads).
_SUBJECTS = {"watch_api": ("api", "the API down"), "watch_nodes": ("nodes", "nodes NotReady")}
CORE_SUBJECTS = {"api"}  # an outage of these is core impact
RECORDED_SUBJECTS = {"api", "nodes"}  # what an impact recording measures itself (/readyz, node watches)


# steady-state probes that judge the run, not the system: checks of their own, never a sighting
_JUDGES = {"impact_within", "faults_observed"}


@dataclass(frozen=True)
class Sighting:
    at: dt.datetime
    up: bool
    subject: str
    what: str  # how the journal saw it, e.g. "watch-api: up"
    outage: str  # what a down sighting of this subject reads as, e.g. "the API down"
    recorded: bool = False  # by the impact recording, which watched it all along
    source: str = ""  # what saw it: an activity's name, a steady state


@dataclass(frozen=True)
class Outage:
    subject: str
    label: str
    start: dt.datetime
    end: dt.datetime | None  # None: not seen back
    seconds: float
    source: str = ""  # what saw it down: an activity's name, a steady state

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


def sightings_of(activities: list[Activity], steady: list[SteadyCheck]) -> list[Sighting]:
    sightings = []
    for check in steady:
        seen = _system_seen(check)
        if check.end and seen is not None:
            sightings.append(Sighting(check.end, seen, STEADY, f"steady state {check.phase} "
                                      f"{'met' if seen else 'not met'}", f"steady state not met {check.phase}",
                                      source=f"steady state {check.phase}"))
    for activity in activities:
        if activity.phase != "method" or not activity.end:
            continue
        output, name = activity.output, activity.name
        if isinstance(output, dict) and isinstance(output.get("changes"), list):  # a watch
            subject, label = _SUBJECTS.get(activity.func, (name, f"{name}: down"))
            for change in output["changes"]:
                at = time_of(change.get("at")) if isinstance(change, dict) else None
                if at:
                    up = bool(change.get("up"))
                    sightings.append(Sighting(at, up, subject, f"{name}: {'up' if up else 'down'}", label, source=name))
            if output.get("last") is False:
                sightings.append(Sighting(activity.end, False, subject, f"{name}: still down at its end", label,
                                          source=name))
        elif activity.func == "wait_for_hosts" and activity.status == "succeeded" and isinstance(output, (int, float)):
            label = f"{name}: hosts silent"
            if output > 0 and activity.start:
                sightings.append(Sighting(activity.start, False, name, label, label, source=name))
            sightings.append(Sighting(activity.end, True, name, f"{name}: hosts answer", label, source=name))
        elif activity.type == "probe" and isinstance(output, bool):
            sightings.append(Sighting(activity.end, output, name, f"{name}: {str(output).lower()}", f"{name}: false",
                                      source=name))
    return sorted(sightings, key=lambda s: s.at)


def _system_seen(check: SteadyCheck) -> bool | None:
    """Whether a hypothesis saw the system healthy: its probes met, but those that judge the run
    (an impact worse than the FMEA's is not the system down); None: it saw nothing else."""
    judged = [probe for probe in check.probes if probe.func in _JUDGES]
    if not judged or check.met is not False:
        return check.met
    probes = [probe for probe in check.probes if probe.func not in _JUDGES]
    if not probes:
        return None
    return all(probe.tolerance_met is True and not probe.error for probe in probes)


def _recorded(recording: Recording | None) -> list[Sighting]:
    """The impact recording's windows as sightings: down at each window's start, back at its end."""
    measures = recording.measures if recording else None
    if recording is None or not measures:
        return []
    windows = [(name, "below desired", w.get("below_desired")) for name, w in _items(measures.get("workloads"))]
    windows += [(f"node {name}", "NotReady", n.get("not_ready")) for name, n in _items(measures.get("nodes"))]
    windows.append(("the API", "down", recording.api_outages))
    windows += [(f"HTTP {name}", "failing", t.get("error_windows")) for name, t in _items(measures.get("http"))]
    sightings = []
    for what, down, spans in windows:
        subject = f"recorded: {what}"  # apart from the journal's own subjects (its watch of the API...)
        for window in spans or []:
            start, end = recording.at(window.get("from")), recording.at(window.get("to"))
            if start is None:
                continue
            sightings.append(Sighting(start, False, subject, f"{what} {down} (recorded)", f"{what} {down}", True))
            if end is not None:
                sightings.append(Sighting(end, True, subject, f"{what} back (recorded)", f"{what} {down}", True))
    return sightings


def _items(value: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(str(name), item) for name, item in value.items() if isinstance(item, dict)] if isinstance(value, dict) else []


def _relevant(sightings: list[Sighting]) -> dict[str, list[Sighting]]:
    """Per subject seen down, its own sightings and the steady state met (healthy for
    everything), in order. Of the steady states met between two of its own sightings only the
    first can change anything, so each subject's list is as long as its own: one pass in all."""
    following: list[int | None] = [None] * len(sightings)  # the index of the next steady state met
    upcoming = None
    for index in range(len(sightings) - 1, -1, -1):
        following[index] = upcoming
        if sightings[index].subject == STEADY and sightings[index].up:
            upcoming = index
    own: dict[str, list[int]] = {}
    for index, sighting in enumerate(sightings):
        own.setdefault(sighting.subject, []).append(index)
    relevant = {}
    for subject in dict.fromkeys(s.subject for s in sightings if not s.up):
        indexes = own[subject]
        seen = []
        for at, index in enumerate(indexes):
            seen.append(sightings[index])
            steady, after = following[index], indexes[at + 1] if at + 1 < len(indexes) else len(sightings)
            if steady is not None and steady < after and not sightings[index].recorded:
                seen.append(sightings[steady])
        relevant[subject] = seen
    return relevant


def outages_of(sightings: list[Sighting]) -> list[Outage]:
    """Per subject, from a down sighting of its own to the next healthy one."""
    outages = []
    for subject, seen in _relevant(sightings).items():
        down: Sighting | None = None
        for sighting in seen:
            if not sighting.up and down is None:
                down = sighting
            elif sighting.up and down is not None:
                outages.append(Outage(subject, down.outage, down.at, sighting.at, span(down.at, sighting.at) or 0.0,
                                      down.source))
                down = None
        if down is not None:
            last = max(s.at for s in seen if s.subject == subject)
            outages.append(Outage(subject, down.outage, down.at, None, span(down.at, last) or 0.0, down.source))
    return sorted(outages, key=lambda o: o.start)


def recovery_of(sightings: list[Sighting], faults: list[FaultWindow], activities: list[Activity],
              fmea: dict[str, Any] | None, recording: Recording | None) -> Recovery:
    expected = float(fmea["recovery_seconds"]) if fmea else None
    recorded = {name: end for name, t in recording.fault_ends.items() if (end := recording.at(t))} if recording else {}
    started, started_by = _clock_start(faults, activities, recorded)
    if started is None:
        return Recovery(NOT_MEASURED, None, expected, None, started_by, None, "")
    injected = min([f.start for f in faults] + [a.start for a in activities if a.phase == "method" and a.start],
                   default=started)
    recorded_until = recording.at(recording.seconds) if recording and recording.measures else None
    sightings = sorted(sightings + _recorded(recording), key=lambda s: s.at)
    if not any(s.at >= injected for s in sightings) and not (recorded_until and recorded_until >= injected):
        return Recovery(NOT_MEASURED, None, expected, started, started_by, None,
                        "nothing watched the system after the injection")
    if all(s.up for s in sightings):
        return Recovery(NO_OUTAGE, 0.0, expected, started, started_by, None, "never seen down")
    healthy: Sighting | None = None
    for seen in _relevant(sightings).values():
        last_down = max(i for i, s in enumerate(seen) if not s.up)
        if last_down == len(seen) - 1:
            return Recovery(NOT_RECOVERED, None, expected, started, started_by, None,
                            f"still down at the last sighting ({seen[last_down].what})")
        back = seen[last_down + 1]
        healthy = back if healthy is None or back.at > healthy.at else healthy
    assert healthy is not None
    measured = max(0.0, round((healthy.at - started).total_seconds(), 2))
    return Recovery(RECOVERED, measured, expected, started, started_by, healthy.at, healthy.what)


def _clock_start(faults: list[FaultWindow], activities: list[Activity],
                 recorded: dict[str, dt.datetime]) -> tuple[dt.datetime | None, str]:
    """When the faults ended, and how: the last end the run recorded, else worked out from the
    activities (a restore, a timer, a one shot), else the rollbacks' start or the method's end."""
    if recorded:
        last_id = max(recorded, key=lambda fault_id: recorded[fault_id])
        window = next((f for f in faults if f.fault_id and f.fault_id == last_id), None)
        what = f"{window.kind} {last_id}" if window else last_id
        return recorded[last_id], f"{what} ended (as the run recorded it)"
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
