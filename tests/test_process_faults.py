"""Process crash and hang (kill_process, pause_process): refusals before any host is reached, the
shell run here on processes of the test's own, and the lab's control plane crashed and hung."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from kubernetes import client

from chaosali.cli import main
from chaosali.cluster.api import connect
from chaosali.cluster.probes import api_ready, watch_api
from chaosali.core.errors import InvalidArgument
from chaosali.host import actions, faults
from chaosali.host.catalogue import fault_kind
from chaosali.host.process import kill_script
from chaosali.host.ssh import Host, run_script
from helpers import chaos_run, journal_of, passed, settings, sh, wait_until

TARGET = ["10.0.0.5"]


@pytest.mark.parametrize("arguments, problem", [
    ({"process": "etcd", "signal": "SIGNOPE"}, "signal 'SIGNOPE' is not one of"),
    ({"process": "etcd", "signal": 19}, "use pause_process, which resumes it"),
    ({"process": "etcd; reboot"}, "is not a process or unit name"),
    ({"process": "-9"}, "is not a process or unit name"),
    ({"unit": "$(reboot)"}, "is not a process or unit name"),
    ({"pid_file": "run/etcd.pid"}, "must be an absolute path"),
    ({"pid_file": "/run/../etc/shadow"}, "without '..'"),
    ({}, "give exactly one of process"),
    ({"process": "etcd", "unit": "etcd"}, "not process and unit"),
    ({"process": "etcd", "allow_critical": "maybe"}, "allow_critical must be true or false"),
])
def test_kill_refuses_bad_input_before_any_host(no_ssh, arguments, problem):
    with pytest.raises(InvalidArgument, match=problem.replace("(", r"\(").replace("$", r"\$")):
        actions.kill_process(TARGET, **arguments)


@pytest.mark.parametrize("arguments, problem", [
    ({"process": "etcd", "duration": 0}, "duration"),
    ({"process": "a|b"}, "is not a process or unit name"),
    ({"pid_file": 7}, "must be an absolute path"),
])
def test_pause_refuses_bad_input_before_any_host(no_ssh, arguments, problem):
    with pytest.raises(InvalidArgument, match=problem):
        actions.pause_process(TARGET, **arguments)


def test_signals_by_name_or_number():
    assert "kill -TERM $PIDS" in kill_script("etcd", signal=15)
    assert "kill -HUP $PIDS" in kill_script("etcd", signal="hup")
    assert "kill -KILL $PIDS" in kill_script("etcd")


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
@pytest.mark.parametrize("arguments", [{"process": "etcd"}, {"pid_file": "/run/etcd.pid"}, {"unit": "etcd.service"}])
def test_shellcheck_finds_nothing_in_the_kill_script(arguments, tmp_path):
    (tmp_path / "kill.sh").write_text(kill_script(**arguments))
    result = subprocess.run(["shellcheck", "--shell=sh", "--exclude=SC2016", str(tmp_path / "kill.sh")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# The scripts run here, on processes of the test's own: a sleeper under a name nobody else uses.
@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    name = f"chaosali-sleeper-{uuid.uuid4().hex[:8]}"
    shutil.copy(shutil.which("sleep"), tmp_path / name)
    process = subprocess.Popen([str(tmp_path / name), "60"])
    pid_file = tmp_path / "sleeper.pid"
    pid_file.write_text(f"{process.pid}\n")
    yield name, process, pid_file
    process.kill()
    process.wait()


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_kill_by_name_and_refusals_of_what_runs_the_session(sleeper, tmp_path):
    name, process, _ = sleeper
    killed = sh(kill_script(process=name, signal="TERM"))
    assert killed.returncode == 0 and killed.stdout.startswith(f"SIGTERM {process.pid} at "), killed.stderr
    assert process.wait(5) == -15
    gone = sh(kill_script(process=name))
    assert gone.returncode == 2 and gone.stderr.strip() == f"process {name}: no such process on this host"

    (tmp_path / "one.pid").write_text("1\n")
    (tmp_path / "mine.pid").write_text(f"{__import__('os').getpid()}\n")  # pytest runs the script's shell
    pid1 = sh(kill_script(pid_file=str(tmp_path / "one.pid"), signal="CONT"))
    assert pid1.returncode == 2 and "is pid 1" in pid1.stderr and "allow_critical" in pid1.stderr
    session = sh(kill_script(pid_file=str(tmp_path / "mine.pid"), signal="CONT"))
    assert session.returncode == 2 and "runs this SSH session" in session.stderr
    assert sh(kill_script(pid_file=str(tmp_path / "one.pid"), signal="CONT", allow_critical=True)).returncode == 0
    missing = sh(kill_script(pid_file=str(tmp_path / "none.pid")))
    assert missing.returncode == 2 and "does not exist on this host" in missing.stderr


def test_pause_stops_then_the_restore_resumes_and_twice_is_quiet(sleeper, marker_root):
    _, process, pid_file = sleeper
    fault = fault_kind("pause_process").build(duration=60, pid_file=str(pid_file))
    injected = sh(fault.render())
    # the report, then the processes as the fault resolved them (for the check that nothing stays stopped)
    assert injected.returncode == 0 and injected.stdout == f"SIGSTOP {process.pid}\nchaosali-env PIDS='{process.pid}'\n", \
        injected.stderr
    assert wait_until(lambda: state(process.pid) == "T", 2) is not None
    restore = faults.restore_script_for(None, "process-")
    assert sh(restore).stdout == f"{fault.id}\n"
    assert wait_until(lambda: state(process.pid) == "S", 2) is not None
    assert sh(restore).stdout == "" and not (marker_root / fault.id).exists()


def test_pause_is_healed_by_its_dead_man_timer(sleeper, marker_root):
    name, process, _ = sleeper
    # 8 s: its timer must not heal it before a loaded machine has applied it (4 s did not suffice once,
    # the machine running two full suites at once: the timer removed the marker before apply.err was read)
    assert sh(fault_kind("pause_process").build(duration=8, process=name).render()).returncode == 0
    # deadlines, not speed targets: a loaded machine (CI's lab sessions beside) is slow to schedule
    assert wait_until(lambda: state(process.pid) == "T", 5) is not None
    assert wait_until(lambda: state(process.pid) == "S", 15) is not None
    assert wait_until(lambda: not any(marker_root.iterdir()), 10) is not None


# The lab's control plane: one master whose services (etcd, kube-apiserver) its init supervises.
def master_markers(kube) -> list[str]:
    return run_script(Host(kube.lab.hosts[0].address), "ls /run/chaosali 2>/dev/null || true",
                      settings(kube.lab)).split()


def test_apiserver_killed_is_down_until_its_supervisor_restarts_it(kube, kube_chaos):
    assert api_ready(2, **kube_chaos)
    killed = actions.kill_process({"masters": ["kube-apiserver"]}, process="kube-apiserver", **kube_chaos)
    (host,) = killed["hosts"]
    assert host["host"].startswith("master1") and host["report"][0].startswith("SIGKILL ")
    watched = watch_api(seconds=90, interval=0.1, stop="back", timeout=1, **kube_chaos)
    assert watched["down_at"] and watched["back_at"], watched
    print(f"\nkube-apiserver SIGKILLed: API down {watched['down_seconds']:.2f} s until the supervisor's restart")
    assert watched["down_seconds"] >= 1  # the lab's supervisor waits 1 s before a restart
    assert api_ready(2, **kube_chaos)


def namespaces_answer(kube_chaos: dict, timeout: float) -> bool:
    try:
        with connect(kube_chaos["configuration"], kube_chaos["secrets"]) as cluster:
            client.CoreV1Api(cluster.client).list_namespace(_request_timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 (hung or refused: either is "does not answer")
        return False


def test_etcd_paused_hangs_the_api_which_answers_after_the_heal_by_itself(kube, kube_chaos):
    assert namespaces_answer(kube_chaos, 2)
    paused = actions.pause_process({"masters": ["etcd"]}, process="etcd", duration=6, **kube_chaos)
    started = time.monotonic()
    assert paused["kind"] == "process-pause" and paused["hosts"][0]["report"][0].startswith("SIGSTOP ")
    hang_started = time.monotonic()
    assert not namespaces_answer(kube_chaos, 2), "the API answered a read while etcd was stopped"
    assert time.monotonic() - hang_started >= 1.5, "the API failed fast instead of hanging"
    back = wait_until(lambda: namespaces_answer(kube_chaos, 1), 30, step=0.2)
    assert back is not None, "the API did not answer after etcd was resumed by its timer"
    healed = time.monotonic() - started
    print(f"\netcd SIGSTOPped for 6 s: the API answered again {healed:.2f} s after the pause, with no controller action")
    assert 5 <= healed <= 6 + 10
    # the timer removes its marker once etcd answers again; a loaded machine may take some seconds more
    assert wait_until(lambda: master_markers(kube) == [], 15) is not None, master_markers(kube)

    # the restore heals at once; a second restore, and a restore of nothing, are quiet
    again = actions.pause_process({"masters": ["etcd"]}, process="etcd", duration=120, **kube_chaos)
    first = actions.restore_process({"masters": ["etcd"]}, fault_id=again["fault_id"], **kube_chaos)
    assert list(first["restored"].values()) == [[again["fault_id"]]]
    assert namespaces_answer(kube_chaos, 2)
    second = actions.restore_process({"masters": ["etcd"]}, **kube_chaos)
    assert list(second["restored"].values()) == [[]] and master_markers(kube) == []


def test_cleanup_resumes_a_paused_process(kube, kube_chaos, capsys):
    master = kube.lab.hosts[0].address
    actions.pause_process([master], process="kube-scheduler", duration=120, **kube_chaos)
    assert main(["cleanup", "--var-file", str(kube.lab.vars_path), "--hosts", master]) == 0
    assert master_markers(kube) == []
    states = run_script(Host(master), "for p in /proc/[0-9]*; do tr '\\0' '\\n' <$p/cmdline | head -n 1; "
                        "sed -n 's/^State:[[:space:]]*//p' $p/status; done 2>/dev/null", settings(kube.lab))
    lines = states.splitlines()
    scheduler = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line.endswith("/kube-scheduler")]
    assert scheduler and not any(s.startswith("T") for s in scheduler), scheduler


def test_apiserver_crash_drill_measures_the_restart(kube, tmp_path):
    run = chaos_run(tmp_path, "apiserver-crash.json", [kube.lab.vars_path], "--var", "settle_seconds:int=2")
    journal = journal_of(run, tmp_path)
    assert passed(journal)
    watched = next(r["output"] for r in journal["run"] if r["activity"]["name"] == "watch-api-until-restarted")
    assert watched["down_at"] and watched["back_at"] and watched["last"] is True
    print(f"\napiserver-crash drill: API down {watched['down_seconds']:.2f} s")


def test_sigkill_of_chaos_run_mid_pause_etcd_resumes_by_itself(kube, kube_chaos, tmp_path):
    run = chaos_run(tmp_path, "etcd-hang.json", [kube.lab.vars_path], "--var", "pause_seconds:int=6",
                    "--var", "settle_seconds:int=2", start_new_session=True)
    assert wait_until(lambda: master_markers(kube) != [], 120, step=0.2) is not None, "etcd was never paused"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    back = wait_until(lambda: namespaces_answer(kube_chaos, 1), 30, step=0.2)
    assert back is not None and back < 6 + 8, "etcd was not resumed by its host's timer"
    # the timer removes its marker once etcd answers again; a loaded machine may take some seconds more
    assert wait_until(lambda: master_markers(kube) == [], 15) is not None, master_markers(kube)
