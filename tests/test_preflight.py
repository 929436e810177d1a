"""The preflight (`chaosali check`, `hosts_ready`) judged on canned host answers: no lab, no SSH."""

from __future__ import annotations

import pytest

from chaosali.core.errors import InvalidArgument
from chaosali.host import preflight
from chaosali.host.ssh import Host, SSHSettings, SudoRefused

PATH = "/usr/bin:/bin"
HEALTHY = {
    "privilege": ("ok", "root"), "command setsid": ("ok", "/usr/bin/setsid"), "command nohup": ("ok", "/usr/bin/nohup"),
    "command iptables": ("ok", "/usr/sbin/iptables"), "iptables": ("ok", "iptables v1.8.9 (nf_tables)"),
    "command tc": ("ok", "/usr/sbin/tc"), "command ip": ("ok", "/usr/sbin/ip"), "qdisc tbf": ("ok", "tc tbf"),
    "route": ("ok", "default route via eth0"), "command stress-ng": ("fail", f"stress-ng not found on PATH ({PATH})"),
    "marker root": ("ok", "/run/chaosali writable"), "free space": ("info", "/var/tmp 1048576"), "clock": ("info", "0"),
}


def answer(monkeypatch: pytest.MonkeyPatch, rows: dict | Exception) -> None:
    def run_script(host: Host, script: str, settings: SSHSettings) -> str:
        if isinstance(rows, Exception):
            raise rows
        return "".join(f"{check}\t{status}\t{detail}\n" for check, (status, detail) in rows.items())

    monkeypatch.setattr(preflight, "run_script", run_script)


def check(faults: str) -> dict:
    return preflight.check_hosts([Host("10.0.0.5", name="web1")], preflight.fault_names(faults), {}, SSHSettings())


def verdicts(report: dict) -> dict:
    return {v["fault"]: v["reason"] for v in report["hosts"][0]["faults"]}


def test_a_healthy_host_is_ready_and_a_missing_optional_tool_is_information(monkeypatch):
    answer(monkeypatch, HEALTHY)
    report = check("cut_network,limit_bandwidth,stress_cpu")
    assert report["ready"] and verdicts(report) == {"cut_network": "", "limit_bandwidth": "", "stress_cpu": ""}
    rows = {row["check"]: row for row in report["hosts"][0]["checks"]}
    assert rows["command stress-ng"]["status"] == "info" and "plain-shell fallback" in rows["command stress-ng"]["detail"]
    assert report["hosts"][0]["free_space"] == {"path": "/var/tmp", "bytes": 2**30}
    assert "ready: every host can take and heal" in preflight.table(report)


def test_each_missing_piece_fails_the_faults_that_need_it_with_its_reason(monkeypatch):
    no_delayer = ("no sch_netem, and the NFQUEUE delayer needs python3 with the fnfqueue package (pip install fnfqueue, "
                  "or set configuration delay_python to a Python that has it): ModuleNotFoundError: No module named "
                  "'fnfqueue'")
    answer(monkeypatch, {**HEALTHY, "command tc": ("fail", f"tc not found on PATH ({PATH})"),
                         "qdisc tbf": ("fail", f"tc not found on PATH ({PATH})"),
                         "delay via python3": ("fail", no_delayer)})
    report = check("limit_bandwidth,delay_network,cut_network")
    assert not report["ready"]
    reasons = verdicts(report)
    assert reasons["limit_bandwidth"] == f"bandwidth unavailable: tc not found on PATH ({PATH})"
    assert reasons["delay_network"] == f"delay unavailable: {no_delayer}"
    assert reasons["cut_network"] == ""
    assert "NOT READY: web1 (10.0.0.5): limit_bandwidth, delay_network" in preflight.table(report)


def test_a_delay_is_ready_by_netem_or_by_the_nfqueue_delayer_of_the_python_configured(monkeypatch):
    by_nfqueue = "nfqueue: no sch_netem here; iptables NFQUEUE and the delayer (/opt/py/bin/python3, fnfqueue)"
    answer(monkeypatch, {**HEALTHY, "delay via /opt/py/bin/python3": ("ok", by_nfqueue)})
    report = preflight.check_hosts([Host("10.0.0.5", name="web1")], ["delay_network"],
                                   {"delay_python": "/opt/py/bin/python3"}, SSHSettings())
    assert report["ready"] and verdicts(report) == {"delay_network": ""}
    assert "delay via /opt/py/bin/python3  ok" in preflight.table(report) and by_nfqueue in preflight.table(report)
    # the script asks the Python configured, and nothing else of the delay
    script = preflight.check_script(["delay_network"], {"delay_python": "/opt/py/bin/python3"})
    assert "CHAOSALI_DELAY_PYTHON=/opt/py/bin/python3" in script and "CHAOSALI_QDISCS=''" in script
    with pytest.raises(InvalidArgument, match="delay_python"):
        preflight.check_script(["delay_network"], {"delay_python": "python3; reboot"})


def test_a_sudo_that_wants_a_password_blocks_every_fault_and_says_why(monkeypatch):
    answer(monkeypatch, SudoRefused("sudo refused user 'ops' (a password is required); nothing was run: allow ..."))
    report = check(None)
    assert not report["ready"] and set(verdicts(report)) == set(preflight.FAULTS)
    assert all(reason.endswith("unavailable: no privilege") for reason in verdicts(report).values())
    assert "web1 (10.0.0.5): privilege: sudo refused user 'ops'" in preflight.table(report)


def test_faults_are_host_actions_or_kinds():
    assert preflight.fault_names("network-cut, stress_cpu") == ["cut_network", "stress_cpu"]
    with pytest.raises(InvalidArgument, match="'cut' is not a host action or fault kind; known: cut_network"):
        preflight.fault_names(["cut"])
