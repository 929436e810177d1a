"""Hardening, third round (issue 34): each break found from outside, proven here before its fix.

Stop conditions keep no secret in the journal and fail closed on a slow or malformed answer;
Prometheus answers go through the one HTTP layer; the report's new sections and the plan refuse
hostile shapes without a traceback; masking masks secrets, not figures or names."""

from __future__ import annotations

import json
import os
import subprocess
import time
import tracemalloc
import zlib

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosali.service.probes import service_available
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
