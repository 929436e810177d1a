"""Network faults as shell commands: iptables drop rules in chaosali's own chains, and tc qdiscs.

Drop rules live in a chain per fault and direction (``chaosali-<hex>-in`` / ``-out``), jumped to
from the first position of INPUT / OUTPUT, so that no ACCEPT rule of the host can shadow them and
removing the fault removes exactly its rules. FORWARD jumps to them too, for what the host forwards
in and out through its default route's interface: its containers' traffic (a pod's, a NodePort's)
never passes INPUT or OUTPUT, and a host cut from the network cuts its pods off with it.
Exemptions (loopback, the controller's SSH path) ``RETURN`` to the host's own rules instead of
accepting, so a fault never opens anything.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from chaosali.core import args
from chaosali.core.errors import InvalidArgument
from chaosali.host.faults import FaultScript

__all__ = ["drop_fault", "bandwidth_fault", "delay_fault"]

IPTABLES = "iptables -w"
DIRECTIONS = {"both": ("in", "out"), "ingress": ("in",), "egress": ("out",)}
_HOOKS = {"in": ("INPUT", "-i lo", "-s", '-s "$CHAOSALI_SSH_PEER" --dport "$CHAOSALI_SSH_PORT"', "-i"),
          "out": ("OUTPUT", "-o lo", "-d", '-d "$CHAOSALI_SSH_PEER" --sport "$CHAOSALI_SSH_PORT"', "-o")}
# full matches of ASCII only: a value that reaches tc or a shell must be exactly what it looks like
_RATE = re.compile(r"\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)", re.ASCII | re.IGNORECASE)
_SIZE = re.compile(r"\d+(k|kb|m|mb|b)?", re.ASCII | re.IGNORECASE)
_TIME = re.compile(r"\d+(\.\d+)?(us|ms|s)", re.ASCII)


def drop_fault(
    kind: str,
    duration: Any,
    percent: Any = 100,
    peers: Any = None,
    ports: Any = None,
    direction: Any = "both",
    keep_ssh: Any = True,
) -> FaultScript:
    """Drop `percent` % of the host's traffic, optionally only to/from peers and ports."""
    sides = DIRECTIONS[args.choice(direction, "direction", DIRECTIONS)]
    keep_ssh = args.boolean(keep_ssh, "keep_ssh")
    # the interface forwarded traffic crosses (none on a host without a default route: no FORWARD jump)
    fault = FaultScript(kind=kind, duration=args.duration(duration), apply=_device(None, "FWD"), undo=[], detach=not keep_ssh)
    peers, ports = args.ipv4_networks(peers, "peer"), args.ports(ports, "ports", most=15)  # 15: iptables multiport
    probability = args.percent(percent) / 100
    statistic = f" -m statistic --mode random --probability {probability:.4f}" if probability < 1 else ""
    if keep_ssh:
        fault.apply.append(
            '[ -n "$CHAOSALI_SSH_PEER" ] || { echo "keep_ssh: the controller\'s address is unknown '
            '(SSH_CLIENT is not set by sshd); set keep_ssh to false to cut anyway" >&2; exit 2; }'
        )
    jumps = []
    for side in sides:
        hook, loopback, peer_flag, ssh_match, device_flag = _HOOKS[side]
        chain = f"{fault.id}-{side}"
        rules = [f"{loopback} -j RETURN"]
        if keep_ssh:
            rules.append(f"-p tcp {ssh_match} -j RETURN")
        candidates: list[str | None] = [*peers] or [None]  # None: every peer
        for peer in candidates:
            where = f" {peer_flag} {peer}" if peer else ""
            if ports:
                listed = ",".join(map(str, ports))
                rules += [f"-p {proto}{where} -m multiport --ports {listed}{statistic} -j DROP" for proto in ("tcp", "udp")]
            else:
                rules.append(f"{where.strip()}{statistic} -j DROP".strip())
        fault.apply += [f"{IPTABLES} -N {chain}"] + [f"{IPTABLES} -A {chain} {rule}" for rule in rules]
        # the jumps go in last, once the chains are complete, and first in the hook
        jump, forwarded = f"-m comment --comment {fault.id} -j {chain}", f'{device_flag} "$FWD"'
        jumps += [f"{IPTABLES} -I {hook} 1 {jump}", f'[ -z "$FWD" ] || {IPTABLES} -I FORWARD 1 {forwarded} {jump}']
        fault.undo += [
            f"{IPTABLES} -D {hook} {jump}",
            f"{IPTABLES} -D FORWARD {forwarded} {jump}",
            f"{IPTABLES} -F {chain}",
            f"{IPTABLES} -X {chain}",
        ]
        fault.report.append(f"{IPTABLES} -S {chain} 2>/dev/null || true")
    fault.prepared = len(fault.apply)  # only the jumps make the fault take effect
    fault.apply += jumps
    return fault


