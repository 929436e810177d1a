"""Host probes for steady-state hypotheses."""

import socket
import time

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.core.args import port as read_port, seconds
from chaosali.core.errors import EndpointError
from chaosali.core.fanout import fan_out
from chaosali.host.ssh import Host
from chaosali.host.targets import resolve_targets, takes_targets

__all__ = ["hosts_reachable", "wait_for_hosts"]


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
    while True:
        silent = _unreachable(hosts, port, 1.0, quiet=True)
        if not silent:
            return round(time.monotonic() - started, 2)
        if time.monotonic() - started > timeout:
            raise ActivityFailed(f"{', '.join(map(str, silent))} still silent on port {port} after {timeout:g} s")
        hosts = silent
        time.sleep(0.5)


def _unreachable(hosts: list[Host], port: int, timeout: float, quiet: bool = False) -> list[Host]:
    def connect(host: Host) -> bool:
        try:
            socket.create_connection((host.address, port), timeout=timeout).close()
        except OSError as error:
            raise EndpointError(f"port {port}: {error or 'timed out'}") from None
        return True

    _, errors = fan_out(hosts, connect, quiet=quiet)
    return list(errors)
