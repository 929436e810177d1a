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

from chaoslib.types import Configuration

from chaosali.core import args
from chaosali.core.errors import InvalidArgument
from chaosali.host.faults import FaultScript

__all__ = ["drop_fault", "bandwidth_fault", "delay_fault", "MECHANISMS"]

IPTABLES = "iptables -w"
DIRECTIONS = {"both": ("in", "out"), "ingress": ("in",), "egress": ("out",)}
_HOOKS = {"in": ("INPUT", "-i lo", "-s", '-s "$CHAOSALI_SSH_PEER" --dport "$CHAOSALI_SSH_PORT"', "-i"),
          "out": ("OUTPUT", "-o lo", "-d", '-d "$CHAOSALI_SSH_PEER" --sport "$CHAOSALI_SSH_PORT"', "-o")}
# full matches of ASCII only: a value that reaches tc or a shell must be exactly what it looks like
_RATE = re.compile(r"\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)", re.ASCII | re.IGNORECASE)
_SIZE = re.compile(r"\d+(k|kb|m|mb|b)?", re.ASCII | re.IGNORECASE)
_TIME = re.compile(r"\d+(\.\d+)?(us|ms|s)", re.ASCII)
#: How a delay holds packets: netem where the kernel has it, else NFQUEUE (auto), or either one.
MECHANISMS = ("auto", "netem", "nfqueue")
# the NFQUEUE delayer (a program of this package) and the first queue number it tries on a host
DELAYER = "delayer.py"
FIRST_QUEUE = 3000
# the delayer ends by itself this long after the fault's duration, if its restore never came
DELAYER_GRACE = 5


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


def delay_fault(kind: str, duration: Any, delay: Any, jitter: Any, interface: Any, mechanism: Any = "auto",
                configuration: Configuration = None) -> FaultScript:
    """Delay egress packets of an interface: with netem where the kernel has it, else (``auto``, or
    ``nfqueue``) with the NFQUEUE delayer (``delayer.py``, run by the host's Python, configuration
    ``delay_python``), to which rules in the fault's own chain send what leaves the interface, the
    host's own packets (OUTPUT) and those it forwards (FORWARD: its pods'). The delayer is bound to
    its queue before the rules go in; the rules bypass a queue nobody listens to, so a delayer that
    died never holds traffic."""
    how = args.choice(mechanism, "mechanism", MECHANISMS)
    netem = ["netem", "delay", _tc_value("delay", delay, _TIME)]
    if jitter:
        netem.append(_tc_value("jitter", jitter, _TIME))
    fault = FaultScript(kind=kind, duration=args.duration(duration), apply=[], undo=[], program=DELAYER)
    chain, jump = f"{fault.id}-delay", f"-m comment --comment {fault.id} -j {fault.id}-delay"
    python = _python(configuration)
    fault.apply = [
        *_device(interface),
        '[ -n "$DEV" ] || { echo "no interface given and no default route to find one" >&2; exit 2; }',
        f"WANT={how}",
        *_netem_or_not(netem),
        # no netem: the NFQUEUE delayer, on the first queue nobody on this host uses
        'if [ "$MECHANISM" != netem ]; then',
        f'{python} -c "import fnfqueue" 2>"$d/py.err" || {{ echo "no sch_netem here, and the NFQUEUE delayer needs '
        f'{python} with the fnfqueue package: pip install fnfqueue, or set configuration delay_python to a Python '
        'that has it ($(tail -n 1 "$d/py.err"))" >&2; exit 2; }',
        f"QUEUE={FIRST_QUEUE}",
        f"while {_BOUND}; do QUEUE=$((QUEUE + 1)); done",
        """printf "MECHANISM='nfqueue'\\nQUEUE='%s'\\n" "$QUEUE" >> "$d/env\"""",
        f"{IPTABLES} -N {chain}",
        f'{IPTABLES} -A {chain} -j NFQUEUE --queue-num "$QUEUE" --queue-bypass',
        f'CHAOSALI_FAULT="${{d##*/}}" setsid {python} "$d/{DELAYER}" --queue "$QUEUE" --delay {_seconds(netem[2])} '
        f'--jitter {_seconds(netem[3]) if jitter else 0} --seconds {fault.duration + DELAYER_GRACE:g} '
        '</dev/null >"$d/delayer.log" 2>&1 &',
        'echo $! > "$d/delayer.pid"',
        "tries=0",
        f"until {_BOUND}; do",
        'if [ "$tries" -ge 100 ] || ! kill -0 "$(cat "$d/delayer.pid")" 2>/dev/null; then',
        'echo "the NFQUEUE delayer did not take queue $QUEUE: $(tail -n 2 "$d/delayer.log")" >&2; exit 2',
        "fi",
        "tries=$((tries + 1)); sleep 0.1",
        "done",
        f'{IPTABLES} -I OUTPUT 1 -o "$DEV" {jump}',
        f'{IPTABLES} -I FORWARD 1 -o "$DEV" {jump}',
        "fi",
    ]
    fault.undo = [
        '[ "$MECHANISM" != netem ] || tc qdisc del dev "$DEV" root',
        f'{IPTABLES} -D OUTPUT -o "$DEV" {jump}',
        f'{IPTABLES} -D FORWARD -o "$DEV" {jump}',
        f"{IPTABLES} -F {chain}",
        f"{IPTABLES} -X {chain}",
        # the delayer lets what it holds go and ends (at once; killed if it does not within 3 s)
        '[ ! -f "$d/delayer.pid" ] || { p=$(cat "$d/delayer.pid"); kill -TERM "$p"; i=0; '
        'while kill -0 "$p" && [ "$i" -lt 30 ]; do sleep 0.1; i=$((i + 1)); done; kill -KILL "$p"; }',
    ]
    held = " +- ".join(netem[2:])
    fault.report = [f'if [ "$MECHANISM" = netem ]; then echo "$DEV: $(tc qdisc show dev "$DEV" root)"; else echo '
                    f'"$DEV: NFQUEUE $QUEUE, the delayer (pid $(cat "$d/delayer.pid")) holds each egress packet {held}"; fi']
    return fault


