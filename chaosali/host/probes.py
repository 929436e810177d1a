"""Host probes for steady-state hypotheses."""

import logging
import socket
import time
from typing import Union

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.host.ssh import Host, HostError, fan_out
from chaosali.host.targets import resolve

__all__ = ["hosts_reachable", "wait_for_hosts"]

logger = logging.getLogger("chaostoolkit")


def hosts_reachable(
    targets: Union[list, dict],
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
    hosts, _ = resolve(targets, configuration, secrets, sample=False)
    return not _unreachable(hosts, port, timeout)


def wait_for_hosts(
    targets: Union[list, dict],
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
    hosts, _ = resolve(targets, configuration, secrets)
    started = time.monotonic()
    while True:
        silent = _unreachable(hosts, port, 1.0, quiet=True)
        if not silent:
            return round(time.monotonic() - started, 2)
        if time.monotonic() - started > float(timeout):
            raise ActivityFailed(f"{', '.join(map(str, silent))} still silent on port {port} after {timeout:g} s")
        hosts = silent
        time.sleep(0.5)


def _unreachable(hosts: list[Host], port: int, timeout: float, quiet: bool = False) -> list[Host]:
    def connect(host: Host) -> bool:
        try:
            socket.create_connection((host.address, int(port)), timeout=float(timeout)).close()
        except OSError as error:
            raise HostError(f"port {port}: {error or 'timed out'}") from None
        return True

    _, errors = fan_out(hosts, connect, quiet=quiet)
    return list(errors)
