"""The formats: HTML, Markdown, JSON, text and JUnit rendered from the journals under tests/data/,
foreign journals (tracebacks, processes), terminal escapes, journals of the wrong shape."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from chaosali.cli import main
from chaosali.core.errors import InvalidArgument
from chaosali.report.figures import read_run
from chaosali.report.redact import MASK
from chaosali.report.render import FORMATS, load_runs, render
from chaosali.report.words import expectations
from reports import (
    CHAOS, DATA, JUNIT_JOURNALS, PROCESS_SECRET, SECRETS, activity_count, check_page, load, md_cells, outcome,
)


# -- formats ---------------------------------------------------------------------------------------------


def test_html_is_one_escaped_self_contained_page():
    journals = [load("secret-failure.json"), load("deviated.json"), load("interrupted.json")]
    page = render([read_run(j, f"run{n}.json") for n, j in enumerate(journals)], "html")
    dom = check_page(page, journals)
    # the campaign table: one row per run
    summary = dom.find("table", cls="summary")
    assert len(summary.find("tbody").find_all("tr")) == 3
    # journal text is text, never markup
    assert "<script>" not in page and "<b>denied" not in page
    assert 'A <script>alert("x")</script> & "quoted"' in dom.find("article", id="run-1").find("h2").text()
    assert "<b>denied</b>" in dom.find("pre", cls="error").text()
    # recovery figures, and their flags
    slow = dom.find(id="recovery-1")
    assert slow.find(cls="value").text() == "45.0 s" and "bad" in slow.classes()
    assert slow.attrs["data-seconds"] == "44.95" and "expected ≤ 30 s · EXCEEDED" in slow.text()
    assert dom.find(id="recovery-2").find(cls="value").text() == "not recovered"
    assert dom.find(id="recovery-3").find(cls="value").text() == "not measured"
    # the fault window and the outage are drawn too
    timeline = dom.find("svg", id="timeline-1")
    assert len(timeline.find_all("rect", cls="fault")) == 1 and len(timeline.find_all("rect", cls="outage")) == 1


def test_markdown_has_a_campaign_table_and_inert_journal_text():
    slow = load("secret-failure.json")
    slow["experiment"]["title"] = "cut | *bold* <b>x</b>"
    out = render([read_run(slow, "slow.json"), read_run(load("deviated.json"), "deviated.json")], "markdown")
    lines = out.splitlines()
    header = lines.index(
        "| # | scenario | journal | status | deviated | impact seen | recovery seen | expected | verdict | score |")
    assert lines[header + 1] == "|---" * 10 + "|"
    first, second = md_cells(lines[header + 2]), md_cells(lines[header + 3])
    assert len(first) == len(second) == 10
    assert first[1] == r"cut \| \*bold\* \<b\>x\</b\>"
    assert first[6:9] == ["45.0 s", "≤ 30 s", "EXCEEDED"] and second[6:9] == ["not recovered", "≤ 60 s", "EXCEEDED"]
    assert "## cut" in out and "### Timeline" in out and "### FMEA" in out
    assert "<b>" not in out


def test_json_holds_the_figures():
    figures = json.loads(render([read_run(load("secret-failure.json"), "slow.json"),
                                 read_run(load("interrupted.json"), "interrupted.json")], "json"))
    assert figures["summary"] == {"runs": 2, "completed": 1, "deviated": 0, "recovery_exceeded": 1,
                                  "impact_exceeded": 1, "fault_not_observed": 0, "not_detected": 0,
                                  "score": round((figures["runs"][0]["score"] + figures["runs"][1]["score"]) / 2, 1)}
    slow = figures["runs"][0]
    assert slow["journal"] == "slow.json" and slow["fmea"]["recovery_seconds"] == 30
    assert slow["recovery"] == {
        "state": "recovered", "measured_seconds": 44.95, "expected_seconds": 30.0, "exceeded": True,
        "from": "2026-01-10T10:00:20.050000+00:00", "from_what": "network-cut chaosali-0badf00d healed by its timer",
        "to": "2026-01-10T10:01:05+00:00", "to_what": "watch-api-through-the-cut: up",
    }
    assert slow["outages"][0]["seconds"] == 64.0 and slow["impact_seen"] == "the API down 64 s"
    assert slow["impact"] == {"level": "core", "expected": "partial", "exceeded": True, "lower": False,
                              "measured": False}
    assert slow["fault"] == {"proven": True, "judged_by": "impact seen", "evidence": None, "why": None}
    assert [a["status"] for a in slow["activities"]].count("failed") == 1
    assert slow["faults"][0]["seconds"] == 20.0
    assert figures["runs"][1]["recovery"]["state"] == "not measured"


def test_cli_report_formats_and_files(tmp_path, capsys):
    journals = [str(DATA / "secret-failure.json"), str(DATA / "deviated.json")]
    assert main(["report", journals[0]]) == 0
    assert "recovery: 45.0 s measured" in capsys.readouterr().out
    assert main(["report", *journals, "-o", str(tmp_path / "campaign.html")]) == 0
    check_page((tmp_path / "campaign.html").read_text(), [load("secret-failure.json"), load("deviated.json")])
    assert main(["report", *journals, "-o", str(tmp_path / "campaign.md")]) == 0
    assert (tmp_path / "campaign.md").read_text().startswith("# Drill campaign: 2 runs")
    assert main(["report", journals[0], "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["recovery"]["exceeded"] is True
    assert main(["report", *journals, "-o", str(tmp_path / "drills.xml")]) == 0
    assert len(ET.parse(tmp_path / "drills.xml").getroot().findall("testsuite")) == 2
    assert main(["report", journals[0], "--format", "junit"]) == 0
    assert ET.fromstring(capsys.readouterr().out).tag == "testsuites"
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["report", str(tmp_path / "broken.json")]) == 1
    assert "broken.json: cannot read the journal" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "absent.json")]) == 1


# -- foreign journals: tracebacks and process activities ------------------------------------------------


def test_a_failed_probe_shows_its_last_line_in_text_and_its_traceback_in_html_and_json():
    journal = load("process-failure.json")
    [failed] = [r for r in journal["run"] if r["activity"]["name"] == "load-settings-plugin"]
    traceback = "".join(failed["exception"]).strip()
    last = traceback.splitlines()[-1]
    assert last == "chaoslib.exceptions.ActivityFailed: ModuleNotFoundError: No module named 'chaosali_settings_plugin'"
    run = read_run(journal, "process-failure.json")
    text, markdown = render([run], "text"), render([run], "markdown")
    assert f"error in method load-settings-plugin: {last}" in text
    assert r"ModuleNotFoundError: No module named 'chaosali\_settings\_plugin'" in markdown
    for out in (text, markdown):
        assert "Traceback" not in out and "_find_and_load" not in out and "During handling" not in out
    dom = check_page(render([run], "html"), [journal])
    [row] = [tr for tr in dom.find_all("tr") if "load-settings-plugin" in tr.text()]
    assert row.find("pre", cls="error").text() == last
    assert row.find("details", cls="traceback").find("pre").text() == traceback
    [figures] = [a for a in json.loads(render([run], "json"))["runs"][0]["activities"]
                 if a["name"] == "load-settings-plugin"]
    assert figures["error"] == traceback and figures["error_line"] == last


def test_a_process_that_exited_non_zero_is_flagged_in_every_format():
    journal = load("process-failure.json")
    [script] = journal["run"][:1]
    assert script["status"] == "succeeded" and script["output"]["status"] == 3  # chaoslib's own words
    assert PROCESS_SECRET in script["output"]["stderr"]
    run = read_run(journal, "process-failure.json")
    [action] = [a for a in run.activities if a.name == "run-maintenance-script"]
    assert action.unexpected_exit == 3 and action.status_text == "succeeded, EXIT STATUS 3"
    # exit 0, or a hypothesis probe whose tolerance asks for the status: nothing to flag
    assert not [a.name for a in run.activities if a.unexpected_exit and a is not action]
    tail = ["stderr: … 5 lines before", "stderr: step 6", "stderr: step 7", "stderr: step 8",
            f"stderr: calling the API with token {MASK}", "stderr: boom"]

    text = render([run], "text")
    lines = text.splitlines()
    start = lines.index("method: run-maintenance-script: succeeded, EXIT STATUS 3 (0.0 s)")
    assert lines[start + 1:start + 8] == ["    exit status 3", *(f"    {line}" for line in tail)]
    assert "rollbacks: restore-settings: succeeded (0.0 s)" in lines
    markdown = render([run], "markdown")
    [row] = [md_cells(line) for line in markdown.splitlines() if "run-maintenance-script (action)" in line]
    assert row[4] == "succeeded, EXIT STATUS 3" and row[5].endswith(r"token \*\*\*; stderr: boom")
    dom = check_page(render([run], "html"), [journal])
    [tr] = dom.find_all("tr", cls="unexpected-exit")
    assert tr.find("td", **{"data-label": "status"}).text() == "succeeded, EXIT STATUS 3"
    assert [div.text() for div in tr.find("td", cls="did").find_all("div")] == ["exit status 3", *tail]
    assert len(dom.find("svg").find_all("rect", cls="unexpected-exit")) == 1
    [figures] = [a for a in json.loads(render([run], "json"))["runs"][0]["activities"]
                 if a["name"] == "run-maintenance-script"]
    assert figures["exit_status"] == 3 and figures["unexpected_exit"] is True
    assert figures["stderr_tail"][-2:] == [f"calling the API with token {MASK}", "boom"]
    junit = ET.fromstring(render([run], "junit"))
    [case] = [c for c in junit.iter("testcase") if c.get("name") == "run-maintenance-script"]
    assert case.find("error").get("message") == "exit status 3" and "stderr: boom" in case.find("error").text
    for fmt in FORMATS:
        assert PROCESS_SECRET not in render([run], fmt), fmt


def test_a_process_probe_whose_tolerance_asks_for_a_status_is_not_flagged():
    journal = load("process-failure.json")
    probe = journal["steady_states"]["before"]["probes"][0]
    probe["activity"]["tolerance"], probe["output"]["status"] = 1, 1
    [shell, *_] = read_run(journal).activities
    assert shell.name == "shell-answers" and shell.unexpected_exit is None and shell.status_text == "succeeded"


def test_a_fresh_chaos_run_of_the_process_experiment(tmp_path):
    """The stored journal is what today's chaoslib writes: record one and report on it."""
    (tmp_path / "settings.json").write_text("{}\n")  # 3 bytes: the probe's tolerance
    result = subprocess.run([CHAOS, "run", "--rollback-strategy=always", "--journal-path", "journal.json",
                             str(DATA / "process-failure.experiment.json")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (tmp_path / "journal.json").exists(), result.stdout + result.stderr
    run = read_run(json.loads((tmp_path / "journal.json").read_text()))
    assert [(a.name, a.status_text) for a in run.activities if a.phase in ("method", "rollback")] == [
        ("run-maintenance-script", "succeeded, EXIT STATUS 3"), ("load-settings-plugin", "failed"),
        ("restore-settings", "succeeded")]
    assert "stderr: boom" in render([run], "text") and PROCESS_SECRET not in render([run], "text")


def test_stderr_is_made_printable_and_junit_stays_valid_xml():
    journal = load("process-failure.json")
    journal["run"][0]["output"]["stderr"] = "\x1b[31mboom\x1b[0m\x00\x07 ünïcode\n"
    journal["run"][1]["exception"][-1] = "ActivityFailed: \x1b[1mno\x1b[0m plugin\x0c\n"
    journal["experiment"]["title"] += " \x1b[1m"
    run = read_run(journal)
    assert "stderr: boom ünïcode" in render([run], "text")
    out = render([run], "junit")
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(out)
    [case] = [c for c in ET.fromstring(out).iter("testcase") if c.get("name") == "load-settings-plugin"]
    assert case.find("error").get("message") == "ActivityFailed: [1mno[0m plugin"


# -- JUnit -----------------------------------------------------------------------------------------------

# (classname, test case): outcome, for every test case of every journal
JUNIT_CASES = {
    "secret-failure": {
        ("steady-state.before", "service-available"): "passed",
        ("steady-state.after", "service-available"): "passed",
        ("fmea", "recovery within 30 s"): "failure",  # 45.0 s
        ("fmea", "impact at most partial"): "failure",  # the API down: core
        ("fmea", "fault proven"): "passed",
        ("method", "login-as-operator"): "error",
    },
    "deviated": {
        ("steady-state.before", "nodes-ready"): "passed",
        ("steady-state.before", "workload-available"): "passed",
        ("steady-state.after", "nodes-ready"): "failure",  # tolerance not met
        ("fmea", "recovery within 60 s"): "failure",  # not recovered
        ("fmea", "impact at most partial"): "passed",  # nodes NotReady: partial
        ("fmea", "fault proven"): "passed",
    },
    "interrupted": {
        ("steady-state.before", "api-ready"): "passed",
        ("steady-state.before", "workload-available"): "passed",
        ("steady-state.after", "api-ready"): "skipped",  # never checked
        ("steady-state.after", "workload-available"): "skipped",
        ("fmea", "recovery within 0 s"): "skipped",  # nothing injected: not measured
        ("fmea", "impact at most none"): "skipped",
        ("fmea", "fault proven"): "skipped",  # nothing judged it, and no impact is expected
    },
    "process-failure": {
        ("steady-state.before", "shell-answers"): "passed",
        ("steady-state.before", "settings-present"): "passed",
        ("steady-state.after", "shell-answers"): "passed",
        ("steady-state.after", "settings-present"): "error",  # it raised
        ("fmea", "recovery within 60 s"): "failure",
        ("fmea", "impact at most none"): "failure",  # the steady state not met after: partial
        ("fmea", "fault proven"): "skipped",
        ("method", "run-maintenance-script"): "error",  # exit status 3
        ("method", "load-settings-plugin"): "error",  # it raised
    },
}


def test_junit_is_valid_and_fails_exactly_where_expectations_were_missed():
    runs = [read_run(load(name), name) for name in JUNIT_JOURNALS]
    out = render(runs, "junit")
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(out)
    for secret in [*SECRETS, PROCESS_SECRET]:
        assert secret not in out
    root = ET.fromstring(out)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [run.title for run in runs]
    for run, suite in zip(runs, suites):
        stem = run.source.removesuffix(".json")
        cases = suite.findall("testcase")
        got = {(c.get("classname").removeprefix(f"{stem}."), c.get("name")): outcome(c) for c in cases}
        assert got == JUNIT_CASES[stem], stem
        assert len(cases) == len(got), "a test case named twice"
        # the FMEA failures are exactly the expectations the figures say were missed
        missed = {e.name for e in expectations(run) if e.met is False}
        assert {name for (cls, name), result in got.items() if cls == "fmea" and result == "failure"} == missed
        for count, result in (("tests", None), ("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert int(suite.get(count)) == sum(result in (None, r) for r in got.values()), (stem, count)
        assert suite.find("properties/property[@name='fmea.impact']").get("value") == run.fmea["impact"]
    for count in ("tests", "failures", "errors"):
        assert int(root.get(count)) == sum(int(s.get(count)) for s in suites)
    # what a CI system shows for a miss: what was measured against what
    [slow] = [c for c in suites[0] if c.get("name") == "recovery within 30 s"]
    assert slow.find("failure").get("message").startswith("45.0 s measured")
    [probe] = [c for c in suites[1] if c.get("classname") == "deviated.steady-state.after"]
    assert probe.find("failure").get("message") == "tolerance not met: expected true, got false"
    [raised] = [c for c in suites[3] if c.get("name") == "load-settings-plugin"]
    assert raised.find("error").get("type") == "chaoslib.exceptions.ActivityFailed"
    assert "_find_and_load" in raised.find("error").text and "No module named" in raised.find("error").get("message")


# -- terminal escapes (issue 11) ---------------------------------------------------------------------------


def test_terminal_escapes_in_titles_and_exceptions_do_not_reach_text_or_markdown():
    journal = load("process-failure.json")
    journal["experiment"]["title"] = "drill\x1b[2J\x1b]0;pwned\x07 title\rFAKE: all ok\x9b1m \u202egnp.exe\u2028line"
    journal["run"][1]["exception"][-1] = "ActivityFailed: \x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\x07\x08\n"
    run = read_run(journal)
    for fmt in ("text", "markdown"):
        out = render([run], fmt)
        assert not set(out) & {"\x1b", "\x07", "\r", "\x08", "\x9b", "\u202e", "\u2028", "\u2029"}, fmt
        assert "drill" in out and "FAKE: all ok" in out and "click" in out
    assert "title\\x0dFAKE" in render([run], "text") and "\\u202egnp.exe\\u2028line" in render([run], "text")


def test_faults_that_started_together_show_their_skew_in_every_format(tmp_path):
    journal = json.loads((DATA / "deviated.json").read_text())
    fault = journal["run"][0]["output"]
    fault.update(start_at=fault["started_at"], skew_seconds=0.0033)
    path = tmp_path / "together.json"
    path.write_text(json.dumps(journal))
    runs = load_runs([path])
    assert runs[0].faults[0].skew_seconds == 0.0033
    for fmt in ("text", "markdown", "html"):
        assert "skew 3.3 ms" in render(runs, fmt), fmt
    assert json.loads(render(runs, "json"))["runs"][0]["faults"][0]["skew_seconds"] == 0.0033
    plain = load_runs([DATA / "deviated.json"])
    assert plain[0].faults[0].skew_seconds is None and "skew" not in render(plain, "markdown")


# -- journals of the wrong shape (issue 20) --------------------------------------------------------------


def nested(levels: int) -> object:
    value: object = "bottom"
    for _ in range(levels):
        value = {"n": [value]}
    return value


def test_parts_of_the_wrong_type_are_each_one_line_and_the_rest_renders(tmp_path, capsys):
    journal = load("impact.json")
    [fmea] = [e["fmea"] for e in journal["experiment"]["extensions"] if e.get("name") == "chaosali"]
    fmea["recovery_seconds"] = float("inf")
    journal["duration"] = "12.5"
    journal["run"][0] = "a string"
    journal["run"][1]["duration"] = 1e308
    journal["steady_states"]["before"]["steady_state_met"] = "true"
    journal["run"][2]["output"] = nested(1000)
    run = read_run(journal, "bad.json")
    assert run.problems == [
        "journal.run[2].output: nested deeper than 100 levels: cut there",
        "journal.duration: a string, not a number of seconds: left out",
        "journal.run[0]: a string, not an object: left out",
        "journal.run[1].duration: a number out of range, not a number of seconds: left out",
        "journal.steady_states.before.steady_state_met: a string, not true or false: left out",
    ]
    assert "recovery_seconds inf must be a number from 0 to 86400" in run.fmea_error
    assert len(run.activities) == activity_count(load("impact.json")) - 1  # only the string left out
    for fmt in FORMATS:
        out = render([run], fmt)
        for problem in run.problems:
            assert (problem.replace("_", r"\_").replace("[", r"\[").replace("]", r"\]") if fmt == "markdown"
                    else problem) in out, (fmt, problem)
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(render([run], "junit"))
    junit = ET.fromstring(render([run], "junit"))
    [case] = junit.findall(".//testcase[@classname='bad.journal']")
    assert case.find("error").get("message") == "5 problems: parts of the journal left out"
    # a campaign survives a journal that cannot be read at all: not JSON, or nested past the parser
    bad = tmp_path / "truncated.json"
    bad.write_text('{"experiment": {')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(load("deviated.json")))
    assert main(["report", str(bad), str(deep), str(good), "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert "cannot read the journal: Expecting" in runs[0]["problems"][0]
    assert runs[1]["problems"] == [f"{deep}: cannot read the journal: nested too deep"]
    assert runs[2]["problems"] == [] and runs[2]["title"] == load("deviated.json")["experiment"]["title"]
    with pytest.raises(InvalidArgument, match="truncated.json: cannot read the journal"):
        load_runs([bad])


# (said in free text, secret, masked in every format)
