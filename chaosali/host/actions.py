"""Host faults over SSH. Each fault heals by itself after ``duration`` seconds, even if the
controller dies, and each has a rollback that heals it at once.

``targets`` is a list of hosts (``"address"``, ``"user@address:port"`` or objects), or a query
resolved against the cluster at run time: ``{"masters": ["kube-apiserver", "etcd"]}``,
``{"nodes": "label selector"}`` or ``{"pods": {"namespace": ..., "label_selector": ...}}``,
optionally sampled with ``count`` or ``percent`` and a ``seed``."""

from typing import Union

from chaoslib.types import Configuration, Secrets

from chaosali.host import faults
from chaosali.host.network import (
    bandwidth_fault,
    check_fault_ids,
    delay_fault,
    drop_fault,
)
from chaosali.host.ssh import SSHSettings
from chaosali.host.targets import resolve

__all__ = [
    "cut_network",
    "lose_packets",
    "limit_bandwidth",
    "delay_network",
    "restore_network",
]


def cut_network(
    targets: Union[list, dict],
    duration: float = 60,
    peers: list = None,
    ports: list = None,
    direction: str = "both",
    keep_ssh: bool = True,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Cut the network of the target hosts for `duration` seconds.

    All traffic except loopback is dropped, or only traffic to/from `peers`
    (addresses or CIDRs) and/or `ports`, in `direction` "both", "ingress" or
    "egress". With `keep_ssh` (the default) the controller's own SSH path stays
    open so that the rollback can reach the host. The host heals by itself
    after `duration`. The output records the fault id, the hosts and the rules.
    """
    fault = drop_fault("network-cut", duration, 100, peers, ports, direction, keep_ssh)
    return _inject(targets, fault, all_or_nothing, configuration, secrets)


def lose_packets(
    targets: Union[list, dict],
    percent: float,
    duration: float = 60,
    peers: list = None,
    ports: list = None,
    direction: str = "both",
    keep_ssh: bool = True,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Drop `percent` % of the target hosts' packets at random for `duration`
    seconds (iptables statistic match), optionally only to/from `peers` and
    `ports`. Heals by itself after `duration`.
    """
    fault = drop_fault("network-loss", duration, percent, peers, ports, direction, keep_ssh)
    return _inject(targets, fault, all_or_nothing, configuration, secrets)


def limit_bandwidth(
    targets: Union[list, dict],
    rate: str = "1mbit",
    duration: float = 60,
    burst: str = "32kb",
    latency: str = "400ms",
    interface: str = None,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Limit the egress bandwidth of the target hosts to `rate` (tc tbf) on
    `interface` (default: the interface of the default route) for `duration`
    seconds. Heals by itself after `duration`.
    """
    fault = bandwidth_fault(duration, rate, burst, latency, interface)
    return _inject(targets, fault, all_or_nothing, configuration, secrets)


def delay_network(
    targets: Union[list, dict],
    delay: str = "100ms",
    duration: float = 60,
    jitter: str = None,
    interface: str = None,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Delay the egress packets of the target hosts by `delay` (and `jitter`)
    with tc netem for `duration` seconds. Fails with a clear error on hosts
    whose kernel has no sch_netem module.
    """
    fault = delay_fault(duration, delay, jitter, interface)
    return _inject(targets, fault, all_or_nothing, configuration, secrets)


def restore_network(
    targets: Union[list, dict],
    fault_id: str | list = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Remove chaosali's network faults from the target hosts at once: the
    faults with the given `fault_id` (one id or a list), or all of them. Safe to call twice,
    or when nothing was injected. Returns the fault ids restored per host.
    """
    ids = check_fault_ids(fault_id)
    hosts, _ = resolve(targets, configuration, secrets, sample=False)
    return faults.restore(hosts, SSHSettings.from_chaos(configuration, secrets), ids, "network-")


def _inject(
    targets: list, fault: faults.Fault, all_or_nothing: bool, configuration: Configuration, secrets: Secrets
) -> dict:
    hosts, selection = resolve(targets, configuration, secrets)
    output = faults.inject(hosts, fault, SSHSettings.from_chaos(configuration, secrets), all_or_nothing)
    return {**output, "targets": selection} if selection else output
