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
The FMEA ``impact`` (none, partial, core) is the most a run may show. When the journal holds an
impact recording (``chaosali.impact.controls``), the level is the one measured from it
(``chaosali.impact.measures``). Otherwise: **core** when the API itself was seen down (nothing
in the cluster can change then), **partial** for any other outage (nodes, hosts, a probe, the
steady state), **none** without one; when the recovery was not measured, nothing watched the
drill and the level is unknown. More than the FMEA expects is **exceeded**; less, in a run whose
fault is proven, is **lower than expected**: a finding about the system, not a failed drill.

Fault proven
------------
A separate judgement: did the faults take effect at all? The run's own ``faults_observed``
(``chaosali.impact.probes``, the steady state's last check) judged it from the run's evidence:
evidence probes, the faults' own measurements, watches that saw an outage, the impact
recording. Its last judgement is the report's, so ``chaos run`` and the report cannot disagree.
A journal without it is judged by the impact seen: none where the FMEA expects partial or core
is a **fault not observed**. A fault not observed means no evidence at all: the drill proved
nothing, it is no success.

Checks and the resilience score
-------------------------------
A run's checks: each steady-state probe (not met, raised, or never checked because the run
stopped: missed), the impact expectation, the fault proven, the expected recovery, and each
FMEA limit judged against the recording. Critical checks (probes, impact, fault proven) weigh
3, the others 1; a check that cannot be judged counts for nothing. An impact lower than
expected meets the impact check. Score = 100 x weight met / weight judged (see docs/report.md).
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from chaosali.core.errors import InvalidArgument
from chaosali.impact.measures import LIMITS, judge
from chaosali.report.fmea import CHOICES, validate_fmea
from chaosali.report.journal import IMPACT_EXTENSION, read_journal
from chaosali.report.redact import redact
from chaosali.report.story import exit_status, status_words, stderr_tail, unexpected_exit

__all__ = ["Activity", "Check", "FaultWindow", "LimitCheck", "Outage", "Recording", "Recovery", "Run", "SteadyCheck",
           "campaign_score", "read_run", "seconds_text"]

# Recovery states, in the words a report shows.
RECOVERED, NO_OUTAGE, NOT_RECOVERED, NOT_MEASURED = "recovered", "no outage seen", "not recovered", "not measured"
STEADY = "steady state"

# What a watch or a probe is about, by its provider function: (subject, how its outage reads).
_SUBJECTS = {"watch_api": ("api", "the API down"), "watch_nodes": ("nodes", "nodes NotReady")}
_CORE_SUBJECTS = {"api"}
CRITICAL, MINOR = 3, 1  # check weights, as krkn weighs critical checks and warnings


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
    def seconds(self) -> float | None:
        """How long it took."""
        return _span(self.start, self.end)

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
    skew_seconds: float | None = None  # faults that started together: last host minus first

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


@dataclass(frozen=True)
class Recording:
    """The impact recording of a run (``chaosali.impact.controls``): its measures as the control
    computed them, and its timeline on its own clock (``t``: seconds since ``started``)."""

    started: dt.datetime | None
    seconds: float
    scope: dict[str, Any]
    timeline: list[dict[str, Any]]
    api_outages: list[dict[str, Any]]
    dropped: int
    errors: list[str]
    measures: dict[str, Any] | None
    missing: str | None  # why there is no recording
    # when each of the run's faults ended, as the run recorded it (id -> time); empty in a journal
    # of an older chaosali: the report then works the ends out from the activities
    fault_ends: dict[str, dt.datetime] = field(default_factory=dict)

    def at(self, t: Any) -> dt.datetime | None:
        """A moment of the recording's clock, as a time."""
        if self.started is None or isinstance(t, bool) or not isinstance(t, (int, float)):
            return None
        return self.started + dt.timedelta(seconds=t)

    @staticmethod
    def moment(stamp: Any) -> dt.datetime | None:
        """A time the recording wrote as ISO 8601 (outages, HTTP error windows)."""
        return _time(stamp)

    def readiness(self) -> dict[str, list[tuple[dt.datetime, Any, Any]]]:
        """Per workload, each (moment, ready, desired) the recording saw (as the journal holds them)."""
        series: dict[str, list[tuple[dt.datetime, Any, Any]]] = {}
        for entry in self.timeline:
            at = self.at(entry.get("t"))
            if entry.get("kind") == "workload" and at and isinstance(entry.get("workload"), str):
                series.setdefault(entry["workload"], []).append((at, entry.get("ready"), entry.get("desired")))
        return series


@dataclass(frozen=True)
class LimitCheck:
    """One FMEA limit judged against the recording's measures (``chaosali.impact.measures.judge``)."""

    limit: str
    bound: float
    measured: Any  # a number, or per workload / HTTP target
    met: bool | None  # None: no recording to judge it by
    why: str = ""  # why it cannot be judged


