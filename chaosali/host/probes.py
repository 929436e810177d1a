"""Host probes for steady-state hypotheses, and the evidence of host faults: a reboot, a load,
a network fault seen from outside the host, names that a DNS server stopped resolving."""

import logging
import re
import shlex
import time
from typing import Any

import dns.exception
import dns.name
import dns.resolver
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.core import evidence as run_evidence
from chaosali.core.args import address, boolean, choice, number, port as read_port, seconds, whole
from chaosali.core.errors import InvalidArgument
from chaosali.core.errors import EndpointError
from chaosali.core.fanout import connect_tcp, fan_out
from chaosali.core.waiting import wait_until
from chaosali.host import evidence, preflight
from chaosali.host.ssh import Host, SSHSettings, parse_hosts, run_script
from chaosali.host.targets import resolve_targets, takes_targets

logger = logging.getLogger("chaostoolkit")

__all__ = ["hosts_ready", "hosts_reachable", "wait_for_hosts", "wait_for_reboot", "load_observed", "network_effect",
           "names_resolve"]

#: A name every Kubernetes cluster's DNS knows: the API's own Service.
CLUSTER_NAME = "kubernetes.default.svc.cluster.local"


@takes_targets
def hosts_ready(
    targets: list,
    faults: list = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool | dict:
    """
    Tell whether every target host can take and heal each of `faults` (host
    actions such as "cut_network", or fault kinds; default: every one), over
    one SSH session per host that changes nothing: the login, root or
    passwordless sudo, the tools each fault needs (iptables, tc and its
    qdiscs, setsid, the service command...), the files it edits and a
    writable marker root; it also reports the clock offset and free space.
    Returns true when every host is ready, otherwise the report (each host's
    checks, and why each fault is unavailable), so that `tolerance: true`
    stops a run before any fault. `chaosali check` prints the same report.
    """
    names = preflight.fault_names(faults)
    settings = SSHSettings.from_chaos(configuration, secrets)
    hosts, _ = resolve_targets(targets, configuration, secrets, sample=False)
    report = preflight.check_hosts(hosts, names, configuration, settings)
    for host in report["hosts"]:
        for row in host["checks"]:
            if row["status"] in ("fail", "warn") and row["check"] in ("login", "privilege", "clock"):
                logger.warning("chaosali: %s: %s: %s", host["host"], row["check"], row["detail"])
        for verdict in host["faults"]:
            if not verdict["ready"]:
                logger.warning("chaosali: %s cannot take %s: %s", host["host"], verdict["fault"], verdict["reason"])
    return True if report["ready"] else report


@takes_targets
def hosts_reachable(
    targets: list,
    port: int = 22,
    timeout: float = 2.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """
    Tell whether every target host (hosts, or a cluster query) accepts a TCP
    connection on `port` within `timeout` seconds. Unreachable hosts are named
    in the log.
    """
    port, timeout = read_port(port), seconds(timeout, "timeout", 60)
    hosts, _ = resolve_targets(targets, configuration, secrets, sample=False)
    return not _unreachable(hosts, port, timeout)


@takes_targets
def wait_for_hosts(
    targets: list,
    port: int = 22,
    timeout: float = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> float:
    """
    Wait until every target host accepts a TCP connection on `port` (after a
    reboot, say) and return how many seconds that took; fail after `timeout`
    seconds, naming the hosts still silent.
    """
    port, timeout = read_port(port), seconds(timeout, "timeout")
    hosts, _ = resolve_targets(targets, configuration, secrets)
    started = time.monotonic()

    def silent() -> list[Host]:
        nonlocal hosts
        hosts = _unreachable(hosts, port, 1.0, quiet=True)
        return hosts

    answered, still = wait_until(silent, started + timeout, 0.5, lambda silent: not silent)
    if not answered:
        raise ActivityFailed(f"{', '.join(map(str, still))} still silent on port {port} after {timeout:g} s")
    return round(time.monotonic() - started, 2)


@takes_targets
def wait_for_reboot(
    targets: list,
    timeout: float = 120,
    port: int = 22,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Prove that the target hosts rebooted: wait until each answers over SSH
    with a boot identity other than the one `reboot_host` read before the
    reboot in this run (the kernel's boot id and PID 1's start time). Returns
    `proved`, per host rebooted the identities, `down_seconds` (SSH port
    closed until SSH answered again; null when the host was back before the
    first look) and `answered_after_seconds` (since the reboot command), and
    under `not_rebooted` each host whose identity had not changed after
    `timeout` seconds, with why. Before any reboot in the run (the steady
    state's first check) there is nothing to prove: `proved` is true.
    Tolerance: {"type": "jsonpath", "path": "$.proved", "expect": true}.
    """
    timeout, port = seconds(timeout, "timeout"), read_port(port)
    hosts, _ = resolve_targets(targets, configuration, secrets, sample=False)
    before = evidence.boots_before(hosts)
    if not before:
        if evidence.boots_before_any():
            raise ActivityFailed(
                f"none of {', '.join(map(str, hosts))} was rebooted in this run: give wait_for_reboot the "
                "targets of reboot_host"
            )
        return {"proved": True, "rebooted": [], "not_rebooted": [],
                "note": "no host was rebooted in this run yet (reboot_host): nothing to prove"}
    settings = SSHSettings.from_chaos(configuration, secrets)
    started = time.monotonic()
    deadline = started + timeout
    open_ = lambda host: not _unreachable([host], port, 0.5, quiet=True)
    results, errors = fan_out(list(before), lambda host: evidence.wait_for_new_boot(
        host, before[host], settings, open_, deadline))
    run_evidence.observed(
        f"reboot of {', '.join(map(str, before))}", not errors,
        "; ".join(f"{host}: {why}" for host, why in errors.items()) or "; ".join(
            f"{entry['host']}: new boot identity, SSH down {entry['down_seconds']} s" for entry in results.values()))
    return {
        "proved": not errors,
        "rebooted": [results[host] for host in before if host in results],
        "not_rebooted": [{"host": str(host), "why": why} for host, why in errors.items()],
        "waited_seconds": round(time.monotonic() - started, 2),
    }


@takes_targets
def load_observed(
    targets: list,
    min_cpu_percent: float = None,
    min_megabytes: float = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Prove that the loads `stress_cpu` / `stress_memory` started in this run
    on the target hosts took effect, from what each host sampled every second
    while its load lasted: the load's CPU % (100 per busy CPU) and resident
    memory, the host's CPU busy %, load average and available memory.
    `proved` is false, and `problems` says why, when a load never took effect
    (its command exited at once), used less than `min_cpu_percent` (CPU
    loads), held less than `min_megabytes` (memory loads), or left no sample
    (restored before this probe: read it in the steady state's last check,
    which runs before the rollbacks). Before any load in the run there is
    nothing to prove: `proved` is true. Tolerance:
    {"type": "jsonpath", "path": "$.proved", "expect": true}.
    """
    least_cpu = None if min_cpu_percent is None else number(min_cpu_percent, "min_cpu_percent", 0)
    least_mb = None if min_megabytes is None else number(min_megabytes, "min_megabytes", 0)
    hosts, _ = resolve_targets(targets, configuration, secrets, sample=False)
    injected = evidence.loads_injected(hosts)
    if not injected:
        return {"proved": True, "loads": [], "problems": [],
                "note": "no load was started on these hosts in this run yet: nothing to prove"}
    settings = SSHSettings.from_chaos(configuration, secrets)
    results, errors = fan_out(list(injected), lambda host: run_script(
        host, evidence.read_loads_script(injected[host]), settings))
    loads, problems = [], [f"{host}: the samples could not be read: {reason}" for host, reason in errors.items()]
    for host, out in results.items():
        summaries = evidence.summarise_loads(out.splitlines())
        for fault_id in injected[host]:
            summary = summaries.get(fault_id)
            if summary is None:
                problems.append(f"{host}: load {fault_id} left no sample (restored before this probe, or the "
                                "host rebooted): read it before the rollbacks")
                continue
            loads.append({"host": str(host), "fault_id": fault_id, **summary})
            cpu_short = summary["kind"] == "stress-cpu" and least_cpu is not None and summary["load_cpu_percent"] < least_cpu
            mb_short = summary["kind"] == "stress-memory" and least_mb is not None and summary["load_memory_mb"] < least_mb
            if not summary["took_effect"] or cpu_short or mb_short:
                problems.append(
                    f"{host}: load {fault_id} ({summary['kind']}) did not take effect: it lived "
                    f"{summary['seconds_live']} of {summary['samples']} s sampled, used {summary['load_cpu_percent']} % "
                    f"CPU and held {summary['load_memory_mb']} MB; check that its command runs on the host"
                )
    for problem in problems:
        logger.warning("chaosali: %s", problem)
    run_evidence.observed(
        f"load on {', '.join(map(str, injected))}", not problems, "; ".join(problems) or "; ".join(
            f"{load['host']}: {load['kind']} {load['load_cpu_percent']} % CPU, {load['load_memory_mb']} MB held"
            for load in loads))
    return {"proved": not problems, "loads": loads, "problems": problems}


@takes_targets
def network_effect(
    targets: list,
    port: int = 22,
    from_host: str = None,
    attempts: int = 10,
    interval: float = 0.2,
    min_loss_percent: float = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Measure what a network fault does to the target hosts, seen from outside:
    `attempts` TCP connections to `port` from the controller, or, with
    `from_host` (a peer host reached over SSH), `attempts` pings from that
    peer, `interval` seconds apart. Returns per host the answers and
    `loss_percent`, the worst `loss_percent` and `unreachable` (nothing
    answered on any host). Mind that `keep_ssh` exempts the controller's SSH
    path from a cut: probe another port, or from a peer. With
    `min_loss_percent`, every host must lose at least that much (100: a cut),
    and `chaosali.impact.probes.faults_observed`, in the steady state's last
    check, fails the drill when one did not (chaoslib judges no tolerance in
    the method).
    """
    least = None if min_loss_percent is None else number(min_loss_percent, "min_loss_percent", 0, 100)
    port, count = read_port(port), whole(attempts, "attempts", 1, 1000)
    pause = number(interval, "interval", 0.01, 10)
    hosts, _ = resolve_targets(targets, configuration, secrets, sample=False)
    if from_host is None:
        def answers(host: Host) -> int:
            answered = 0
            for attempt in range(count):
                answered += not _unreachable([host], port, 1.0, quiet=True)
                time.sleep(pause if attempt < count - 1 else 0)
            return answered
    else:
        peer, settings = parse_hosts(from_host)[0], SSHSettings.from_chaos(configuration, secrets)

        def answers(host: Host) -> int:
            target = shlex.quote(address(host.address, "target"))  # checked again, and quoted: it reaches sh
            command = f"ping -n -q -c {count} -i {pause:g} -W 1 {target} || true"
            summary = re.search(r"(\d+) received", run_script(peer, command, settings))
            if summary is None:
                raise EndpointError(f"ping from {peer} printed no summary: is ping (iputils-ping) installed there?")
            return int(summary.group(1))

    results, errors = fan_out(hosts, answers)
    if errors:
        raise ActivityFailed("; ".join(f"{host}: {reason}" for host, reason in errors.items()))
    measured: list[dict[str, Any]] = [{"host": str(host), "address": host.address, "attempts": count, "answered": results[host],
                 "loss_percent": round(100 * (count - results[host]) / count, 1)} for host in hosts]
    output: dict[str, Any] = {
        "from": str(parse_hosts(from_host)[0]) if from_host else "controller",
        "how": "ping" if from_host else f"tcp port {port}",
        "hosts": measured,
        "loss_percent": max(entry["loss_percent"] for entry in measured),
        "unreachable": all(entry["answered"] == 0 for entry in measured),
    }
    if least is not None:
        short = [f"{entry['host']} lost {entry['loss_percent']:g} %" for entry in measured if entry["loss_percent"] < least]
        run_evidence.observed(
            f"network effect on {', '.join(map(str, hosts))} ({output['how']} from {output['from']})", not short,
            "; ".join(short) + f", less than the {least:g} % expected" if short else f"at least {least:g} % lost")
    return output


@takes_targets
def names_resolve(
    targets: list,
    names: list = None,
    expect: str = "resolving",
    port: int = 53,
    tcp: bool = False,
    timeout: float = 1.0,
    wait: float = 0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Ask the DNS server of each target host (on `port`, by UDP, or by TCP
    with `tcp`, from the controller) for the addresses of each of `names`
    (default: kubernetes.default.svc.cluster.local, which every cluster's
    DNS knows), `timeout` seconds a query, and prove what `expect` says:
    "resolving", every name resolves on every host; "failing", none
    resolves on any host (the DNS is cut). With `wait`, asks again every
    half second until that is so or `wait` seconds have passed. Returns
    `proved`, `seconds` (until proved, or until the last answer), and per
    host each name's addresses or why it did not resolve (timed out,
    NXDOMAIN...). "failing" during a fault is an expected effect for
    `chaosali.impact.probes.faults_observed`: a DNS that kept answering
    during its outage leaves the fault not proven. Tolerance:
    {"type": "jsonpath", "path": "$.proved", "expect": true}.
    """
    wanted = [_dns_name(name) for name in (names if names is not None else [CLUSTER_NAME])]
    if not wanted:
        raise InvalidArgument("names is empty: give at least one name to resolve, e.g. " + CLUSTER_NAME)
    expected = choice(expect, "expect", ("resolving", "failing"))
    port, over_tcp = read_port(port), boolean(tcp, "tcp")
    timeout, patience = seconds(timeout, "timeout", 60), seconds(wait, "wait", 3600, zero=True)
    hosts, _ = resolve_targets(targets, configuration, secrets, sample=False)
    started = time.monotonic()

    def ask() -> dict[Host, dict]:
        answers, errors = fan_out(hosts, lambda host: {str(name): _lookup(host.address, name, port, over_tcp, timeout)
                                                       for name in wanted})
        return {**answers, **{host: {str(name): {"error": why} for name in wanted} for host, why in errors.items()}}

    def as_expected(answers: dict[Host, dict]) -> bool:
        resolved = [("addresses" in answer) for per_host in answers.values() for answer in per_host.values()]
        return all(resolved) if expected == "resolving" else not any(resolved)

    proved, answers = wait_until(ask, started + patience, 0.5, as_expected)
    output: dict[str, Any] = {
        "proved": proved, "expect": expected, "how": f"{'tcp' if over_tcp else 'udp'} port {port} from the controller",
        "seconds": round(time.monotonic() - started, 2),
        "hosts": [{"host": str(host), "address": host.address, "names": answers[host]} for host in hosts],
    }
    if expected == "failing":
        run_evidence.observed(
            f"names failing on the DNS of {', '.join(map(str, hosts))}", proved,
            "no name resolved" if proved else "names still resolved: "
            + "; ".join(f"{entry['host']} {name}" for entry in output["hosts"]
                        for name, answer in entry["names"].items() if "addresses" in answer))
    return output


def _dns_name(value: object) -> dns.name.Name:
    """A fully qualified name to ask for (a relative one is taken as absolute: no search list)."""
    try:
        if not isinstance(value, str) or not value.strip("."):
            raise ValueError("not a name")
        return dns.name.from_text(value)
    except (ValueError, dns.exception.DNSException) as error:
        raise InvalidArgument(f"name {value!r} is not a DNS name such as {CLUSTER_NAME}: {error}") from None


def _lookup(server: str, name: dns.name.Name, port: int, tcp: bool, timeout: float) -> dict:
    """The A records of ``name`` on the DNS server at ``server``, or why there are none."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [server], port
    try:
        answer = resolver.resolve(name, "A", tcp=tcp, lifetime=timeout, search=False)
    except dns.exception.DNSException as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {"addresses": sorted(record.address for record in answer)}


def _unreachable(hosts: list[Host], port: int, timeout: float, quiet: bool = False) -> list[Host]:
    _, errors = fan_out(hosts, lambda host: connect_tcp(host.address, port, timeout), quiet=quiet)
    return list(errors)
