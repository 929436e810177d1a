"""Judging a drill by what it did: the impact recorded so far, against limits."""

from __future__ import annotations

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.impact.controls import fault_end, recording_state
from chaosali.impact.measures import judge, measure

__all__ = ["impact_within"]


def impact_within(
    max_pods_lost: int = None,
    max_unavailable_seconds: float = None,
    max_recovery_seconds: float = None,
    min_availability: float = None,
    max_api_down_seconds: float = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Judge the impact recorded so far in this run (the `impact` control of
    chaosali.impact.controls must be declared; before the method nothing is
    recorded yet, so the steady state's first check passes) against the limits given:
    `max_pods_lost` pods deleted or evicted in scope, `max_unavailable_seconds`
    below desired ready replicas for any workload, `max_recovery_seconds`
    after the fault ended for workloads and nodes, `min_availability` per
    cent of successful samples per HTTP target, `max_api_down_seconds`.
    Returns {"within": bool, "impact": "none"|"partial"|"core",
    "checks": [{"limit", "bound", "measured", "met"}], "pods_lost": n}.
    Tolerance: {"type": "jsonpath", "path": "$.within", "expect": true}.
    """
    declared, recorder, missing = recording_state()
    if not declared:
        raise ActivityFailed(
            "no impact is recorded in this run: declare the control chaosali.impact.controls "
            "in the experiment's controls"
        )
    if missing:
        raise ActivityFailed(f"{missing}: the impact cannot be judged")
    # before the method (the steady state's first check) nothing is recorded yet: nothing broke
    recording = recorder.recording() if recorder else {}
    measures = measure(recording, fault_end(recording))
    checks = judge(measures, {
        "max_pods_lost": max_pods_lost,
        "max_unavailable_seconds": max_unavailable_seconds,
        "max_recovery_seconds": max_recovery_seconds,
        "min_availability": min_availability,
        "max_api_down_seconds": max_api_down_seconds,
    })
    lost = [pod for workload in measures["workloads"].values() for pod in workload["lost"]]
    return {
        "within": all(check["met"] for check in checks),
        "impact": measures["impact"],
        "checks": checks,
        "pods_lost": len(lost),
        "lost": [{k: pod[k] for k in ("pod", "node", "reason", "replaced_after_seconds")} for pod in lost],
    }
