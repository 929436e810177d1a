"""A journal in figures: the run (``Run``), its impact level, whether its fault was proven, its
checks and resilience score, and the JSON shape of it all. The journal's parts are read by
``chaosali.report.model``, the recovery by ``chaosali.report.recovery``.

Everything is read from the redacted journal (``chaosali.report.redact``), so what a renderer
shows cannot hold a secret.

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
stopped: missed), the impact expectation, the fault proven, the expected recovery, each
FMEA limit judged against the recording, and each alert the FMEA's ``detection`` expects
(``chaosali.impact.measures.detections``: fired within its seconds of the first fault's start,
else NOT DETECTED). Critical checks (probes, impact, fault proven, detection) weigh 3, the others 1; a check that cannot be judged counts for nothing. An impact lower than
expected meets the impact check. Score = 100 x weight met / weight judged (see docs/report.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from chaosali.core import extensions
from chaosali.core.errors import InvalidArgument
from chaosali.core.ledger import Fault
from chaosali.impact.measures import (
    LIMITS, RECORDING_EVIDENCE, declared_alerts, detections, fault_span, judge, sorted_alerts,
)
from chaosali.report.fmea import CHOICES, validate_fmea
from chaosali.report.journal import read_journal
from chaosali.report.model import (
    Activity, FaultWindow, LimitCheck, Recording, SteadyCheck, activity_of, fault_windows, iso, limit_name,
    recording_of, seconds_text, steady_checks, time_of,
)
from chaosali.report.recovery import (
    CORE_SUBJECTS, NOT_MEASURED, RECORDED_SUBJECTS, Outage, Recovery, outages_of, recovery_of, sightings_of,
)
from chaosali.report.redact import redact
from chaosali.report.outputs import exit_status, stderr_tail
from chaosali.report.safety import safety_checks, safety_figures

__all__ = ["Check", "Run", "campaign_score", "read_run"]


CRITICAL, MINOR = 3, 1  # check weights, as krkn weighs critical checks and warnings


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
    def impact_figures(self) -> list[str]:
        """One figure per outage: what the recording measured (the API, the nodes) is told once,
        from the recording, with its resolution; the journal's own sightings tell the rest."""
        seen = _measured_phrases(self.measures) if self.measures else []
        return seen + [outage.text() for outage in self.journal_outages]

    @property
    def impact_seen(self) -> str:
        return ", ".join(self.impact_figures) or "none"

    @property
    def journal_outages(self) -> list[Outage]:
        """The outages the journal's own sightings tell (a watch, a probe, a steady state), but of
        what the recording measured itself (the API, the nodes): each outage has one figure, from
        one source."""
        told = RECORDED_SUBJECTS if self.measures else set()
        return [outage for outage in self.outages if outage.subject not in told]

    @property
    def impact_level(self) -> str | None:
        """none, partial or core (see the module doc); None when nothing watched the drill."""
        if self.measures and self.measures.get("impact") in CHOICES["impact"]:
            return self.measures["impact"]
        if self.recovery.state == NOT_MEASURED:
            return None
        if not self.outages:
            return "none"
        return "core" if any(o.subject in CORE_SUBJECTS for o in self.outages) else "partial"

    @property
    def proof(self) -> dict[str, Any] | None:
        """The run's own judgement of its faults: the last ``faults_observed`` output that judged
        any (the steady state's last check), with its evidence."""
        judged = [a.output for a in self.activities if a.func == "faults_observed" and isinstance(a.output, dict)
                  and a.output.get("proven") in (True, False)]
        return judged[-1] if judged else None

    @property
    def evidence(self) -> list[dict[str, Any]]:
        """The proof's evidence as the report tells it: the recording's entry by its level, since
        its figures were those of the moment it was judged (an older chaosali wrote them) and
        impact seen gives the recording's final ones: one figure per measure."""
        told = []
        for entry in (self.proof or {}).get("evidence") or []:
            if not isinstance(entry, dict):
                continue
            if entry.get("what") == RECORDING_EVIDENCE and self.impact_level:
                entry = {**entry, "detail": f"{self.impact_level} impact recorded (its figures: impact seen)"}
            told.append(entry)
        return told

    @property
    def ledger(self) -> list[Fault]:
        """The run's fault records (its ledger), read back through the type that wrote them."""
        entries = [entry.get("faults") for entry in extensions.entries(self.journal, extensions.LEDGER)]
        return [fault for found in entries if isinstance(found, list)
                for fault in map(Fault.from_json, found) if fault is not None]

    @property
    def not_injected(self) -> list[Fault]:
        """The faults that did not go in, wholly or on some targets: the drill proved nothing."""
        return [fault for fault in self.ledger if fault.not_injected]

    @property
    def fault_proven(self) -> bool | None:
        """Whether the faults took effect: never when one did not go in (the ledger says so); the
        run's own judgement when the journal has one (``faults_observed``); otherwise impact seen
        proves them, and none where the FMEA expects some does not. None: nothing to judge by."""
        if self.not_injected:
            return False
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
        checks += [Check(kind, name, met, CRITICAL) for kind, name, met in safety_checks(self.journal)]
        checks += [Check("detection", f"alert {d['alert']} fires" + (f" within {seconds_text(d['within_seconds'])}"
                                                                     if d["within_seconds"] is not None else ""),
                         d["met"], CRITICAL) for d in self.detections]
        return checks

    @property
    def detections(self) -> list[dict[str, Any]]:
        """Each alert the FMEA expects, judged on the alerts recorded, from the first fault's start
        (time to detect) and the last fault's end (time to resolve)."""
        expected = declared_alerts(self.journal["experiment"])
        if not expected:
            return []
        if self.recording is None:
            return detections(None, expected, None, None)
        return detections(self.recording.alerts, expected, *self.fault_moments)

    @property
    def not_detected(self) -> bool:
        return any(d["met"] is False for d in self.detections)

    @property
    def alerts(self) -> dict[str, list[dict[str, Any]]]:
        """The alerts that fired but the declared ones, sorted by what they are about
        (``chaosali.impact.measures.sorted_alerts``): on a faulted host after the fault started
        (detections, with their time to detect), already firing before it, and unexpected."""
        recording = self.recording
        return sorted_alerts(recording.alerts if recording else None, declared_alerts(self.journal["experiment"]),
                             self.fault_moments[0], recording.faulted_hosts if recording else {})

    @property
    def fault_moments(self) -> tuple[float | None, float | None]:
        """The first fault's start and the last one's end, on the recording's clock (None: unknown):
        as the run recorded them (the impact control judged its alerts by these), else worked out
        from the activities (a journal of an older chaosali)."""
        recording = self.recording
        if recording is None:
            return None, None
        if recording.fault_starts:
            return fault_span(recording.fault_starts, {**recording.fault_ends, **dict.fromkeys(recording.unended)})
        return (recording.t(min((f.start for f in self.faults), default=None)),
                recording.t(max((f.end for f in self.faults), default=None)))

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
            "start": iso(self.start),
            "end": iso(self.end),
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
                 "start": iso(a.start), "end": iso(a.end),
                 "start_offset": self.offset(a.start), "end_offset": self.offset(a.end),
                 "duration": a.seconds,
                 **({"error_line": a.error_line, "error": a.error} if a.error else {}), **_process_figures(a)}
                for a in self.activities
            ],
            "faults": [
                {"kind": f.kind, "fault_id": f.fault_id or None, "hosts": f.hosts, "activity": f.activity,
                 "start": iso(f.start), "end": iso(f.end), "seconds": f.seconds,
                 "ended_by": f.ended_by, "heals_at": iso(f.heals_at), "skew_seconds": f.skew_seconds}
                for f in self.faults
            ],
            "outages": [
                {"subject": o.subject, "what": o.label, "source": o.source, "start": iso(o.start), "end": iso(o.end),
                 "seconds": o.seconds, "seen_back": o.end is not None}
                for o in self.journal_outages
            ],
            "impact_seen": self.impact_seen,
            "impact": {"level": self.impact_level, "expected": self.fmea["impact"] if self.fmea else None,
                       "exceeded": self.impact_exceeded, "lower": self.impact_lower,
                       "measured": self.measures is not None},
            "fault": {"proven": self.fault_proven, "judged_by": "faults_observed" if self.proof else "impact seen",
                      "evidence": self.evidence if self.proof else None, "why": (self.proof or {}).get("why")},
            "recording": None if self.recording is None else {
                "missing": self.recording.missing, "start": iso(self.recording.started),
                "seconds": self.recording.seconds, "scope": self.recording.scope,
                "api_outages": self.recording.api_outages, "dropped": self.recording.dropped,
                "errors": self.recording.errors, "measures": self.measures,
            },
            "limits": [{"limit": c.limit, "bound": c.bound, "measured": c.measured, "met": c.met,
                        **({"why": c.why} if c.why else {})} for c in self.limits],
            "detections": self.detections,
            "alerts_on_faulted_hosts": self.alerts["on_faulted"],
            "alerts_before_the_fault": self.alerts["before_fault"],
            "unexpected_alerts": self.alerts["unexpected"],
            "checks": [{"kind": c.kind, "name": c.name, "weight": c.weight, "met": c.met} for c in self.checks()],
            "score": self.score,
            "safety": safety_figures(self.journal),
            "recovery": {
                "state": recovery.state,
                "measured_seconds": recovery.measured,
                "expected_seconds": recovery.expected,
                "exceeded": recovery.exceeded,
                "from": iso(recovery.started), "from_what": recovery.started_by,
                "to": iso(recovery.healthy), "to_what": recovery.healthy_by,
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
    steady = steady_checks(journal.get("steady_states") or {})
    activities = sorted(
        [p for check in steady for p in check.probes]
        + [activity_of("method", run) for run in journal.get("run") or []]
        + [activity_of("rollback", run) for run in journal.get("rollbacks") or []],
        key=lambda a: (a.start is None, a.start or dt.datetime.min.replace(tzinfo=dt.timezone.utc)),
    )
    faults = fault_windows(activities)
    sightings = sightings_of(activities, steady)
    start, end = time_of(journal.get("start")), time_of(journal.get("end"))
    recording = recording_of(journal.get("extensions"))
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
        outages=outages_of(sightings),
        recovery=recovery_of(sightings, faults, activities, fmea, recording),
        recording=recording,
        limits=_limits(fmea, recording),
        journal=journal,
        problems=problems,
    )


class Scored(Protocol):
    """A run, or its point in a trend (``chaosali.report.trends.Point``): what a campaign's score needs."""

    @property
    def score(self) -> float | None: ...


def campaign_score(runs: Sequence[Scored]) -> float | None:
    """The mean of the runs' scores: each drill counts once, however many probes it has."""
    scores = [run.score for run in runs if run.score is not None]
    return round(sum(scores) / len(scores), 1) if scores else None


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
        phrases.append(f"the API down {seconds_text(measures['api_down_seconds'])} (recorded, /readyz each second)")
    phrases += [f"{name} available {t['availability']:g} %" for name, t in (measures.get("http") or {}).items()
                if t.get("availability") is not None and t["availability"] < 100]
    return phrases


def _process_figures(activity: Activity) -> dict[str, Any]:
    status = exit_status(activity.output)
    if status is None:
        return {}
    return {"exit_status": status, "unexpected_exit": activity.unexpected_exit is not None,
            "stderr_tail": stderr_tail(activity.output)[1]}