# whether a program listens on NFQUEUE $QUEUE of this host (its network namespace)
_BOUND = 'grep -qE "^ *$QUEUE " /proc/net/netfilter/nfnetlink_queue 2>/dev/null'


def _netem_or_not(netem: list[str]) -> list[str]:
    """netem, unless $WANT is nfqueue; where the kernel has no sch_netem, $WANT auto goes on to the
    NFQUEUE delayer, and netem fails naming what to do."""
    missing = ("the kernel of this host has no sch_netem (tc netem): use mechanism 'auto' or 'nfqueue' (the NFQUEUE "
               "delayer), or load it with modprobe sch_netem")
    return [
        f'if [ "$WANT" != nfqueue ] && tc qdisc add dev "$DEV" root {shlex.join(netem)} 2>"$d/tc.err"; then',
        """MECHANISM=netem; echo "MECHANISM='netem'" >> "$d/env\"""",
        'elif [ "$WANT" = netem ] || { [ "$WANT" = auto ] && ! grep -q "kind is unknown" "$d/tc.err"; }; then',
        f'if grep -qs "kind is unknown" "$d/tc.err"; then echo "{missing}" >&2; else cat "$d/tc.err" >&2; fi; exit 2',
        "fi",
    ]


def _python(configuration: Configuration) -> str:
    """The host's Python that runs the NFQUEUE delayer: configuration ``delay_python``, a plain path."""
    python = (configuration or {}).get("delay_python", "python3")
    if not isinstance(python, str) or not re.fullmatch(r"[A-Za-z0-9._/+-]+", python, re.ASCII):
        raise InvalidArgument(f"configuration delay_python {python!r} must be a command or path of Python on the hosts, "
                              "e.g. 'python3' or '/usr/bin/python3'")
    return python


def _seconds(value: str) -> str:
    """A tc time ("100ms", "1.5s", "500us") in seconds, for the delayer."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s)", value, re.ASCII).groups()  # type: ignore[union-attr]
    return f"{float(number) / {'us': 1e6, 'ms': 1e3, 's': 1}[unit]:g}"


def _tc_value(name: str, value: Any, pattern: re.Pattern) -> str:
    if isinstance(value, bool) or not pattern.fullmatch(str(value)):
        raise InvalidArgument(
            f"{name} {value!r} is not a tc value: ASCII digits and a unit, e.g. rate '1mbit', burst '32kb', time '50ms'"
        )
    return str(value)
