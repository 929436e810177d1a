"""The run's ledger (``chaosali.core.ledger``): one record per fault, on disk as the run goes, and
what ``chaosali cleanup`` reads back from the ledger of a run that died."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from chaosali.core import ledger, memory, undo


@pytest.fixture(autouse=True)
def state_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CHAOSALI_STATE_DIR", str(tmp_path))
    memory.forget()
    yield tmp_path / "ledger"
    memory.forget()


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def test_a_record_is_on_disk_before_the_fault_is_injected_and_private(state_directory: Path):
    with ledger.injecting("cut_network", ["master1 (10.9.0.2)"]) as record:
        on_disk = json.loads((state_directory / f"{record.run}.json").read_text())
        assert [fault["state"] for fault in on_disk["faults"]] == ["injecting"]
        record.started = "2026-01-01T00:00:00+00:00"
        record.heal = lambda: "a secret the heal's closure may hold"
        record.undo = {"by": "hosts", "fault_ids": [record.id], "hosts": [{"address": "10.9.0.2"}]}
    path = state_directory / f"{record.run}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = json.loads(path.read_text())["faults"][0]
    assert written["state"] == "in effect" and written["undo"]["hosts"] == [{"address": "10.9.0.2"}]
    assert "heal" not in written and "secret" not in path.read_text()


def test_a_run_that_ends_with_nothing_open_removes_its_ledger_and_one_with_a_fault_open_keeps_it(state_directory: Path):
    with ledger.injecting("drain", ["node worker1"]) as record:
        record.started = "2026-01-01T00:00:00+00:00"
    ledger.closed(record.id)
    memory.forget()
    assert _files(state_directory) == []
    with ledger.injecting("drain", ["node worker1"]) as record:
        record.started = "2026-01-01T00:00:00+00:00"
        record.undo = {"by": "uncordon", "nodes": ["worker1"], "drain_id": record.id}
    memory.forget()
    assert _files(state_directory) == [f"{record.run}.json", f"{record.run}.lock"]
    [found] = ledger.ledgers()
    assert not found.alive and [r.id for r in found.open] == [record.id] and found.open[0].state == "in effect"


def test_a_record_with_no_way_to_heal_it_later_is_not_open():
    with ledger.injecting("drain", ["node worker1"]) as record:
        record.started = "2026-01-01T00:00:00+00:00"
    assert record.state == "in effect" and not record.open  # nothing chaosali cleanup could do


def test_a_failed_injection_says_why_and_holds_nothing_open(state_directory: Path):
    with pytest.raises(RuntimeError), ledger.injecting("fill_disk", ["worker1"]) as record:
        raise RuntimeError("the disk is too small")
    assert record.state == "not injected" and record.not_injected == "RuntimeError: the disk is too small"
    assert not record.open and ledger.fault_ends() == {}


def test_a_fault_that_heals_by_itself_is_closed_by_its_timer_and_its_end_is_the_timer():
    with ledger.injecting("cut_network", ["host1"]) as record:
        record.started, record.heals_by = "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:30+00:00"
    assert record.state == "healed by its timer" and not record.open
    assert ledger.fault_ends() == {record.id: "2026-01-01T00:00:30+00:00"}
    ledger.ended(record.id, "2026-01-01T00:00:10+00:00")  # restored sooner: the earlier end wins
    ledger.ended(record.id, "2026-01-01T00:00:20+00:00")
    assert ledger.fault_ends() == {record.id: "2026-01-01T00:00:10+00:00"}


def test_a_halt_heals_each_open_fault_once_and_closes_its_record():
    healed = []
    with ledger.injecting("drain", ["node worker1"]) as drain:
        drain.started, drain.heal = "2026-01-01T00:00:00+00:00", lambda: healed.append("uncordoned")
    with ledger.injecting("cut_network", ["host1"]) as cut:
        cut.started, cut.heals_by = "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00"
        cut.heal = lambda: healed.append("too late: its timer healed it")
    [outcome] = undo.heal_all()
    assert healed == ["uncordoned"] and outcome["healed"] and drain.state == "closed"
    assert undo.heal_all() == []


def test_a_dead_run_s_open_faults_are_healed_by_their_healers_oldest_first(state_directory: Path):
    calls = []
    ledger.healer("test-healer")(lambda spec, configuration, secrets: calls.append((spec["what"], configuration)))
    ledger.healer("test-broken")(lambda spec, configuration, secrets: 1 / 0)
    try:
        for what, by in (("first", "test-healer"), ("broken", "test-broken")):
            with ledger.injecting("drain", [what]) as record:
                record.started, record.undo = "2026-01-01T00:00:00+00:00", {"by": by, "what": what}
        memory.forget()
        [dead] = ledger.ledgers()
        outcomes = dead.heal({"kubeconfig_path": "k"}, {})
        assert [(r.targets, why) for r, why in outcomes] == [
            (["first"], "healed"), (["broken"], "not healed: ZeroDivisionError: division by zero")]
        assert calls == [("first", {"kubeconfig_path": "k"})]
        [still] = ledger.ledgers()
        assert [r.targets for r in still.open] == [["broken"]]
    finally:
        ledger.HEALERS.pop("test-healer")
        ledger.HEALERS.pop("test-broken")


def test_a_run_killed_with_sigkill_leaves_a_ledger_that_reads_as_dead(state_directory: Path):
    script = ("from chaosali.core import ledger; import time\n"
              "with ledger.injecting('drain', ['node worker1']) as r:\n"
              "    r.started, r.undo = '2026-01-01T00:00:00+00:00', {'by': 'uncordon'}\n"
              "print('injected', flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "injected"
        [running] = ledger.ledgers()
        assert running.alive and len(running.open) == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 5
    while ledger.ledgers()[0].alive and time.monotonic() < deadline:
        time.sleep(0.05)
    [dead] = ledger.ledgers()
    assert not dead.alive and [r.kind for r in dead.open] == ["drain"]


def test_a_record_read_back_from_a_hand_edited_file_keeps_what_is_well_formed():
    record = ledger.Fault.from_json({"id": "chaosali-0123abcd", "kind": "drain", "targets": "node worker1",
                                     "hosts": ["x"], "started": 5, "undo": {"by": "uncordon"}})
    assert record is not None and record.targets == [] and record.hosts == {} and record.started is None
    assert record.undo == {"by": "uncordon"}
    assert ledger.Fault.from_json(["not", "a", "record"]) is None


def test_the_report_reads_a_fault_not_injected_from_the_journal_s_ledger_even_without_faults_observed():
    from chaosali.core import extensions
    from chaosali.report.figures import read_run
    from chaosali.report.words import proof_sentence, run_verdict
    from reports import load

    journal = load("deviated.json")
    record = ledger.Fault("chaosali-0123abcd", "disk-fill", "run-x", ["worker1"],
                          not_injected="path /nonexistent/x is not a directory on this host")
    journal["extensions"] = [*(journal.get("extensions") or []),
                             {"name": extensions.LEDGER, "run": "run-x", "faults": [record.to_json(), "not a record"]}]
    for entry in journal["steady_states"]["after"]["probes"] if journal["steady_states"].get("after") else []:
        entry["output"] = None  # no faults_observed judged anything: the ledger alone says it
    run = read_run(journal)
    assert run.fault_proven is False and run_verdict(run) == "FAULT NOT OBSERVED"
    assert proof_sentence(run) == ("FAULT NOT OBSERVED: disk-fill chaosali-0123abcd on worker1: not injected: "
                                   "path /nonexistent/x is not a directory on this host; the drill proved nothing")


def test_a_dead_run_s_record_of_another_environment_is_left_for_its_own_cleanup(state_directory: Path):
    def elsewhere(spec: dict, configuration: dict, secrets: dict) -> None:
        raise ledger.Elsewhere("in the cluster at https://10.9.0.2:6443, not this kubeconfig's")

    ledger.healer("test-elsewhere")(elsewhere)
    try:
        with ledger.injecting("drain", ["node worker1"]) as record:
            record.started, record.undo = "2026-01-01T00:00:00+00:00", {"by": "test-elsewhere"}
        memory.forget()
        [dead] = ledger.ledgers()
        [(_, outcome)] = dead.heal({}, {})
        assert outcome == "left: in the cluster at https://10.9.0.2:6443, not this kubeconfig's"
        assert [r.id for r in ledger.ledgers()[0].open] == [record.id]
    finally:
        ledger.HEALERS.pop("test-elsewhere")
