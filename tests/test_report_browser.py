"""A real journal (a master netcut in the lab) reported, and the pages in a real headless Chromium."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from chaosali.cli import main
from chaosali.report.figures import read_run
from chaosali.report.model import seconds_text
from chaosali.report.recovery import RECOVERED
from chaosali.report.render import render
from helpers import chaos_run, journal_of
from reports import check_page, chromium, load


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
