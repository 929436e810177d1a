"""The ``impact`` control: record what the drill does to pods, workloads, nodes and the API.

::

    {"name": "impact", "provider": {"type": "python", "module": "chaosali.impact.controls",
      "arguments": {"namespaces": ["demo"], "settle_seconds": 10}}}

From just before the method's first activity until the rollbacks end, plus ``settle_seconds``,
a recorder watches the scope in the background (see :mod:`chaosali.impact.recorder`). The
``impact_within`` probe judges the recording so far; at the end of the run the recording and its
measures land in the journal, under its ``extensions`` as ``{"name": "chaosali-impact", ...}``,
where ``chaosali report`` reads them.

An API that cannot be read when the recording starts stops the run (``fail_on_error``, the
default); with ``fail_on_error`` false the run goes on, and the journal says the recording is
missing and why.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Callable

from chaoslib import substitute
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Control, Experiment, Journal, Secrets

from chaosali.cluster.api import new_api_client
from chaosali.core import args, evidence, extensions, ledger, memory
from chaosali.core.controls import check_arguments, fail_closed
from chaosali.core.errors import InvalidArgument
from chaosali.impact.measures import (
    RECORDING_EVIDENCE, declared_alerts, detections, fault_span, judge, measure,
)
from chaosali.impact.recorder import HttpTarget, Recorder, Scope
from chaosali.core.http import check as check_http
from chaosali.core.waiting import wait_until
from chaosali.monitoring.prometheus import client

__all__ = ["validate_control", "before_experiment_control", "before_method_control", "after_experiment_control",
           "cleanup_control", "EXTENSION", "recording_state", "recorded", "fault_end", "judge_again_at_the_end"]

logger = logging.getLogger("chaostoolkit")

EXTENSION = extensions.IMPACT
_MEMORY = "impact"


def validate_control(control: Control) -> None:
    """Check the control's arguments when the experiment is validated."""
    check_arguments(control, before_experiment_control)


