"""Judging a drill by what it did, in the steady state's last check (chaoslib judges no tolerance
in the method): whether its faults took effect (``faults_observed``), and the impact recorded so
far against the FMEA's limits (``impact_within``). A shipped experiment ends with both, so that
``chaos run``'s own verdict carries the two judgements a report shows."""

from __future__ import annotations

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.core import evidence, ledger
from chaosali.impact.controls import judge_again_at_the_end, recorded, recording_state
from chaosali.impact.measures import judge

__all__ = ["faults_observed", "impact_within"]


def faults_observed(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """
    Tell whether every fault injected so far in this run is proven to have
    taken effect: something saw it (an evidence probe such as
    `network_effect`, `wait_for_reboot` or `load_observed`, the fault's own
    measurement such as the pods a drain evicted, a watch that saw the API
    or nodes go down, or the impact recording), and no effect a probe
    expected was missed. Returns `all_seen` (true while nothing was injected
    yet: the steady state's first check), `proven` (null before any fault),
    the `faults`, the `evidence` and, when not proven, `why`.
    Tolerance: {"type": "jsonpath", "path": "$.all_seen", "expect": true}.
    """
    judged = evidence.judgement()
    return {"all_seen": judged["proven"] is not False, **judged}


def impact_within(
    max_pods_lost: int = None,
    max_unavailable_seconds: float = None,
    max_recovery_seconds: float = None,
    min_availability: float = None,
    max_failure_streak: int = None,
    max_api_down_seconds: float = None,
    max_impact: str = None,
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
    cent of successful samples per HTTP target, `max_failure_streak` failed
    HTTP samples in a row per target, `max_api_down_seconds`, and
    `max_impact` ("none", "partial" or "core": the most the FMEA expects; a
    lower impact is met, and reported as lower than expected). A fault of
    the run that did not go in (wholly or on some targets) is a check not
    met: its impact would say nothing of the system. The control
    judges the same limits again on the whole recording when the run ends
    (after the rollbacks and the settle time): impact that came after this
    check still deviates the run, and the journal says which limit and why.
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
    _, measures = recorded(recorder)
    limits = {
        "max_pods_lost": max_pods_lost,
        "max_unavailable_seconds": max_unavailable_seconds,
        "max_recovery_seconds": max_recovery_seconds,
        "min_availability": min_availability,
        "max_failure_streak": max_failure_streak,
        "max_api_down_seconds": max_api_down_seconds,
    }
    checks = judge(measures, limits, max_impact)
    judge_again_at_the_end(limits, max_impact)
    failed = [fault.summary() for fault in ledger.faults() if fault.not_injected]
    if failed:  # no impact of a fault that did not go in says anything of the system
        checks.insert(0, {"limit": "faults injected", "bound": "every fault", "measured": "; ".join(failed),
                          "met": False, "means": "a fault that did not go in leaves the impact unjudged"})
    lost = [pod for workload in measures["workloads"].values() for pod in workload["lost"]]
    return {
        "within": all(check["met"] for check in checks),
        "impact": measures["impact"],
        "checks": checks,
        "pods_lost": len(lost),
        "lost": [{k: pod[k] for k in ("pod", "node", "reason", "replaced_after_seconds")} for pod in lost],
    }
