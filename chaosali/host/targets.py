"""What a host action acts on: literal hosts, or a query resolved against the cluster at run time."""

from __future__ import annotations

import json
import logging
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosali.host.ssh import Host, parse_hosts

__all__ = ["resolve"]

logger = logging.getLogger("chaostoolkit")

_QUERY_KEYS = ("masters", "nodes", "pods")
_SAMPLING_KEYS = ("count", "percent", "seed")
# Hosts each query chose in this process (a `chaos run`), for its rollback: a master netcut
# cuts the very API the query was answered by.
_chosen: dict[str, dict] = {}


def resolve(
    targets: Any, configuration: Configuration, secrets: Secrets, sample: bool = True
) -> tuple[list[Host], dict | None]:
    """Hosts to act on, and how they were chosen (None for literal hosts).

    For a rollback (``sample=False``) a query gives the hosts it chose earlier in this run;
    never run, it gives every host it could choose (restoring where nothing was injected is
    harmless).
    """
    if not (isinstance(targets, dict) and any(key in targets for key in _QUERY_KEYS)):
        return parse_hosts(targets), None
    from chaosali.cluster.nodes import select_hosts  # Kubernetes only for drills that ask for it

    key = json.dumps([targets, (configuration or {}).get("kubeconfig_path")], sort_keys=True, default=str)
    if not sample and key in _chosen:
        selection = _chosen[key]
        logger.info("chaosali: acting on the hosts this query chose earlier in the run: %s", selection["why"])
    else:
        query = targets if sample else {k: v for k, v in targets.items() if k not in _SAMPLING_KEYS}
        selection = {"query": targets, **select_hosts(query, configuration, secrets)}
        if sample:
            _chosen[key] = selection
    return parse_hosts(selection["hosts"]), selection
