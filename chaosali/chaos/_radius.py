"""The blast radius of a drill, checked before anything is injected: how many hosts it hits, what
share of the cluster's nodes, and whether it would hit every master at once.

The caps count every host of every chosen fault as hit at the same time, staggered faults too:
they overlap whenever a fault outlives the gap to the next one, and a cap must hold in the worst
case. Hosts are compared by address, so a literal target and a node found by a query are the same
host when they share an address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes import client

from chaosali.chaos._plan import Step
from chaosali.cluster.api import connect
from chaosali.cluster.nodes import master_hosts
from chaosali.core.args import percent as read_percent, whole
from chaosali.core.errors import InvalidArgument

__all__ = ["Caps"]

logger = logging.getLogger("chaostoolkit")

_REFUSED = "nothing was injected"


@dataclass(frozen=True)
class Caps:
    max_hosts: int | None
    max_node_percent: float | None
    allow_all_masters: bool

    @classmethod
    def of(cls, max_hosts: Any, max_node_percent: Any, allow_all_masters: Any) -> Caps:
        """The caps, checked like every other argument: before the cluster or a host is asked."""
        if not isinstance(allow_all_masters, bool):
            raise InvalidArgument(f"allow_all_masters {allow_all_masters!r} must be true or false")
        percent = None if max_node_percent is None else read_percent(max_node_percent, "max_node_percent", zero=True)
        if percent == 0:
            raise InvalidArgument("max_node_percent 0 allows no fault on any node; give a percent above 0")
        return cls(
            None if max_hosts is None else whole(max_hosts, "max_hosts", 1, 1_000_000),
            percent,
            allow_all_masters,
        )

    def enforce(self, steps: list[Step], configuration: Configuration, secrets: Secrets) -> dict:
        """Refuse the drill if it exceeds a cap; otherwise tell what it hits, for the journal."""
        hosts: dict[str, str] = {}  # address -> how the journal names the host
        for step in steps:
            hosts.update({h.address: str(h) for h in step.hosts})
        radius: dict[str, Any] = {"hosts": sorted(hosts.values())}
        if self.max_hosts is not None:
            radius["max_hosts"] = self.max_hosts
            if len(hosts) > self.max_hosts:
                raise ActivityFailed(
                    f"blast radius: the chosen faults would hit {len(hosts)} hosts at once "
                    f"({', '.join(radius['hosts'])}), more than max_hosts {self.max_hosts}; {_REFUSED}"
                )
        if self.max_node_percent is not None:
            radius["nodes"] = self._nodes(set(hosts), self.max_node_percent, configuration, secrets)
        radius["masters"] = self._masters(set(hosts), configuration, secrets)
        return radius

    def _nodes(self, addresses: set[str], most: float, configuration: Configuration, secrets: Secrets) -> dict:
        nodes = _node_addresses(configuration, secrets)
        hit = sorted(name for name, known in nodes.items() if known & addresses)
        percent = 100 * len(hit) / len(nodes)
        if percent > most:
            raise ActivityFailed(
                f"blast radius: the chosen faults would hit {len(hit)} of the cluster's {len(nodes)} nodes "
                f"({percent:.1f} %: {', '.join(hit)}), more than max_node_percent {most:g}; "
                f"{_REFUSED}"
            )
        return {"hit": hit, "of": len(nodes), "percent": round(percent, 1), "max_node_percent": most}

    def _masters(self, addresses: set[str], configuration: Configuration, secrets: Secrets) -> dict:
        if self.allow_all_masters:
            return {"checked": False, "why": "allow_all_masters is true"}
        try:
            masters = master_hosts(configuration, secrets)
        except ActivityFailed as error:
            # plain hosts without a reachable cluster, or a managed control plane that no SSH fault
            # can reach
            logger.warning(
                "chaosali: cannot tell the cluster's masters (%s); the drill goes on without the "
                "never-all-masters check", error,
            )
            return {"checked": False, "why": f"masters unknown: {error}"}
        hit = [m["node"] for m in masters if _master_addresses(m) & addresses]
        if len(hit) == len(masters):
            raise ActivityFailed(
                f"blast radius: the chosen faults would hit every master at once ({len(hit)} of {len(masters)}: "
                f"{', '.join(hit)}); set allow_all_masters to true to allow that; {_REFUSED}"
            )
        return {"checked": True, "hit": hit, "of": [m["node"] for m in masters]}


def _master_addresses(master: dict) -> set[str]:
    return {*master["addresses"].values(), master["ssh_address"]}


def _node_addresses(configuration: Configuration, secrets: Secrets) -> dict[str, set[str]]:
    """Every node with every address it may be reached at. One list per drill: the share needs
    the total, and a drill is rare enough for one list of all nodes."""
    ssh_map = (configuration or {}).get("node_ssh_addresses") or {}
    try:
        with connect(configuration, secrets) as cluster:
            nodes = cluster.call("list the nodes", client.CoreV1Api(cluster.client).list_node).items
    except ActivityFailed as error:  # no kubeconfig, or an API that refused or did not answer
        raise ActivityFailed(f"max_node_percent needs the cluster's nodes, but: {error}; {_REFUSED}") from None
    if not nodes:
        raise ActivityFailed(f"max_node_percent: the cluster has no node to take a share of; {_REFUSED}")
    return {
        n.metadata.name: {a.address for a in n.status.addresses or []}
        | ({ssh_map[n.metadata.name]} if n.metadata.name in ssh_map else set())
        for n in nodes
    }
