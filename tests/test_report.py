"""``chaosali report``: FMEA validation, the figures of a journal (recovery measured vs expected),
the text / Markdown / JSON / HTML / JUnit renderings, secret masking, and the page in a real browser.

Hand-made journals under tests/data/ cover the edge cases (a deviated run that never recovers,
a run interrupted before its method, a failed activity whose exception holds secrets and a
recovery slower than expected). tests/data/process-failure.json is what a real ``chaos run`` of
tests/data/process-failure.experiment.json wrote (a process action exiting 3 with "boom" and a
secret on stderr, probes that raise); to record it again, in an empty directory:
``echo '{}' > settings.json && chaos run --rollback-strategy=always --journal-path journal.json
.../process-failure.experiment.json``. A real journal also comes from ``chaos run`` on the lab
cluster. tests/data/junit-10.xsd is the JUnit schema as Jenkins reads it (see its header).
tests/data/impact.json is what a real ``chaos run`` of tests/data/impact.experiment.json wrote
against a lab (``chaosali lab up --name rpt --subnet 10.219.0.0/24``): the impact recorder on,
two web pods deleted, a worker cut past its node grace (NotReady, tainted), the master cut
(the API down), a Secret read with ``show_secret_data``, a process echoing an env secret
(``CHAOSALI_RPT_TOKEN='tok/en+value=42&x'``, unset here) that chaoslib also copied into the
journal's configuration (a dynamic configuration's ``provider.secrets``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import xmlschema
from chaoslib.exceptions import ActivityFailed

from chaosali.cli import main
from chaosali.core.errors import InvalidArgument
from chaosali.impact.measures import judge, measure
from chaosali.report.figures import (
    NO_OUTAGE, NOT_MEASURED, NOT_RECOVERED, RECOVERED, campaign_score, read_run, seconds_text,
)
from chaosali.report.fmea import validate_fmea
from chaosali.report.redact import MASK, redact
from chaosali.report.render import FORMATS, load_runs, render
from chaosali.report.words import expectations, run_verdict
from conftest import REPO, chaos_run, journal_of

DATA = Path(__file__).resolve().parent / "data"
EXPERIMENTS = sorted((REPO / "experiments").glob("*.json"))
SECRETS = ["hunter2-Sup3r-secret", "tok-abcdef123456", "drill-operator", "pg-pass-777", "AKIA123456"]
CHAOS = Path(sys.executable).with_name("chaos")  # the real console script, not a pyenv shim needing HOME
PROCESS_SECRET = "s3cr3t-boom-token-99"  # the inline secret of process-failure.experiment.json
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def activity_count(journal: dict) -> int:
    states = journal["steady_states"]
    hypotheses = [states.get("before"), *states.get("during", []), states.get("after")]
    return (sum(len(h["probes"]) for h in hypotheses if h) + len(journal.get("run") or [])
            + len(journal.get("rollbacks") or []))


# -- a small DOM, from the standard library's parser ----------------------------------------------------

class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if ((tag is None or child.tag == tag) and (cls is None or cls in child.classes())
                        and all(child.attrs.get(k) == v for k, v in attrs.items())):
                    found.append(child)
                found += child.find_all(tag, cls, **attrs)
        return found

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'} class={cls} {attrs}>"
        return found[0]


class DOM(HTMLParser):
    VOID = {"meta", "br", "link", "img", "input", "hr"}

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#document", {}, None)
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.node)
        self.node.children.append(node)
        if tag not in self.VOID:
            self.node = node

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.node.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.node))

    def handle_endtag(self, tag: str) -> None:
        node = self.node
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.node = node.parent

    def handle_data(self, data: str) -> None:
        self.node.children.append(data)


def check_page(page: str, runs: list[dict]) -> Node:
    """What every HTML report must hold: one self-contained page, a timeline and a recovery figure per run."""
    dom = DOM(page).root
    title = dom.find("title").text()
    assert title.startswith("chaosali report: ")
    if len(runs) == 1:
        assert title == f"chaosali report: {runs[0]['experiment']['title']}"
    assert dom.find("meta", name="viewport").attrs["content"].startswith("width=device-width")
    assert not dom.find_all("script") and not dom.find_all("link") and not dom.find_all("img")
    style = dom.find("style").text()
    assert "@media print" in style and "@media (max-width" in style and "url(" not in style
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in style
    for number, journal in enumerate(runs, 1):
        svg = dom.find("svg", id=f"timeline-{number}")
        assert len(svg.find_all("rect", cls="activity")) == activity_count(journal)
        assert dom.find(id=f"recovery-{number}").find(cls="value").text()
    return dom


# -- FMEA ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_shipped_experiment_has_a_valid_fmea(path):
    fmea = validate_fmea(json.loads(path.read_text()))
    assert fmea["recovery_seconds"] >= 0 and fmea["detection"]


def experiment_with(**fmea) -> dict:
    base = {"failure_mode": "a node reboots", "category": "host", "severity": "medium", "impact": "partial",
            "recovery": "auto", "recovery_seconds": 60, "detection": "nodes-ready"}
    base.update(fmea)
    return {"title": "t", "extensions": [{"name": "other"}, {"name": "chaosali", "fmea": {
        k: v for k, v in base.items() if v is not None}}]}


def test_fmea_errors_name_the_field_and_what_is_allowed():
    assert validate_fmea(experiment_with())["severity"] == "medium"
    with pytest.raises(InvalidArgument, match=r"severity 'hight' is not one of low, medium, high, critical"):
        validate_fmea(experiment_with(severity="hight"))
    with pytest.raises(InvalidArgument, match=r"category 'disk' is not one of host, network, kubernetes, chaos"):
        validate_fmea(experiment_with(category="disk"))
    with pytest.raises(InvalidArgument, match=r"impact .* none, partial, core"):
        validate_fmea(experiment_with(impact="total"))
    with pytest.raises(InvalidArgument, match=r"recovery 'self' is not one of auto, manual"):
        validate_fmea(experiment_with(recovery="self"))
    with pytest.raises(InvalidArgument, match=r"missing field 'detection': the probe or alert"):
        validate_fmea(experiment_with(detection=None))
    with pytest.raises(InvalidArgument, match=r"unknown field 'owner' \(fields: failure_mode, category"):
        validate_fmea(experiment_with(owner="sre"))
    for wrong in (-1, "30", True, None, float("inf"), float("nan"), 1e308, 86401):
        with pytest.raises(InvalidArgument, match=r"recovery_seconds"):
            validate_fmea(experiment_with(recovery_seconds=wrong))
    with pytest.raises(InvalidArgument, match=r"no FMEA; add to extensions"):
        validate_fmea({"title": "t", "extensions": [{"name": "other"}]})
    # every problem at once, and an error a Chaos Toolkit control or activity can raise as is
    with pytest.raises(ActivityFailed) as error:
        validate_fmea(experiment_with(severity="x", impact="y"))
    assert "severity" in str(error.value) and "impact" in str(error.value)


def test_a_journal_with_an_invalid_fmea_is_still_reported():
    journal = load("secret-failure.json")
    journal["experiment"]["extensions"][0]["fmea"]["severity"] = "hight"
    run = read_run(journal)
    assert run.fmea is None and "severity 'hight'" in run.fmea_error
    assert run.recovery.expected is None and run.recovery.exceeded is None
    assert "not usable: FMEA" in render([run], "text")


# -- figures ---------------------------------------------------------------------------------------------


def test_slow_recovery_is_measured_from_the_fault_end_and_flagged():
    run = read_run(load("secret-failure.json"), "secret-failure.json")
    [fault] = run.faults
    assert (fault.kind, fault.fault_id, fault.ended_by) == ("network-cut", "chaosali-0badf00d", "healed by its timer")
    assert fault.end == fault.heals_at  # the rollback restored nothing: the timer had healed it
    recovery = run.recovery
    assert recovery.state == RECOVERED
    # the API came back at +65.0 s; the cut healed at +20.05 s
    assert recovery.measured == 44.95 and recovery.expected == 30 and recovery.exceeded is True
    assert recovery.healthy_by == "watch-api-through-the-cut: up"
    assert run.impact_seen == "the API down 64 s"
    # the API down is a core impact, worse than the partial one the FMEA expects
    assert run.impact_level == "core" and run.impact_exceeded is True
    assert "45.0 s measured" in render([run], "text") and "EXCEEDED" in render([run], "text")


def test_faults_of_a_random_combination_are_each_a_window():
    journal = load("secret-failure.json")
    cut = journal["run"][0]["output"]
    second = {**cut, "fault_id": "chaosali-5ec0d000", "kind": "stress-cpu", "heals_at": "2026-01-10T10:00:30+00:00"}
    journal["run"][0]["output"] = {"seed": 7, "why": "2 of 5 pool entries drawn with seed 7", "faults": [
        {"entry": 0, "action": "cut_network", **cut}, {"entry": 3, "action": "stress_cpu", **second}]}
    run = read_run(journal)
    assert [(f.kind, f.fault_id) for f in run.faults] == [("network-cut", "chaosali-0badf00d"),
                                                          ("stress-cpu", "chaosali-5ec0d000")]
    # the clock starts when the last of them is gone
    assert run.recovery.started_by == "stress-cpu chaosali-5ec0d000 healed by its timer"
    assert run.recovery.measured == 35.0


def test_deviated_run_that_never_recovers():
    run = read_run(load("deviated.json"))
    assert run.deviated and [c.met for c in run.steady] == [True, False]
    [fault] = run.faults
    assert fault.ended_by == "restored by restore-kubelet-configuration"
    assert run.recovery.state == NOT_RECOVERED and run.recovery.measured is None
    assert run.recovery.exceeded is True
    nodes, steady = run.outages
    assert nodes.label == "nodes NotReady" and nodes.end is None and nodes.seconds == pytest.approx(90.26)
    assert steady.label == "steady state not met after"
    assert run.impact_level == "partial" and run.impact_exceeded is False  # as the FMEA expects
    text = render([run], "text")
    assert "deviated: True" in text and "not recovered" in text and "EXCEEDED" in text


def test_interrupted_run_without_method():
    journal = load("interrupted.json")
    run = read_run(journal)
    assert run.status == "interrupted" and run.faults == [] and run.outages == []
    assert run.recovery.state == NOT_MEASURED and run.recovery.exceeded is None
    assert run.impact_seen == "none" and run.impact_level is None and run.impact_exceeded is None
    for fmt in FORMATS:
        assert render([run], fmt)
    check_page(render([run], "html"), [journal])


def test_no_outage_seen_is_a_zero_recovery():
    journal = load("secret-failure.json")
    watch = journal["run"][1]["output"]
    watch["changes"] = watch["changes"][:1]
    watch.update(down_at=None, back_at=None, down_seconds=0.0)
    journal["run"][2:4] = []  # no failed login, no config read
    run = read_run(journal)
    assert run.recovery.state == NO_OUTAGE and run.recovery.measured == 0 and run.recovery.exceeded is False


# -- secrets ---------------------------------------------------------------------------------------------


def test_secrets_are_masked_in_every_format():
    journal = load("secret-failure.json")
    raw = json.dumps(journal)
    assert all(secret in raw for secret in SECRETS)  # the journal really holds them
    run = read_run(journal)
    [login] = [a for a in run.activities if a.name == "login-as-operator"]
    assert MASK in login.error and "svc.example/login" in login.error
    for fmt in FORMATS:
        out = render([run, read_run(load("deviated.json"))], fmt)
        for secret in SECRETS:
            assert secret not in out, f"{secret} shown in the {fmt} report"
        assert (MASK if fmt != "markdown" else r"\*\*\*") in out  # Markdown escapes its stars


def test_redact_masks_values_names_and_substrings_but_not_lookalikes():
    journal = {"experiment": {"title": "t", "secrets": {"db": {"password": "s3cr3t-pw", "pin": 4242}},
                              "configuration": {"kube_monkey_namespace": "kube-monkey", "monkey": "tolerance"}},
               "run": [{"output": {"apiKey": "AKIA-1", "private-key": "-----BEGIN", "token": {"nested": "x"},
                                   "key": "app", "apiVersion": "apps/v1", "pin": 4242, "count": 4242.5,
                                   "dsn": "pg://u:s3cr3t-pw@db", "secret_name": "", "passwords": ["abc"]},
                        "exception": ["ActivityFailed: token s3cr3t-pw and AKIA-1 rejected\n"]}]}
    masked = redact(journal)
    output = masked["run"][0]["output"]
    assert masked["experiment"]["secrets"]["db"] == {"password": MASK, "pin": MASK}
    assert masked["experiment"]["configuration"] == journal["experiment"]["configuration"]
    assert output["apiKey"] == output["private-key"] == output["token"] == output["key"] == MASK
    assert output["dsn"] == f"pg://u:{MASK}@db" and output["pin"] == MASK and output["count"] == 4242.5
    # a bare "key" (a label key in Kubernetes objects) is masked where it stands, not in other strings
    assert output["apiVersion"] == "apps/v1"
    assert masked["run"][0]["exception"] == [f"ActivityFailed: token {MASK} and {MASK} rejected\n"]
    assert journal["run"][0]["output"]["apiKey"] == "AKIA-1", "the journal itself is left as it was"


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


def md_cells(line: str) -> list[str]:
    cells, cell, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if char == "|" and not escaped:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += char
        escaped = char == "\\" and not escaped
    return cells + [cell.strip()]


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
                                  "impact_exceeded": 1, "fault_not_observed": 0,
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

JUNIT_JOURNALS = ["secret-failure.json", "deviated.json", "interrupted.json", "process-failure.json"]
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


def outcome(case: ET.Element) -> str:
    found = [tag for tag in ("failure", "error", "skipped") if case.find(tag) is not None]
    assert len(found) <= 1, ET.tostring(case)
    return found[0] if found else "passed"


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


# -- a real journal, and the page in a real browser ------------------------------------------------------


@pytest.fixture(scope="module")
def netcut_journal(kube, tmp_path_factory) -> Path:
    """A real master netcut (4 s) run by ``chaos run`` against the lab cluster."""
    tmp = tmp_path_factory.mktemp("netcut")
    run = chaos_run(tmp, "master-netcut.json", [kube.lab.vars_path], "--var", "cut_seconds:int=4")
    journal = journal_of(run, tmp)
    assert journal["status"] == "completed", json.dumps(journal)[:2000]
    return tmp / "journal.json"


def test_real_master_netcut_journal(netcut_journal):
    journal = json.loads(netcut_journal.read_text())
    run = read_run(journal, "master-netcut.json")
    [cut] = run.faults
    output = journal["run"][0]["output"]
    assert cut.fault_id == output["fault_id"] and cut.kind == "network-cut"
    [outage] = run.outages
    assert outage.label == "the API down" and 2 <= outage.seconds <= 4 + 6
    # recovery: from the cut's end (its timer, or a restore) to the watch seeing the API back
    watch = journal["run"][1]["output"]
    back = dt.datetime.fromisoformat(watch["back_at"])
    assert run.recovery.state == RECOVERED and run.recovery.healthy == back
    assert run.recovery.measured == max(0.0, round((back - cut.end).total_seconds(), 2))
    assert run.recovery.expected == 30 and run.recovery.exceeded is False

    dom = check_page(render([run], "html"), [journal])
    assert dom.find(id="recovery-1").find(cls="value").text() == seconds_text(run.recovery.measured)
    markdown = render([run], "markdown")
    assert "| recovery measured | expected | verdict | impact seen |" in markdown
    assert "| ≤ 30 s | ok | the API down" in markdown
    figures = json.loads(render([run], "json"))["runs"][0]
    assert figures["recovery"]["measured_seconds"] == run.recovery.measured
    assert figures["faults"][0]["fault_id"] == output["fault_id"]


def chromium(*args: str, tmp: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "headless Chromium is needed: apt-get install -y chromium fonts-dejavu-core"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=timeout)


def check_in_chromium(page: Path, journals: list[dict], tmp: Path) -> None:
    shot = tmp / "report.png"
    result = chromium(f"--screenshot={shot}", "--window-size=412,2000", page.as_uri(), tmp=tmp)
    assert shot.exists(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    result = chromium("--dump-dom", "--window-size=412,2000", page.as_uri(), tmp=tmp)
    assert result.returncode == 0, result.stderr[-2000:]
    check_page(result.stdout, journals)


def test_report_renders_in_headless_chromium(tmp_path):
    journals = [load("secret-failure.json"), load("deviated.json"), load("interrupted.json"),
                load("process-failure.json"), load("impact.json")]
    page = tmp_path / "campaign.html"
    page.write_text(render([read_run(j) for j in journals], "html"), encoding="utf-8")
    check_in_chromium(page, journals, tmp_path)


def test_real_report_renders_in_headless_chromium(netcut_journal, tmp_path):
    journal = json.loads(netcut_journal.read_text())
    page = tmp_path / "report.html"
    assert main(["report", str(netcut_journal), "-o", str(page)]) == 0
    check_in_chromium(page, [journal], tmp_path)


# -- the impact recording (issue 10) --------------------------------------------------------------------

ENV_TOKEN = "tok/en+value=42&x"  # CHAOSALI_RPT_TOKEN when impact.json was recorded
DB_SECRETS = ["lab-db-pass-8812", "drill-db-user", "bGFiLWRiLXBhc3MtODgxMg==", "ZHJpbGwtZGItdXNlcg=="]


def impact_measures(journal: dict) -> dict:
    return next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")["measures"]


def test_fmea_limits_are_impact_withins_and_validated():
    fmea = validate_fmea(experiment_with(max_pods_lost=0, max_unavailable_seconds=30.5, max_recovery_seconds=60,
                                         min_availability=99.5, max_api_down_seconds=0))
    assert fmea["min_availability"] == 99.5
    for name, wrong in [("max_pods_lost", 1.5), ("max_pods_lost", -1), ("max_pods_lost", True),
                        ("min_availability", 101), ("min_availability", "99"), ("max_unavailable_seconds", float("nan")),
                        ("max_recovery_seconds", float("inf")), ("max_api_down_seconds", -0.1),
                        ("max_api_down_seconds", None)]:
        with pytest.raises(InvalidArgument, match=name):
            validate_fmea(experiment_with(**{name: wrong}) if wrong is not None else
                          {"title": "t", "extensions": [{"name": "chaosali", "fmea": {
                              **experiment_with()["extensions"][1]["fmea"], name: None}}]})


@pytest.mark.parametrize("limit, bound", [("max_pods_lost", 1.5), ("max_api_down_seconds", 1e9),
                                          ("min_availability", 101)])
def test_impact_within_refuses_the_limits_the_fmea_refuses(limit, bound):
    """One reader per limit: judge took 1.5 pods and 1e9 s, which the FMEA check refused."""
    measures = measure({"seconds": 10, "timeline": []})
    with pytest.raises(InvalidArgument, match=limit):
        judge(measures, {limit: bound})
    with pytest.raises(InvalidArgument, match=limit):
        validate_fmea(experiment_with(**{limit: bound}))


def test_a_real_impact_recording_is_shown_in_every_format():
    journal = load("impact.json")
    run = read_run(journal, "impact.json")
    measures = impact_measures(journal)
    # the measured impact wins over the journal's probes: the recorder saw the API down, so core
    assert run.measures == measures and run.impact_level == measures["impact"] == "core"
    assert run.impact_exceeded is True and run.fault_proven is True
    lost = measures["workloads"]["Deployment demo/web"]["lost"]
    assert [pod["reason"] for pod in lost] == ["deleted by mistake"] * 2
    checks = {c.name: c.met for c in run.checks() if c.kind == "limit"}
    assert checks == {"pods lost at most 1": False, "each workload below desired at most 30 s": True,
                      "workloads and nodes recovered within 30 s": True, "API down at most 10 s": True}
    # probes 4 x 3 met, impact 3 missed, observed 3 met, recovery 1 met, limits 3 of 4: 19 of 23
    assert run.score == round(100 * 19 / 23, 1)

    text = render([run], "text")
    for needle in ["Workloads:", "2/2 at +0.06 s, 1/2 at +0.33 s, 0/2 at +0.33 s", "+22.32 s to +35.80 s",
                   "Pods lost:", lost[0]["pod"], "deleted by mistake", lost[0]["replacement"], "worker1",
                   "Nodes:", "unreachable", "API outages:", "+37.76 s  +40.79 s  3.03 s",
                   "MISSED pods lost at most 1: max_pods_lost 1: measured 2 lost: EXCEEDED",
                   "met    API down at most 10 s", f"resilience score: {run.score:g} / 100 (19 of 23"]:
        assert needle in text, needle
    markdown = render([run], "markdown")
    assert "## Impact recorded" in markdown and "**Pods lost**" in markdown
    [row] = [md_cells(line) for line in markdown.splitlines() if line.startswith(f"| {lost[0]['pod']}")]
    assert row == [lost[0]["pod"], "Deployment demo/web", "worker1", "deleted by mistake", "+0.28 s",
                   lost[0]["replacement"], "0.06 s"]
    assert "| pods lost at most 1 | MISSED |" in markdown
    figures = json.loads(render([run], "json"))["runs"][0]
    assert figures["recording"]["measures"]["pods_lost"] == 2 and figures["score"] == run.score
    assert {(c["limit"], c["met"]) for c in figures["limits"]} >= {("max_pods_lost", False)}
    dom = check_page(render([run], "html"), [journal])
    svg = dom.find("svg", id="timeline-1")
    assert len(svg.find_all("rect", cls="below")) == 3 and len(svg.find_all("rect", cls="notready")) == 1
    assert dom.find(id="score-1").find(cls="value").text() == f"{run.score:g}"
    assert [h.text() for h in dom.find("section", cls="recorded").find_all("h4")] == [
        "Workloads", "Pods lost", "Nodes", "API outages"]
    junit = ET.fromstring(render([run], "junit"))
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(render([run], "junit"))
    assert junit.find("testsuite/properties/property[@name='resilience_score']").get("value") == f"{run.score:g}"
    cases = {c.get("name"): outcome(c) for c in junit.iter("testcase") if c.get("classname") == "impact.fmea"}
    assert cases == {"impact at most partial": "failure", "fault proven": "passed",
                     "recovery within 30 s": "passed", **{n: "passed" if met else "failure" for n, met in checks.items()}}


def test_http_targets_are_shown_with_availability_and_latency():
    journal = load("impact.json")
    recording = next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")
    started = dt.datetime.fromisoformat(recording["recording"]["started_at"])
    window = {"from": (started + dt.timedelta(seconds=38)).isoformat(),
              "to": (started + dt.timedelta(seconds=41)).isoformat(), "reason": "connection refused"}
    recording["measures"]["http"] = {"web": {"samples": 200, "availability": 92.5, "p50": 0.004, "p95": 0.02,
                                             "p99": 0.25, "longest_failure_streak": 15, "error_windows": [window]}}
    journal["experiment"]["extensions"][0]["fmea"]["min_availability"] = 99
    run = read_run(journal, "impact.json")
    assert "web available 92.5 %" in run.impact_seen
    text = render([run], "text")
    assert "HTTP targets:" in text and "92.5 %" in text and "4 ms" in text and "250 ms" in text
    assert "+38.03 s to +41.03 s (connection refused)" in text
    assert "MISSED HTTP availability at least 99 %: min_availability 99: measured web 92.5 %" in text
    dom = check_page(render([run], "html"), [journal])
    assert len(dom.find("svg", id="timeline-1").find_all("rect", cls="http-error")) == 1


def test_limits_without_a_recording_cannot_be_judged():
    journal = load("deviated.json")
    journal["experiment"]["extensions"][0]["fmea"]["max_pods_lost"] = 0
    run = read_run(journal)
    [limit] = run.limits
    assert limit.met is None and "no impact recording" in limit.why
    [case] = [c for c in ET.fromstring(render([run], "junit")).iter("testcase") if c.get("name") == "pods lost at most 0"]
    assert outcome(case) == "skipped"
    journal["extensions"] = [{"name": "chaosali-impact", "missing": "the impact recording could not start: refused"}]
    run = read_run(journal)
    assert run.limits[0].why == "the impact recording could not start: refused"
    assert "impact recording missing: the impact recording could not start" in render([run], "text")


def test_score_weighs_critical_checks_three_and_the_others_one():
    runs = [read_run(load(name)) for name in JUNIT_JOURNALS]
    for run in runs:
        judged = [c for c in run.checks() if c.met is not None]
        assert {c.weight for c in judged if c.kind in ("probe", "impact", "observed")} <= {3}
        assert {c.weight for c in judged if c.kind in ("recovery", "limit")} <= {1}
    secret, deviated, interrupted, process = runs
    # 2 probes met (6), impact missed (3), observed (3), recovery missed (1): 9 of 13
    assert secret.score == round(100 * 9 / 13, 1)
    # interrupted: 2 probes met before, the 2 never checked after count as missed, nothing else judged
    assert interrupted.score == 50.0
    assert campaign_score(runs) == round(sum(r.score for r in runs) / 4, 1)
    text = render(runs, "text")
    assert f"resilience score {campaign_score(runs):g} / 100" in text
    for fmt in ("markdown", "html"):
        assert f"{campaign_score(runs):g} / 100" in render(runs, fmt)


# -- a fault not observed (issue 15) ----------------------------------------------------------------------


def test_a_fault_not_observed_is_flagged_in_every_format_and_fails_in_junit():
    journal = load("impact.json")
    measures = impact_measures(journal)
    measures.update(impact="none", pods_lost=0, api_down_seconds=0, workloads={}, nodes={})
    run = read_run(journal, "quiet.json")
    assert run.impact_level == "none" and run.fault_proven is False and run.impact_exceeded is False
    for fmt in ("text", "markdown", "html"):
        out = render([run], fmt)
        assert "FAULT NOT OBSERVED" in out, fmt
        assert "expected at most partial: ok" not in out, fmt
    assert json.loads(render([run], "json"))["runs"][0]["fault"]["proven"] is False
    dom = DOM(render([run], "html")).root
    assert "bad" in dom.find("div", cls="impact").classes()
    [case] = [c for c in ET.fromstring(render([run], "junit")).iter("testcase")
              if c.get("name") == "fault proven"]
    assert outcome(case) == "failure" and case.find("failure").get("message").startswith("FAULT NOT OBSERVED")
    # without the recorder, the journal's own sightings decide: nothing seen down is no impact either
    plain = load("secret-failure.json")
    plain["run"][1]["output"]["changes"] = plain["run"][1]["output"]["changes"][:1]
    plain["run"][2:4] = []
    assert read_run(plain).fault_proven is False
    # an FMEA that expects no impact has nothing to observe
    assert read_run(load("process-failure.json")).fault_proven is None


# -- secrets in reports (issue 11) -------------------------------------------------------------------------


def assert_hidden(journal: dict, secrets: list[str], what: str) -> None:
    run = read_run(journal, "leak.json")
    for fmt in FORMATS:
        out = render([run], fmt)
        for secret in secrets:
            assert secret not in out, f"{what}: {secret!r} shown in the {fmt} report"


def test_an_env_secret_unset_where_the_report_runs_does_not_leak(monkeypatch):
    """chaoslib copies every resolved secret into a dynamic configuration's provider.secrets,
    and the process echoed it (as is, and URL-encoded in a query)."""
    monkeypatch.delenv("CHAOSALI_RPT_TOKEN", raising=False)
    journal = load("impact.json")
    raw = json.dumps(journal)
    assert ENV_TOKEN in raw and journal["experiment"]["configuration"]["probe_started"]["provider"]["secrets"]
    journal["run"][2]["output"]["stderr"] += "retrying https://api.example/v1?token=tok%2Fen%2Bvalue%3D42%26x\n"
    assert_hidden(journal, [ENV_TOKEN, "tok%2Fen%2Bvalue%3D42%26x", "value=42"], "env secret")


def test_env_secrets_are_learned_from_the_journal_never_from_the_environment(monkeypatch):
    """A hostile journal names any variable of the reporting machine as an env secret, and holds
    activities named 0000-9999: the one masked would tell the variable's value."""
    monkeypatch.setenv("CHAOSALI_RPT_VICTIM", "4711")
    journal = load("secret-failure.json")
    journal["experiment"]["secrets"]["probe"] = {"pin": {"type": "env", "key": "CHAOSALI_RPT_VICTIM"}}
    template = journal["run"][0]
    journal["run"] = [{**template, "activity": {**template["activity"], "name": f"{n:04}"}} for n in range(10000)]
    out = json.loads(render([read_run(journal)], "json"))
    names = [a["name"] for a in out["runs"][0]["activities"] if a["phase"] == "method"]
    assert names == [f"{n:04}" for n in range(10000)]
    # the fixture's env secret, printed by a process, is masked only once the journal holds its resolved copy
    monkeypatch.setenv("CHAOSALI_TEST_SECRET_KEY", "env-secret-value-42")
    journal = load("secret-failure.json")
    assert "env-secret-value-42" in render([read_run(journal)], "html")
    journal["experiment"]["configuration"]["token"] = {"type": "probe", "provider": {
        "type": "python", "module": "m", "func": "f", "secrets": {"ssh": {"key_path": "env-secret-value-42"}}}}
    assert_hidden(journal, ["env-secret-value-42"], "resolved env secret")