@dataclass(frozen=True)
class Check:
    """One thing a run is judged on, with its weight in the resilience score."""

    kind: str  # probe, impact, proven, recovery, limit
    name: str
    met: bool | None  # None: cannot be judged
    weight: int


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
    recording: Recording | None
    limits: list[LimitCheck]
    journal: dict[str, Any] = field(repr=False)  # redacted
    problems: list[str] = field(default_factory=list)  # the journal's parts left out, and why

    @property
    def measures(self) -> dict[str, Any] | None:
        return self.recording.measures if self.recording else None

    @property
    def impact_seen(self) -> str:
        seen = _measured_phrases(self.measures) if self.measures else []
        return ", ".join(seen + [outage.text() for outage in self.outages]) or "none"

    @property
    def impact_level(self) -> str | None:
        """none, partial or core (see the module doc); None when nothing watched the drill."""
        if self.measures and self.measures.get("impact") in CHOICES["impact"]:
            return self.measures["impact"]
        if self.recovery.state == NOT_MEASURED:
            return None
        if not self.outages:
            return "none"
        return "core" if any(o.subject in _CORE_SUBJECTS for o in self.outages) else "partial"

    @property
    def proof(self) -> dict[str, Any] | None:
        """The run's own judgement of its faults: the last ``faults_observed`` output that judged
        any (the steady state's last check), with its evidence."""
        judged = [a.output for a in self.activities if a.func == "faults_observed" and isinstance(a.output, dict)
                  and a.output.get("proven") in (True, False)]
        return judged[-1] if judged else None

    @property
    def fault_proven(self) -> bool | None:
        """Whether the faults took effect: the run's own judgement when the journal has one
        (``faults_observed``); otherwise impact seen proves them, and none where the FMEA expects
        some does not. None: nothing to judge by."""
        if self.proof is not None:
            return self.proof["proven"]
        if self.fmea is None or self.fmea["impact"] == "none" or self.impact_level is None:
            return None
        return self.impact_level != "none"

    @property
    def impact_lower(self) -> bool:
        """The fault is proven, and hurt less than the FMEA expects: a finding about the system."""
        if self.fault_proven is not True or self.fmea is None or self.impact_level is None:
            return False
        levels = CHOICES["impact"]
        return levels.index(self.impact_level) < levels.index(self.fmea["impact"])

    @property
    def impact_exceeded(self) -> bool | None:
        """True when the impact seen is worse than the FMEA's, None when either is unknown."""
        if self.fmea is None or self.impact_level is None:
            return None
        levels = CHOICES["impact"]
        return levels.index(self.impact_level) > levels.index(self.fmea["impact"])

    def checks(self) -> list[Check]:
        """What the run is judged on (see the module doc), in the order reports list them."""
        checks = [Check("probe", f"{check.phase} {probe.name}", probe.tolerance_met is True and not probe.error,
                        CRITICAL) for check in self.steady for probe in check.probes]
        checks += [Check("probe", f"{phase} {name}", False, CRITICAL) for phase, name in self.unchecked_probes()]
        fmea = self.fmea
        checks.append(Check("impact", f"impact at most {fmea['impact']}" if fmea else "impact",
                            None if self.impact_exceeded is None else not self.impact_exceeded, CRITICAL))
        if fmea or self.proof is not None:
            checks.append(Check("proven", "fault proven", self.fault_proven, CRITICAL))
        recovery = self.recovery
        checks.append(Check("recovery", f"recovery within {seconds_text(recovery.expected)}" if fmea else "recovery",
                            None if recovery.exceeded is None else not recovery.exceeded, MINOR))
        checks += [Check("limit", limit_name(check.limit, check.bound), check.met, MINOR) for check in self.limits]
        return checks

    def unchecked_probes(self) -> list[tuple[str, str]]:
        """(phase, name) of the hypothesis probes never checked before or after: the run stopped."""
        ran = {check.phase for check in self.steady}
        probes = (self.journal["experiment"].get("steady-state-hypothesis") or {}).get("probes") or []
        names = [(p.get("name") or p.get("ref") or "?") if isinstance(p, dict) else "?" for p in probes]
        return [(phase, str(name)) for phase in ("before", "after") if phase not in ran for name in names]

    @property
    def points(self) -> tuple[int, int]:
        """The weight of the checks met, and of those judged."""
        judged = [check for check in self.checks() if check.met is not None]
        return sum(check.weight for check in judged if check.met), sum(check.weight for check in judged)

    @property
    def score(self) -> float | None:
        """100 x the weight of the checks met / the weight of those judged; None: nothing judged."""
        met, judged = self.points
        return round(100 * met / judged, 1) if judged else None

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
            "problems": self.problems,
            "steady_states": [
                {"phase": check.phase, "met": check.met,
                 "probes": [{"name": p.name, "met": p.tolerance_met, "status": p.status} for p in check.probes]}
                for check in self.steady
            ],
            "activities": [
                {"phase": a.phase, "name": a.name, "type": a.type, "status": a.status,
                 "start": _iso(a.start), "end": _iso(a.end),
                 "start_offset": self.offset(a.start), "end_offset": self.offset(a.end),
                 "duration": a.seconds,
                 **({"error_line": a.error_line, "error": a.error} if a.error else {}), **_process_figures(a)}
                for a in self.activities
            ],
            "faults": [
                {"kind": f.kind, "fault_id": f.fault_id or None, "hosts": f.hosts, "activity": f.activity,
                 "start": _iso(f.start), "end": _iso(f.end), "seconds": f.seconds,
                 "ended_by": f.ended_by, "heals_at": _iso(f.heals_at), "skew_seconds": f.skew_seconds}
                for f in self.faults
            ],
            "outages": [
                {"subject": o.subject, "what": o.label, "start": _iso(o.start), "end": _iso(o.end),
                 "seconds": o.seconds, "seen_back": o.end is not None}
                for o in self.outages
            ],
            "impact_seen": self.impact_seen,
            "impact": {"level": self.impact_level, "expected": self.fmea["impact"] if self.fmea else None,
                       "exceeded": self.impact_exceeded, "lower": self.impact_lower,
                       "measured": self.measures is not None},
            "fault": {"proven": self.fault_proven, "judged_by": "faults_observed" if self.proof else "impact seen",
                      "evidence": (self.proof or {}).get("evidence"), "why": (self.proof or {}).get("why")},
            "recording": None if self.recording is None else {
                "missing": self.recording.missing, "start": _iso(self.recording.started),
                "seconds": self.recording.seconds, "scope": self.recording.scope,
                "api_outages": self.recording.api_outages, "dropped": self.recording.dropped,
                "errors": self.recording.errors, "measures": self.measures,
            },
            "limits": [{"limit": c.limit, "bound": c.bound, "measured": c.measured, "met": c.met,
                        **({"why": c.why} if c.why else {})} for c in self.limits],
            "checks": [{"kind": c.kind, "name": c.name, "weight": c.weight, "met": c.met} for c in self.checks()],
            "score": self.score,
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
    reading = read_journal(journal)
    # the problem lines are masked with the journal: they name where its parts are
    masked = redact({"journal": reading.journal, "problems": reading.problems})
    journal, problems = masked["journal"], masked["problems"]
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
    recording = _recording(journal.get("extensions"))
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
        recovery=_recovery(sightings, faults, activities, fmea, recording),
        recording=recording,
        limits=_limits(fmea, recording),
        journal=journal,
        problems=problems,
    )


