"""A journal as a model: its activities, fault windows, steady-state checks and impact recording,
read from the redacted journal (``chaosali.report.redact``), so that what a renderer shows
cannot hold a secret; and the words for seconds and limits every format shares."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from chaosali.impact.measures import ALERT_MOMENTS, LIMITS
from chaosali.report.journal import IMPACT_EXTENSION
from chaosali.report.outputs import status_words, unexpected_exit

__all__ = ["Activity", "FaultWindow", "LimitCheck", "Recording", "SteadyCheck", "activity_of", "fault_windows", "iso",
           "limit_name", "recording_of", "seconds_text", "span", "steady_checks", "time_of"]


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
        return span(self.start, self.end)

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
class SteadyCheck:
    phase: str
    met: bool | None
    end: dt.datetime | None
    probes: list[Activity]


@dataclass(frozen=True)
class Recording:
    """The impact recording of a run (``chaosali.impact.controls``): its measures as the control
    computed them, and every moment of it on its own clock (seconds since ``started``): the
    timeline's ``t``, the windows' ``from`` and ``to``, the fault ends."""

    started: dt.datetime | None
    seconds: float
    scope: dict[str, Any]
    timeline: list[dict[str, Any]]
    api_outages: list[dict[str, Any]]
    dropped: int
    errors: list[str]
    measures: dict[str, Any] | None
    missing: str | None  # why there is no recording
    # when each of the run's faults ended, as the run recorded it (id -> seconds); empty in a journal
    # of an older chaosali: the report then works the ends out from the activities
    fault_ends: dict[str, float] = field(default_factory=dict)
    # when each began, as the run recorded it (id -> seconds; None: unreadable); empty in an older journal
    fault_starts: dict[str, float | None] = field(default_factory=dict)
    # faults the run recorded with no end (in sight when the recording ended, or unreadable)
    unended: tuple[str, ...] = ()
    # the alerts seen, when a Prometheus was polled: their ALERT_MOMENTS on the recording's clock
    alerts: list[dict[str, Any]] | None = None
    # the hosts the run faulted, address -> name (empty in a journal of an older chaosali)
    faulted_hosts: dict[str, str | None] = field(default_factory=dict)

    def at(self, t: Any) -> dt.datetime | None:
        """A moment of the recording's clock, as a time."""
        if self.started is None or isinstance(t, bool) or not isinstance(t, (int, float)):
            return None
        return self.started + dt.timedelta(seconds=t)

    def t(self, moment: dt.datetime | None) -> float | None:
        """A time as a moment of the recording's clock (seconds since it started)."""
        return _seconds_since(self.started, moment)

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


def seconds_text(seconds: float | None) -> str:
    """Seconds for people: "0.19 s", "10.1 s", "30 s", "3 min 0 s"."""
    if seconds is None:
        return "-"
    if seconds >= 120:
        return f"{int(seconds // 60)} min {seconds % 60:.0f} s"
    if float(seconds).is_integer():
        return f"{seconds:.0f} s"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def limit_name(limit: str, bound: float) -> str:
    """A limit's check as reports name it (stable from run to run of one experiment)."""
    return LIMITS[limit].phrase.format(seconds_text(bound) if LIMITS[limit].unit == "seconds" else f"{bound:g}")


