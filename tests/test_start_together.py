"""Faults that start together: every host waits for one instant the controller chose, records when
its fault took effect, and the output gives the skew; the dead-man timer counts the wait."""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest

from chaosali.core.errors import InvalidArgument
from chaosali.host import actions, faults
from chaosali.host.faults import FaultScript
from helpers import wait_until


def together(at: float, duration: float = 60) -> FaultScript:
    return FaultScript(kind="probe-together", duration=duration, apply=["true"], undo=["true"], report=["echo ok"], at=at)


def test_hosts_wait_for_the_instant_and_record_it(marker_root):
    at = time.time() + 1
    runs = [subprocess.Popen(["sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    for run in runs:
        run.stdin.write(together(at).render())
        run.stdin.close()
    entries = [faults._effect(run.stdout.read()) for run in runs]
    assert all(run.wait(5) == 0 for run in runs)
    assert all(entry["report"] == ["ok"] for entry in entries)
    instants = [dt.datetime.fromisoformat(entry["effective_at"]).timestamp() for entry in entries]
    # never before the instant; the bounds after it leave room for a busy machine's scheduling
    assert all(0 <= instant - at < 0.5 for instant in instants), [instant - at for instant in instants]
    summary = faults._together(at, entries)
    assert summary["skew_seconds"] == round(max(instants) - min(instants), 6) and summary["skew_seconds"] < 0.3


def test_the_dead_man_timer_counts_the_wait(marker_root):
    fault = together(time.time() + 1.5, duration=0.5)
    assert subprocess.run(["sh", "-s"], input=fault.render(), text=True, capture_output=True).returncode == 0
    assert (marker_root / fault.id).exists(), "healed before the fault's own duration had passed"
    assert wait_until(lambda: not (marker_root / fault.id).exists(), 5) is not None


def test_a_fault_without_an_instant_reports_no_instant(marker_root):
    out = subprocess.run(["sh", "-s"], input=together(None).render(), text=True, capture_output=True).stdout
    assert faults._effect(out) == {"report": ["ok"]}


def test_start_together_and_its_lead_are_checked_before_any_host(monkeypatch):
    monkeypatch.setattr(faults, "run_script", lambda *_: pytest.fail("a host was reached"))
    with pytest.raises(InvalidArgument, match="start_together must be true or false"):
        actions.cut_network(["10.0.0.5"], start_together="soon")
    with pytest.raises(InvalidArgument, match="configuration start_together_lead"):
        actions.cut_network(["10.0.0.5"], start_together=True, configuration={"start_together_lead": -1})


def test_three_lab_hosts_cut_at_one_instant(lab, chaos_args):
    addresses = [host.address for host in lab.hosts]
    cut = actions.cut_network(addresses, ports=[9], duration=30, start_together=True, **chaos_args)
    try:
        assert len([entry for entry in cut["hosts"] if "effective_at" in entry]) == 3
        print(f"\nstart_together on 3 lab hosts: skew {cut['skew_seconds'] * 1000:.1f} ms")
        assert cut["skew_seconds"] <= 0.05
        assert all(entry["effective_at"] >= cut["start_at"] for entry in cut["hosts"])
    finally:
        actions.restore_network(addresses, **chaos_args)