def test_values_under_authorization_credentials_and_username_are_masked():
    journal = load("secret-failure.json")
    journal["run"][0]["output"]["request"] = {
        "headers": {"Authorization": "Basic ZHJpbGw6aHVudGVyMg==", "Cookie": "session=c00kie-v4lue"},
        "credentials": {"aws": "AKIAEXAMPLE99"}, "username": "operator-jane", "bearer": "b34rer-t0ken"}
    journal["run"][0]["output"]["log"] = "sent Authorization: Bearer eyJhbGciOi.payload.sig to the API"
    run = read_run(journal)
    request = run.journal["run"][0]["output"]["request"]
    assert request == {"headers": {"Authorization": MASK, "Cookie": MASK}, "credentials": MASK, "username": MASK,
                       "bearer": MASK}
    assert_hidden(journal, ["ZHJpbGw6aHVudGVyMg==", "c00kie-v4lue", "AKIAEXAMPLE99", "operator-jane", "b34rer-t0ken",
                            "eyJhbGciOi.payload.sig"], "credential-like names")
    # where a secret is kept, or which one, is no secret: paths and names stay
    masked = redact({"experiment": {"configuration": {"kubeconfig_path": "/etc/kube/admin.conf"}},
                     "run": [{"output": {"secret_name": "db-credentials", "tokenRef": "vault:x"}}]})
    assert masked["experiment"]["configuration"]["kubeconfig_path"] == "/etc/kube/admin.conf"
    assert masked["run"][0]["output"] == {"secret_name": "db-credentials", "tokenRef": "vault:x"}


