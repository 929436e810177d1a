"""System faults as shell commands: kubelet misconfiguration, stopped services, CPU and memory load.

Service control goes through one configurable command template, ``service_command``
(default ``systemctl {action} {service}``), so hosts without systemd (or the lab's ``labctl``)
work the same way.
"""

from __future__ import annotations

import re
import shlex
from string import Formatter
from typing import Any

from chaoslib.types import Configuration

from chaosali.core.args import duration as read_duration, host_path, whole
from chaosali.core.errors import InvalidArgument
from chaosali.host.faults import FaultScript

__all__ = [
    "kubelet_fault", "service_fault", "stress_cpu_fault", "stress_memory_fault", "service_command",
]

DEFAULT_SERVICE_COMMAND = "systemctl {action} {service}"
# used with fullmatch: with match, "$" would let a trailing newline through into the host's shell;
# no leading "-": the name would reach systemctl as an option (--help, -H host)
_SERVICE = re.compile(r"[A-Za-z0-9@._:][A-Za-z0-9@._:-]{0,127}")
_URL = re.compile(r"https?://[A-Za-z0-9.:\[\]-]{1,255}(/[A-Za-z0-9._/-]*)?")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_VALUE = re.compile(r"[A-Za-z0-9._:/-]{0,255}")


def service_command(configuration: Configuration, action: str, service: Any) -> str:
    """The host command that does ``action`` (start, stop, restart) to ``service``."""
    template = _template((configuration or {}).get("service_command", DEFAULT_SERVICE_COMMAND))
    if not isinstance(service, str) or not _SERVICE.fullmatch(service):
        raise InvalidArgument(
            f"service {service!r} is not a service name (letters, digits, '@._:-', not beginning with '-')"
        )
    return template.format(action=action, service=shlex.quote(service))


def _template(template: Any) -> str:
    """The service_command template, once it proves to hold {action} and {service} and no other
    field: ``str.format`` would fail later with a bare IndexError or KeyError. The configuration is
    trusted (it may run any command on the hosts); the template is checked to catch mistakes."""
    problem = f"configuration service_command {template!r} must be a command with {{action}} and {{service}}, " \
              "e.g. 'systemctl {action} {service}'"
    if not isinstance(template, str):
        raise InvalidArgument(problem)
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in Formatter().parse(template)
                  if name is not None]
    except ValueError:  # a lone "{" or "}"
        raise InvalidArgument(f"{problem}; write a literal brace as {{{{ or }}}}") from None
    names = {name for name, _, _ in fields}
    if names != {"action", "service"} or any(spec or conversion for _, spec, conversion in fields):
        raise InvalidArgument(f"{problem}, and no other field ({{0}}, {{x}}) nor format ({{service!r}}, {{action:10}})")
    return template


