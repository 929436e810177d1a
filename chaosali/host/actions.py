"""Host faults over SSH. Each fault heals by itself after ``duration`` seconds, even if the
controller dies, and each has a rollback that heals it at once. The faults themselves are built
by the fault catalogue (``chaosali.host.catalogue``); ``targets`` is described in
``chaosali.host.targets``."""

import datetime as dt
import shlex
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosali.core.args import boolean
from chaosali.host import faults
from chaosali.host.catalogue import fault_kind
from chaosali.host.network import check_fault_ids
from chaosali.host.ssh import SSHSettings
from chaosali.host.system import service_command
from chaosali.host.targets import resolve_targets, takes_targets

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


@takes_targets
def cut_network(
    targets: list,
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
    return _inject("cut_network", targets, all_or_nothing, configuration, secrets, duration=duration,
                   peers=peers, ports=ports, direction=direction, keep_ssh=keep_ssh)


@takes_targets
def lose_packets(
    targets: list,
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
    return _inject("lose_packets", targets, all_or_nothing, configuration, secrets, duration=duration,
                   percent=percent, peers=peers, ports=ports, direction=direction, keep_ssh=keep_ssh)


@takes_targets
def limit_bandwidth(
    targets: list,
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
    return _inject("limit_bandwidth", targets, all_or_nothing, configuration, secrets, duration=duration,
                   rate=rate, burst=burst, latency=latency, interface=interface)


@takes_targets
def delay_network(
    targets: list,
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
    return _inject("delay_network", targets, all_or_nothing, configuration, secrets, duration=duration,
                   delay=delay, jitter=jitter, interface=interface)


@takes_targets
def restore_network(
    targets: list,
    fault_id: list = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Remove chaosali's network faults from the target hosts at once: the
    faults with the given `fault_id` (one id or a list), or all of them. Safe to call twice,
    or when nothing was injected. Returns the fault ids restored per host.
    """
    return _restore_family(targets, fault_id, "network-", configuration, secrets)


@takes_targets
def reconfigure_kubelet(
    targets: list,
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
    return _inject("reconfigure_kubelet", targets, all_or_nothing, configuration, secrets, duration=duration,
                   configuration=configuration, apiserver=apiserver, config_changes=config_changes,
                   kubeconfig_path=kubeconfig_path, config_path=config_path, service=service)


@takes_targets
def restore_kubelet(
    targets: list,
    fault_id: list = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Put the kubelet configuration of the target nodes back at once and restart
    the kubelet: the faults with `fault_id` (one id or a list), or all kubelet
    faults. Safe to call twice, or when nothing was injected.
    """
    return _restore_family(targets, fault_id, "kubelet-", configuration, secrets)


@takes_targets
def stop_service(
    targets: list,
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
    return _inject("stop_service", targets, all_or_nothing, configuration, secrets, duration=duration,
                   configuration=configuration, service=service)


@takes_targets
def restart_service(
    targets: list,
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


@takes_targets
def reboot_host(
    targets: list,
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


@takes_targets
def stress_cpu(
    targets: list,
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
    return _inject("stress_cpu", targets, all_or_nothing, configuration, secrets, duration=duration, workers=workers)


@takes_targets
def stress_memory(
    targets: list,
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
    return _inject("stress_memory", targets, all_or_nothing, configuration, secrets, duration=duration,
                   megabytes=megabytes)


@takes_targets
def restore_faults(
    targets: list,
    fault_id: list = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Restore every chaosali fault on the target hosts at once (network,
    kubelet, services, load), or only those with `fault_id` (one id or a list).
    Safe to call twice, or when nothing was injected.
    """
    return _restore_family(targets, fault_id, "", configuration, secrets)


def _restore_family(
    targets: Any, fault_id: Any, kind_prefix: str, configuration: Configuration, secrets: Secrets
) -> dict:
    """Restore the faults of a family (kinds beginning with ``kind_prefix``) on the targets: those
    with ``fault_id``, or all of them."""
    ids = check_fault_ids(fault_id)
    settings = SSHSettings.from_chaos(configuration, secrets)
    hosts, _ = resolve_targets(targets, configuration, secrets, sample=False)
    return faults.restore(hosts, settings, ids, kind_prefix)


def _once(targets: Any, command: str, what: str, configuration: Configuration, secrets: Secrets) -> dict:
    settings = SSHSettings.from_chaos(configuration, secrets)
    hosts, selection = resolve_targets(targets, configuration, secrets)
    results = faults.run_everywhere(hosts, command, settings, what)
    output = {"action": what, "at": dt.datetime.now(dt.timezone.utc).isoformat(),
              "hosts": [{"host": str(h), "address": h.address, "report": results[h].splitlines()} for h in hosts]}
    return {**output, "targets": selection} if selection else output


def _inject(
    action: str, targets: Any, all_or_nothing: Any, configuration: Configuration, secrets: Secrets, /,
    **arguments: Any,
) -> dict:
    """Build the catalogue's fault of ``action`` (every argument checked before any host or
    cluster is asked), then inject it on the targets."""
    fault = fault_kind(action).build(**arguments)
    all_or_nothing = boolean(all_or_nothing, "all_or_nothing")
    settings = SSHSettings.from_chaos(configuration, secrets)
    hosts, selection = resolve_targets(targets, configuration, secrets)
    output = faults.inject(hosts, fault, settings, all_or_nothing)
    return {**output, "targets": selection} if selection else output
