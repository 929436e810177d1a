"""What the report tests share: the journals under tests/data/, a small DOM for the HTML, an
experiment with an FMEA block, the impact measures of a journal, a JUnit case's outcome.

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

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from helpers import REPO

DATA = Path(__file__).resolve().parent / "data"
EXPERIMENTS = sorted((REPO / "experiments").glob("*.json"))
SECRETS = ["hunter2-Sup3r-secret", "tok-abcdef123456", "drill-operator", "pg-pass-777", "AKIA123456"]
CHAOS = Path(sys.executable).with_name("chaos")  # the real console script, not a pyenv shim needing HOME
PROCESS_SECRET = "s3cr3t-boom-token-99"  # the inline secret of process-failure.experiment.json
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(*args: str, tmp: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    """The real headless Chromium, with a profile of its own under ``tmp``."""
    binary = shutil.which("chromium")
    assert binary, "headless Chromium is needed: apt-get install -y chromium fonts-dejavu-core"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=timeout)


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


def experiment_with(**fmea) -> dict:
    base = {"failure_mode": "a node reboots", "category": "host", "severity": "medium", "impact": "partial",
            "recovery": "auto", "recovery_seconds": 60, "detection": "nodes-ready"}
    base.update(fmea)
    return {"title": "t", "extensions": [{"name": "other"}, {"name": "chaosali", "fmea": {
        k: v for k, v in base.items() if v is not None}}]}


ENV_TOKEN = "tok/en+value=42&x"  # CHAOSALI_RPT_TOKEN when impact.json was recorded
DB_SECRETS = ["lab-db-pass-8812", "drill-db-user", "bGFiLWRiLXBhc3MtODgxMg==", "ZHJpbGwtZGItdXNlcg=="]


def impact_measures(journal: dict) -> dict:
    return next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")["measures"]


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


JUNIT_JOURNALS = ["secret-failure.json", "deviated.json", "interrupted.json", "process-failure.json"]


def outcome(case: ET.Element) -> str:
    found = [tag for tag in ("failure", "error", "skipped") if case.find(tag) is not None]
    assert len(found) <= 1, ET.tostring(case)
    return found[0] if found else "passed"