def test_a_kubernetes_secret_returned_by_get_is_masked_whole():
    journal = load("impact.json")
    [read] = [r for r in journal["run"] if r["activity"]["name"] == "read-db-secret"]
    assert read["output"]["data"]["credentials"] == "bGFiLWRiLXBhc3MtODgxMg=="  # read with show_secret_data
    docker = base64.b64encode(b'{"auths": {"registry.example": {"auth": "cm9ib3Q6cjNnLXBhc3M="}}}').decode()
    listed = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
        {"metadata": {"name": "pull", "namespace": "demo", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"data": {".dockerconfigjson": docker}})}},
         "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": docker}}]}
    journal["run"].append({**read, "output": listed})
    journal["run"][2]["output"]["stdout"] = "password is lab-db-pass-8812\n"  # the decoded value, elsewhere
    run = read_run(journal)
    [first, second] = [a.output for a in run.activities if a.name == "read-db-secret"]
    assert first["data"] == MASK and first["metadata"]["name"] == "db-credentials" and first["type"] == "Opaque"
    assert second["items"][0]["data"] == MASK
    assert second["items"][0]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == MASK
    assert_hidden(journal, [*DB_SECRETS, docker, docker[:40]], "Secret object")


def test_an_inline_secret_is_masked_in_its_encoded_forms():
    secret = "pa'ss\\wörd/+&=42"
    journal = load("secret-failure.json")
    journal["experiment"]["secrets"]["api"] = {"weird": secret}
    journal["run"][0]["output"]["said"] = [
        f"kwargs={{'password': {secret!r}}}",  # a Python repr, with escapes
        f"GET /login?u=x&p={quote(secret, safe='')}",  # URL-encoded
        f"form u=x&p={quote_plus(secret)}",
        f"json {json.dumps(secret)}", f"b64 {base64.b64encode(secret.encode()).decode()}",
    ]
    assert_hidden(journal, [secret, repr(secret)[1:-1], quote(secret, safe=""), quote_plus(secret),
                            json.dumps(secret)[1:-1], base64.b64encode(secret.encode()).decode()], "encoded forms")