def campaign_score(runs: list[Run]) -> float | None:
    """The mean of the runs' scores: each drill counts once, however many probes it has."""
    scores = [run.score for run in runs if run.score is not None]
    return round(sum(scores) / len(scores), 1) if scores else None


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

def limit_name(limit: str, bound: float) -> str:
    """A limit's check as reports name it (stable from run to run of one experiment)."""
    return LIMITS[limit].phrase.format(seconds_text(bound) if LIMITS[limit].unit == "seconds" else f"{bound:g}")


def _recording(extensions: Any) -> Recording | None:
    entry = next((e for e in extensions or [] if isinstance(e, dict) and e.get("name") == IMPACT_EXTENSION), None)
    if entry is None:
        return None
    recording: dict[str, Any] = entry["recording"] if isinstance(entry.get("recording"), dict) else {}
    measures = entry.get("measures") if isinstance(entry.get("measures"), dict) else None
    missing = None if measures else str(entry.get("missing") or "the journal holds no measures")
    return Recording(
        started=_time(recording.get("started_at")),
        seconds=float(recording.get("seconds") or 0.0),
        scope=recording.get("scope") or {},
        timeline=[e for e in recording.get("timeline") or [] if isinstance(e, dict)],
        api_outages=[o for o in recording.get("api_outages") or [] if isinstance(o, dict)],
        dropped=int(recording.get("dropped") or 0),
        errors=[str(error) for error in recording.get("errors") or []],
        measures=measures,
        missing=missing,
        fault_ends={str(name): end for name, stamp in (recording.get("fault_ends") or {}).items()
                    if (end := _time(stamp))} if isinstance(recording.get("fault_ends"), dict) else {},
    )


