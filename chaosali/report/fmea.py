"""FMEA metadata of an experiment: how a failure mode is classified, and what recovery to expect.

An experiment declares it in its ``extensions`` block, where Chaos Toolkit keeps what it does
not interpret itself::

    "extensions": [{"name": "chaosali", "fmea": {
        "failure_mode": "the hosts of the API server lose their network",
        "category": "kubernetes", "severity": "critical", "impact": "core",
        "recovery": "auto", "recovery_seconds": 30, "detection": "api-ready"}}]

``recovery_seconds`` is the recovery the report measures a run against (see
``chaosali.report.recovery``); ``detection`` names the probe or alert that detects the failure: a
plain name is only a name, while alerts given as ``{"alert": "KubeAPIDown", "within_seconds": 60}``
(or a list of them) are judged against the alerts the impact recording saw: each must fire within
its seconds of the fault's start, or the run is NOT DETECTED.

Optional limits, named and meant as ``impact_within``'s (``chaosali.impact.measures.LIMITS``),
are judged against the impact recording of a run (the ``chaosali.impact.controls`` control):
``max_pods_lost``, ``max_unavailable_seconds``, ``max_recovery_seconds``, ``min_availability``
(per cent), ``max_failure_streak``, ``max_api_down_seconds``.
"""

from __future__ import annotations

from typing import Any

from chaosali.core import args, extensions
from chaosali.core.errors import InvalidArgument
from chaosali.impact.measures import LIMITS, expected_alerts

__all__ = ["CHOICES", "FIELDS", "validate_fmea"]

EXTENSION = extensions.FMEA

# The closed vocabularies: a report groups and compares drills by them, so a typo ("hight")
# must fail loudly rather than make a category of its own.
CHOICES: dict[str, tuple[str, ...]] = {
    "category": ("host", "network", "kubernetes", "chaos"),
    "severity": ("low", "medium", "high", "critical"),
    "impact": ("none", "partial", "core"),
    "recovery": ("auto", "manual"),
}
FIELDS: dict[str, str] = {
    "failure_mode": "what fails, in words",
    "category": "one of " + ", ".join(CHOICES["category"]),
    "severity": "one of " + ", ".join(CHOICES["severity"]),
    "impact": "one of " + ", ".join(CHOICES["impact"]),
    "recovery": "one of " + ", ".join(CHOICES["recovery"]),
    "recovery_seconds": "the expected recovery time, a number of seconds from 0 to 86400",
    "detection": 'the probe or alert that detects it: a name, or alerts to judge, e.g. '
                 '{"alert": "KubeAPIDown", "within_seconds": 60} or a list of them',
}
_DAY = 86400.0


def validate_fmea(experiment: dict[str, Any]) -> dict[str, Any]:
    """Return the experiment's FMEA block, checked; raise ``InvalidArgument`` naming every
    missing field, unknown field and unknown value, with what is allowed."""
    fmea = _fmea_block(experiment)
    known = [*FIELDS, *LIMITS]
    problems = [f"unknown field {name!r} (fields: {', '.join(known)})" for name in fmea if name not in known]
    for name, limit in LIMITS.items():
        if name not in fmea:
            continue
        # the FMEA is JSON: numbers only, never "30" nor true
        if isinstance(fmea[name], bool) or not isinstance(fmea[name], (int, float)):
            problems.append(f"{name} {fmea[name]!r} must be a number: {limit.means}")
            continue
        try:
            limit.bound(fmea[name])
        except InvalidArgument as error:
            problems.append(str(error))
    for name, meaning in FIELDS.items():
        if name not in fmea:
            problems.append(f"missing field {name!r}: {meaning}")
            continue
        value = fmea[name]
        if name in CHOICES:
            if value not in CHOICES[name]:
                problems.append(f"{name} {value!r} is not one of {', '.join(CHOICES[name])}")
        elif name == "recovery_seconds":
            # bool is an int to Python, but `true` seconds is a mistake; Infinity is no expectation
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"recovery_seconds {value!r} must be a number from 0 to {_DAY:g}")
                continue
            try:
                args.number(value, "recovery_seconds", 0, _DAY)
            except InvalidArgument as error:
                problems.append(str(error))
        elif name == "detection" and not isinstance(value, str):
            try:
                expected_alerts(value)
            except InvalidArgument as error:
                problems.append(str(error))
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{name} {value!r} must be a non-empty string: {meaning}")
    if problems:
        raise InvalidArgument(f"FMEA of {_title(experiment)}: " + "; ".join(problems))
    return dict(fmea)


def _fmea_block(experiment: dict[str, Any]) -> dict[str, Any]:
    extensions = experiment.get("extensions") or []
    if not isinstance(extensions, list):
        raise InvalidArgument(f"FMEA of {_title(experiment)}: extensions must be a list")
    ours = [e for e in extensions if isinstance(e, dict) and e.get("name") == EXTENSION]
    example = '{"name": "chaosali", "fmea": {' + ", ".join(f'"{name}": ...' for name in FIELDS) + "}}"
    if not ours:
        raise InvalidArgument(f"FMEA of {_title(experiment)}: no FMEA; add to extensions {example}")
    if len(ours) > 1:
        raise InvalidArgument(f"FMEA of {_title(experiment)}: {len(ours)} chaosali extensions, keep one")
    fmea = ours[0].get("fmea")
    if not isinstance(fmea, dict):
        raise InvalidArgument(f"FMEA of {_title(experiment)}: the chaosali extension needs an object \"fmea\": {example}")
    return fmea


def _title(experiment: dict[str, Any]) -> str:
    return repr(experiment.get("title") or "the experiment")