def test_get_masks_a_secrets_data_unless_asked(monkeypatch):
    from chaosali.cluster import probes, resources

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": '{"stringData": {"password": "pw-in-annotation"}}'}},
              "type": "Opaque", "data": {"password": "cA=="}}
    found: dict = {}

    class Where:
        class resource:
            kind = found.setdefault("kind", "Secret")

    class Connection:
        def __enter__(self):
            return None

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(resources, "connect", lambda *a: Connection())
    monkeypatch.setattr(resources, "locate", lambda *a: Where)
    monkeypatch.setattr(resources, "get", lambda dyn, where, *a: found["answer"])
    found["answer"] = secret
    masked = probes.get("Secret", "db", "demo")
    assert masked["data"] == MASK and "pw-in-annotation" not in json.dumps(masked)
    assert secret["data"] == {"password": "cA=="}, "the object read is left as it was"
    assert probes.get("Secret", "db", "demo", show_secret_data=True) == secret
    found["answer"] = {"kind": "List", "items": [{k: v for k, v in secret.items() if k != "kind"}]}
    assert probes.get("secrets", namespace="demo", label_selector="app=db")["items"][0]["data"] == MASK
    with pytest.raises(InvalidArgument, match="show_secret_data"):
        probes.get("Secret", "db", show_secret_data="maybe")


