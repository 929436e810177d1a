"""Network faults as shell commands: iptables drop rules in chaosali's own chains, and tc qdiscs.

Drop rules live in a chain per fault and direction (``chaosali-<hex>-in`` / ``-out``), jumped to
from the first position of INPUT / OUTPUT, so that no ACCEPT rule of the host can shadow them and
removing the fault removes exactly its rules. Exemptions (loopback, the controller's SSH path)
``RETURN`` to the host's own rules instead of accepting, so a fault never opens anything.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from chaosali.errors import InvalidArgument
from chaosali.host.faults import ID_PREFIX, Fault

__all__ = [
    "drop_fault", "bandwidth_fault", "delay_fault", "sweep_commands", "check_fault_ids",
]

IPTABLES = "iptables -w"
DIRECTIONS = {"both": ("in", "out"), "ingress": ("in",), "egress": ("out",)}
_HOOKS = {"in": ("INPUT", "-i lo", "-s", '-s "$CHAOSALI_SSH_PEER" --dport "$CHAOSALI_SSH_PORT"'),
          "out": ("OUTPUT", "-o lo", "-d", '-d "$CHAOSALI_SSH_PEER" --sport "$CHAOSALI_SSH_PORT"')}
_INTERFACE = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")
_RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$", re.IGNORECASE)
_SIZE = re.compile(r"^\d+(k|kb|m|mb|b)?$", re.IGNORECASE)
_TIME = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")
_FAULT_ID = re.compile(rf"^{ID_PREFIX}[0-9a-f]{{8}}$")


def check_duration(duration: Any) -> float:
    try:
        value = float(duration)
    except (TypeError, ValueError):
        value = -1.0
    if not 0 < value <= 86400:
        raise InvalidArgument(f"duration {duration!r} must be a number of seconds between 0 and 86400")
    return value


def _peers(peers: Any) -> list[str]:
    if peers is None:
        return []
    if isinstance(peers, str):
        peers = [peers]
    checked = []
    for peer in peers:
        try:
            checked.append(str(ipaddress.ip_network(str(peer), strict=False)))
        except ValueError:
            raise InvalidArgument(
                f"peer {peer!r} is not an IPv4 address or CIDR (e.g. '10.0.0.5' or '10.0.0.0/24')"
            ) from None
        if ipaddress.ip_network(checked[-1]).version != 4:
            raise InvalidArgument(f"peer {peer!r}: only IPv4 peers are supported (iptables, not ip6tables)")
    return checked


def _ports(ports: Any) -> list[int]:
    if ports is None:
        return []
    if isinstance(ports, (int, str)):
        ports = [ports]
    checked = []
    for port in ports:
        if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgument(f"port {port!r} must be a number from 1 to 65535")
        checked.append(int(port))
    if len(checked) > 15:
        raise InvalidArgument("at most 15 ports per fault (iptables multiport); split the fault in two")
    return checked


def _share(percent: Any) -> float:
    try:
        share = float(percent) / 100
    except (TypeError, ValueError):
        share = -1.0
    if not 0 < share <= 1:
        raise InvalidArgument(f"percent {percent!r} must be a number above 0 and at most 100")
    return share


def check_interface(interface: str | None) -> str | None:
    if interface is not None and not _INTERFACE.match(str(interface)):
        raise InvalidArgument(
            f"interface {interface!r} is not a network interface name (letters, digits, '_.@-', at most 15)"
        )
    return interface


def check_fault_ids(fault_id: str | list[str] | None) -> list[str] | None:
    if fault_id is None:
        return None
    ids = [fault_id] if isinstance(fault_id, str) else list(fault_id)
    for one in ids:
        if not isinstance(one, str) or not _FAULT_ID.match(one):
            raise InvalidArgument(f"fault id {one!r} is not a chaosali fault id (like 'chaosali-1a2b3c4d')")
    return ids


def drop_fault(
    kind: str,
    duration: Any,
    percent: float = 100,
    peers: Any = None,
    ports: Any = None,
    direction: str = "both",
    keep_ssh: bool = True,
) -> Fault:
    """Drop `percent` % of the host's traffic, optionally only to/from peers and ports."""
    if direction not in DIRECTIONS:
        raise InvalidArgument(f"direction {direction!r} must be one of {', '.join(DIRECTIONS)}")
    fault = Fault(kind=kind, duration=check_duration(duration), apply=[], undo=[], detach=not keep_ssh)
    peers, ports = _peers(peers), _ports(ports)
    probability = _share(percent)
    statistic = f" -m statistic --mode random --probability {probability:.4f}" if probability < 1 else ""
    if keep_ssh:
        fault.apply.append(
            '[ -n "$CHAOSALI_SSH_PEER" ] || { echo "keep_ssh: the controller\'s address is unknown '
            '(SSH_CLIENT is not set by sshd); set keep_ssh to false to cut anyway" >&2; exit 2; }'
        )
    for side in DIRECTIONS[direction]:
        hook, loopback, peer_flag, ssh_match = _HOOKS[side]
        chain = f"{fault.id}-{side}"
        rules = [f"{loopback} -j RETURN"]
        if keep_ssh:
            rules.append(f"-p tcp {ssh_match} -j RETURN")
        for peer in peers or [None]:
            where = f" {peer_flag} {peer}" if peer else ""
            if ports:
                listed = ",".join(map(str, ports))
                rules += [f"-p {proto}{where} -m multiport --ports {listed}{statistic} -j DROP" for proto in ("tcp", "udp")]
            else:
                rules.append(f"{where.strip()}{statistic} -j DROP".strip())
        fault.apply += [f"{IPTABLES} -N {chain}"] + [f"{IPTABLES} -A {chain} {rule}" for rule in rules]
        # the jump goes in last, once the chain is complete, and first in the hook
        fault.apply.append(f"{IPTABLES} -I {hook} 1 -m comment --comment {fault.id} -j {chain}")
        fault.undo += [
            f"{IPTABLES} -D {hook} -m comment --comment {fault.id} -j {chain}",
            f"{IPTABLES} -F {chain}",
            f"{IPTABLES} -X {chain}",
        ]
        fault.report.append(f"{IPTABLES} -S {chain} 2>/dev/null || true")
    return fault


