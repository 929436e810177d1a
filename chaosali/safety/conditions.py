"""Stop conditions: what a drill may not do, each checked in the background while the method runs.

A condition is an object with a ``name`` and one kind:

- ``"limit"`` and ``"budget"``: a limit of ``impact_within`` (by its name) on the impact recorded
  so far, e.g. ``{"name": "web stays up", "limit": "min_availability", "budget": 90}``;
- ``"probe"``: a Chaos Toolkit probe with its ``tolerance``, run at the interval, e.g.
  ``{"name": "web answers", "probe": {"type": "probe", "name": "web", "tolerance": true,
  "provider": {"type": "python", "module": "chaosali.service.probes", "func": "service_available",
  "arguments": {"url": "http://10.0.0.5/"}}}}``.

Each may give ``interval`` (seconds between checks, at least 0.1; a limit's default 0.25, a
probe's 1), ``failures`` (how many checks of its own in a row may fail, a probe raising or the
recording missing, before the condition counts as broken; default 3) and ``fail_closed`` (default
true; false: a condition whose check keeps failing only warns). A new kind is one entry of
``KINDS``: a builder that checks the condition's fields and returns its check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from chaoslib import substitute
from chaoslib.activity import ensure_activity_is_valid, run_activity
from chaoslib.exceptions import ChaosException
from chaoslib.hypothesis import ensure_hypothesis_tolerance_is_valid, within_tolerance
from chaoslib.types import Configuration, Secrets

from chaosali.core import args
from chaosali.core.errors import InvalidArgument
from chaosali.impact.controls import recorded, recording_state
from chaosali.impact.measures import LIMITS, judge, measure

__all__ = ["Condition", "conditions", "KINDS", "MIN_INTERVAL"]

MIN_INTERVAL = 0.1
# a limit judged after the faults end cannot stop a drill while they last
_AFTER_THE_FAULT = ("max_recovery_seconds",)

# (holds, the value judged): raises when the condition's own check fails
Check = Callable[[Configuration, Secrets], tuple[bool, Any]]


@dataclass(frozen=True)
class Condition:
    """One stop condition, checked every ``interval`` seconds."""

    name: str
    kind: str
    check: Check
    interval: float
    failures: int
    fail_closed: bool
    spec: dict  # as declared, before substitution: what the journal keeps (no secret filled in)

    def describe(self) -> str:
        return f"{self.name} ({_summary(self.kind, self.spec)})"


def _limit(spec: dict, name: str) -> tuple[Check, float]:
    limit, budget = spec.get("limit"), spec.get("budget")
    if limit in _AFTER_THE_FAULT:
        raise InvalidArgument(f"{limit} is judged after the faults end: it cannot stop a drill (use it in impact_within)")
    if limit not in LIMITS:
        raise InvalidArgument(f"unknown limit {limit!r}: use one of "
                              f"{', '.join(name for name in LIMITS if name not in _AFTER_THE_FAULT)}")
    if budget is None or isinstance(budget, bool):
        raise InvalidArgument(f'"budget" must be a number, e.g. {{"limit": "{limit}", "budget": 10}}')
    judge(measure({}), {limit: budget})  # the impact measures' own reading of the bound: refuses a bad one

    def check(configuration: Configuration, secrets: Secrets) -> tuple[bool, Any]:
        declared, recorder, missing = recording_state()
        if not declared:
            raise ChaosException("no impact is recorded: declare the control chaosali.impact.controls")
        if missing:
            raise ChaosException(missing)
        if recorder is None:
            return True, None  # not recording yet: nothing broke
        recording, measures = recorded(recorder)
        # a target not sampled yet, or refusing from the start before any fault began, is as the drill
        # found it (a first sample on its way, a rollout's new pods not yet behind their NodePort):
        # no budget of its is broken yet; the impact control's final judgement still fails it
        faulted = any(t is not None for t in (recording.get("fault_starts") or {}).values())
        measures["http"] = {name: target for name, target in measures["http"].items() if target["samples"]
                            and (faulted or target["availability"] or target["failing_at_start"])}
        [judged] = judge(measures, {limit: budget})
        return judged["met"], judged["measured"]

    return check, 0.25


def _probe(spec: dict, name: str) -> tuple[Check, float]:
    probe = spec.get("probe")
    if not isinstance(probe, dict) or "tolerance" not in probe:
        raise InvalidArgument('"probe" must be a Chaos Toolkit probe with a "tolerance", as in a steady-state hypothesis')
    try:
        ensure_activity_is_valid({"type": "probe", "name": name, **probe})
        ensure_hypothesis_tolerance_is_valid(probe["tolerance"])
    except (ChaosException, ValueError, TypeError) as error:  # chaoslib's own validation, which may raise either
        raise InvalidArgument(str(error)) from None

    def check(configuration: Configuration, secrets: Secrets) -> tuple[bool, Any]:
        value = run_activity({"type": "probe", "name": name, **probe}, configuration, secrets)
        return within_tolerance(probe["tolerance"], value, configuration, secrets), _short(value)

    return check, 1.0


# kind -> its builder: (the condition as declared, its name) -> (its check, its default interval)
KINDS: dict[str, Callable[[dict, str], tuple[Check, float]]] = {"limit": _limit, "probe": _probe}
_COMMON = {"name", "interval", "failures", "fail_closed"}
_FIELDS = {"limit": {"limit", "budget"}, "probe": {"probe"}}
_NUMBERS = ("budget", "interval", "failures")
_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")


def conditions(given: Any, configuration: Configuration = None, secrets: Secrets = None,
               declared: Any = None) -> list[Condition]:
    """The conditions as declared, each checked; an error names the condition and its problem.
    A value given as a configuration placeholder (``"${max_pods_lost}"``) is checked once
    ``configuration`` fills it in: without a configuration (``chaos validate``), as its default 1.
    ``declared``: the same list before chaoslib substituted it (a control's arguments arrive
    substituted), which is what each condition keeps for the journal; without it, ``given`` with
    every secret value masked: nothing a secret filled in reaches the journal."""
    if given is None:
        return []
    if not isinstance(given, list):
        raise InvalidArgument('conditions must be a list of objects, e.g. [{"name": "web stays up", '
                              '"limit": "min_availability", "budget": 90}]')
    if not (isinstance(declared, list) and len(declared) == len(given)):
        declared = [_masked(spec, secrets) for spec in given]
    built = [_condition(_filled(spec, configuration, secrets), journal, index)
             for index, (spec, journal) in enumerate(zip(given, declared))]
    names = [condition.name for condition in built]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"stop conditions need distinct names: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return built


def _filled(spec: Any, configuration: Configuration, secrets: Secrets) -> Any:
    """The condition with its placeholders filled in by the configuration, or by 1 when there is none."""
    if not isinstance(spec, dict):
        return spec
    if configuration is not None:
        return substitute(spec, configuration, secrets)
    return {key: 1 if key in _NUMBERS and _PLACEHOLDER.fullmatch(str(value)) else value for key, value in spec.items()}


def _masked(declared: Any, secrets: Secrets) -> Any:
    """``declared`` with every secret value in it masked (``***``)."""
    values = sorted({value for scope in (secrets or {}).values() if isinstance(scope, dict)
                     for value in scope.values() if isinstance(value, str) and value}, key=len, reverse=True)

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mask(item) for item in value]
        if isinstance(value, str):
            for secret in values:
                value = value.replace(secret, "***")
        return value

    return mask(declared) if values else declared


def _condition(spec: Any, declared: Any, index: int) -> Condition:
    label = f"stop condition #{index + 1}"
    if not isinstance(spec, dict):
        raise InvalidArgument(f"{label} must be an object with a name and one of {', '.join(KINDS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"{label} needs a name")
    label = f"stop condition {name!r}"
    kinds = [kind for kind in KINDS if kind in spec]
    if len(kinds) != 1:
        raise InvalidArgument(f"{label} must have exactly one of {', '.join(repr(k) for k in KINDS)}")
    kind = kinds[0]
    unknown = sorted(set(spec) - _COMMON - _FIELDS[kind])
    try:
        if unknown:
            raise InvalidArgument(f"unknown field(s) {', '.join(unknown)} (a {kind} condition takes "
                                  f"{', '.join(sorted(_COMMON | _FIELDS[kind]))})")
        check, interval = KINDS[kind](spec, name)
        interval = args.number(spec.get("interval", interval), "interval", MIN_INTERVAL, 3600)
        failures = args.whole(spec.get("failures", 3), "failures", 1, 1000)
        fail_closed = args.boolean(spec.get("fail_closed", True), "fail_closed")
    except InvalidArgument as error:
        raise InvalidArgument(f"{label}: {error}") from None
    return Condition(name, kind, check, interval, failures, fail_closed, declared)


def _summary(kind: str, spec: dict) -> str:
    if kind == "limit":
        return f"{spec['limit']} {spec['budget']}"
    provider = spec["probe"].get("provider") if isinstance(spec["probe"], dict) else None
    if not isinstance(provider, dict):
        return "probe"
    return f"probe {provider.get('func') or provider.get('url') or provider.get('path')}"


def _short(value: Any) -> Any:
    """A probe's value as the journal keeps it: whole when small, cut when large."""
    text = json.dumps(value, default=str)
    return value if len(text) <= 400 else text[:400] + "…"