def test_get_of_a_secret_in_the_lab_returns_it_masked(kube):
    from chaosali.cluster.actions import create, delete
    from chaosali.cluster.probes import get

    configuration = kube.admin
    create(manifest={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "report-test"},
                     "stringData": {".dockerconfigjson": '{"auths": {}}', "credentials": "lab-c4-value"}},
           namespace="default", exist_ok=True, configuration=configuration)
    try:
        one = get("Secret", "report-test", "default", configuration=configuration)
        listed = get("Secret", namespace="default", field_selector="metadata.name=report-test",
                     configuration=configuration)
        shown = get("Secret", "report-test", "default", show_secret_data=True, configuration=configuration)
    finally:
        delete("Secret", "report-test", namespace="default", configuration=configuration)
    assert one["data"] == MASK and listed["items"][0]["data"] == MASK
    assert "lab-c4-value" not in json.dumps([one, listed])
    assert base64.b64decode(shown["data"]["credentials"]) == b"lab-c4-value"


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


# -- two judgements: fault proven, impact against the FMEA (issue 19) ------------------------------------


def with_proof(journal: dict, proven: bool, evidence: list[dict], why: str | None = None) -> dict:
    """The journal as if its steady state's last check ran faults_observed and judged the faults so."""
    after = journal["steady_states"]["after"]
    at = after["probes"][-1]["end"]
    after["probes"].append({
        "activity": {"type": "probe", "name": "faults-proven",
                     "provider": {"type": "python", "module": "chaosali.impact.probes", "func": "faults_observed"},
                     "tolerance": {"type": "jsonpath", "path": "$.all_seen", "expect": True}},
        "output": {"all_seen": proven, "proven": proven, "faults": [{"kind": "reboot", "detail": "worker1"}],
                   "evidence": evidence, **({"why": why} if why else {})},
        "start": at, "end": at, "duration": 0.0, "status": "succeeded", "tolerance_met": proven})
    if not proven:
        after["steady_state_met"], journal["deviated"] = False, True
    return journal


