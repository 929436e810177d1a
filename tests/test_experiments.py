"""The shipped experiments, run with the real ``chaos`` command against the lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from chaosali.report.fmea import validate_fmea
from helpers import REPO, chaos_run, fault_proven, journal_of, passed, ping, tcp_answers, wait_until

EXPERIMENTS = sorted((REPO / "experiments").glob("*.json"))


def run_on_test_lab(lab, tmp_path: Path, experiment: str, *extra: str, **popen) -> subprocess.Popen:
    """``chaos run`` aimed at the test lab's first host."""
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"configuration": {"target_hosts": [lab.hosts[0].as_target()]}}))
    return chaos_run(tmp_path, experiment, [lab.vars_path, target], *extra, **popen)


def test_every_experiment_passes_chaos_validate():
    """What ``chaos validate`` checks (chaoslib's validation: activities, controls, their arguments),
    in this process: scripts/test-pythons runs the command itself on every experiment, on each Python."""
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    assert EXPERIMENTS, "no experiments shipped"
    for experiment in EXPERIMENTS:
        ensure_experiment_is_valid(load_experiment(str(experiment)))  # raises InvalidExperiment, naming it
        validate_fmea(json.loads(experiment.read_text()))  # raises naming what is wrong


def verdict_probes(experiment: dict) -> list[dict]:
    return [p for p in experiment["steady-state-hypothesis"]["probes"]
            if p["provider"].get("func") in ("faults_observed", "impact_within")]


def test_every_experiment_s_own_verdict_judges_the_fault_and_the_fmea():
    """chaos run's verdict carries both judgements: the steady state ends with faults_observed and,
    where a cluster is recorded, impact_within bounded by the FMEA itself (impact and limits)."""
    for path in EXPERIMENTS:
        experiment = json.loads(path.read_text())
        fmea, probes = validate_fmea(experiment), verdict_probes(experiment)
        names = [p["provider"]["func"] for p in probes]
        last = [p["provider"]["func"] for p in experiment["steady-state-hypothesis"]["probes"][-len(probes):]]
        assert last == names and names[0] == "faults_observed", f"{path.name}: ends with {last}"
        assert probes[0]["tolerance"] == {"type": "jsonpath", "path": "$.all_seen", "expect": True}, path.name
        recorded = any(c["provider"]["module"] == "chaosali.impact.controls" for c in experiment.get("controls", []))
        limits = {key: value for key, value in fmea.items() if key.startswith(("max_", "min_"))}
        if not recorded:  # a drill of hosts alone: nothing to record, no limit to judge
            assert names == ["faults_observed"] and not limits, path.name
            continue
        assert names == ["faults_observed", "impact_within"], path.name
        arguments = {key: experiment["configuration"][value[2:-1]] if str(value).startswith("${") else value
                     for key, value in probes[1]["provider"]["arguments"].items()}
        assert arguments == {**limits, "max_impact": fmea["impact"]}, path.name


def test_every_experiment_that_declares_an_alert_takes_the_monitoring_from_the_var_file():
    """A var file fills only the configuration keys and secrets scopes an experiment declares: one that
    declares an alert without the prometheus scope records no alert (its recorder cannot verify
    Prometheus), and its drill is NOT DETECTED however soon the alert fires."""
    for path in EXPERIMENTS:
        experiment = json.loads(path.read_text())
        detection = next(e for e in experiment["extensions"] if e["name"] == "chaosali")["fmea"].get("detection")
        if isinstance(detection, list) and any("alert" in d for d in detection):
            assert "prometheus_url" in experiment["configuration"], path.name
            assert "prometheus" in experiment.get("secrets", {}), path.name


def test_every_experiment_is_run_to_its_verdict_by_a_lab_test():
    """Each shipped experiment is run by some lab test that requires passed(): completed, not
    deviated, its fault proven (and, through journal_of, the report agreeing with chaos run)."""
    tests = {path.name: path.read_text() for path in (REPO / "tests").glob("test_*.py")}
    for path in EXPERIMENTS:
        runners = [name for name, text in tests.items() if f'"{path.name}"' in text and "passed(journal)" in text]
        assert runners, f"{path.name}: no lab test runs it and requires passed(journal)"


