"""Faults that heal themselves: markers, dead-man timers and restore scripts on the host.

Every fault lives on its host as ``/run/chaosali/<id>/`` holding:

- ``kind``        what it is (``network-cut``, ``kubelet-config``...), so restores can filter;
- ``env``         the shell variables the fault resolved on the host (interface, peer...);
- ``restore.sh``  the undo commands, each allowed to fail, so restoring twice is harmless;
- ``timer.pid``   the process group of the detached dead-man timer that runs ``restore.sh``
                  after the fault's duration, armed *before* the fault takes effect.

Restoring kills the timer and removes the directory; ``/run`` is a tmpfs on real hosts, so a
reboot clears markers together with the runtime state they describe.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field

from chaoslib.exceptions import ActivityFailed

from chaosali.host.ssh import Host, SSHSettings, fan_out, run_script

__all__ = ["Fault", "new_fault_id", "inject", "restore", "run_everywhere"]

logger = logging.getLogger("chaostoolkit")

MARKER_ROOT = "/run/chaosali"
ID_PREFIX = "chaosali-"


def new_fault_id() -> str:
    return ID_PREFIX + uuid.uuid4().hex[:8]


@dataclass
class Fault:
    """A fault as shell commands: ``setup`` resolves variables, ``apply`` injects, ``undo`` heals.

    ``detach`` runs ``apply`` outside the SSH session, for faults that cut the session itself.
    ``report`` prints what took effect (e.g. the exact rules) into the activity's output; a
    detached fault cannot report, its output shows the commands it runs.
    """

    kind: str
    duration: float
    apply: list[str]
    undo: list[str]
    setup: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    detach: bool = False
    id: str = field(default_factory=new_fault_id)

    def script(self) -> str:
        d = f"{MARKER_ROOT}/{self.id}"
        restore = "\n".join(
            [
                "#!/bin/sh",
                f"d={d}",
                '[ -d "$d" ] || exit 0',
                '. "$d/env"',
                # the timer itself runs this script: killing its own group would stop the restore
                'if [ -z "$CHAOSALI_TIMER" ] && [ -f "$d/timer.pid" ]; then',
                '  kill -TERM "-$(cat "$d/timer.pid")" 2>/dev/null',
                "fi",
                *(f"{command} 2>/dev/null" for command in self.undo),
                'rm -rf "$d"',
            ]
        )
        apply = "\n".join(["set -e", f"d={d}", '. "$d/env"', *self.apply])
        if self.detach:
            # the pause lets this SSH session return before the fault may cut it
            run_apply = (
                'nohup setsid sh -c \'sleep 1; exec sh "$0"\' "$d/apply.sh" </dev/null >"$d/apply.log" 2>&1 &'
            )
        else:
            run_apply = (
                'if ! sh "$d/apply.sh" 2>"$d/apply.err"; then\n'
                '  cat "$d/apply.err" >&2; sh "$d/restore.sh"; exit 3\n'
                "fi"
            )
        return "\n".join(
            [
                "set -e",
                f"d={d}",
                f"mkdir -p {MARKER_ROOT}",
                'mkdir "$d"',
                f"echo {self.kind} > \"$d/kind\"",
                ": > \"$d/env\"",
                *(f'{line} >> "$d/env"' for line in self.setup),
                '. "$d/env"',
                _heredoc("$d/restore.sh", restore),
                _heredoc("$d/apply.sh", apply),
                # dead-man timer first: from here on the host heals without us
                f"CHAOSALI_TIMER=1 setsid sh -c 'sleep {self.duration:g}; exec sh \"$0\"' "
                '"$d/restore.sh" </dev/null >/dev/null 2>&1 &',
                'echo $! > "$d/timer.pid"',
                run_apply,
                *([] if self.detach else self.report),
            ]
        )


def _heredoc(path: str, body: str) -> str:
    return f"cat > \"{path}\" <<'CHAOSALI_EOF'\n{body}\nCHAOSALI_EOF"


def _restore_script(fault_ids: list[str] | None, kind_prefix: str) -> str:
    """Host script that restores the given faults, or every fault whose kind starts with the prefix."""
    if fault_ids is not None:
        dirs = " ".join(f"{MARKER_ROOT}/{fault_id}" for fault_id in fault_ids)
    else:
        dirs = f"{MARKER_ROOT}/{ID_PREFIX}*"
    return "\n".join(
        [
            f"for d in {dirs}; do",
            '  [ -f "$d/restore.sh" ] || continue',
            f'  case "$(cat "$d/kind")" in {kind_prefix}*) ;; *) continue ;; esac',
            '  sh "$d/restore.sh" && echo "${d##*/}"',
            "done",
            "true",
        ]
    )


def inject(hosts: list[Host], fault: Fault, settings: SSHSettings, all_or_nothing: bool = True) -> dict:
    """Inject ``fault`` on every host in parallel; return the activity output.

    All-or-nothing by default: if one host fails, the hosts that took the fault are restored
    and the activity fails, naming each failed host and why.
    """
    started = dt.datetime.now(dt.timezone.utc)
    script = fault.script()
    results, errors = fan_out(hosts, lambda host: run_script(host, script, settings))
    if errors and all_or_nothing and results:
        _, undo_errors = fan_out(list(results), lambda host: run_script(host, _restore_script([fault.id], ""), settings))
        for host, reason in undo_errors.items():
            errors[host] = f"took the fault but could not be restored ({reason}); it heals by itself within {fault.duration:g} s"
    if errors and (all_or_nothing or not results):
        raise ActivityFailed(
            f"{fault.kind} {fault.id} failed on {len(errors)} of {len(hosts)} host(s): "
            + "; ".join(f"{host}: {reason}" for host, reason in errors.items())
            + ("; the others were restored" if all_or_nothing and results else "")
        )
    output = {
        "fault_id": fault.id,
        "kind": fault.kind,
        "duration": fault.duration,
        "started_at": started.isoformat(),
        "heals_at": (started + dt.timedelta(seconds=fault.duration)).isoformat(),
        "commands": fault.apply,
        "hosts": [
            {"host": str(host), "address": host.address, "ok": True, "report": results[host].splitlines()}
            for host in hosts
            if host in results
        ]
        + [{"host": str(host), "address": host.address, "ok": False, "error": errors[host]} for host in errors],
    }
    logger.info("chaosali: %s %s on %s for %g s", fault.kind, fault.id, ", ".join(map(str, results)), fault.duration)
    return output


def restore(
    hosts: list[Host], settings: SSHSettings, fault_ids: list[str] | None = None, kind_prefix: str = ""
) -> dict:
    """Restore faults on every host at once: by id, or all of the kind (``""`` means every kind)."""
    results = run_everywhere(hosts, _restore_script(fault_ids, kind_prefix), settings, "restore")
    restored = {str(host): out.split() for host, out in results.items()}
    logger.info("chaosali: restored %s", json.dumps(restored))
    return {"restored": restored}


def run_everywhere(hosts: list[Host], script: str, settings: SSHSettings, what: str) -> dict[Host, str]:
    """Run ``script`` on every host in parallel; fail naming each host it failed on."""
    results, errors = fan_out(hosts, lambda host: run_script(host, script, settings))
    if errors:
        raise ActivityFailed(
            f"{what} failed on {len(errors)} of {len(hosts)} host(s): "
            + "; ".join(f"{host}: {reason}" for host, reason in errors.items())
            + ("; faults heal by themselves at the end of their duration" if what == "restore" else "")
        )
    return results
