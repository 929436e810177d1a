"""What a host activity acts on: literal hosts, or a query resolved against the cluster at run time."""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any, Callable, TypeVar

from chaoslib.types import Configuration, Secrets

from chaosali.core import memory
from chaosali.host.ssh import Host, parse_hosts

__all__ = ["resolve_targets", "takes_targets"]

logger = logging.getLogger("chaostoolkit")
Activity = TypeVar("Activity", bound=Callable[..., Any])

_QUERY_KEYS = ("masters", "nodes", "pods")
_SAMPLING_KEYS = ("count", "percent", "seed")
# Discovery renders only plain types, so `targets` is declared a list; every activity says so.
_TARGETS = """
`targets` is a list of hosts ("address", "user@address:port", or
{"address", "port", "user", "name"}), or a query object resolved against the
cluster at run time: {"masters": ["kube-apiserver", "etcd"]},
{"nodes": "label selector"} or {"pods": {"namespace", "label_selector"}},
optionally sampled with "count" or "percent" and a "seed".
"""


def documented(text: str) -> Callable[[Activity], Activity]:
    """A decorator that appends ``text`` to an activity's documentation: the one way to add to a
    docstring that ``chaos discover`` shows."""

    def append(activity: Activity) -> Activity:
        activity.__doc__ = f"{inspect.cleandoc(activity.__doc__ or '')}\n\n{inspect.cleandoc(text)}\n"
        return activity

    return append


# what every activity with ``targets`` says they may be
takes_targets = documented(_TARGETS)


def resolve_targets(
    targets: Any, configuration: Configuration, secrets: Secrets, sample: bool = True
) -> tuple[list[Host], dict | None]:
    """Hosts to act on, and how they were chosen (None for literal hosts).

    For a rollback (``sample=False``) a query gives the hosts it chose earlier in this run (a
    master netcut cuts the very API that answered the query); never run, it gives every host it
    could choose (restoring where nothing was injected is harmless).
    """
    if not (isinstance(targets, dict) and any(key in targets for key in _QUERY_KEYS)):
        return parse_hosts(targets), None
    from chaosali.cluster.nodes import select_hosts  # Kubernetes only for drills that ask for it

    chosen = memory.section("hosts chosen by target queries")
    key = json.dumps([targets, (configuration or {}).get("kubeconfig_path")], sort_keys=True, default=str)
    if not sample and key in chosen:
        selection = chosen[key]
        logger.info("chaosali: acting on the hosts this query chose earlier in the run: %s", selection["why"])
    else:
        query = targets if sample else {k: v for k, v in targets.items() if k not in _SAMPLING_KEYS}
        selection = {"query": targets, **select_hosts(query, configuration, secrets)}
        if sample:
            chosen[key] = selection
    return parse_hosts(selection["hosts"]), selection
