"""kube-monkey probes: is it running, which workloads are its victims, how many of their pods it
deleted. They read the cluster only; a finding (not running, no victim) is an answer, not a failure.
"""

import logging
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosali.cluster import resources
from chaosali.core import evidence
from chaosali.core.args import dns_label, seconds
from chaosali.core.errors import InvalidArgument
from chaosali.core.waiting import wait_until
from chaosali.kubemonkey import manifests as km

__all__ = ["kube_monkey_running", "marked_victims", "victim_pods_deleted"]

logger = logging.getLogger("chaostoolkit")


def kube_monkey_running(
    namespace: str = "kube-monkey",
    timeout: float = 0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """
    Tell whether the kube-monkey that deploy_kube_monkey put in `namespace`
    has an available replica (its pod runs and is ready), waiting up to
    `timeout` seconds for it (default: answer at once). Not deployed, or not
    available in time, gives false (the reason is logged), so a tolerance can
    simply be true.
    """
    namespace = dns_label(namespace, "namespace")
    deadline = time.monotonic() + seconds(timeout, "timeout", zero=True)
    with resources.connect(configuration, secrets) as dyn:
        where = resources.locate(dyn, "Deployment", "apps/v1", namespace)
        available, found = wait_until(
            lambda: resources.get(dyn, where, km.selector(namespace))["items"],  # by its labels: only ours
            deadline, 1.0, lambda found: any((d.get("status") or {}).get("availableReplicas") for d in found))
    if not available:
        why = "has no available replica" if found else "is not deployed (deploy_kube_monkey)"
        logger.warning("kube-monkey in namespace %r %s", namespace, why)
    return available


def marked_victims(
    namespace: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list:
    """
    List the Deployments, StatefulSets and DaemonSets enrolled in kube-monkey
    (label kube-monkey/enabled=enabled) in `namespace`, or in all namespaces,
    with their settings as kube-monkey reads them: identifier, mtbf,
    kill_mode, kill_value, the number of running pods that carry the
    identifier (those kube-monkey can kill), and `template_lacks_identifier`,
    true when the pod template has no kube-monkey/identifier label (the
    frequent mistake: kube-monkey then finds no pod to kill). `problems` says,
    in kube-monkey's terms, whatever would stop it; `ok` is true when none.
    """
    if namespace is not None:
        namespace = dns_label(namespace, "namespace")
    with resources.connect(configuration, secrets) as dyn:
        return [victim.as_dict() for victim in km.victims(dyn, namespace)]


def victim_pods_deleted(
    since: str = None,
    namespace: str = None,
    name: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Count the pods of kube-monkey's victims (enrolled workloads in
    `namespace` or all namespaces, optionally only those named `name`)
    deleted since `since` (an ISO 8601 time; without an offset it is UTC, as
    in Chaos Toolkit journals). Default: since each victim was marked by
    mark_victims (its chaosali/kube-monkey-marked-at annotation).

    Counted by their replacements: pods that carry the victim's
    kube-monkey/identifier (the pods kube-monkey chooses from) and were
    created since then. Events are not used: kube-monkey emits none, and the
    API keeps events only for a while. So a rollout or a scale-up of a victim
    in that time counts too, and a deleted pod that its controller did not
    replace (yet) does not. Creation times have a resolution of one second:
    pods created within the second of `since` count.
    Returns the total (`deleted`) and, per victim, the replacement pods.
    """
    start = km.timestamp(since, "since").replace(microsecond=0) if since is not None else None
    if namespace is not None:
        namespace = dns_label(namespace, "namespace")
    with resources.connect(configuration, secrets) as dyn:
        found = km.victims(dyn, namespace, name)
    report: list[dict[str, Any]] = []
    for victim in found:
        baseline = start
        if baseline is None:
            if not victim.marked_at:
                raise InvalidArgument(
                    f"{victim.kind} {victim.namespace}/{victim.name} was not marked by mark_victims (no "
                    f"{km.MARKED_AT} annotation): give since"
                )
            baseline = km.timestamp(victim.marked_at, f"annotation {km.MARKED_AT}")
        replacements = sorted(
            pod["metadata"]["name"]
            for pod in victim.pods
            if km.timestamp(pod["metadata"]["creationTimestamp"], "creationTimestamp") >= baseline
        )
        report.append({
            "kind": victim.kind,
            "namespace": victim.namespace,
            "name": victim.name,
            "identifier": victim.identifier,
            "since": km.iso(baseline),
            "deleted": len(replacements),
            "replacements": replacements,
        })
    deleted = sum(entry["deleted"] for entry in report)
    evidence.observed("victim pods deleted by kube-monkey", deleted > 0,
                      "; ".join(f"{v['kind']} {v['namespace']}/{v['name']}: {v['deleted']} since {v['since']}"
                                for v in report) or "no victim marked")
    return {"deleted": deleted, "victims": report}