def quiet_recording(journal: dict) -> dict:
    impact_measures(journal).update(impact="none", pods_lost=0, api_down_seconds=0, workloads={}, nodes={})
    return journal


REBOOTED = {"what": "reboot of worker1 (10.217.0.12)", "seen": True, "expected": True,
            "detail": "worker1: new boot identity, SSH down 1.1 s"}


def test_a_proven_fault_with_less_impact_than_expected_is_a_finding_not_a_failure():
    run = read_run(with_proof(quiet_recording(load("impact.json")), True, [REBOOTED]), "reboot.json")
    assert run.fault_proven is True and run.impact_level == "none" and run.impact_lower is True
    assert run_verdict(run) == "ok, impact lower than expected" and run.deviated is False
    proven = next(e for e in expectations(run) if e.name == "fault proven")
    assert proven.met is True and "reboot of worker1 (10.217.0.12): worker1: new boot identity" in proven.sentence
    for fmt in ("text", "markdown", "html", "junit"):
        out = render([run], fmt)
        assert "FAULT NOT OBSERVED" not in out and "proved nothing" not in out, fmt
        assert "lower than expected" in out, fmt
    figures = json.loads(render([run], "json"))["runs"][0]
    assert figures["fault"]["proven"] is True and figures["fault"]["judged_by"] == "faults_observed"
    assert figures["impact"]["lower"] is True and figures["impact"]["exceeded"] is False


