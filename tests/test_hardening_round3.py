"""Hardening, third round (issue 34): each break found from outside, proven here before its fix.

Stop conditions keep no secret in the journal and fail closed on a slow or malformed answer;
Prometheus answers go through the one HTTP layer; the report's new sections and the plan refuse
hostile shapes without a traceback; masking masks secrets, not figures or names."""

from __future__ import annotations

import json
import os
import subprocess

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
