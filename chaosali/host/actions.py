"""Host faults over SSH. Each fault heals by itself after ``duration`` seconds, even if the
controller dies, and each has a rollback that heals it at once. The faults themselves are built
by the fault catalogue (``chaosali.host.catalogue``); ``targets`` is described in
``chaosali.host.targets``."""

import datetime as dt
import shlex
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosali.core import ledger
from chaosali.core.args import boolean, seconds, setting
from chaosali.core.markers import check_fault_ids
from chaosali.host import disk, evidence, faults
from chaosali.host import process as process_faults
from chaosali.host.catalogue import CATALOGUE, fault_kind
from chaosali.host.ssh import Host, SSHSettings
from chaosali.host.system import service_command
from chaosali.host.targets import documented, resolve_targets, takes_targets

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
    "kill_process",
    "pause_process",
    "restore_process",
    "fill_disk",
    "restore_disk",
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
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Cut the network of the target hosts for `duration` seconds.

    All traffic except loopback is dropped (what the host forwards through
    its default route's interface too: its containers' and pods'), or only
    traffic to/from `peers` (addresses or CIDRs, or a cluster query such as
    {"masters": ["etcd"]} for the hosts it finds) and/or `ports` (UDP and
    TCP alike), in
    `direction` "both", "ingress" or "egress". With `keep_ssh` (the
    default) the controller's own SSH path stays open so that the rollback
    can reach the host. The host heals by itself
    after `duration`. The output records the fault id, the hosts and the rules.
    """
    return _inject("cut_network", targets, all_or_nothing, configuration, secrets,
                   start_together=start_together, duration=duration,
                   peers=_peer_addresses(peers, configuration, secrets), ports=ports, direction=direction,
                   keep_ssh=keep_ssh)


@takes_targets
def lose_packets(
    targets: list,
    percent: float,
    duration: float = 60,
    peers: list = None,
    ports: list = None,
    direction: str = "both",
    keep_ssh: bool = True,
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Drop `percent` % of the target hosts' packets at random for `duration`
    seconds (iptables statistic match), optionally only to/from `peers` and
    `ports`. Heals by itself after `duration`.
    """
    return _inject("lose_packets", targets, all_or_nothing, configuration, secrets,
                   start_together=start_together, duration=duration,
                   percent=percent, peers=_peer_addresses(peers, configuration, secrets), ports=ports,
                   direction=direction, keep_ssh=keep_ssh)


@takes_targets
def limit_bandwidth(
    targets: list,
    rate: str = "1mbit",
    duration: float = 60,
    burst: str = "32kb",
    latency: str = "400ms",
    interface: str = None,
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Limit the egress bandwidth of the target hosts to `rate` (tc tbf) on
    `interface` (default: the interface of the default route) for `duration`
    seconds. Heals by itself after `duration`.
    """
    return _inject("limit_bandwidth", targets, all_or_nothing, configuration, secrets,
                   start_together=start_together, duration=duration,
                   rate=rate, burst=burst, latency=latency, interface=interface)


@takes_targets
def delay_network(
    targets: list,
    delay: str = "100ms",
    duration: float = 60,
    jitter: str = None,
    interface: str = None,
    mechanism: str = "auto",
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Delay the egress packets of the target hosts on `interface` (default:
    the interface of the default route; what the host forwards too: its
    pods') by `delay` (and `jitter`) for `duration` seconds. `mechanism`
    "auto" uses tc netem where the kernel has sch_netem, else the NFQUEUE
    delayer: iptables rules in the fault's own chain send the packets to a
    small program on the host (run by configuration `delay_python`,
    default "python3", which needs the fnfqueue package) that holds each
    one for the delay; "netem" or "nfqueue" insist on one. The host heals
    by itself after `duration`; the output's report says which mechanism
    held the packets (`chaosali check` says which a host would use).
    """
    return _inject("delay_network", targets, all_or_nothing, configuration, secrets,
                   start_together=start_together, duration=duration, configuration=configuration,
                   delay=delay, jitter=jitter, interface=interface, mechanism=mechanism)


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
    start_together: bool = False,
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
    return _inject("reconfigure_kubelet", targets, all_or_nothing, configuration, secrets,
                   start_together=start_together, duration=duration,
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
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Stop `service` on the target hosts; each host starts it again by itself
    after `duration` seconds (or at once with `restore_faults`). Uses
    configuration `service_command` (default "systemctl {action} {service}").
    """
    return _inject("stop_service", targets, all_or_nothing, configuration, secrets,
                   start_together=start_together, duration=duration,
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
    return _once(targets, command, f"restart {service}", configuration, secrets)[0]


@takes_targets
def reboot_host(
    targets: list,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Reboot the target hosts with configuration `reboot_command` (default
    "systemctl reboot"), one second after the SSH command returned. Nothing
    to restore: the host comes back with its boot configuration. Each host's
    boot identity (`boot_before`: the kernel's boot id and PID 1's start
    time) is read first and kept for `wait_for_reboot`, which proves the
    reboot.
    """
    command = (configuration or {}).get("reboot_command", "systemctl reboot")
    detached = f"nohup setsid sh -c {shlex.quote('sleep 1; ' + command)} </dev/null >/dev/null 2>&1 &"
    output, results = _once(targets, f"{evidence.BOOT_IDENTITY}\n{detached}", "reboot", configuration, secrets)
    evidence.remember_boots({host: out.strip() for host, out in results.items()})
    for entry in output["hosts"]:
        entry["boot_before"] = entry.pop("report")[0]
    return output


@takes_targets
def stress_cpu(
    targets: list,
    duration: float = 60,
    workers: int = 0,
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Keep `workers` CPUs of the target hosts busy (0: every CPU) for `duration`
    seconds, with stress-ng where it is installed and shell busy loops
    otherwise. The load ends by itself; `restore_faults` ends it at once.
    The host samples what it carried every second (see `load_observed`).
    """
    output = _inject("stress_cpu", targets, all_or_nothing, configuration, secrets,
                     start_together=start_together, duration=duration, workers=workers)
    evidence.remember_loads(output)
    return output


@takes_targets
def stress_memory(
    targets: list,
    megabytes: int,
    duration: float = 60,
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Hold `megabytes` of memory on the target hosts for `duration` seconds
    (stress-ng, or a plain fallback). Ends by itself; `restore_faults` ends it
    at once. The host samples what it carried every second (see `load_observed`).
    """
    output = _inject("stress_memory", targets, all_or_nothing, configuration, secrets,
                     start_together=start_together, duration=duration,
                     megabytes=megabytes)
    evidence.remember_loads(output)
    return output


@takes_targets
def kill_process(
    targets: list,
    process: str = None,
    pid_file: str = None,
    unit: str = None,
    signal: str = "SIGKILL",
    allow_critical: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Send `signal` (default SIGKILL) once to a process of the target hosts,
    found by one of: `process`, its name (argv[0] or the executable, every
    process of that name), `pid_file`, or a systemd `unit` (its main PID).
    A crash drill: nothing to restore, whatever supervises the process brings
    it back. PID 1, the processes running the SSH session and any sshd are
    refused unless `allow_critical` is true. The output lists, per host, the
    signal, the process ids and the instant it was sent.
    """
    command = process_faults.kill_script(process, pid_file, unit, signal, allow_critical)
    return _once(targets, command, "kill process", configuration, secrets)[0]


@takes_targets
def pause_process(
    targets: list,
    process: str = None,
    pid_file: str = None,
    unit: str = None,
    duration: float = 60,
    allow_critical: bool = False,
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Hang a process of the target hosts: SIGSTOP now, SIGCONT after `duration`
    seconds by the host itself (or at once with `restore_process`). The
    process is found as for `kill_process`: by `process` name, `pid_file` or
    systemd `unit`; PID 1, the processes running the SSH session and any sshd
    are refused unless `allow_critical` is true.
    """
    return _inject("pause_process", targets, all_or_nothing, configuration, secrets,
                   start_together=start_together, duration=duration,
                   process=process, pid_file=pid_file, unit=unit, allow_critical=allow_critical)


@takes_targets
def restore_process(
    targets: list,
    fault_id: list = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Resume the processes chaosali paused on the target hosts at once (SIGCONT):
    the faults with `fault_id` (one id or a list), or all process faults.
    Safe to call twice, or when nothing was injected.
    """
    return _restore_family(targets, fault_id, "process-", configuration, secrets)


@takes_targets
def fill_disk(
    targets: list,
    path: str = "/var/lib/kubelet",
    percent: float = None,
    megabytes: int = None,
    duration: float = 60,
    keep_free_megabytes: int = 50,
    allow_full: bool = False,
    start_together: bool = False,
    all_or_nothing: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Fill the filesystem of `path` on the target hosts with one file, until it
    is `percent` % used or by `megabytes`, for `duration` seconds; the host
    removes the file by itself afterwards (or at once with `restore_disk`).
    A fill that would leave less than `keep_free_megabytes` free is refused
    unless `allow_full` is true. The output shows df during the fill.
    """
    output = _inject("fill_disk", targets, all_or_nothing, configuration, secrets,
                     start_together=start_together, duration=duration, path=path,
                     percent=percent, megabytes=megabytes, keep_free_megabytes=keep_free_megabytes,
                     allow_full=allow_full)
    disk.record_fill(output)
    return output


@takes_targets
def restore_disk(
    targets: list,
    fault_id: list = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Remove the files `fill_disk` wrote on the target hosts at once: the
    faults with `fault_id` (one id or a list), or all disk faults. Safe to
    call twice, or when nothing was injected.
    """
    return _restore_family(targets, fault_id, "disk-", configuration, secrets)


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


# the rollbacks that act on every host a query may choose (or on those it chose earlier in the run)
_FAMILY_RESTORES = ("restore_network", "restore_kubelet", "restore_process", "restore_disk", "restore_faults")


def planned_targets(action: str, arguments: dict, configuration: Configuration, secrets: Secrets) -> dict:
    """What host action ``action`` would act on with ``arguments``, resolved as the action itself
    resolves them, with nothing injected: ``{"hosts": [Host], "selection": dict | None, "peers"}``."""
    hosts, selection = resolve_targets(arguments.get("targets"), configuration, secrets,
                                       sample=action not in _FAMILY_RESTORES)
    peers = _peer_addresses(arguments.get("peers"), configuration, secrets)
    return {"hosts": hosts, "selection": selection, "peers": peers}


def _lead(configuration: Configuration) -> float:
    """How far ahead faults that start together are timed: configuration start_together_lead."""
    return setting(configuration, "start_together_lead", 2.0, lambda value, name: seconds(value, name, 60, zero=True))


def _peer_addresses(peers: Any, configuration: Configuration, secrets: Secrets) -> Any:
    """``peers`` as given, or the addresses of every host a cluster query finds (unsampled): a
    partition names its other side from the cluster ("the other etcd hosts"), not by hand."""
    if not isinstance(peers, dict):
        return peers
    hosts, _ = resolve_targets(peers, configuration, secrets, sample=False)
    return [host.address for host in hosts]


def _restore_family(
    targets: Any, fault_id: Any, kind_prefix: str, configuration: Configuration, secrets: Secrets
) -> dict:
    """Restore the faults of a family (kinds beginning with ``kind_prefix``) on the targets: those
    with ``fault_id``, or all of them."""
    ids = check_fault_ids(fault_id)
    settings = SSHSettings.from_chaos(configuration, secrets)
    hosts, _ = resolve_targets(targets, configuration, secrets, sample=False)
    return faults.restore(hosts, settings, ids, kind_prefix)


def _once(
    targets: Any, command: str, what: str, configuration: Configuration, secrets: Secrets
) -> tuple[dict, dict[Host, str]]:
    """Run ``command`` once on the targets: the activity output, and each host's own output. Its
    record ends, and closes, when it is done: a one-shot fault leaves nothing to heal."""
    with ledger.injecting(what, [str(targets)]) as record:
        settings = SSHSettings.from_chaos(configuration, secrets)
        hosts, selection = resolve_targets(targets, configuration, secrets)
        record.targets = list(map(str, hosts))
        results = faults.run_everywhere(hosts, command, settings, what)
        at = dt.datetime.now(dt.timezone.utc).isoformat()
        record.started, record.hosts = at, {host.address: host.name for host in hosts}
    ledger.closed(record.id, at)
    output = {"action": what, "at": at, "fault_id": record.id,
              "hosts": [{"host": str(h), "address": h.address, "report": results[h].splitlines()} for h in hosts]}
    return ({**output, "targets": selection} if selection else output), results


def _inject(
    action: str, targets: Any, all_or_nothing: Any, configuration: Configuration, secrets: Secrets, /,
    *, start_together: Any = False, **arguments: Any,
) -> dict:
    """Build the catalogue's fault of ``action`` (every argument checked before any host or
    cluster is asked), then inject it on the targets: with ``start_together``, to take effect on
    every host at one instant, configuration ``start_together_lead`` seconds (default 2) from now."""
    kind = fault_kind(action)
    assert kind is not None, f"{action} is a lasting fault of the catalogue"  # only they are injected here
    with ledger.attempt(action, targets):
        fault = kind.build(**arguments)
        all_or_nothing = boolean(all_or_nothing, "all_or_nothing")
        lead = _lead(configuration) if boolean(start_together, "start_together") else None
        settings = SSHSettings.from_chaos(configuration, secrets)
        hosts, selection = resolve_targets(targets, configuration, secrets)
        if lead is not None:
            # the instant is chosen once the targets are known: the lead covers the SSH sessions only
            fault.at = time.time() + lead
        output = faults.inject(hosts, fault, settings, all_or_nothing)
    return {**output, "targets": selection} if selection else output


# Every lasting fault can start together on its hosts (_inject): its reference says so once, here.
_TOGETHER = """
`start_together` makes the fault take effect on every target host at one
instant, configuration `start_together_lead` seconds (default 2) after the
targets are known, rather than as each SSH session gets there (the hosts'
clocks must agree, e.g. by NTP); each host's `effective_at` and the
`skew_seconds` between the first and the last are in the output.
"""
for _entry in CATALOGUE:
    documented(_TOGETHER)(globals()[_entry.action])
