"""The host fault catalogue, and the shell it renders: every kind builds, parses, passes
shellcheck, and the safety model holds when the scripts run here (no lab, no root)."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from chaosali.core.markers import FAULT_ID_PREFIX
from chaosali.host import actions, faults, preflight
from chaosali.host.catalogue import CATALOGUE, ONE_SHOT, fault_kind
from chaosali.host.faults import FaultScript, host_script
from helpers import sh as run, wait_until

# One example of each kind's arguments: a new kind adds its line here.
EXAMPLES = {
    "network-cut": {"duration": 10, "peers": ["10.0.0.1"], "ports": [22, 80], "keep_ssh": False},
    "network-loss": {"duration": 10, "percent": 50, "direction": "ingress"},
    "network-bandwidth": {"duration": 10, "rate": "1mbit", "burst": "32kb", "latency": "400ms", "interface": None},
    "network-delay": {"duration": 10, "delay": "100ms", "jitter": "10ms", "interface": "eth0"},
    "kubelet-config": {"duration": 10, "configuration": {}, "apiserver": "https://10.0.0.99:6443"},
    "service-stop": {"duration": 10, "configuration": {}, "service": "kubelet"},
    "stress-cpu": {"duration": 10, "workers": 1},
    "stress-memory": {"duration": 10, "megabytes": 64},
    "process-pause": {"duration": 10, "process": "etcd"},
    "disk-fill": {"duration": 10, "path": "/var/lib/kubelet", "percent": 90},
}
KINDS = [entry.kind for entry in CATALOGUE]


def test_every_kind_has_an_example():
    assert sorted(EXAMPLES) == sorted(KINDS)


@pytest.mark.parametrize("entry", CATALOGUE, ids=KINDS)
def test_a_kind_is_built_by_its_host_action_with_the_action_s_arguments(entry):
    fault = entry.build(**EXAMPLES[entry.kind])
    assert (fault.kind, fault.duration) == (entry.kind, 10) and fault.id.startswith(FAULT_ID_PREFIX)
    assert entry.action in actions.__all__ and fault_kind(entry.action) is entry
    # what the action passes on is what the builder takes: the action's own arguments
    action = inspect.signature(getattr(actions, entry.action))
    action.bind(targets=["10.0.0.5"], **EXAMPLES[entry.kind])


def test_every_host_action_is_a_kind_a_one_shot_or_a_restore():
    unknown = [name for name in actions.__all__
               if fault_kind(name) is None and name not in ONE_SHOT and not name.startswith("restore_")]
    assert unknown == []


def test_restores_by_family_reach_exactly_their_kinds():
    assert len(set(KINDS)) == len(KINDS)
    assert not [(a, b) for a in KINDS for b in KINDS if a != b and b.startswith(a)], "a kind prefixes another"
    assert {"network", "kubelet"} <= {entry.family for entry in CATALOGUE}  # restore_network, restore_kubelet


def test_needs_are_data_a_preflight_can_check():
    # a preflight looks each command up on the host's PATH
    assert all(entry.needs and all(need.command.split() == [need.command] for need in entry.needs) for entry in CATALOGUE)
    assert str(fault_kind("stress_cpu").needs[0]) == "stress-ng if present"
    assert str(fault_kind("stop_service").needs[0]) == "configuration service_command (default systemctl)"


def _rendered() -> list[tuple[str, str]]:
    scripts = [("restore by id", faults.restore_script_for(["chaosali-1a2b3c4d"], "network-")),
               ("restore all", faults.restore_script_for(None, ""))]
    scripts += [(name, host_script(name, {"CHAOSALI_ID_PREFIX": FAULT_ID_PREFIX}))
                for name in {entry.sweep for entry in CATALOGUE if entry.sweep}]
    scripts.append(("preflight check", preflight.check_script(preflight.FAULTS, {"service_command": "labctl {action} {service}"})))
    for entry in CATALOGUE:
        fault = entry.build(**EXAMPLES[entry.kind])
        scripts += [(f"{entry.kind} injection", fault.render()), (f"{entry.kind} apply.sh", fault.apply_script()),
                    (f"{entry.kind} restore.sh", fault.restore_script())]
    return scripts


RENDERED = _rendered()


@pytest.mark.parametrize("name, script", RENDERED, ids=[name for name, _ in RENDERED])
def test_sh_parses_the_rendered_script(name, script, tmp_path):
    (tmp_path / "script.sh").write_text(script)
    result = subprocess.run(["sh", "-n", str(tmp_path / "script.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed (apt-get install shellcheck)")
@pytest.mark.parametrize("name, script", RENDERED, ids=[name for name, _ in RENDERED])
def test_shellcheck_finds_nothing_in_the_rendered_script(name, script, tmp_path):
    (tmp_path / "script.sh").write_text(script)
    # SC2016 flags '$x' in single quotes, which is how these scripts hand text to a later shell
    # (sh -c, the marker's own scripts, the quoted values): never a mistake here
    result = subprocess.run(["shellcheck", "--shell=sh", "--exclude=SC2016", str(tmp_path / "script.sh")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# The scripts run here, on this machine, in a marker root of the test's own.
needs_setsid = pytest.mark.skipif(not shutil.which("setsid"), reason="setsid (util-linux) is not installed")


@pytest.fixture
def root(marker_root: Path) -> Path:
    """Where the probe faults leave their traces, beside their markers."""
    return marker_root.parent


def probe(root: Path, duration: float = 60, apply: str = "true", detach: bool = False) -> FaultScript:
    """A fault whose apply and undo leave traces in ``root``: what the fault shell does, in order."""
    return FaultScript(
        kind="probe-test", duration=duration, detach=detach,
        apply=[f'[ -s "$d/timer.pid" ] && echo armed >> {root}/trace', f"{apply}", f"echo applied >> {root}/trace",
               'echo "WHERE=here" >> "$d/env"'],
        undo=[f'echo "undone $WHERE" >> {root}/trace', "false"],
        report=['echo "reported $WHERE"'],
    )


def trace(root: Path) -> list[str]:
    return (root / "trace").read_text().splitlines() if (root / "trace").exists() else []


@needs_setsid
def test_timer_armed_before_the_fault_then_one_restore_and_a_quiet_second(root):
    fault = probe(root)
    injected = run(fault.render())
    # what the fault resolved (its env) comes last, for the check that its restore leaves nothing
    assert injected.returncode == 0 and injected.stdout == "reported here\nchaosali-env WHERE=here\n", injected.stderr
    marker = Path(faults.MARKER_ROOT) / fault.id
    assert (marker / "kind").read_text() == "probe-test\n" and trace(root) == ["armed", "applied"]

    restore = faults.restore_script_for([fault.id], "probe-")
    assert run(restore).stdout == f"{fault.id}\n"
    assert not marker.exists() and trace(root) == ["armed", "applied", "undone here"]
    assert run(restore).stdout == "" and run(faults.restore_script_for(None, "")).stdout == ""
    assert trace(root)[-1] == "undone here"


@needs_setsid
def test_restores_keep_to_their_kind_and_ids(root):
    fault = probe(root)
    run(fault.render())
    assert run(faults.restore_script_for(None, "network-")).stdout == ""
    assert run(faults.restore_script_for([], "")).stdout == ""  # no ids: nothing, not everything
    assert run(faults.restore_script_for(None, "probe-")).stdout == f"{fault.id}\n"


@needs_setsid
def test_the_dead_man_timer_heals_without_anyone(root):
    fault = probe(root, duration=0.5)
    assert run(fault.render()).returncode == 0
    assert wait_until(lambda: "undone here" in trace(root), 5) is not None
    assert not (Path(faults.MARKER_ROOT) / fault.id).exists()


@needs_setsid
def test_a_failing_fault_is_restored_at_once_with_the_host_s_error(root):
    injected = run(probe(root, apply='echo "no such thing" >&2; exit 2').render())
    assert injected.returncode == 3 and injected.stderr.strip().splitlines()[-1] == "no such thing"
    assert trace(root) == ["armed", "undone "] and list(Path(faults.MARKER_ROOT).iterdir()) == []


@needs_setsid
def test_a_detached_fault_applies_after_the_session_returned(root):
    started = time.monotonic()
    injected = run(probe(root, detach=True).render())
    assert injected.returncode == 0 and injected.stdout == "" and trace(root) == []
    assert wait_until(lambda: trace(root) == ["armed", "applied"], 5) is not None
    assert time.monotonic() - started >= 1
