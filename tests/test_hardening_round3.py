"""Hardening, third round (issue 34): each break found from outside, proven here before its fix.

Stop conditions keep no secret in the journal and fail closed on a slow or malformed answer;
Prometheus answers go through the one HTTP layer; the report's new sections and the plan refuse
hostile shapes without a traceback; masking masks secrets, not figures or names."""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

from chaosali.service.probes import service_available
from reports import load
from webserver import Answer, LocalServer

TOKEN = "tkn-4f9c2e7a1b"


def chaos_run(tmp_path, experiment: dict, **env: str) -> dict:
    """``chaos run`` of ``experiment`` in ``tmp_path``: its journal (the run's output in the failure message)."""
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    done = subprocess.run(["chaos", "run", "--journal-path", str(tmp_path / "journal.json"), str(path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert (tmp_path / "journal.json").exists(), done.stdout + done.stderr
    return json.loads((tmp_path / "journal.json").read_text())


def test_a_stop_condition_filled_in_by_a_secret_keeps_it_out_of_the_journal(http: LocalServer, tmp_path):
    http.routes["/health"] = Answer(b"ok", needs_header=("Authorization", f"Bearer {TOKEN}"))
    answers = {"type": "probe", "name": "api", "tolerance": {"type": "jsonpath", "path": "$.ok", "expect": False},
               "provider": {"type": "python", "module": "chaosali.service.probes", "func": "service_available",
                            "secrets": ["api"], "arguments": {"url": http.url("/health"), "timeout": 2,
                                                              "headers": {"Authorization": "Bearer ${api_token}"}}}}
    experiment = {
        "title": "a stop condition with a secret header", "description": "halted at its first check",
        "secrets": {"api": {"api_token": {"type": "env", "key": "CHAOSALI_TEST_API_TOKEN"}}},
        "controls": [{"name": "safety", "provider": {"type": "python", "module": "chaosali.safety.controls",
                                                     "arguments": {"conditions": [{"name": "api answers",
                                                                                   "probe": answers}]}}}],
        "method": [{"type": "action", "name": "wait", "provider": {"type": "process", "path": "sleep",
                                                                   "arguments": "10"}}],
    }
    journal = chaos_run(tmp_path, experiment, CHAOSALI_TEST_API_TOKEN=TOKEN)
    safety = next(e for e in journal["extensions"] if e["name"] == "chaosali-safety")
    assert ("/health", TOKEN) in [(path, headers.get("Authorization", "")[7:]) for path, headers in http.seen]
    assert safety["halt"]["condition"] == "api answers"  # the check ran with the token filled in, and broke
    declared = safety["halt"]["declared"]["probe"]["provider"]["arguments"]["headers"]
    assert declared == {"Authorization": "Bearer ${api_token}"}
    assert safety["conditions"][0] == safety["halt"]["declared"]
    assert TOKEN not in (tmp_path / "journal.json").read_text()


def test_a_condition_given_only_substituted_keeps_its_secret_values_masked():
    from chaosali.safety.conditions import conditions

    probe = {"type": "probe", "name": "api", "tolerance": True, "provider": {
        "type": "python", "module": "os", "func": "getenv", "arguments": {"key": f"Bearer {TOKEN}"}}}
    [condition] = conditions([{"name": "api", "probe": probe}], {}, {"api": {"api_token": TOKEN}})
    assert condition.spec["probe"]["provider"]["arguments"] == {"key": "Bearer ***"}
    assert condition.spec["probe"]["provider"]["module"] == "os"


# ---- 2, 3, 4: every outbound call has one deadline; Prometheus answers are read capped, unencoded, checked

def prometheus_answer(document: object) -> Answer:
    return Answer(json.dumps(document).encode(), headers={"Content-Type": "application/json"})


def watch_until_halted(condition: dict, seconds: float) -> dict | None:
    """Watch one stop condition for at most ``seconds`` (the halt interrupts this thread, as it
    interrupts chaos run's): its halt, or None."""
    from chaosali.core import memory
    from chaosali.safety.conditions import conditions
    from chaosali.safety.halt import Watch

    watch = Watch(conditions([condition]), {}, {})
    try:
        watch.start()
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:  # short sleeps: a simulated Ctrl-C waits for the sleep to end
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        watch.stop()
        memory.forget()
    return watch.halt


def promql_condition(url: str, probe: str = "query", **arguments) -> dict:
    func_arguments = {"expression": "count(ALERTS) or vector(0)"} if probe == "query" else {}
    return {"name": "no critical alert", "interval": 0.1, "failures": 1, "probe": {
        "type": "probe", "name": "critical", "tolerance": [0, 0] if probe == "query" else True,
        "provider": {"type": "python", "module": "chaosali.monitoring.probes", "func": probe,
                     "arguments": {**func_arguments, "url": url, "timeout": 1, **arguments}}}}


def test_a_prometheus_that_trickles_its_headers_fails_the_query_at_its_deadline(http: LocalServer):
    from chaosali.monitoring.probes import query

    http.routes["/api/v1/query"] = Answer(trickle="headers")
    started = time.monotonic()
    with pytest.raises(ActivityFailed, match=r"Prometheus at http://127.0.0.1:\d+: no complete answer within 1 s"):
        query("up", url=http.url(""), timeout=1)
    assert time.monotonic() - started < 2.5


def test_a_stop_condition_on_a_trickling_prometheus_halts_the_drill_as_a_dead_one_does(http: LocalServer):
    http.routes["/api/v1/query"] = Answer(trickle="headers")
    halt = watch_until_halted(promql_condition(http.url("")), 6)
    assert halt is not None and "no complete answer within 1 s" in halt["why"]


@pytest.mark.parametrize("trickle", ["headers", "body"])
def test_a_service_that_trickles_its_answer_is_not_available(http: LocalServer, trickle):
    http.routes["/slow"] = Answer(trickle=trickle)
    started = time.monotonic()
    result = service_available(http.url("/slow"), contains="x", timeout=1, retries=1, retry_delay=0.1)
    assert result["ok"] is False and result["reason"] == "no complete answer within 1 s", result
    assert time.monotonic() - started < 4


def _gzip_of_zeros(megabytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    zeros = bytes(1024 * 1024)
    return b"".join(packer.compress(zeros) for _ in range(megabytes)) + packer.flush()


def test_a_gzip_bomb_from_prometheus_is_refused_undecoded(http: LocalServer):
    from chaosali.monitoring.probes import query

    bomb = _gzip_of_zeros(256)
    http.routes["/api/v1/query"] = Answer(bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    tracemalloc.start()
    try:
        with pytest.raises(ActivityFailed, match=r"the answer is encoded \(gzip\) although the request asked"):
            query("up", url=http.url(""), timeout=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert http.seen[-1][1]["Accept-Encoding"] == "identity"
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_a_prometheus_answer_larger_than_the_cap_is_refused(http: LocalServer):
    from chaosali.monitoring.probes import query

    http.routes["/api/v1/query"] = Answer(b"[" + b"0," * (3 * 2**20) + b"0]", content_length=False)
    with pytest.raises(ActivityFailed, match="the answer is larger than 4 MiB"):
        query("up", url=http.url(""), timeout=5)


MALFORMED_ALERTS = [{"status": "success"}, {"status": "success", "data": None},
                    {"status": "success", "data": {"alerts": "KubeAPIDown"}},
                    {"status": "success", "data": {"alerts": None}}, {"status": "success", "data": {}},
                    {"status": "success", "data": {"alerts": ["KubeAPIDown"]}},
                    {"status": "success", "data": {"alerts": [{"labels": "severity=critical", "state": "firing"}]}}]


@pytest.mark.parametrize("answer", MALFORMED_ALERTS)
def test_a_malformed_alerts_answer_is_an_error_not_no_alerts(http: LocalServer, answer):
    from chaosali.monitoring.probes import alerts_firing

    http.routes["/api/v1/alerts"] = prometheus_answer(answer)
    with pytest.raises(ActivityFailed, match="malformed alerts answer|a Prometheus answer without its data"):
        alerts_firing(labels={"severity": "critical"}, url=http.url(""))


@pytest.mark.parametrize("data", [None, {}, {"resultType": "vector", "result": "1"},
                                  {"resultType": "vector", "result": [{"value": "1"}]},
                                  {"resultType": "scalar", "result": None}, {"resultType": "odd", "result": []}])
def test_a_malformed_query_answer_is_an_error(http: LocalServer, data):
    from chaosali.monitoring.probes import query

    http.routes["/api/v1/query"] = prometheus_answer({"status": "success", "data": data})
    with pytest.raises(ActivityFailed, match="malformed query answer|a Prometheus answer without its data"):
        query("up", url=http.url(""))


def test_a_no_critical_alert_condition_on_a_malformed_answer_fails_closed(http: LocalServer):
    http.routes["/api/v1/alerts"] = prometheus_answer({"status": "success", "data": {"alerts": None}})
    condition = promql_condition(http.url(""), probe="alerts_firing", labels={"severity": "critical"})
    condition["probe"]["tolerance"] = {"type": "jsonpath", "path": "$.count", "expect": 0}
    halt = watch_until_halted(condition, 4)
    assert halt is not None and "malformed alerts answer" in halt["why"]


def test_a_well_formed_prometheus_answer_still_reads(http: LocalServer):
    from chaosali.monitoring.probes import alerts_firing, query

    http.routes["/api/v1/alerts"] = prometheus_answer({"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "KubeAPIDown", "severity": "critical"}, "state": "firing", "activeAt": "t",
         "annotations": {"summary": "s"}}]}})
    http.routes["/api/v1/query"] = prometheus_answer({"status": "success", "data": {
        "resultType": "vector", "result": [{"metric": {}, "value": [1, "3"]}]}})
    assert alerts_firing(labels={"severity": "critical"}, url=http.url(""))["count"] == 1
    assert query("up", url=http.url("")) == 3.0


# ---- 5, 6, 8: the report's new sections: plan vs run in every format, masked, clean; hostile shapes

SECRET = "hunter2-Sup3r-secret"
PLANNED_HOSTS = [{"name": "master1", "address": "10.224.0.11"}]


def journal_with_sections() -> dict:
    """alerts.json with a halt, a verified revert that left something, and the plan control's plan."""
    journal = load("alerts.json")
    journal["extensions"] += [
        {"name": "chaosali-safety", "conditions": [{"name": "web", "limit": "min_availability", "budget": 90}],
         "halt": {"condition": "web", "kind": "limit", "at": journal["start"], "value": 50, "why": "broke",
                  "healed": [{"fault": "network-cut chaosali-1a2b on master1", "healed": True, "seconds": 0.4}],
                  "heal_seconds": 0.4, "healed_at": journal["start"]},
         "interrupt": None, "revert": {"left_behind": [{"where": "10.224.0.11", "left": [
             {"what": "iptables", "detail": "-N chaosali-1a2b-in"}], "cleanup": "chaosali cleanup"}],
             "checked": ["10.224.0.11"], "seconds": 0.3}},
        {"name": "chaosali-plan", "plan": {"experiment": "cut", "activities": [
            {"phase": "method", "name": "cut-master-network", "activity": "chaosali.host.actions.cut_network",
             "hosts": PLANNED_HOSTS}]}},
    ]
    return journal


def report(tmp_path, journal: dict, fmt: str, capsys, *options: str) -> str:
    from chaosali.cli import main

    path = tmp_path / "journal.json"
    path.write_text(json.dumps(journal))
    status = main(["report", str(path), "--format", fmt, *options])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


@pytest.mark.parametrize("fmt", ["html", "junit"])
def test_a_journal_of_a_run_with_the_plan_control_renders_in_every_format(tmp_path, capsys, fmt):
    shown = report(tmp_path, journal_with_sections(), fmt, capsys)
    assert "no stop condition broke" in shown and "chaosali cleanup" in shown
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(journal_with_sections()["extensions"][-1]["plan"]))
    from chaosali.cli import main

    assert main(["report", str(tmp_path / "journal.json"), "--format", fmt, "--plan", str(plan)]) == 1
    assert f"plan vs run is shown in text, markdown or json, not {fmt}; drop --plan" in capsys.readouterr().err


@pytest.mark.parametrize("given", [False, True], ids=["the journal's plan", "a plan file"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_plan_vs_run_is_masked_and_safe_for_a_terminal(tmp_path, capsys, fmt, given):
    journal = journal_with_sections()
    journal["experiment"]["secrets"]["db"] = {"password": SECRET}
    name = f"cut \x1b]0;owned\x07\x1b[2J{SECRET}"
    journal["run"][0]["activity"]["name"] = name
    plan = journal["extensions"][-1]["plan"]
    plan["activities"][0]["name"] = name
    options = []
    if given:
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        options = ["--plan", str(tmp_path / "plan.json")]
    shown = report(tmp_path, journal, fmt, capsys, *options)
    assert "plan_vs_run" in shown if fmt == "json" else "lan vs run" in shown.lower()
    assert SECRET not in shown and "\x1b" not in shown and "\x07" not in shown
    if fmt == "json":
        [rows] = json.loads(shown)["plan_vs_run"].values()
        assert rows[0]["activity"].endswith("2J***") and rows[0]["same"] is True


def _section(journal: dict, name: str) -> dict:
    return next(e for e in journal["extensions"] if e["name"] == name)


def _plan_entry(journal: dict) -> dict:
    return _section(journal, "chaosali-plan")["plan"]["activities"][0]


HOSTILE = {
    "halt.healed a number": lambda j: _section(j, "chaosali-safety")["halt"].update(healed=5),
    "revert.left_behind a number": lambda j: _section(j, "chaosali-safety")["revert"].update(left_behind=5),
    "revert.left_behind an object": lambda j: _section(j, "chaosali-safety")["revert"].update(left_behind={"a": 1}),
    "conditions a string": lambda j: _section(j, "chaosali-safety").update(conditions="web"),
    "alert labels a string": lambda j: _section(j, "chaosali-impact")["recording"]["alerts"][3].update(
        labels="host=master1"),
    "alert labels a list": lambda j: _section(j, "chaosali-impact")["recording"]["alerts"][3].update(labels=["x"]),
    "plan phase unknown": lambda j: _plan_entry(j).update(phase="later"),
    "plan phase a list": lambda j: _plan_entry(j).update(phase=["method"]),
    "plan name an object": lambda j: _plan_entry(j).update(name={"a": 1}),
    "plan hosts a number": lambda j: _plan_entry(j).update(hosts=3),
    "plan host a string": lambda j: _plan_entry(j).update(hosts=["10.224.0.11"]),
    "plan address a number": lambda j: _plan_entry(j)["hosts"][0].update(address=7),
    "plan activity a string": lambda j: _section(j, "chaosali-plan")["plan"]["activities"].append("cut"),
}


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html", "junit"])
@pytest.mark.parametrize("hostile", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_shape_of_the_new_sections_is_shown_as_left_out_and_the_rest_renders(tmp_path, capsys, hostile, fmt):
    journal = journal_with_sections()
    HOSTILE[hostile](journal)
    shown = report(tmp_path, journal, fmt, capsys)
    assert "no stop condition broke" in shown or "left behind" in shown.lower()  # the rest renders
    if fmt in ("text", "markdown", "json") and not hostile.startswith("alert"):
        assert "left out" in shown


# ---- 9: chaosali plan says what is wrong in a malformed experiment, and where

def _cut_experiment() -> dict:
    return {"title": "cut a host", "description": "d",
            "method": [{"type": "action", "name": "cut", "provider": {
                "type": "python", "module": "chaosali.host.actions", "func": "cut_network",
                "arguments": {"targets": ["10.0.0.2"], "duration": 5}}}],
            "rollbacks": [], "controls": [{"name": "lock", "provider": {"type": "python",
                                                                      "module": "chaosali.lock.controls"}}],
            "extensions": [{"name": "chaosali", "fmea": {"category": "host", "severity": "low"}}]}


MALFORMED = {
    "an activity a string": (lambda e: e["method"].append("cut"), "method[1] must be an object, not a string"),
    "a provider a string": (lambda e: e["method"][0].update(provider="python"),
                            "method[0] 'cut': its provider must be an object, not a string"),
    "no func": (lambda e: e["method"][0]["provider"].pop("func"),
                "method[0] 'cut': its python provider needs module and func"),
    "list arguments": (lambda e: e["method"][0]["provider"].update(arguments=["10.0.0.2"]),
                       "method[0] 'cut': its arguments must be an object of named arguments, not a list"),
    "secrets a string": (lambda e: e["method"][0]["provider"].update(secrets="ssh"),
                         "method[0] 'cut': its secrets must be a list of secrets scope names"),
    "a control a string": (lambda e: e["controls"].append("lock"), "controls[1] must be an object, not a string"),
    "a control's provider a string": (lambda e: e["controls"][0].update(provider="lock"),
                                      "controls[0] 'lock': its provider must be an object, not a string"),
    "an extension a string": (lambda e: e["extensions"].append("chaosali"),
                              "extensions[1] must be an object, not a string"),
    "an fmea a string": (lambda e: e["extensions"][0].update(fmea="high"),
                         "the chaosali extension's fmea must be an object"),
    "rollbacks an object": (lambda e: e.update(rollbacks={"heal": 1}),
                            "the experiment's rollbacks must be a list, not an object"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_plan_names_what_is_wrong_in_a_malformed_experiment_and_exits_1(tmp_path, capsys, case):
    from chaosali.cli import main

    change, says = MALFORMED[case]
    experiment = _cut_experiment()
    change(experiment)
    (tmp_path / "experiment.json").write_text(json.dumps(experiment))
    assert main(["plan", str(tmp_path / "experiment.json"), "--no-preflight"]) == 1
    assert says in capsys.readouterr().err


# ---- 7: Secrets printed among other lines, more credential names, header pairs

def _printed_secret(name: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": {"password": base64.b64encode(value.encode()).decode()}}


def _encoded_values(*values: str) -> list[str]:
    return [form for value in values for form in (value, base64.b64encode(value.encode()).decode())]


PRINTED = {
    "two JSON Secrets back to back": lambda a, b: json.dumps(a, indent=2) + json.dumps(b, indent=2),
    "JSON after a created line": lambda a, b: "secret/a created\n" + json.dumps(a) + "\n" + json.dumps(b),
    "a YAML Secret then done.": lambda a, b: yaml.safe_dump(a) + "---\n" + yaml.safe_dump(b) + "done.\n",
    "a YAML Secret then a JSON one": lambda a, b: yaml.safe_dump(a) + json.dumps(b, indent=2) + "\n",
}


@pytest.mark.parametrize("printed", PRINTED, ids=list(PRINTED))
def test_secrets_printed_among_other_lines_are_masked_in_the_html(printed):
    from chaosali.report.figures import read_run
    from chaosali.report.render import render

    stdout = PRINTED[printed](_printed_secret("a", "pw-aaaa-0031"), _printed_secret("b", "pw-bbbb-0032"))
    journal = load("process-failure.json")
    journal["run"][0]["output"] = {"status": 0, "stdout": stdout, "stderr": ""}
    page = render([read_run(journal)], "html")
    assert base64.b64encode(b"pw-aaaa-0031").decode() in json.dumps(journal)  # the journal holds it
    assert not [value for value in _encoded_values("pw-aaaa-0031", "pw-bbbb-0032") if value in page]


def test_more_credential_names_and_header_pairs_are_masked():
    from chaosali.report.redact import MASK, redact

    output = {"pwd": "pwd-0041", "sessionid": "sid-0042", "session_id": "sid-0043", "signature": "sig-0044",
              "oauth": "oa-0045", "jwt": "jwt-0046", "X-Session-Id": "sid-0047",
              "headers": [["Authorization", "Bearer hp-0048"], ["X-Api-Key", "hp-0049"], ["Accept", "text/plain"]],
              "said": "sent hp-0049 and sid-0042"}
    masked = redact({"experiment": {}, "run": [{"output": output}]})["run"][0]["output"]
    assert masked["headers"] == [["Authorization", MASK], ["X-Api-Key", MASK], ["Accept", "text/plain"]]
    assert all(masked[name] == MASK for name in output if name not in ("headers", "said"))
    assert masked["said"] == f"sent {MASK} and {MASK}"


# ---- 10: mask what is secret, not every equal string

def test_a_projected_token_and_a_user_name_change_no_figure_name_or_path():
    from chaosali.report.figures import read_run
    from chaosali.report.redact import MASK
    from chaosali.report.render import render

    journal = load("process-failure.json")
    journal["experiment"]["secrets"]["prometheus"] = {"username": "chaosali", "password": "prom-pw-0051-long"}
    pod = {"kind": "Pod", "metadata": {"name": "web-1"}, "spec": {"volumes": [{"name": "kube-api-access", "projected": {
        "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}]}}
    journal["run"][0]["activity"]["name"] = "api token check"
    journal["run"][0]["activity"]["provider"] = {"type": "python", "module": "chaosali.host.actions", "func": "cut_network"}
    journal["run"][0]["output"] = {"pods": [pod], "measured": 3607, "url": "https://10.0.0.5:6443/token",
                                   "fault_id": "chaosali-1a2b3c4d", "said": "login as chaosali with prom-pw-0051-long"}
    run = read_run(journal)
    output, activity = run.journal["run"][0]["output"], run.journal["run"][0]["activity"]
    assert output["measured"] == 3607 and output["url"] == "https://10.0.0.5:6443/token"
    assert output["fault_id"] == "chaosali-1a2b3c4d" and activity["name"] == "api token check"
    assert activity["provider"]["module"] == "chaosali.host.actions"
    assert output["pods"][0]["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"] == MASK
    assert output["said"] == f"login as {MASK} with {MASK}"  # the user name alone, and the password, go
    shown = render([run], "text")
    assert "api token check" in shown and "prom-pw-0051-long" not in shown


# ---- also found: private keys of processes in another PID namespace; private files; deep YAML; urllib3's log

MAKER = """
import sys, time
from chaosali.core import private
directory = private.make()
open(directory + "/client.key", "w").write("-----BEGIN PRIVATE KEY-----")
print(directory, flush=True)
time.sleep(120)
"""


def _made_by_another_process(tmp_path, named_pid: int) -> tuple[subprocess.Popen, str]:
    """A private directory made by a live process, renamed as if that process had ``named_pid``
    in its own PID namespace (a lab host's process: this machine's /tmp, another pid)."""
    maker = subprocess.Popen([sys.executable, "-c", MAKER], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    made = maker.stdout.readline().strip()
    renamed = str(tmp_path / f"chaosali-kubeconfig-{named_pid}-{made[-8:]}")
    os.rename(made, renamed)
    return maker, renamed


def test_a_private_directory_s_owner_is_told_by_its_lock_not_by_a_pid_of_another_namespace(tmp_path, monkeypatch):
    from chaosali.core import private

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    unused = next(pid for pid in range(4194000, 4194300) if not os.path.exists(f"/proc/{pid}"))
    alive, alive_dir = _made_by_another_process(tmp_path, unused)  # its pid means nothing here
    dead, dead_dir = _made_by_another_process(tmp_path, 1)  # pid 1 lives here, not the maker
    try:
        dead.kill()
        dead.wait()
        removed, left = private.remove_orphans()
        assert removed == [dead_dir] and left == []
        assert os.path.isfile(os.path.join(alive_dir, "client.key"))
    finally:
        alive.kill()
        alive.wait()
    assert private.remove_orphans()[0] == [alive_dir]


def test_a_private_file_is_0600_from_its_creation_and_made_so_when_it_exists(tmp_path):
    from chaosali.core import private

    old = os.umask(0)
    try:
        private.write(tmp_path / "vars.json", '{"secrets": {}}')
        (tmp_path / "shared.key").write_text("old")
        (tmp_path / "shared.key").chmod(0o644)
        private.write(tmp_path / "shared.key", b"-----BEGIN PRIVATE KEY-----")
    finally:
        os.umask(old)
    assert [oct(os.stat(tmp_path / name).st_mode & 0o777) for name in ("vars.json", "shared.key")] == ["0o600"] * 2
    assert (tmp_path / "shared.key").read_bytes() == b"-----BEGIN PRIVATE KEY-----"
    (tmp_path / "link").symlink_to(tmp_path / "vars.json")
    with pytest.raises(OSError):
        private.write(tmp_path / "link", "x")


def test_a_kubeconfig_nested_thousands_deep_gets_the_download_s_own_error(http: LocalServer):
    import hashlib

    from chaosali.cluster import kubeconfig

    deep = b"clusters: " + b"[" * 5000 + b"]" * 5000
    url = http.serve("/deep", deep)
    with pytest.raises(kubeconfig.FetchFailed, match="not a kubeconfig: invalid YAML: nested too deep"):
        kubeconfig.fetch_private(kubeconfig.Source.of(url, hashlib.md5(deep).hexdigest()))


def test_urllib3_s_debug_log_shows_no_query_string(http: LocalServer, caplog):
    http.routes["/health"] = Answer(b"ok")
    with caplog.at_level(logging.DEBUG):
        assert service_available(http.url("/health?token=q-s3cret-0061"))["ok"]
    assert "q-s3cret-0061" not in caplog.text and "/health?" in caplog.text


@pytest.mark.parametrize("unit", ["- ", '{"Secret data":\n'], ids=["dashes", "JSON openings"])
def test_a_printed_document_nested_60000_deep_is_no_segfault(tmp_path, unit):
    """The C YAML loader recurses without a limit: the report process died of SIGSEGV."""
    journal = load("process-failure.json")
    journal["run"][0]["output"] = {"status": 0, "stdout": unit * 60000 + "Secret data", "stderr": ""}
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    done = subprocess.run([sys.executable, "-c", "import sys; from chaosali.cli import main; sys.exit(main(sys.argv[1:]))",
                           "report", str(tmp_path / "journal.json"), "--format", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    assert json.loads(done.stdout)["runs"][0]["title"] == journal["experiment"]["title"]


@pytest.mark.usefixtures("one_test_session_at_a_time")
def test_lab_down_leaves_no_key_a_process_of_its_hosts_made(tmp_path):
    """A process in a lab host (its own PID namespace, this machine's /tmp) makes a private
    kubeconfig directory and is killed with its host: no exit handler removes it, lab down does."""
    from chaosali.host.ssh import Host, run_script
    from chaosali.lab.hosts import Lab
    from helpers import settings

    small = Lab(name="cskeys", subnet="10.249.0.0/24", state_root=tmp_path)
    told = tmp_path / "made"
    try:
        small.up(hosts=1)
        maker = MAKER.replace("print(directory, flush=True)", f"open({str(told)!r}, 'w').write(directory)")
        run_script(Host(small.hosts[0].address),
                   f"setsid {sys.executable} -c {shlex.quote(maker)} >/dev/null 2>&1 </dev/null &", settings(small))
        ends = time.monotonic() + 20
        while not told.exists() and time.monotonic() < ends:
            time.sleep(0.1)
        made = Path(told.read_text())
        assert (made / "client.key").exists()
        small.down()
        assert not made.exists()
    finally:
        small.down()