def kubelet_fault(
    kind: str,
    duration: Any,
    configuration: Configuration,
    apiserver: str | None = None,
    config_changes: dict | None = None,
    kubeconfig_path: str = "/etc/kubernetes/kubelet.conf",
    config_path: str = "/var/lib/kubelet/config.yaml",
    service: str = "kubelet",
) -> FaultScript:
    """Back up the kubelet's kubeconfig (new ``apiserver``) or config file (``config_changes`` of
    top-level keys), change it, restart the kubelet; undo puts the backup back and restarts."""
    if bool(apiserver) == bool(config_changes):
        raise InvalidArgument(
            "give either apiserver (a URL such as 'https://10.0.0.99:6443') or config_changes "
            "(top-level keys of the kubelet's config.yaml), not both, not neither"
        )
    restart = service_command(configuration, "restart", service)
    if apiserver:
        if not isinstance(apiserver, str) or not _URL.fullmatch(apiserver):
            raise InvalidArgument(f"apiserver {apiserver!r} must be a URL such as 'https://10.0.0.99:6443'")
        path = shlex.quote(host_path(kubeconfig_path, "kubeconfig_path"))
        server = shlex.quote(rf"s#^\([[:space:]]*server:[[:space:]]*\).*$#\1{apiserver}#")
        edits = [f"sed -i {server} {path}"]
    else:
        path = shlex.quote(host_path(config_path, "config_path"))
        edits = []
        for key, value in (config_changes or {}).items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if not _KEY.fullmatch(str(key)) or not _VALUE.fullmatch(text):
                raise InvalidArgument(
                    f"config change {key!r}: {value!r}: keys are top-level camelCase names and values plain "
                    "scalars (letters, digits, '._:/-')"
                )
            found, line = shlex.quote(f"^{key}:"), shlex.quote(f"{key}: {text}")
            change = shlex.quote(f"s#^{key}:.*$#{key}: {text}#")
            edits.append(f"if grep -q {found} {path}; then sed -i {change} {path}; "
                         f"else printf '%s\\n' {line} >> {path}; fi")
    return FaultScript(
        kind=kind,
        duration=read_duration(duration),
        apply=[f"[ -f {path} ] || {{ printf '%s does not exist on this host\\n' {path} >&2; exit 2; }}",
               f'cp -p {path} "$d/backup"', *edits, restart],
        undo=[f'cp -p "$d/backup" {path}', restart],
        report=[f"echo changed {path}", f"grep -n 'server:' {path} || true" if apiserver else "true"],
    )


def service_fault(kind: str, duration: Any, configuration: Configuration, service: Any) -> FaultScript:
    """Stop a service; undo starts it again."""
    return FaultScript(
        kind=kind,
        duration=read_duration(duration),
        apply=[service_command(configuration, "stop", service)],
        undo=[service_command(configuration, "start", service)],
        report=[f"echo stopped {shlex.quote(service)}"],
    )


def stress_cpu_fault(kind: str, duration: Any, workers: Any = 0) -> FaultScript:
    """Keep ``workers`` CPUs busy (0: all of them): stress-ng where present, else shell busy loops."""
    count, seconds = whole(workers, "workers", 0, 1024), read_duration(duration)
    n = str(count) if count else "$(nproc)"
    return _load_fault(
        kind, seconds,
        stress_ng=f"stress-ng --cpu {n} --timeout {seconds:g}s",
        fallback=f"for i in $(seq {n}); do sh -c 'while :; do :; done' & done; wait",
    )


def stress_memory_fault(kind: str, duration: Any, megabytes: Any) -> FaultScript:
    """Hold ``megabytes`` of memory: stress-ng where present, else a shell variable of that size."""
    size, seconds = whole(megabytes, "megabytes", 1, 1024 * 1024), read_duration(duration)
    return _load_fault(
        kind, seconds,
        stress_ng=f"stress-ng --vm 1 --vm-bytes {size}M --vm-keep --timeout {seconds:g}s",
        fallback=f"held=$(head -c {size}M /dev/zero | tr '\\0' x); sleep {seconds:g}",
    )


def _load_fault(kind: str, seconds: float, stress_ng: str, fallback: str) -> FaultScript:
    # the load runs detached in its own process group, which undo kills whole; its fault id in its
    # environment tells a load the restore missed (faults.left_behind)
    run = f"if command -v stress-ng >/dev/null; then exec {stress_ng}; else {fallback}; fi"
    return FaultScript(
        kind=kind,
        duration=seconds,
        apply=[f'CHAOSALI_FAULT="${{d##*/}}" setsid sh -c {shlex.quote(run)} </dev/null >/dev/null 2>&1 &', 'echo $! > "$d/load.pid"'],
        # no "--": dash's kill takes a negative pid (a process group) as it is
        undo=['kill -TERM "-$(cat "$d/load.pid")"', 'kill -KILL "-$(cat "$d/load.pid")"'],
        sampler="load-sample.sh",  # what the host carried: the load's evidence
        report=['echo "load process group $(cat "$d/load.pid")"',
                'command -v stress-ng >/dev/null && echo stress-ng || echo "shell fallback (no stress-ng)"'],
    )