@fail_closed("impact")
def before_experiment_control(
    context: Experiment,
    namespaces: list = None,
    label_selector: str = None,
    settle_seconds: float = 10,
    max_entries: int = 5000,
    fail_on_error: bool = True,
    http: list = None,
    alerts: bool = True,
    quiet_seconds: float = 90,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> None:
    """
    Get ready to record pods, workloads (Deployments, StatefulSets,
    DaemonSets, bare ReplicaSets), nodes, Warning events and the API's
    outages in `namespaces` (default: the namespaces the experiment names in
    its configuration and its activities' arguments), for pods and
    workloads matching `label_selector`. The recording starts just before
    the method and goes on `settle_seconds` after the rollbacks; it keeps
    at most `max_entries` entries (and counts the rest). A recording that
    cannot start stops the run, unless `fail_on_error` is false. `http`
    lists services to sample during the recording, each a URL or an object
    with a `url`, an optional `name`, a `rate` (samples per second, default 5) and
    any check of chaosali.service.probes.service_available (`status`,
    `contains`, `json_path`, `json_value`, `timeout`...): their availability
    and latency are measured. With `alerts` (the default) and a Prometheus
    in the configuration (`prometheus_url`, its credentials in the
    `prometheus` secrets scope), its alerts are recorded too: when each was
    pending, firing and resolved, with its labels (never its annotations),
    and the FMEA's `detection` alerts are judged on them; one of them still
    firing from what ran before (a restart alert lasts a minute) could not
    detect this run's fault, so the run first waits for them to resolve, at
    most `quiet_seconds`.
    """
    section = memory.section(_MEMORY)
    if "scope" in section:
        return  # declared twice
    section.update(
        scope=Scope(
            tuple(recorded_namespaces(namespaces, context, configuration, secrets)),
            None if label_selector is None else args.label_selector(label_selector),
        ),
        settle_seconds=args.seconds(settle_seconds, "settle_seconds", 3600, zero=True),
        max_entries=args.whole(max_entries, "max_entries", 100, 1_000_000),
        fail_on_error=args.boolean(fail_on_error, "fail_on_error"),
        http=_http_targets(http),
        alerts=_alert_source(alerts, configuration, secrets),
    )
    _quiet_start(section["alerts"], context, args.seconds(quiet_seconds, "quiet_seconds", 3600, zero=True))


def _quiet_start(source: Callable[[], list[dict]] | None, experiment: Experiment, wait: float) -> None:
    """Wait until none of the FMEA's declared alerts fires (a detection is a firing after the
    fault's start: one firing since the drill before would hide it), at most ``wait`` seconds."""
    declared = {alert["alert"] for alert in declared_alerts(experiment)}
    if source is None or not declared:
        return

    def firing() -> list[str]:
        try:
            return sorted({str(a["labels"].get("alertname")) for a in source()} & declared)
        except ActivityFailed:  # an unreadable Prometheus is the recording's to report, not a reason to wait
            return []
    quiet, still = wait_until(firing, time.monotonic() + wait, 2.0, lambda names: not names)
    if not quiet:
        logger.warning("chaosali: %s still firing after %g s: this run cannot tell its own firing of them",
                       ", ".join(still), wait)


@fail_closed("impact")
def before_method_control(context: Experiment, configuration: Configuration = None, secrets: Secrets = None,
                          **arguments: Any) -> None:
    """Start recording, as prepared before the experiment."""
    section = memory.section(_MEMORY)
    if "scope" not in section or "recorder" in section or "missing" in section:
        return
    recorder = Recorder(lambda: new_api_client(configuration, secrets, retries=0), section["scope"],
                        cap=section["max_entries"], http_targets=section["http"], targeted_nodes=_faulted,
                        alert_source=section["alerts"])
    try:
        recorder.start()
    except Exception as error:
        recorder.stop()
        reason = f"the impact recording could not start: {args.cause(error)}"
        if section["fail_on_error"]:
            raise
        logger.warning("chaosali: %s; the run goes on without it (fail_on_error is false)", reason)
        section["missing"] = reason
        return
    section["recorder"] = recorder
    memory.on_forget(recorder.stop)
    evidence.add_source("impact recording", lambda: _sightings(recorder))


def _sightings(recorder: Recorder) -> list[dict]:
    """The recording so far as evidence of the faults: any impact it measured is a sighting."""
    recording, measures = recorded(recorder)
    sightings = []
    if measures["impact"] != "none":
        # what it hit, not for how long: the figures are the measures' at the run's end (one per measure)
        hit = (["the API down"] if measures["api_down_seconds"] else []) + (["pods lost"] if measures["pods_lost"] else [])
        hit += [f"{name} below desired" for name, w in measures["workloads"].items() if w["seconds_below_desired"]]
        hit += [f"{name} NotReady" for name, node in measures["nodes"].items() if node["seconds_not_ready"]]
        hit += [f"{name} failing" for name, t in measures["http"].items()
                if t["availability"] is not None and t["availability"] < 100]
        sightings.append({"what": RECORDING_EVIDENCE, "seen": True, "expected": False,
                          "detail": f"{measures['impact']} impact recorded: {', '.join(hit)}"})
    # containers that a node's kubelet reported ended (a reboot, a kill), even when no pod was lost
    ended = sorted({f"{entry['pod']} ({entry['node']})" for entry in recording.get("timeline") or []
                    if entry.get("what") == "container-ended"})
    if ended:
        sightings.append({"what": "containers ended", "seen": True, "expected": False,
                          "detail": f"the containers of {len(ended)} pods ended: {', '.join(ended)}"})
    return sightings


def after_experiment_control(context: Experiment, state: Journal = None, **arguments: Any) -> None:
    """Stop recording after the settle time; put the recording and its measures in the journal."""
    section = memory.section(_MEMORY)
    recorder: Recorder | None = section.pop("recorder", None)
    if recorder is not None:
        time.sleep(section.get("settle_seconds", 0))
        recorder.stop()
    if state is None or (recorder is None and "missing" not in section):
        return
    if recorder is None:
        entry = {"name": EXTENSION, "missing": section["missing"]}
    else:
        recording, measures = recorded(recorder)
        entry = {"name": EXTENSION, "recording": recording, "measures": measures}
        if "limits" in section:
            entry["final_judgement"] = _judge_to_the_end(state, entry["measures"], *section["limits"])
    state["extensions"] = [*(state.get("extensions") or []), entry]
    if recorder is not None and recorder.alert_source is not None:
        entry["detections"] = _judge_detection(state, entry["recording"])


def _judge_detection(journal: Journal, recording: dict[str, Any]) -> list[dict[str, Any]]:
    """The alerts the FMEA declares judged on the recording, from the faults' span it carries, as
    the report judges them (``measures.declared_alerts``, ``fault_span``, ``detections``: so that the
    two cannot disagree): one that did not fire in time deviates the run."""
    span = fault_span(recording.get("fault_starts") or {}, recording.get("fault_ends") or {})
    judged = detections(recording.get("alerts"), declared_alerts(journal.get("experiment")), *span)
    missed = [d for d in judged if d["met"] is False]
    if missed and journal.get("status") == "completed" and not journal.get("deviated"):
        journal["deviated"] = True
        logger.warning("chaosali: the run deviated: the monitoring missed the failure: %s",
                       "; ".join(d["why"] for d in missed))
    return judged


def judge_again_at_the_end(limits: dict[str, Any], max_impact: str | None) -> None:
    """Keep the limits ``impact_within`` judged, to judge the whole recording by them at the end."""
    memory.section(_MEMORY)["limits"] = (limits, max_impact)


def _judge_to_the_end(journal: Journal, measures: dict[str, Any], limits: dict[str, Any],
                      max_impact: str | None) -> dict[str, Any]:
    """The limits judged on the whole recording: impact that came after the steady state's last
    check (during the rollbacks or the settle time) deviates a run that had passed, as that check
    would have, so that ``chaos run``'s verdict and the report's stay one."""
    checks = judge(measures, limits, max_impact)
    missed = [check for check in checks if not check["met"]]
    if missed and journal.get("status") == "completed" and not journal.get("deviated"):
        journal["deviated"] = True
        logger.warning("chaosali: the run deviated after its steady state's last check: the whole recording "
                       "misses %s", "; ".join(f"{c['limit']} {c['bound']} (measured {c['measured']})" for c in missed))
    return {"within": not missed, "checks": checks}


def cleanup_control() -> None:
    """Stop a recorder the run left running (its end came without after_experiment_control)."""
    recorder = memory.section(_MEMORY).pop("recorder", None)
    if recorder is not None:
        recorder.stop()


def recording_state() -> tuple[bool, Recorder | None, str | None]:
    """Whether this run declared the control, its recorder once it records, and why the
    recording is missing if it could not start."""
    section = memory.section(_MEMORY)
    return "scope" in section, section.get("recorder"), section.get("missing")


def recorded_namespaces(given: Any, experiment: Experiment, configuration: Configuration, secrets: Secrets) -> list[str]:
    """The namespaces the recorder watches: ``given``, else those the experiment names."""
    if given is not None:
        listed = given if isinstance(given, list) else [given]
        return [args.dns_label(namespace, "namespaces") for namespace in listed]
    named: list[str] = []
    for key, value in (configuration or {}).items():
        if key.endswith("namespace") and isinstance(value, str):
            named.append(value)
    for activity in _activities(experiment):
        arguments = (activity.get("provider") or {}).get("arguments")
        if not isinstance(arguments, dict):  # a process provider's arguments are a command line
            continue
        arguments = substitute(arguments, configuration, secrets)
        for key in ("namespace", "namespaces", "whitelisted_namespaces"):
            value = arguments.get(key)
            named += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    return sorted({namespace for namespace in named if namespace})


def _alert_source(wanted: Any, configuration: Configuration, secrets: Secrets) -> Callable[[], list[dict]] | None:
    """The alerts of the configuration's Prometheus, polled by the recorder; None without one."""
    if not args.boolean(wanted, "alerts") or not (configuration or {}).get("prometheus_url"):
        return None
    # a poll waits at most 2 s: one that times out is an error of the recording, and the next is made
    return client(None, 2.0, configuration, (secrets or {}).get("prometheus")).alerts


def _faulted() -> set[str]:
    faulted = ledger.faulted_hosts()
    return {*faulted, *(name for name in faulted.values() if name)}


def _http_targets(given: Any) -> tuple[HttpTarget, ...]:
    if given is None:
        return ()
    if not isinstance(given, list) or not all(isinstance(target, str) or isinstance(target, dict) and "url" in target
                                              for target in given):
        raise InvalidArgument('http must be a list of URLs or of objects with a "url", e.g. '
                              '["http://10.0.0.5/"] or [{"url": "http://10.0.0.5/healthz", "rate": 2}]')
    targets = []
    for target in given:
        target = {"url": target} if isinstance(target, str) else target
        checks = {key: value for key, value in target.items() if key not in ("name", "rate")}
        try:
            request, expect = check_http(**checks)
        except TypeError as error:  # an unknown key: say which ones are known
            raise InvalidArgument(f"http target {args.display_url(target['url'])}: {error}") from None
        name = str(target.get("name") or args.display_url(request.url))
        targets.append(HttpTarget(name, request, expect, args.number(target.get("rate", 5), "http rate", 0, 50, above=True)))
    if len({target.name for target in targets}) != len(targets):
        raise InvalidArgument("http targets need distinct names (or URLs): give each a name")
    return tuple(targets)


def _activities(experiment: Experiment) -> list[dict]:
    hypothesis = (experiment or {}).get("steady-state-hypothesis") or {}
    return [*(hypothesis.get("probes") or []), *((experiment or {}).get("method") or []),
            *((experiment or {}).get("rollbacks") or [])]


def recorded(recorder: Recorder | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recording so far (empty without a recorder: before the method nothing is recorded) with
    the run's fault starts and ends on its clock (``fault_starts``, ``fault_ends``: fault id -> seconds
    since it started, the one record of them, which the report reads too) and the hosts faulted
    (``faulted_hosts``: address -> name, as the recorder tells the pods lost to the drill; the report
    sorts the alerts by them), and its measures, recovery counted from the last end."""
    recording = recorder.recording() if recorder else {}
    if recording.get("started_at"):
        recording["faulted_hosts"] = ledger.faulted_hosts()
        started = dt.datetime.fromisoformat(recording["started_at"])

        def clock(instant: str | None) -> float | None:
            return None if instant is None else round((dt.datetime.fromisoformat(instant) - started).total_seconds(), 3)

        recording["fault_starts"] = {fault.id: clock(fault.started) for fault in ledger.faults() if fault.injected}
        # None: a fault with no end in sight (a cordon not lifted, kube-monkey still enrolled)
        recording["fault_ends"] = {fault: clock(end) for fault, end in ledger.fault_ends().items()}
    return recording, measure(recording, fault_end(recording))


def fault_end(recording: dict) -> float | None:
    """When the run's faults ended, on the recording's clock: the last of its ``fault_ends`` (a
    timer, or a restore if sooner; a one-shot's moment; a drain's last eviction; kube-monkey's
    victims withdrawn). None while a fault is still on at the recording's end, or without any."""
    ends = list((recording.get("fault_ends") or {}).values())
    if not ends or None in ends:
        return None
    latest = max(ends)
    return None if latest > recording.get("seconds", 0) else latest
