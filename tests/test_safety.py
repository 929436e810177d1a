"""Stop conditions and the verified revert: bad conditions refused at validation; in the lab, a
condition that breaks heals every fault long before its duration and the journal says why, Ctrl-C
leaves nothing, and a restore that leaves something behind is caught and named."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chaoslib.exceptions import InvalidControl

from chaosali.host.ssh import Host, run_script
from chaosali.safety.controls import EXTENSION, validate_control
from helpers import chaosali_chains, markers, settings, tcp_answers, wait_until


def control(*conditions: dict, **arguments) -> dict:
    return {"name": "safety", "provider": {"type": "python", "module": "chaosali.safety.controls",
                                           "arguments": {"conditions": list(conditions), **arguments}}}


def probe(url: str) -> dict:
    return {"type": "probe", "name": "web", "tolerance": {"type": "jsonpath", "path": "$.ok", "expect": True}, "provider": {
        "type": "python", "module": "chaosali.service.probes", "func": "service_available",
        "arguments": {"url": url, "timeout": 0.5}}}


@pytest.mark.parametrize("condition, says", [
    ({"name": "web", "limit": "max_web_down", "budget": 1}, "stop condition 'web': unknown limit 'max_web_down'"),
    ({"name": "pods", "limit": "max_pods_lost", "budget": -1}, "stop condition 'pods': max_pods_lost -1 must be a whole number"),
    ({"name": "pods", "limit": "max_pods_lost", "budget": "many"}, "stop condition 'pods': max_pods_lost 'many'"),
    ({"name": "pods", "limit": "max_pods_lost", "budget": True}, 'stop condition \'pods\': "budget" must be a number'),
    ({"name": "web", "limit": "min_availability", "budget": 101}, "stop condition 'web': min_availability (per cent) 101"),
    ({"name": "fast", "limit": "max_pods_lost", "budget": 0, "interval": 0.05}, "stop condition 'fast': interval 0.05"),
    ({"name": "late", "limit": "max_recovery_seconds", "budget": 5}, "stop condition 'late': max_recovery_seconds is judged after"),
    ({"name": "both", "limit": "max_pods_lost", "budget": 0, "probe": probe("http://127.0.0.1:9/")},
     "stop condition 'both' must have exactly one of"),
    ({"name": "odd", "limit": "max_pods_lost", "budget": 0, "when": "now"}, "stop condition 'odd': unknown field(s) when"),
    ({"name": "no tolerance", "probe": {"type": "probe", "provider": {"type": "python", "module": "os", "func": "getcwd"}}},
     "stop condition 'no tolerance': \"probe\" must be a Chaos Toolkit probe with a \"tolerance\""),
    ({"limit": "max_pods_lost", "budget": 0}, "stop condition #1 needs a name"),
])
def test_a_bad_condition_is_refused_naming_it(condition, says):
    with pytest.raises(InvalidControl) as refused:
        validate_control(control(condition))
    assert says in str(refused.value)


def test_good_conditions_and_placeholders_pass_validation():
    validate_control(control({"name": "web", "limit": "min_availability", "budget": 90},
                             {"name": "pods", "limit": "max_pods_lost", "budget": "${max_pods_lost}"},
                             {"name": "answers", "probe": probe("http://127.0.0.1:9/"), "interval": 0.1,
                              "failures": 2, "fail_closed": False}))
    with pytest.raises(InvalidControl, match="distinct names"):
        validate_control(control({"name": "a", "limit": "max_pods_lost", "budget": 0},
                                 {"name": "a", "limit": "max_api_down_seconds", "budget": 0}))


def test_chaos_validate_refuses_a_bad_condition(tmp_path):
    experiment = {"title": "t", "description": "d", "controls": [control({"name": "api", "limit": "max_api_down_seconds",
                                                                          "budget": -5})],
                  "method": [{"type": "action", "name": "a", "provider": {"type": "process", "path": "true"}}]}
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    done = subprocess.run(["chaos", "validate", str(path)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0
    assert "stop condition 'api': max_api_down_seconds (seconds) -5" in done.stdout + done.stderr


# ---- in the lab -------------------------------------------------------------------------------

PORT = 8080
# HTTPServer's server_bind looks its address up in DNS, which hangs in a lab host: TCPServer's binds only
SERVER = """
import http.server, socketserver, sys
class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
Server((sys.argv[1], 8080), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


@pytest.fixture
def web(lab):
    """An HTTP server in the first lab host (its own network namespace)."""
    host = lab.hosts[0]
    server = subprocess.Popen(["ip", "netns", "exec", host.namespace, sys.executable, "-c", SERVER, host.address],
                              cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_until(lambda: tcp_answers(host.address, PORT), 10)
    yield host
    server.terminate()
    server.wait()


def drill(lab, tmp_path: Path, method: list, *conditions: dict, rollbacks: list | None = None) -> Path:
    document = {
        "title": "a drill with stop conditions", "description": "halted and healed when a condition breaks",
        "secrets": {"ssh": {"key_path": str(lab.key_path)}},
        "configuration": {"ssh_known_hosts": str(lab.known_hosts)},
        "controls": [control(*conditions)],
        "method": method,
        "rollbacks": rollbacks if rollbacks is not None else [host_action("restore_faults", [h.address for h in lab.hosts])],
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(document))
    return path


def host_action(func: str, targets: list, **arguments) -> dict:
    return {"type": "action", "name": func.replace("_", "-"), "provider": {
        "type": "python", "module": "chaosali.host.actions", "func": func, "secrets": ["ssh"],
        "arguments": {"targets": targets, **arguments}}}


def pause(seconds: float) -> dict:
    return {"type": "action", "name": "wait", "provider": {"type": "process", "path": "sleep", "arguments": str(seconds)}}


def start(tmp_path: Path, path: Path) -> subprocess.Popen:
    # Ctrl-C's default action, as in a terminal: a test session started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    return subprocess.Popen(["chaos", "run", "--journal-path", str(tmp_path / "journal.json"), str(path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def finish(run: subprocess.Popen, tmp_path: Path) -> tuple[dict, str]:
    log = run.communicate(timeout=120)[0]
    assert (tmp_path / "journal.json").exists(), log
    return json.loads((tmp_path / "journal.json").read_text()), log


def safety(journal: dict) -> dict:
    return next(e for e in journal["extensions"] if e["name"] == EXTENSION)


def test_a_probe_condition_that_breaks_during_a_long_cut_heals_it_early(lab, web, tmp_path):
    path = drill(lab, tmp_path, [host_action("cut_network", [web.address], duration=60), pause(60)],
                 {"name": "web answers", "probe": probe(f"http://{web.address}:{PORT}/"), "interval": 0.2})
    began = time.monotonic()
    run = start(tmp_path, path)
    journal, log = finish(run, tmp_path)
    took = time.monotonic() - began
    assert run.returncode != 0 and journal["status"] == "interrupted", log[-3000:]
    assert took < 30, f"the cut lasted its 60 s: {log[-3000:]}"
    halt = safety(journal)["halt"]
    assert halt["condition"] == "web answers" and halt["value"]["ok"] is False
    assert halt["healed"] and all(entry["healed"] for entry in halt["healed"]), halt
    assert "network-cut" in halt["healed"][0]["fault"] and halt["heal_seconds"] < 5
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["restore-faults"], "the rollbacks did not run"
    assert tcp_answers(web.address, PORT)
    assert safety(journal)["revert"]["left_behind"] == "nothing"


def test_a_drill_within_its_conditions_completes_and_its_revert_is_verified_clean(lab, web, tmp_path):
    other = lab.hosts[2].address
    path = drill(lab, tmp_path, [host_action("cut_network", [other], duration=30, ports=[9]), pause(1)],
                 {"name": "web answers", "probe": probe(f"http://{web.address}:{PORT}/"), "interval": 0.2})
    run = start(tmp_path, path)
    journal, log = finish(run, tmp_path)
    assert run.returncode == 0 and journal["status"] == "completed" and not journal["deviated"], log[-3000:]
    part = safety(journal)
    assert part["halt"] is None and part["interrupt"] is None
    assert part["revert"]["left_behind"] == "nothing" and part["revert"]["checked"] == [other]
    assert "left behind: nothing" in log


def test_sigint_during_the_method_leaves_nothing_on_any_host(lab, tmp_path):
    everyone = [host.address for host in lab.hosts]
    method = [host_action("cut_network", everyone[:1], duration=60, ports=[9]),
              host_action("stress_cpu", everyone[1:2], duration=60, workers=1),
              host_action("fill_disk", everyone[2:], duration=60, path="/tmp", megabytes=5), pause(60)]
    run = start(tmp_path, drill(lab, tmp_path, method))
    assert wait_until(lambda: all(markers(lab, host) for host in lab.hosts), 30)
    time.sleep(1)
    run.send_signal(signal.SIGINT)
    journal, log = finish(run, tmp_path)
    assert run.returncode != 0 and journal["status"] == "interrupted", log[-3000:]
    interrupt = safety(journal)["interrupt"]
    assert len(interrupt["healed"]) == 3 and all(entry["healed"] for entry in interrupt["healed"]), interrupt
    assert safety(journal)["revert"]["left_behind"] == "nothing", safety(journal)["revert"]
    assert sorted(safety(journal)["revert"]["checked"]) == sorted(everyone)
    for host in lab.hosts:  # no marker, no chain (the autouse check), and no load left running
        assert "CHAOSALI_FAULT" not in run_script(Host(host.address), "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep CHAOSALI_FAULT || true", settings(lab))


def test_a_sabotaged_restore_is_caught_and_named_with_its_cleanup(lab, tmp_path):
    host = lab.hosts[1]
    run = start(tmp_path, drill(lab, tmp_path, [host_action("cut_network", [host.address], duration=30, ports=[9]),
                                                pause(5)]))
    assert wait_until(lambda: markers(lab, host), 30)
    # the restore forgets the rules: they stay after the rollback
    run_script(Host(host.address), "sed -i '/iptables/d' /run/chaosali/*/restore.sh", settings(lab))
    journal, log = finish(run, tmp_path)
    try:
        assert run.returncode != 0 and journal["deviated"] is True, log[-3000:]
        [place] = safety(journal)["revert"]["left_behind"]
        assert place["where"] == host.address and {item["what"] for item in place["left"]} == {"iptables"}
        assert place["cleanup"] == f"chaosali cleanup --var-file VARS --hosts {host.address}"
        assert "left something behind" in log
    finally:
        subprocess.run(["chaosali", "cleanup", "--var-file", str(lab.vars_path), "--hosts", host.address], check=True,
                       capture_output=True)
    assert chaosali_chains(host) == []


def halted_journal(left_behind) -> dict:
    start = "2026-01-01T10:00:00+00:00"
    return {
        "experiment": {"title": "a halted drill"}, "status": "interrupted", "deviated": left_behind != "nothing",
        "start": start, "end": "2026-01-01T10:00:20+00:00", "duration": 20.0,
        "run": [{"activity": {"name": "cut", "type": "action", "provider": {"type": "python", "func": "cut_network"}},
                 "status": "succeeded", "start": start, "end": "2026-01-01T10:00:01+00:00", "duration": 1.0,
                 "output": {"fault_id": "chaosali-1a2b3c4d", "kind": "network-cut", "started_at": start,
                            "heals_at": "2026-01-01T10:01:00+00:00", "hosts": [{"host": "10.0.0.5", "ok": True}]}}],
        "extensions": [{"name": EXTENSION, "conditions": [{"name": "web answers", "probe": {}}],
                        "halt": {"condition": "web answers", "kind": "probe", "why": "broke", "value": False,
                                 "at": "2026-01-01T10:00:05+00:00", "healed_at": "2026-01-01T10:00:05.400000+00:00",
                                 "heal_seconds": 0.4,
                                 "healed": [{"fault": "network-cut chaosali-1a2b3c4d on 10.0.0.5", "healed": True,
                                             "seconds": 0.4}]},
                        "interrupt": None,
                        "revert": {"left_behind": left_behind, "checked": ["10.0.0.5"], "seconds": 0.3}}],
    }


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json", "junit"])
def test_every_report_format_shows_the_halt_and_what_was_left(fmt):
    from chaosali.report.figures import read_run
    from chaosali.report.render import render

    left = [{"where": "10.0.0.5", "left": [{"what": "iptables", "detail": "-N chaosali-1a2b3c4d-in"}],
             "cleanup": "chaosali cleanup --var-file VARS --hosts 10.0.0.5"}]
    clean, dirty = read_run(halted_journal("nothing")), read_run(halted_journal(left))
    shown = render([dirty], fmt)
    assert "web answers" in shown and "chaosali cleanup --var-file VARS --hosts 10.0.0.5" in shown
    if fmt in ("text", "markdown", "html"):
        assert "HALTED" in shown and "+5.0 s" in shown and "LEFT BEHIND" in shown
        assert "left behind: nothing" in render([clean], fmt)
    if fmt in ("markdown", "html"):  # on the timeline
        assert "halted by" in shown
    if fmt == "junit":
        assert shown.count("<failure") == 2
    checks = {check.name: check.met for check in dirty.checks()}
    assert checks["no stop condition broke"] is False and checks["left behind: nothing"] is False
    assert dirty.score < clean.score < 100


def test_the_revert_check_names_a_marker_a_timer_a_file_and_a_process_a_restore_forgot(marker_root, tmp_path):
    import shlex

    from chaosali.host import faults
    from helpers import sh

    fill = tmp_path / "fill"
    fault = faults.FaultScript(kind="probe-test", duration=60, undo=[], apply=[
        f"echo F={shlex.quote(str(fill))} >> \"$d/env\"", f": > {shlex.quote(str(fill))}",
        'CHAOSALI_FAULT="${d##*/}" setsid sleep 60 </dev/null >/dev/null 2>&1 &'])
    check = faults.host_script("leftovers.sh", {"CHAOSALI_MARKER_ROOT": faults.MARKER_ROOT},
                               ["check " + shlex.join([fault.id, fault.kind, "", str(fill), ""])])
    assert sh(fault.render()).returncode == 0
    try:
        found = [line.split("\t")[0] for line in sh(check).stdout.splitlines()]
        assert sorted(found) == ["dead-man timer", "file", "marker", "process"], found
        sh(faults.restore_script_for([fault.id], ""))  # its undo forgets the file and the process
        found = [line.split("\t")[0] for line in sh(check).stdout.splitlines()]
        assert sorted(found) == ["file", "process"], found
    finally:
        fill.unlink()
        sh(f"for p in $(grep -lsF CHAOSALI_FAULT={fault.id} /proc/[0-9]*/environ | cut -d/ -f3); do kill $p; done")
    assert sh(check).stdout == ""


def test_an_http_availability_limit_breaks_during_a_long_cut_and_heals_it_early(ha_cluster, lab, web, tmp_path):
    """The recorder samples the web server of a lab host (the HA lab's API is what it records):
    a 60 s cut of that host brings the availability under its budget within a second or two."""
    path = drill(lab, tmp_path, [host_action("cut_network", [web.address], duration=60), pause(60)],
                 {"name": "web stays available", "limit": "min_availability", "budget": 90})
    document = json.loads(path.read_text())
    document["configuration"]["kubeconfig_path"] = str(ha_cluster.admin_kubeconfig)
    document["controls"].insert(0, {"name": "impact", "provider": {"type": "python", "module": "chaosali.impact.controls",
        "arguments": {"namespaces": ["demo"], "settle_seconds": 0,
                      "http": [{"name": "web", "url": f"http://{web.address}:{PORT}/", "timeout": 0.5}]}}})
    path.write_text(json.dumps(document))
    began = time.monotonic()
    run = start(tmp_path, path)
    journal, log = finish(run, tmp_path)
    assert run.returncode != 0 and journal["status"] == "interrupted", log[-3000:]
    assert time.monotonic() - began < 30, f"the cut lasted its 60 s: {log[-3000:]}"
    halt = safety(journal)["halt"]
    assert halt["condition"] == "web stays available" and halt["value"]["web"] < 90, halt
    assert [entry["healed"] for entry in halt["healed"]] == [True] and "network-cut" in halt["healed"][0]["fault"]
    assert "HALTED: stop condition 'web stays available'" in subprocess.run(
        ["chaosali", "report", str(tmp_path / "journal.json")], capture_output=True, text=True).stdout
    assert tcp_answers(web.address, PORT) and safety(journal)["revert"]["left_behind"] == "nothing"


def test_an_availability_budget_is_not_broken_before_the_targets_first_answer():
    """Checked four times a second, a condition may look before a target's first sample is in, or
    while it still refuses as the drill found it (new pods not yet behind their NodePort): no breach
    till it answers (the impact control's final judgement still fails a target that never did)."""
    from chaosali.core import memory
    from chaosali.safety.conditions import conditions

    [condition] = conditions([{"name": "web", "limit": "min_availability", "budget": 90}])
    sampled = {"samples": 0, "failures": 0}

    fault_starts: dict[str, float] = {}

    class Reading:  # what Recorder.recording gives, as far as the condition reads it
        def recording(self) -> dict:
            return {"seconds": 1.0, "http": {"web": dict(sampled)}, "fault_starts": dict(fault_starts)}

    memory.section("impact").update(scope={"namespaces": ["demo"]}, recorder=Reading())
    try:
        assert condition.check({}, {}) == (True, {})
        sampled.update(samples=3, failures=3)  # refused from the start
        assert condition.check({}, {}) == (True, {})
        sampled.update(samples=8, failures=5, failing_at_start=3)  # answered, then failed twice
        assert condition.check({}, {}) == (False, {"web": 60.0})
        sampled.update(samples=3, failures=3, failing_at_start=0)  # refused from the start, and a fault is on
        fault_starts["f1"] = 0.5
        assert condition.check({}, {}) == (False, {"web": 0.0})
    finally:
        memory.forget()


@pytest.mark.parametrize("fail_closed", [True, False])
def test_a_condition_whose_own_check_keeps_failing_stops_the_drill_unless_it_fails_open(fail_closed, tmp_path):
    from chaosali.core import memory
    from chaosali.safety.conditions import conditions
    from chaosali.safety.halt import Watch

    missing = {"type": "probe", "name": "stat", "tolerance": True, "provider": {
        "type": "python", "module": "os", "func": "stat", "arguments": {"path": str(tmp_path / "missing")}}}
    watch = Watch(conditions([{"name": "stats", "probe": missing, "interval": 0.1, "failures": 2,
                               "fail_closed": fail_closed}]))
    try:
        watch.start()
        time.sleep(3)  # the halt interrupts this main thread, as it interrupts chaos run's
    except KeyboardInterrupt:
        pass
    finally:
        watch.stop()
        memory.forget()
    if fail_closed:
        assert watch.halt["condition"] == "stats" and watch.halt["healed"] == []
        assert watch.halt["why"].startswith("its check failed 2 times in a row (fail closed): ActivityFailed")
    else:
        assert watch.halt is None


def test_a_pods_lost_limit_halts_a_drain_and_the_halt_uncordons_its_node(kube, web_spread, tmp_path):
    """No rollback: the drained node is schedulable again because the halt healed it."""
    from kubernetes import client

    from chaosali.cluster.api import connect

    document = {
        "title": "a drain that may lose no pod", "description": "halted at the first eviction",
        "configuration": {"kubeconfig_path": str(kube.admin_kubeconfig)},
        "controls": [
            {"name": "impact", "provider": {"type": "python", "module": "chaosali.impact.controls",
                                            "arguments": {"namespaces": ["demo"], "settle_seconds": 0}}},
            control({"name": "no pod lost", "limit": "max_pods_lost", "budget": 0})],
        "method": [{"type": "action", "name": "drain", "provider": {
            "type": "python", "module": "chaosali.cluster.actions", "func": "drain_node",
            "arguments": {"targets": {"pods": {"namespace": "demo", "label_selector": "app=web"}, "count": 1},
                          "timeout": 60}}}, pause(60)],
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(document))
    run = start(tmp_path, path)
    journal, log = finish(run, tmp_path)
    assert run.returncode != 0 and journal["status"] == "interrupted", log[-3000:]
    halt = safety(journal)["halt"]
    assert halt["condition"] == "no pod lost" and halt["value"] >= 1, halt
    [healed] = halt["healed"]
    assert healed["fault"].startswith("drain chaosali-") and healed["healed"], halt
    [node] = healed["result"]["uncordoned"]
    with connect({"kubeconfig_path": str(kube.admin_kubeconfig)}) as cluster:
        assert not client.CoreV1Api(cluster.client).read_node(node).spec.unschedulable
    assert safety(journal)["revert"]["left_behind"] == "nothing"
