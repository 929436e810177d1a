"""A drill's faults are proven only by evidence: what ``faults_observed`` judges from the run's
memory (``chaosali.core.evidence``), before, during and after faults."""

from __future__ import annotations


import pytest

from chaosali.core import evidence, ledger, memory
from chaosali.impact.probes import faults_observed


def injected(kind: str, on: str) -> None:
    """A fault on the run's ledger, as a domain records one it injected."""
    with ledger.injecting(kind, [on]) as record:
        record.started = "2026-01-01T00:00:00+00:00"



def test_before_any_fault_nothing_is_to_prove_and_nothing_seen_counts():
    evidence.observed("the API down", True, "first down at t0", expected=False)
    evidence.observed("network effect on host1", False, "lost 0 %")
    judged = faults_observed()
    assert judged["all_seen"] is True and judged["proven"] is None and judged["evidence"] == []


def test_a_fault_nothing_saw_is_not_proven():
    injected("network-cut", "chaosali-1 on host1")
    judged = faults_observed()
    assert judged["all_seen"] is False and judged["proven"] is False
    assert judged["why"].startswith("no evidence that the fault took effect")


def test_a_sighting_proves_a_fault():
    injected("network-cut", "chaosali-1 on master1")
    evidence.observed("the API down", True, "first down at t1, back at t2", expected=False)
    judged = faults_observed()
    assert judged["proven"] is True and "why" not in judged


def test_no_outage_seen_by_a_watch_neither_proves_nor_disproves():
    injected("reboot", "worker1")
    evidence.observed("nodes down", False, "never down", expected=False)  # a resilient system
    evidence.observed("reboot of worker1", True, "new boot identity")
    judged = faults_observed()
    assert judged["proven"] is True and [e["what"] for e in judged["evidence"]] == ["reboot of worker1"]


def test_an_expected_effect_missed_fails_the_proof_whatever_else_was_seen():
    injected("drain", "chaosali-2 of node worker1")
    evidence.observed("the API down", True, "first down at t1", expected=False)
    evidence.observed("drain of worker1", False, "0 pods evicted, 0 blocked by a budget, 1 skipped")
    judged = faults_observed()
    assert judged["proven"] is False and judged["why"] == "drain of worker1: 0 pods evicted, 0 blocked by a budget, 1 skipped"


def test_a_live_source_is_asked_only_once_a_fault_was_injected():
    asked = []
    evidence.add_source("recording", lambda: asked.append(1) or [
        {"what": "the impact recording", "seen": True, "detail": "partial impact recorded", "expected": False}])
    assert faults_observed()["proven"] is None and asked == []
    injected("stress-cpu", "worker2")
    assert faults_observed()["proven"] is True and asked == [1]


def test_the_run_s_end_forgets_the_evidence():
    injected("network-cut", "host1")
    memory.forget()
    assert faults_observed()["proven"] is None


def test_a_fault_that_did_not_go_in_fails_the_proof_whatever_was_seen():
    injected("network-cut", "host1")
    with pytest.raises(RuntimeError), ledger.injecting("fill_disk", ["host2"]) as record:
        raise RuntimeError("path /nonexistent/x is not a directory on this host")
    evidence.observed("the API down", True, "first down at t1", expected=False)
    judged = faults_observed()
    assert judged["all_seen"] is False and judged["proven"] is False
    assert judged["why"] == f"fill_disk {record.id} not injected: RuntimeError: path /nonexistent/x is not a directory on this host"
    assert [fault["state"] for fault in judged["faults"]] == ["in effect", "not injected"]


def test_a_fault_refused_before_its_injection_began_is_not_injected():
    with pytest.raises(ValueError), ledger.attempt("drain", {"nodes": "role=none"}):
        raise ValueError("no node matches role=none")
    judged = faults_observed()
    assert judged["proven"] is False and "drain" in judged["why"] and "no node matches role=none" in judged["why"]


def test_a_fault_that_went_in_on_some_targets_only_is_not_proven():
    with ledger.injecting("cut_network", ["host1", "host2"]) as record:
        record.started, record.not_injected = "2026-01-01T00:00:00+00:00", "not on 1 of 2 host(s): host2: login refused"
    evidence.observed("network effect on host1", True, "lost 100 %")
    judged = faults_observed()
    assert judged["proven"] is False and "host2: login refused" in judged["why"]