_DEFAULT_DEV = "ip route show default | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n 1"


def tc_fault(kind: str, duration: Any, interface: str | None, qdisc: list[str]) -> Fault:
    """Replace the root qdisc of ``interface`` (default: the default route's) by ``qdisc``."""
    check_interface(interface)
    dev = shlex.quote(interface) if interface else f'"$({_DEFAULT_DEV})"'
    missing = (
        f"the kernel of this host has no sch_{qdisc[0]} module (tc {qdisc[0]}): "
        f"load it with modprobe sch_{qdisc[0]}, or use another fault"
    )
    return Fault(
        kind=kind,
        duration=check_duration(duration),
        setup=[f"echo dev={dev}"],
        apply=[
            '[ -n "$dev" ] || { echo "no interface given and no default route to find one" >&2; exit 2; }',
            f'tc qdisc add dev "$dev" root {shlex.join(qdisc)} 2>"$d/tc.err" || {{ '
            f'if grep -q "kind is unknown" "$d/tc.err"; then echo "{missing}" >&2; '
            'else cat "$d/tc.err" >&2; fi; exit 2; }',
        ],
        undo=['tc qdisc del dev "$dev" root'],
        report=['echo "$dev: $(tc qdisc show dev "$dev" root)"'],
    )


def bandwidth_fault(duration: Any, rate: str, burst: str, latency: str, interface: str | None) -> Fault:
    """Limit the egress bandwidth of an interface with a token bucket filter (tbf)."""
    return tc_fault(
        "network-bandwidth", duration, interface,
        ["tbf", "rate", _tc_value("rate", rate, _RATE), "burst", _tc_value("burst", burst, _SIZE),
         "latency", _tc_value("latency", latency, _TIME)],
    )


def delay_fault(duration: Any, delay: str, jitter: str | None, interface: str | None) -> Fault:
    """Delay egress packets with netem; hosts whose kernel lacks sch_netem get a clear error."""
    qdisc = ["netem", "delay", _tc_value("delay", delay, _TIME)]
    if jitter:
        qdisc.append(_tc_value("jitter", jitter, _TIME))
    return tc_fault("network-delay", duration, interface, qdisc)


def _tc_value(name: str, value: Any, pattern: re.Pattern) -> str:
    if not pattern.match(str(value)):
        raise InvalidArgument(f"{name} {value!r} is not a tc value (e.g. rate '1mbit', burst '32kb', time '50ms')")
    return str(value)


def sweep_commands() -> list[str]:
    """Host commands that remove chaosali chains no marker accounts for (e.g. /run was lost)."""
    return [
        f"for hook in INPUT OUTPUT; do {IPTABLES} -S $hook 2>/dev/null | grep -- '-j {ID_PREFIX}' | "
        f"sed 's/^-A/-D/' | while read -r rule; do eval {IPTABLES} \"$rule\"; done; done",
        f"{IPTABLES} -S 2>/dev/null | sed -n 's/^-N \\({ID_PREFIX}[^ ]*\\)$/\\1/p' | "
        f"while read -r chain; do {IPTABLES} -F \"$chain\"; {IPTABLES} -X \"$chain\" && echo \"$chain\"; done",
    ]