def test_host_netcut_journal_tells_the_cut_and_the_healing(lab, tmp_path):
    run = run_on_test_lab(lab, tmp_path, "host-netcut.json")
    journal = journal_of(run, tmp_path, timeout=120)

    assert run.returncode == 0 and passed(journal)
    cut, during = journal["run"]
    assert cut["status"] == "succeeded" and cut["output"]["fault_id"].startswith("chaosali-")
    assert [h["address"] for h in cut["output"]["hosts"]] == [lab.hosts[0].address]
    assert during["output"]["unreachable"] is True, "the host still answered during the cut"
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    seen = fault_proven(journal)
    assert seen["all_seen"] is True and [entry["seen"] for entry in seen["evidence"]] == [True]
    assert journal["rollbacks"][0]["status"] == "succeeded"
    assert journal["rollbacks"][0]["output"] == {"restored": {str(lab.hosts[0].name) + f" ({lab.hosts[0].address})": []}}


def test_host_netcut_that_cuts_nothing_deviates(lab, tmp_path):
    # a cut of one port nobody uses: the fault is injected, but the host still answers
    experiment = json.loads((REPO / "experiments" / "host-netcut.json").read_text())
    experiment["method"][0]["provider"]["arguments"]["ports"] = [9]
    (tmp_path / "sabotaged.json").write_text(json.dumps(experiment))
    run = run_on_test_lab(lab, tmp_path, str(tmp_path / "sabotaged.json"))
    journal = journal_of(run, tmp_path, timeout=120)  # the report says FAULT NOT OBSERVED too

    assert journal["deviated"] is True and journal["run"][0]["status"] == "succeeded"
    seen = journal["steady_states"]["after"]["probes"][-1]
    assert seen["tolerance_met"] is False and "less than the 100 % expected" in seen["output"]["why"]


def test_sigkill_of_chaos_run_mid_cut_the_host_still_heals_on_time(lab, tmp_path):
    target = lab.hosts[0]
    run = run_on_test_lab(lab, tmp_path, "host-netcut.json", "--var", "cut_seconds:int=5", start_new_session=True)
    started = time.monotonic()
    cut_seen = wait_until(lambda: not tcp_answers(target.address, timeout=0.3), 20)
    assert cut_seen is not None, "the cut never took effect"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()

    healed = wait_until(lambda: tcp_answers(target.address, timeout=0.3), 20)
    assert healed is not None, "the host did not heal after the controller was killed"
    # the cut started after validation and the steady state: heal within its 5 s + a few seconds
    assert cut_seen + healed < 5 + 5
    assert time.monotonic() - started < 20
    assert ping(target.address) == 1


def test_journal_and_log_hold_no_private_key_password_or_passphrase(lab, tmp_path):
    passphrase, password = "correct-horse-battery-staple-42", "hunter2-password-99"
    key = serialization.load_ssh_private_key(lab.key_path.read_bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    key_file = tmp_path / "id_encrypted"
    key_file.write_bytes(encrypted)
    key_file.chmod(0o600)
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"secrets": {"ssh": {
        "user": "root", "key_path": str(key_file), "passphrase": passphrase, "password": password,
    }}}))

    run = run_on_test_lab(lab, tmp_path, "host-netcut.json", "--var-file", str(secrets))
    output = run.communicate(timeout=120)[0].decode()
    assert run.returncode == 0, output

    journal = (tmp_path / "journal.json").read_text()
    assert json.loads(journal)["run"][0]["status"] == "succeeded"  # the encrypted key was really used
    body = encrypted.decode().splitlines()[1]
    lab_key_body = lab.key_path.read_text().splitlines()[1]
    for text in (journal, (tmp_path / "chaostoolkit.log").read_text(), output):
        for secret in (passphrase, password, body, lab_key_body):
            assert secret not in text

