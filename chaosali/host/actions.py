"""Host faults over SSH. Each fault heals by itself after ``duration`` seconds, even if the
controller dies, and each has a rollback that heals it at once.

``targets`` is a list of hosts (``"address"``, ``"user@address:port"`` or objects), or a query
resolved against the cluster at run time: ``{"masters": ["kube-apiserver", "etcd"]}``,
``{"nodes": "label selector"}`` or ``{"pods": {"namespace": ..., "label_selector": ...}}``,
optionally sampled with ``count`` or ``percent`` and a ``seed``."""

import datetime as dt
import shlex
from typing import Any, Union

from chaoslib.types import Configuration, Secrets

from chaosali.host import faults
from chaosali.host.network import (
    bandwidth_fault,
    check_fault_ids,
    delay_fault,
    drop_fault,
)
from chaosali.host.ssh import SSHSettings
from chaosali.host.system import (
    kubelet_fault,
    service_command,
    service_fault,
    stress_cpu_fault,
    stress_memory_fault,
)
from chaosali.host.targets import resolve

# The actions whose faults stay on a host until restored, with the kind their markers carry
# (restores sweep by kind). One-shot actions (restart_service, reboot_host) leave no fault.
FAULT_KINDS = {
    "cut_network": "network-cut",
    "lose_packets": "network-loss",
    "limit_bandwidth": "network-bandwidth",
    "delay_network": "network-delay",
    "reconfigure_kubelet": "kubelet-config",
    "stop_service": "service-stop",
    "stress_cpu": "stress-cpu",
    "stress_memory": "stress-memory",
}

__all__ = [
    "cut_network",
    "lose_packets",
    "limit_bandwidth",
    "delay_network",
    "restore_network",
    "reconfigure_kubelet",
    "restore_kubelet",
    "stop_service",
    "restart_service",
    "reboot_host",
    "stress_cpu",
    "stress_memory",
    "restore_faults",
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
    fault = drop_fault(FAULT_KINDS["cut_network"], duration, 100, peers, ports, direction, keep_ssh)
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
    fault = drop_fault(FAULT_KINDS["lose_packets"], duration, percent, peers, ports, direction, keep_ssh)
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
    return _restore(targets, fault_id, "network-", configuration, secrets)


def reconfigure_kubelet(
    targets: Union[list, dict],
    apiserver: str = None,
    config_changes: dict = None,
    duration: float = 120,
    kubeconfig_path: str = "/etc/kubernetes/kubelet.conf",
    config_path: str = "/var/lib/kubelet/config.yaml",
    service: str = "kubelet",
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Misconfigure the kubelet of the target nodes and restart it: point its
    kubeconfig (`kubeconfig_path`) at another `apiserver` URL, or change
    top-level keys of its `config_path` (`config_changes`). The original file
    is backed up on the host; after `duration` seconds the host puts it back
    and restarts the kubelet by itself. The restart uses configuration
    `service_command` (default "systemctl {action} {service}").
    """
    fault = kubelet_fault(duration, configuration, apiserver, config_changes, kubeconfig_path, config_path, service)
    return _inject(targets, fault, all_or_nothing, configuration, secrets)


def restore_kubelet(
    targets: Union[list, dict],
    fault_id: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Put the kubelet configuration of the target nodes back at once and restart
    the kubelet: the faults with `fault_id`, or all kubelet faults. Safe to call
    twice, or when nothing was injected.
    """
    return _restore(targets, fault_id, "kubelet-", configuration, secrets)


def stop_service(
    targets: Union[list, dict],
    service: str,
    duration: float = 60,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Stop `service` on the target hosts; each host starts it again by itself
    after `duration` seconds (or at once with `restore_faults`). Uses
    configuration `service_command` (default "systemctl {action} {service}").
    """
    return _inject(targets, service_fault(duration, configuration, service), all_or_nothing, configuration, secrets)


def restart_service(
    targets: Union[list, dict],
    service: str,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Restart `service` on the target hosts now (configuration `service_command`,
    default "systemctl {action} {service}"). Nothing to restore.
    """
    command = service_command(configuration, "restart", service)
    return _once(targets, command, f"restart {service}", configuration, secrets)


def reboot_host(
    targets: Union[list, dict],
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Reboot the target hosts with configuration `reboot_command` (default
    "systemctl reboot"), one second after the SSH command returned. Nothing
    to restore: the host comes back with its boot configuration.
    """
    command = (configuration or {}).get("reboot_command", "systemctl reboot")
    detached = f"nohup setsid sh -c {shlex.quote('sleep 1; ' + command)} </dev/null >/dev/null 2>&1 &"
    return _once(targets, detached, "reboot", configuration, secrets)


def stress_cpu(
    targets: Union[list, dict],
    duration: float = 60,
    workers: int = 0,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Keep `workers` CPUs of the target hosts busy (0: every CPU) for `duration`
    seconds, with stress-ng where it is installed and shell busy loops
    otherwise. The load ends by itself; `restore_faults` ends it at once.
    """
    return _inject(targets, stress_cpu_fault(duration, workers), all_or_nothing, configuration, secrets)


def stress_memory(
    targets: Union[list, dict],
    megabytes: int,
    duration: float = 60,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Hold `megabytes` of memory on the target hosts for `duration` seconds
    (stress-ng, or a plain fallback). Ends by itself; `restore_faults` ends it
    at once.
    """
    return _inject(targets, stress_memory_fault(duration, megabytes), all_or_nothing, configuration, secrets)


def restore_faults(
    targets: Union[list, dict],
    fault_id: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Restore every chaosali fault on the target hosts at once (network,
    kubelet, services, load), or only those with `fault_id` (one id or a list).
    Safe to call twice, or when nothing was injected.
    """
    return _restore(targets, fault_id, "", configuration, secrets)


def _restore(
    targets: Union[list, dict], fault_id: Any, kind: str, configuration: Configuration, secrets: Secrets
) -> dict:
    ids = check_fault_ids(fault_id)
    hosts, _ = resolve(targets, configuration, secrets, sample=False)
    return faults.restore(hosts, SSHSettings.from_chaos(configuration, secrets), ids, kind)


def _once(targets: Union[list, dict], command: str, what: str, configuration: Configuration, secrets: Secrets) -> dict:
    hosts, selection = resolve(targets, configuration, secrets)
    results = faults.run_everywhere(hosts, command, SSHSettings.from_chaos(configuration, secrets), what)
    output = {"action": what, "at": dt.datetime.now(dt.timezone.utc).isoformat(),
              "hosts": [{"host": str(h), "address": h.address, "report": results[h].splitlines()} for h in hosts]}
    return {**output, "targets": selection} if selection else output


def _inject(
    targets: list, fault: faults.Fault, all_or_nothing: bool, configuration: Configuration, secrets: Secrets
) -> dict:
    hosts, selection = resolve(targets, configuration, secrets)
    output = faults.inject(hosts, fault, SSHSettings.from_chaos(configuration, secrets), all_or_nothing)
    return {**output, "targets": selection} if selection else output
