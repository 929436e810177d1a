"""Process faults as shell commands: a crash (one signal, once) and a hang (SIGSTOP, then SIGCONT at
restore or by the dead-man timer), of the processes a host finds by name, pid file or systemd unit.

What to act on is resolved on the host by the packaged ``sh/process.sh``, which also refuses PID 1,
the processes the SSH session runs in and any sshd unless ``allow_critical``: losing them loses the
host, or the path that would restore it.
"""

from __future__ import annotations

import re
import signal as signals
from typing import Any

from chaosali.core import args
from chaosali.core.errors import InvalidArgument
from chaosali.host.faults import FaultScript, host_script

__all__ = ["kill_script", "pause_fault", "SIGNALS"]

# the signals a crash drill sends, by name without SIG; dash's kill takes them as "-NAME"
SIGNALS = ("HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
           "ALRM", "TERM", "CONT")
# a process name as argv[0] or the executable shows it; no leading "-" (never an option)
_NAME = re.compile(r"[A-Za-z0-9_.:@+][A-Za-z0-9_.:@+-]{0,127}", re.ASCII)


def signal_name(value: Any) -> str:
    """A signal by name (``SIGKILL``, ``kill``, ``KILL``) or number (9), as kill's ``-NAME``."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            value = signals.Signals(value).name
        except ValueError:
            value = str(value)
    text = value.upper().removeprefix("SIG") if isinstance(value, str) else None
    if text == "STOP":
        raise InvalidArgument("signal SIGSTOP would leave the process stopped: use pause_process, which resumes it")
    if text not in SIGNALS:
        raise InvalidArgument(f"signal {value!r} is not one of {', '.join('SIG' + s for s in SIGNALS)}")
    return text


def _selection(process: Any, pid_file: Any, unit: Any, allow_critical: Any) -> dict[str, str]:
    """The values of sh/process.sh, once exactly one of process, pid_file and unit is given."""
    given = {name: value for name, value in (("process", process), ("pid_file", pid_file), ("unit", unit))
             if value is not None}
    if len(given) != 1:
        raise InvalidArgument("give exactly one of process (a name such as 'etcd'), pid_file (an absolute path) "
                              f"or unit (a systemd unit), not {' and '.join(given) or 'none'}")
    (name, value), = given.items()
    if name == "pid_file":
        value = args.host_path(value, "pid_file")
    elif not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidArgument(f"{name} {value!r} is not a process or unit name (letters, digits, '_.:@+-', "
                              "not beginning with '-')")
    return {"CHAOSALI_PROCESS": value if name == "process" else "",
            "CHAOSALI_PID_FILE": value if name == "pid_file" else "",
            "CHAOSALI_UNIT": value if name == "unit" else "",
            "CHAOSALI_ALLOW_CRITICAL": "yes" if args.boolean(allow_critical, "allow_critical") else "no"}


def kill_script(process: Any = None, pid_file: Any = None, unit: Any = None, signal: Any = "SIGKILL",
                allow_critical: Any = False) -> str:
    """The host command that sends ``signal`` once to the processes found, and prints them."""
    sent = signal_name(signal)
    return host_script("process.sh", _selection(process, pid_file, unit, allow_critical), [
        "# shellcheck disable=SC2086 # PIDS is a list of numbers",
        f"kill -{sent} $PIDS",
        f'echo "SIG{sent} $PIDS at $(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"',
    ])


def pause_fault(kind: str, duration: Any, process: Any = None, pid_file: Any = None, unit: Any = None,
                allow_critical: Any = False) -> FaultScript:
    """Stop the processes found with SIGSTOP; undo (the restore or the dead-man timer) sends SIGCONT."""
    values = _selection(process, pid_file, unit, allow_critical)
    return FaultScript(
        kind=kind,
        duration=args.duration(duration),
        apply=[host_script("process.sh", values).rstrip("\n"),
               'printf "PIDS=\'%s\'\\n" "$PIDS" >> "$d/env"',
               "# shellcheck disable=SC2086 # PIDS is a list of numbers",
               "kill -STOP $PIDS"],
        undo=["# shellcheck disable=SC2086 # PIDS is a list of numbers", "kill -CONT $PIDS"],
        report=['echo "SIGSTOP $PIDS"'],
        prepared=2,  # the processes are found before the instant; only the signal is sent at it
    )