def recording_of(extensions: Any) -> Recording | None:
    entry = next((e for e in extensions or [] if isinstance(e, dict) and e.get("name") == IMPACT_EXTENSION), None)
    if entry is None:
        return None
    recording: dict[str, Any] = entry["recording"] if isinstance(entry.get("recording"), dict) else {}
    measures = entry.get("measures") if isinstance(entry.get("measures"), dict) else None
    missing = None if measures else str(entry.get("missing") or "the journal holds no measures")
    started = time_of(recording.get("started_at"))

    def on_clock(value: Any) -> float | None:
        """A moment as seconds of the recording's clock; an older chaosali wrote windows in ISO time."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return _seconds_since(started, time_of(value))

    def windows(spans: Any) -> list[dict[str, Any]]:
        return [{**w, "from": on_clock(w.get("from")), "to": on_clock(w.get("to"))}
                for w in spans or [] if isinstance(w, dict)]

    if measures and isinstance(measures.get("http"), dict):
        measures = {**measures, "http": {name: {**t, "error_windows": windows(t.get("error_windows"))}
                                         for name, t in measures["http"].items() if isinstance(t, dict)}}
    ends: dict[str, Any] = recording["fault_ends"] if isinstance(recording.get("fault_ends"), dict) else {}
    starts: dict[str, Any] = recording["fault_starts"] if isinstance(recording.get("fault_starts"), dict) else {}
    return Recording(
        started=started,
        seconds=float(recording.get("seconds") or 0.0),
        scope=recording.get("scope") or {},
        timeline=[e for e in recording.get("timeline") or [] if isinstance(e, dict)],
        api_outages=windows(recording.get("api_outages")),
        dropped=int(recording.get("dropped") or 0),
        errors=[str(error) for error in recording.get("errors") or []],
        measures=measures,
        missing=missing,
        fault_ends={str(name): t for name, end in ends.items() if (t := on_clock(end)) is not None},
        fault_starts={str(name): on_clock(start) for name, start in starts.items()},
        unended=tuple(str(name) for name, end in ends.items() if on_clock(end) is None),
        alerts=[{**a, **{moment: on_clock(a.get(moment)) for moment in ALERT_MOMENTS}} for a in recording["alerts"]
                if isinstance(a, dict)] if isinstance(recording.get("alerts"), list) else None,
        faulted_hosts={str(address): None if name is None else str(name)
                       for address, name in (recording.get("faulted_hosts") or {}).items()}
        if isinstance(recording.get("faulted_hosts"), dict) else {},
    )


def _seconds_since(started: dt.datetime | None, moment: dt.datetime | None) -> float | None:
    return round((moment - started).total_seconds(), 3) if moment and started else None


def time_of(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # older chaoslib wrote naive UTC times
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def span(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def activity_of(phase: str, run: dict[str, Any]) -> Activity:
    activity = run.get("activity") or {}
    provider = activity.get("provider") or {}
    exception = run.get("exception") or ""
    return Activity(
        phase=phase,
        name=str(activity.get("name") or "?"),
        type=str(activity.get("type") or "?"),
        func=str(provider.get("func") or provider.get("path") or provider.get("url") or ""),
        start=time_of(run.get("start")),
        end=time_of(run.get("end")),
        status=str(run.get("status") or "not finished"),
        output=run.get("output"),
        # chaoslib keeps traceback.format_exception(): a list of lines
        error="".join(exception).strip() if isinstance(exception, list) else str(exception).strip(),
        tolerance_met=run.get("tolerance_met"),
        tolerance=activity.get("tolerance"),
    )


def steady_checks(states: dict[str, Any]) -> list[SteadyCheck]:
    hypotheses = [("before", states.get("before"))]
    hypotheses += [("during", state) for state in states.get("during") or []]
    hypotheses.append(("after", states.get("after")))
    checks = []
    for phase, state in hypotheses:
        if not isinstance(state, dict):
            continue
        probes = [activity_of(phase, run) for run in state.get("probes") or []]
        end = max((p.end for p in probes if p.end), default=None)
        checks.append(SteadyCheck(phase, state.get("steady_state_met"), end, probes))
    return checks


def fault_windows(activities: list[Activity]) -> list[FaultWindow]:
    restores = _restores(activities)
    faults = []
    for activity, output in ((a, o) for a in activities for o in _fault_outputs(a.output)):
        hosts = [str(h.get("host")) for h in output.get("hosts") or [] if isinstance(h, dict) and h.get("ok", True)]
        started, at = time_of(output.get("started_at")), time_of(output.get("at"))
        if output.get("fault_id") and started:
            heals_at = time_of(output.get("heals_at"))
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