_DEFAULT_DEV = "ip route show default | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n 1"


def tc_fault(kind: str, duration: Any, interface: Any, qdisc: list[str]) -> FaultScript:
    """Replace the root qdisc of ``interface`` (default: the default route's) by ``qdisc``.
    The interface is resolved on the host and kept in the marker's env for the undo; ``env`` is
    sourced by restore.sh, so a name found on the host is checked there as ``interface`` is here
    (Linux allows "$(...)" in a name) and written quoted."""
    missing = (
        f"the kernel of this host has no sch_{qdisc[0]} module (tc {qdisc[0]}): "
        f"load it with modprobe sch_{qdisc[0]}, or use another fault"
    )
    return FaultScript(
        kind=kind,
        duration=args.duration(duration),
        apply=[
            *_device(interface),
            '[ -n "$DEV" ] || { echo "no interface given and no default route to find one" >&2; exit 2; }',
            f'tc qdisc add dev "$DEV" root {shlex.join(qdisc)} 2>"$d/tc.err" || {{ '
            f'if grep -q "kind is unknown" "$d/tc.err"; then echo "{missing}" >&2; '
            'else cat "$d/tc.err" >&2; fi; exit 2; }',
        ],
        undo=['tc qdisc del dev "$DEV" root'],
        report=['echo "$DEV: $(tc qdisc show dev "$DEV" root)"'],
    )


def _device(interface: Any, name: str = "DEV") -> list[str]:
    """Commands that set ``$name`` to ``interface`` (None: the default route's, or empty without
    one) and keep it in the marker's env for the undo; ``env`` is sourced by restore.sh, so a name
    found on the host is checked there as ``interface`` is here (Linux allows "$(...)" in a name)
    and written quoted. (A tc fault's is DEV: the check for leftovers looks for its qdisc there.)"""
    dev = shlex.quote(args.interface(interface)) if interface is not None else f'"$({_DEFAULT_DEV})"'
    return [
        f"{name}={dev}",
        f'case "${name}" in -* | *[!A-Za-z0-9_.@-]*) echo "the default route\'s interface has a name other than '
        'letters, digits and \'_.@-\' (not beginning with \'-\'): give interface explicitly" >&2; exit 2 ;; esac',
        f'printf "{name}=\'%s\'\\n" "${name}" >> "$d/env"',
    ]


def bandwidth_fault(kind: str, duration: Any, rate: Any, burst: Any, latency: Any, interface: Any) -> FaultScript:
    """Limit the egress bandwidth of an interface with a token bucket filter (tbf)."""
    return tc_fault(
        kind, duration, interface,
        ["tbf", "rate", _tc_value("rate", rate, _RATE), "burst", _tc_value("burst", burst, _SIZE),
         "latency", _tc_value("latency", latency, _TIME)],
    )


def delay_fault(kind: str, duration: Any, delay: Any, jitter: Any, interface: Any) -> FaultScript:
    """Delay egress packets with netem; hosts whose kernel lacks sch_netem get a clear error."""
    qdisc = ["netem", "delay", _tc_value("delay", delay, _TIME)]
    if jitter:
        qdisc.append(_tc_value("jitter", jitter, _TIME))
    return tc_fault(kind, duration, interface, qdisc)


def _tc_value(name: str, value: Any, pattern: re.Pattern) -> str:
    if isinstance(value, bool) or not pattern.fullmatch(str(value)):
        raise InvalidArgument(
            f"{name} {value!r} is not a tc value: ASCII digits and a unit, e.g. rate '1mbit', burst '32kb', time '50ms'"
        )
    return str(value)
