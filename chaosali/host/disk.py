"""Disk faults as shell commands: fill the filesystem of a path with one file, which the restore or
the dead-man timer removes.

The fill is sized on the host from ``df`` at injection time, so ``percent`` means "this much of the
filesystem used" whatever was there before, and the fault refuses to leave less than
``keep_free_megabytes`` free unless ``allow_full``: a full root filesystem can stop sshd and the
logging the drill itself relies on.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from chaosali.core import args, evidence
from chaosali.core.errors import InvalidArgument
from chaosali.host.faults import FaultScript

__all__ = ["fill_fault", "record_fill"]

# kernel views, not storage: there is nothing to fill there
_PSEUDO = ("/proc", "/sys", "/dev")


def fill_fault(kind: str, duration: Any, path: Any, percent: Any = None, megabytes: Any = None,
               keep_free_megabytes: Any = 50, allow_full: Any = False) -> FaultScript:
    """Write one file under ``path`` until its filesystem is ``percent`` % used, or of ``megabytes``."""
    where = args.host_path(path, "path")
    if any(where == root or where.startswith(root + "/") for root in _PSEUDO):
        raise InvalidArgument(f"path {where!r} is in {', '.join(_PSEUDO)}, kernel views with no disk to fill: "
                              "give a directory of a real filesystem, e.g. /var/lib/kubelet")
    if (percent is None) == (megabytes is None):
        raise InvalidArgument("give either percent (how full the filesystem gets, e.g. 95) or megabytes "
                              "(how much to write), not both, not neither")
    if percent is not None:
        target = f"$((size * {args.percent(percent) * 100:.0f} / 10000 - used))"
    else:
        target = str(args.whole(megabytes, "megabytes", 1, 1024 * 1024 * 1024) * 1024)
    keep = args.whole(keep_free_megabytes, "keep_free_megabytes", 0, 1024 * 1024 * 1024)
    full = "true" if args.boolean(allow_full, "allow_full") else "false"
    fault = FaultScript(
        kind=kind,
        duration=args.duration(duration),
        apply=[
            'refuse() { echo "$1" >&2; exit 2; }',
            f"P={shlex.quote(where)} FULL={full}",
            '[ -d "$P" ] || refuse "path $P is not a directory on this host: give one on the filesystem to fill"',
            # df -P: one line per filesystem, sizes in KiB; FS TYPE is not in -P, the mount point is field 6
            '# shellcheck disable=SC2046 # the fields of df\'s line',
            'set -- $(df -Pk "$P" | tail -n 1)',
            'size=$2 used=$3 avail=$4',
            f"fill={target}",
            '[ "$fill" -gt 0 ] || refuse "the filesystem of $P is $5 used already: nothing to fill"',
            '[ "$FULL" = false ] || [ "$fill" -lt "$avail" ] || fill=$avail',
            f'left=$((avail - fill)); [ "$left" -ge {keep * 1024} ] || [ "$FULL" = true ] || '
            f'refuse "filling $((fill / 1024)) MiB on $P would leave $((left / 1024)) MiB free, less than '
            f'keep_free_megabytes {keep}: ask for less, or set allow_full to true to fill it anyway"',
            'F="$P/.${d##*/}.fill"',
            'printf "F=\'%s\'\\nP=\'%s\'\\n" "$F" "$P" >> "$d/env"',
            # fallocate takes the space at once; a filesystem without it gets zeros written
            'fallocate -l "${fill}KiB" "$F" 2>/dev/null || dd if=/dev/zero of="$F" bs=1024 count="$fill" 2>/dev/null '
            '|| { [ "$FULL" = true ] && [ -f "$F" ]; }',  # a full filesystem is what allow_full asked for
        ],
        undo=['rm -f "$F"'],
        report=['echo "filled $(($(stat -c %s "$F") / 1048576)) MiB in $F"', 'df -Pk "$P" | tail -n 1'],
    )
    fault.prepared = len(fault.apply) - 1  # the fill is sized before the instant, written at it
    return fault


def record_fill(output: dict) -> None:
    """Keep what each host reported of its fill (``filled N MiB in F`` and df) as the fault's evidence."""
    hosts = [entry for entry in output["hosts"] if entry.get("ok")]
    filled = [entry for entry in hosts if re.match(r"filled [1-9]", (entry.get("report") or [""])[0])]
    evidence.observed(f"disk filled on {', '.join(entry['host'] for entry in hosts)}", len(filled) == len(hosts),
                      "; ".join(f"{entry['host']}: {', '.join(entry.get('report') or ['no report'])}" for entry in hosts))