def _limits(fmea: dict[str, Any] | None, recording: Recording | None) -> list[LimitCheck]:
    limits = {name: float(fmea[name]) for name in LIMITS if fmea and name in fmea}
    if not limits:
        return []
    if recording is None or recording.measures is None:
        why = str(recording.missing) if recording else "no impact recording in the journal (chaosali.impact.controls)"
        return [LimitCheck(name, bound, None, None, why) for name, bound in limits.items()]
    try:
        judged = judge(recording.measures, limits)
    except (KeyError, TypeError, InvalidArgument) as error:  # measures of another version
        return [LimitCheck(name, bound, None, None, f"the measures cannot be read: {error}")
                for name, bound in limits.items()]
    return [LimitCheck(c["limit"], c["bound"], c["measured"], c["met"]) for c in judged]


def _measured_phrases(measures: dict[str, Any]) -> list[str]:
    """The recorded impact in a few words: "2 pods lost", "Deployment demo/web below desired 13.1 s"."""
    phrases = [f"{measures['pods_lost']} pods lost"] if measures.get("pods_lost") else []
    phrases += [f"{name} below desired {seconds_text(w['seconds_below_desired'])}"
                for name, w in (measures.get("workloads") or {}).items() if w.get("seconds_below_desired")]
    phrases += [f"{name} NotReady {seconds_text(n['seconds_not_ready'])}"
                for name, n in (measures.get("nodes") or {}).items() if n.get("seconds_not_ready")]
    if measures.get("api_down_seconds"):
        phrases.append(f"the API down {seconds_text(measures['api_down_seconds'])} (recorded)")
    phrases += [f"{name} available {t['availability']:g} %" for name, t in (measures.get("http") or {}).items()
                if t.get("availability") is not None and t["availability"] < 100]
    return phrases


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
    restores = _restores(activities)
    faults = []
    for activity, output in ((a, o) for a in activities for o in _fault_outputs(a.output)):
        hosts = [str(h.get("host")) for h in output.get("hosts") or [] if isinstance(h, dict) and h.get("ok", True)]
        started, at = _time(output.get("started_at")), _time(output.get("at"))
        if output.get("fault_id") and started:
            heals_at = _time(output.get("heals_at"))
            listing = restores.get(str(output["fault_id"]), [])
            first = bisect.bisect_left(listing, started, key=lambda r: r[0])  # the first ended after the start
            if first < len(listing):
                end, ended_by = listing[first][0], f"restored by {listing[first][1].name}"
            else:
                end, ended_by = heals_at or started, "healed by its timer"
            skew = output.get("skew_seconds")
            faults.append(FaultWindow(str(output.get("kind") or "fault"), str(output["fault_id"]), hosts,
                                      started, end, ended_by, heals_at, activity.name,
                                      skew if isinstance(skew, (int, float)) else None))
        elif output.get("action") and at:
            faults.append(FaultWindow(str(output["action"]), "", hosts, at, at, "one shot", None, activity.name))
    return faults


def _restores(activities: list[Activity]) -> dict[str, list[tuple[dt.datetime, Activity]]]:
    """Per fault id, the restores that list it (``{"restored": {host: [ids]}}``) with their ends,
    first ended first."""
    restores: dict[str, list[tuple[dt.datetime, Activity]]] = {}
    ended = [(a.end, a) for a in activities
             if isinstance(a.output, dict) and isinstance(a.output.get("restored"), dict) and a.end]
    for end, restore in sorted(ended, key=lambda pair: pair[0]):
        listed = {str(i) for ids in restore.output["restored"].values() if isinstance(ids, list) for i in ids}
        for fault_id in listed:
            restores.setdefault(fault_id, []).append((end, restore))
    return restores


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
            if steady is not None and steady < after:
                seen.append(sightings[steady])
        relevant[subject] = seen
    return relevant


def _outages(sightings: list[Sighting]) -> list[Outage]:
    """Per subject, from a down sighting of its own to the next healthy one."""
    outages = []
    for subject, seen in _relevant(sightings).items():
        down: Sighting | None = None
        for sighting in seen:
            if not sighting.up and down is None:
                down = sighting
            elif sighting.up and down is not None:
                outages.append(Outage(subject, down.outage, down.at, sighting.at, _span(down.at, sighting.at) or 0.0))
                down = None
        if down is not None:
            last = max(s.at for s in seen if s.subject == subject)
            outages.append(Outage(subject, down.outage, down.at, None, _span(down.at, last) or 0.0))
    return sorted(outages, key=lambda o: o.start)


def _recovery(sightings: list[Sighting], faults: list[FaultWindow], activities: list[Activity],
              fmea: dict[str, Any] | None, recording: Recording | None) -> Recovery:
    expected = float(fmea["recovery_seconds"]) if fmea else None
    started, started_by = _clock_start(faults, activities, recording.fault_ends if recording else {})
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