def test_evidence_probes_prove_a_fault_that_no_watch_saw():
    # host-netcut: no recording, no watch; network_effect saw every connection lost
    cut = {"what": "network effect on host1 (tcp port 22 from controller)", "seen": True, "expected": True,
           "detail": "at least 100 % lost"}
    plain = load("secret-failure.json")
    plain["run"][1]["output"]["changes"] = plain["run"][1]["output"]["changes"][:1]
    plain["run"][2:4] = []
    assert read_run(plain).fault_proven is False  # judged by the impact seen alone: nothing
    run = read_run(with_proof(plain, True, [cut]))
    assert run.fault_proven is True and run_verdict(run) != "FAULT NOT OBSERVED"


def test_a_fault_the_run_could_not_prove_is_not_observed_whatever_the_impact():
    drain = {"what": "drain of worker1", "seen": False, "expected": True,
             "detail": "0 pods evicted, 0 blocked by a budget, 1 skipped"}
    run = read_run(with_proof(load("impact.json"), False, [drain], why=f"{drain['what']}: {drain['detail']}"))
    assert run.fault_proven is False and run_verdict(run) == "FAULT NOT OBSERVED" and run.deviated is True
    assert "FAULT NOT OBSERVED: drain of worker1: 0 pods evicted" in render([run], "text")
    [case] = [c for c in ET.fromstring(render([run], "junit")).iter("testcase") if c.get("name") == "fault proven"]
    assert outcome(case) == "failure"


