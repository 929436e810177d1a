"""Host probes for steady-state hypotheses."""

import logging
import socket

from chaoslib.types import Configuration, Secrets

from chaosali.host.ssh import Host, HostError, fan_out, parse_hosts

__all__ = ["hosts_reachable"]

logger = logging.getLogger("chaostoolkit")


def hosts_reachable(
    targets: list,
    port: int = 22,
    timeout: float = 2.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """
    Tell whether every target host accepts a TCP connection on `port` within
    `timeout` seconds. Unreachable hosts are named in the log.
    """
    hosts = parse_hosts(targets)

    def connect(host: Host) -> bool:
        try:
            socket.create_connection((host.address, int(port)), timeout=float(timeout)).close()
        except OSError as error:
            raise HostError(f"port {port}: {error or 'timed out'}") from None
        return True

    _, errors = fan_out(hosts, connect)
    return not errors