def test_a_steady_state_probe_not_met_is_never_ok():
    journal = with_proof(quiet_recording(load("impact.json")), True, [REBOOTED])
    journal["steady_states"]["after"]["probes"][0]["tolerance_met"] = False
    assert run_verdict(read_run(journal)) == "DEVIATED"  # the probe alone
    journal["steady_states"]["after"]["steady_state_met"], journal["deviated"] = False, True
    assert run_verdict(read_run(journal)) == "EXCEEDED"  # and so not recovered at the last sighting


def test_a_watch_that_ended_down_says_what_it_saw():
    journal = load("secret-failure.json")
    watch = journal["run"][1]["output"]
    watch.update(changes=watch["changes"][:2], last=False, back_at=None)
    text = render([read_run(journal)], "text")
    assert f"first down at {watch['down_at']}, still down when the watch ended after" in text
    assert "not back when the watch ended" not in text


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
LEAKS = [
    ("DB_PASSWORD=db-pw-0001", "db-pw-0001"), ("PGPASSWORD=pg-pw-0002 psql", "pg-pw-0002"),
    ("GITHUB_TOKEN=ghp_0003abcdef", "ghp_0003abcdef"), ("export API_TOKEN=api-tok-0004", "api-tok-0004"),
    ("x_api_key: xak-0005", "xak-0005"), ("privatekey=pk-0006", "pk-0006"), ("authtoken: at-0007", "at-0007"),
    ("cloning https://deploy:url-pw-0008@git.lab/repo.git", "url-pw-0008"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA0009\n-----END OPENSSH PRIVATE KEY-----\n",
     "b3BlbnNzaC1rZXktdjEAAAA0009"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEcut-short-0010", "MIIEcut-short-0010"),
    ("    client-key-data: LS0tLS1CRUdJTi0011", "LS0tLS1CRUdJTi0011"),
    ("mysqldump -u root -pmy-pw-0012 app", "my-pw-0012"), ("vault login --password cli-pw-0013", "cli-pw-0013"),
    ("headers={'Authorization': 'Token drf-0014'}", "drf-0014"), ("Authorization: Bearer ab15", "ab15"),
    ('{"auths": {"reg.lab": {"auth": "ZG9ja2VyOjAwMTY="}}}', "ZG9ja2VyOjAwMTY="),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMDE3In0.c2lnMDAxNw", "eyJzdWIiOiIwMDE3In0"),
]
# what only looks like a credential stays
LOOKALIKES = ["kube_monkey_namespace: chaos", "author: Jane", "secret_name: db-credentials",
              "--token-file /var/run/token", "ssh -p 2222 host", "mkdir -p /tmp/x", "Basic checks passed",
              "https://git.lab/repo.git", "tokens: 12 of 40", "PASSWORD_FILE=/etc/pw"]


def test_credentials_said_in_free_text_are_masked_and_lookalikes_stay():
    journal = load("process-failure.json")
    [process] = [r for r in journal["run"] if isinstance(r.get("output"), dict) and "stderr" in r["output"]][:1]
    process["output"]["stdout"] = "\n".join(text for text, _ in LEAKS) + "\n" + "\n".join(LOOKALIKES)
    process["output"]["stderr"] = "\n".join(text for text, _ in LEAKS)
    assert_hidden(journal, [secret for _, secret in LEAKS], "free text")
    shown = read_run(journal).journal["run"][journal["run"].index(process)]["output"]["stdout"]
    assert all(text in shown for text in LOOKALIKES), shown


def test_credentials_in_structures_are_masked():
    """A Kubernetes env entry, an argv list, a Secret a process printed as YAML or JSON."""
    manifest = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n"
                "data:\n  password: c3RkLXB3LTAwMjE=\nstringData:\n  token: std-tok-0022\n")
    listed = json.dumps({"kind": "List", "items": [{"kind": "Secret", "metadata": {"name": "x"}, "type": "Opaque",
                                                    "data": {"k": "anNvbi0wMDIz"}}]}, indent=2)
    journal = load("process-failure.json")
    journal["run"][0]["output"] = {
        "env": [{"name": "DB_PASSWORD", "value": "env-pw-0020"}, {"name": "LOG_LEVEL", "value": "debug"}],
        "argv": ["mysql", "-u", "root", "-pargv-pw-0024", "--password", "argv-pw-0025", "-p", "3306"],
        "printed": {"status": 0, "stdout": manifest, "stderr": listed},
        "echoed": "connected with env-pw-0020 and std-tok-0022 (decoded std-pw-0021, json-0023)",
    }
    run = read_run(journal)
    output = run.journal["run"][0]["output"]
    assert output["env"] == [{"name": "DB_PASSWORD", "value": MASK}, {"name": "LOG_LEVEL", "value": "debug"}]
    assert output["argv"] == ["mysql", "-u", "root", f"-p{MASK}", "--password", MASK, "-p", "3306"]
    assert "kind: Secret" in output["printed"]["stdout"]  # the text stays, its values go
    assert_hidden(journal, ["env-pw-0020", "argv-pw-0024", "argv-pw-0025", "c3RkLXB3LTAwMjE=", "std-pw-0021",
                            "std-tok-0022", "anNvbi0wMDIz", "json-0023"], "structures")
