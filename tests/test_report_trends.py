"""Trends across runs (issue 35): one report over many journals, a trend per experiment, charts,
regressions flagged against the median of the runs before.

The unit tests read nights made from a real journal (``data/alerts.json``: master-netcut on the
monitored lab, the API down 9.02 s as recorded); the lab test runs master-netcut itself.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from PIL import Image

from chaosali.cli import main
from chaosali.core.errors import InvalidArgument
from chaosali.report import trends
from chaosali.report.figures import read_run
from chaosali.report.render import FORMATS, journals_in, load_report, render
from chaosali.report.trends import DEFAULT_MARGIN, PERCENT, PODS, SECONDS, Margin, Report
from helpers import chaos_run, journal_of, passed
from reports import DATA, DOM, check_page, chromium, load, outcome

MASTER_NETCUT = "The cluster survives losing its masters' network for a while"


def night(day: int, api_down: float = 9.0, pods_lost: int = 0, **extra: object) -> dict:
    """alerts.json (run on 2026-12-03 at 07:09:50) as the night ``day`` of December 2026 ran it,
    with these recorded measures."""
    journal = json.loads(_ALERTS.replace("2026-12-03T", f"2026-12-{day:02d}T"))
    measures = next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")["measures"]
    measures.update(api_down_seconds=api_down, pods_lost=pods_lost, **extra)
    return journal


_ALERTS = (DATA / "alerts.json").read_text()


def written(tmp_path: Path, journals: list[dict], name: str = "night-{}.json") -> list[Path]:
    paths = []
    for number, journal in enumerate(journals, 1):
        path = tmp_path / name.format(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(journal))
        paths.append(path)
    return paths


def report_of(journals: list[dict], margin: Margin = DEFAULT_MARGIN) -> Report:
    return Report.of([read_run(journal, f"night-{n}.json") for n, journal in enumerate(journals, 1)], margin)


# -- regressions -----------------------------------------------------------------------------------------


def test_a_longer_api_outage_is_flagged_against_the_median_of_the_runs_before():
    report = report_of([night(1, 9.0), night(2, 9.5), night(3, 8.8), night(4, 20.0)])
    [trend] = report.trends
    assert trend.title == MASTER_NETCUT and [p.source for p in trend.points] == [f"night-{n}.json" for n in range(1, 5)]
    [regression] = report.regressions
    assert (regression.point.source, regression.measure, regression.value, regression.baseline) == (
        "night-4.json", "API down", 20.0, 9.0)
    assert [p.source for p in regression.compared] == ["night-1.json", "night-2.json", "night-3.json"]
    assert regression.text() == ("API down 20 s, +122 %, the median of the 3 runs before 9 s "
                                 "(night-1.json, night-2.json, night-3.json)")
    # the same nights in another order: the time they ran decides, not the order given
    shuffled = report_of([night(4, 20.0), night(2, 9.5), night(1, 9.0), night(3, 8.8)])
    assert [(r.point.start.day, r.measure) for r in shuffled.regressions] == [(4, "API down")]
    # a wider margin lets it pass
    assert not report_of([night(1, 9.0), night(2, 9.5), night(3, 8.8), night(4, 20.0)], Margin(150)).regressions


def test_a_margin_needs_both_its_per_cent_and_its_seconds():
    margin = Margin()  # 50 % and 1 s
    assert not margin.worse(SECONDS, 1.4, 0.5)  # +180 %, but 0.9 s: noise at this scale
    assert margin.worse(SECONDS, 1.5, 0.5)
    assert not margin.worse(SECONDS, 14.9, 10.0) and margin.worse(SECONDS, 15.1, 10.0)
    assert margin.worse(SECONDS, 1.0, 0.0) and not margin.worse(SECONDS, 0.9, 0.0)
    assert margin.worse(PODS, 1, 0) and margin.worse(PODS, 3, 2) and not margin.worse(PODS, 2, 2)
    assert margin.worse(PERCENT, 98.0, 99.5)  # 2 points unavailable where 0.5 were
    assert not margin.worse(PERCENT, 99.2, 99.5) and not margin.worse(PERCENT, 100.0, 90.0)
    assert Margin(10, 5).worse(SECONDS, 16, 10) and not Margin(10, 5).worse(SECONDS, 14, 10)
    with pytest.raises(InvalidArgument, match=r"the margin \(--margin, per cent\) -5 must be a number of 0 or more"):
        Margin(-5)
    with pytest.raises(InvalidArgument, match=r"--margin-seconds\) nan must be a number"):
        Margin(50, float("nan"))


def test_a_lower_availability_is_a_regression_in_points():
    http = {"web": {"samples": 200, "availability": 99.5, "p50": 0.01, "p95": 0.02, "p99": 0.03,
                    "longest_failure_streak": 1, "error_windows": []}}
    slower = copy.deepcopy(http)
    slower["web"]["availability"] = 97.0
    report = report_of([night(1, http=http), night(2, http=http), night(3, http=slower)])
    [regression] = report.regressions
    assert regression.text() == ("availability web 97 %, 2.5 points lower, the median of the 2 runs before 99.5 % "
                                 "(night-1.json, night-2.json)")


def test_a_pod_lost_and_a_verdict_turned_red_are_regressions():
    report = report_of([night(1), night(2), night(3, pods_lost=1), night(4, 40.0)])
    found = [(r.point.source, r.measure) for r in report.regressions]
    # night 3 lost a pod its FMEA allows none of: red, and a pod more than the median of 0
    assert ("night-3.json", "verdict") in found and ("night-3.json", "pods lost") in found
    # night 4: the API down past the FMEA's 30 s is red too, but night 3 already was: not "turned" red
    assert ("night-4.json", "API down") in found and ("night-4.json", "verdict") not in found
    assert next(r for r in report.regressions if r.measure == "pods lost").text().startswith(
        "pods lost 1, +1, the median of the 2 runs before 0 (")
    verdict = next(r for r in report.regressions if r.measure == "verdict")
    assert verdict.text() == "verdict EXCEEDED, the run before ok (night-2.json)"


def test_the_median_is_of_the_last_runs_only():
    """A year of nights: the baseline is today's normal (the last 10 runs), not last winter's."""
    slow = [night(day, 30.0 if day > 10 else 9.0) for day in range(1, 26)]
    report = report_of(slow, Margin())
    # until more than half of the last 10 runs are slow (night 16: a median of 19.5 s), then it is the normal
    assert [r.point.start.day for r in report.regressions if r.measure == "API down"] == list(range(16, 10, -1))
    assert report.regressions[0].text() == ("API down 30 s, +54 %, the median of the 10 runs before 19.5 s "
                                            "(night-6.json … night-15.json)")  # newest first, the runs a range


# -- every format --------------------------------------------------------------------------------------


def test_every_format_lists_the_regression_first_and_the_trend_with_its_measures(tmp_path, capsys):
    paths = written(tmp_path, [night(1), night(2, 9.5), night(3, 8.8), night(4, 20.0)])
    text = render(load_report(paths), "text")
    assert text.index("Regressions: 1 run worse") < text.index("Trend of ") < text.index("#1 night-1.json")
    header = next(line for line in text.splitlines() if line.lstrip().startswith("#  started"))
    assert "recovery (≤ 30 s)" in header and "API down (≤ 30 s)" in header and "time to detect KubeAPIDown (≤ 20 s)" in header
    assert "  4  2026-12-04 07:09  night-4.json  ok" in text and "20 s ▲" in text
    markdown = render(load_report(paths), "markdown")
    assert "## Regressions: 1 run worse" in markdown and "| 20 s ▲ |" in markdown
    figures = json.loads(render(load_report(paths), "json"))
    assert list(figures) == ["summary", "regressions", "unreadable", "trends", "runs"]
    [regression] = figures["regressions"]
    assert regression["compared_with"] == ["night-1.json", "night-2.json", "night-3.json"]
    [trend] = figures["trends"]
    assert [run["measures"]["API down"] for run in trend["runs"]] == [9.0, 9.5, 8.8, 20.0]
    assert trend["limits"] == {"recovery": 30.0, "API down": 30.0, "pods lost": 0.0, "time to detect KubeAPIDown": 20.0}
    # the margin is the command's option
    assert main(["report", *map(str, paths), "--margin", "150", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["regressions"] == []
    assert main(["report", *map(str, paths), "--margin-seconds", "12", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["regressions"] == []


def test_the_html_charts_draw_the_limit_the_failed_runs_and_the_regression():
    journals = [night(1), night(2, 9.5), night(3, pods_lost=1), night(4, 8.8), night(5, 20.0)]
    page = render(report_of(journals), "html")
    dom = check_page(page, journals)
    links = [a.attrs["href"] for a in dom.find("section", cls="regressions").find_all("a")]
    assert links == ["#run-5", "#run-3", "#run-3"]  # the newest first: night 5's API down, night 3 red and a pod lost
    trend = dom.find("section", id="trend-1")
    charts = {c.find("title").text().split(" of ")[0]: c for c in trend.find_all("svg", cls="chart")}
    assert list(charts) == ["recovery", "API down", "pods lost", "worst below desired", "time to detect KubeAPIDown",
                            "score"]
    api = charts["API down"]
    assert len(api.find("polyline", cls="series").attrs["points"].split()) == 5
    [limit] = api.find_all("line", cls="limit")
    assert limit.find("title").text() == "FMEA limit: 30 s"
    [failed] = api.find_all("circle", cls="failed")  # night 3: red, for its pod lost
    assert "night-3.json" in failed.find("title").text() and "EXCEEDED" in failed.find("title").text()
    [flagged] = api.find_all("circle", cls="regression")
    assert flagged.find("title").text().startswith("regression: night-5.json (2026-12-05 07:09): API down 20 s, +122 %")
    # the limit line (30 s) above the regression (20 s), above the failed night (9 s)
    assert float(limit.attrs["y1"]) < float(flagged.attrs["cy"]) < float(failed.attrs["cy"])
    assert charts["pods lost"].find("circle", cls="regression")
    assert not charts["score"].find_all("line", cls="limit")  # no FMEA limit for the score
    worse = trend.find("table", cls="trend").find_all("td", cls="worse")
    assert [(cell.attrs["data-label"], cell.text()) for cell in worse] == [
        ("verdict", "EXCEEDED ▲"), ("pods lost (≤ 0)", "1 ▲"), ("API down (≤ 30 s)", "20 s ▲")]


def test_junit_fails_the_newest_run_that_regressed_and_tells_the_older_regressions():
    schema = xmlschema.XMLSchema(str(DATA / "junit-10.xsd"))
    out = render(report_of([night(1), night(2), night(3), night(4, 20.0)]), "junit")
    schema.validate(out)
    [suite] = [s for s in ET.fromstring(out).iter("testsuite") if s.get("name", "").startswith("trend: ")]
    cases = {case.get("name"): outcome(case) for case in suite.iter("testcase")}
    assert cases["API down not worse than the runs before"] == "failure"
    assert cases["verdict not worse than the runs before"] == "passed"
    assert cases["recovery not worse than the runs before"] == "passed"
    assert not [name for name in cases if name.startswith("score")]
    assert suite.get("failures") == "1" and suite.find("system-out") is None
    # a regression before the newest run: told, and the newest run, back to normal, passes
    out = render(report_of([night(1), night(2), night(3, 20.0), night(4)]), "junit")
    schema.validate(out)
    [suite] = [s for s in ET.fromstring(out).iter("testsuite") if s.get("name", "").startswith("trend: ")]
    assert suite.get("failures") == "0"
    assert "night-3.json (2026-12-03 07:09): API down 20 s" in suite.find("system-out").text


# -- many journals ---------------------------------------------------------------------------------------


def test_directories_and_globs_and_repeated_names(tmp_path, capsys):
    written(tmp_path / "runs", [night(1), night(2), night(3), night(4, 20.0)], "{}/journal.json")
    (tmp_path / "runs" / "2" / "broken.json").write_text("{not json")
    found = journals_in([tmp_path / "runs"])
    assert [p.relative_to(tmp_path / "runs").as_posix() for p in found] == [
        "1/journal.json", "2/broken.json", "2/journal.json", "3/journal.json", "4/journal.json"]
    assert journals_in([Path(f"{tmp_path}/runs/*/journal.json")]) == [p for p in found if p.name == "journal.json"]
    assert journals_in([tmp_path / "none-*.json"]) == [tmp_path / "none-*.json"]  # said unreadable, by its name
    assert main(["report", str(tmp_path / "runs"), "--format", "json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    # journal.json four times: each run named by its path in the directory; the broken file listed, not fatal
    assert [r["journal"] for r in figures["regressions"]] == ["4/journal.json"]
    [unreadable] = figures["unreadable"]
    assert unreadable["journal"] == "2/broken.json" and "cannot read the journal" in unreadable["why"]
    assert figures["summary"]["runs"] == 5 and len(figures["trends"][0]["runs"]) == 4
    assert main(["report", str(tmp_path / "empty-dir-*")]) == 1
    assert main(["report", str(tmp_path / "empty-dir-*.json"), "--format", "json"]) == 1
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 1
    assert "no journal in" in capsys.readouterr().err


def test_a_large_campaign_keeps_points_and_reports_only_the_regressed_runs_in_full(tmp_path, monkeypatch):
    monkeypatch.setattr(trends, "TABLE_ROWS", 5)
    nights = [night(day, 20.0 if day in (4, 18) else 9.0) for day in range(1, 26)]
    report = load_report(written(tmp_path, nights))
    assert len(report.points) == 25 and [run.source for run in report.runs] == ["night-18.json", "night-4.json"]
    text = render(report, "text")
    assert "25 runs: each is a row of its experiment's trend; the 2 newest of those that regressed" in text
    assert "25 runs: the table shows the newest 5 and those flagged before them" in text
    shown = [line.split()[0] for line in text.split("Trend of ")[1].splitlines()[2:9]]
    assert shown == ["4", "18", "21", "22", "23", "24", "25"]
    figures = json.loads(render(report, "json"))
    assert figures["summary"] | {"score": None} == {
        "runs": 25, "completed": 25, "deviated": 0, "recovery_exceeded": 0, "impact_exceeded": 0,
        "fault_not_observed": 0, "not_detected": 0, "score": None, "reported_in_full": 2}
    assert len(figures["trends"][0]["runs"]) == 25 and len(figures["runs"]) == 2
    dom = DOM(render(report, "html")).root
    assert len(dom.find_all("article", cls="run")) == 2 and not dom.find_all("table", cls="summary")


def test_hostile_and_old_journals_render_as_one_run_each_beside_a_trend(tmp_path):
    names = ["secret-failure.json", "deviated.json", "interrupted.json", "process-failure.json", "impact.json"]
    paths = [DATA / name for name in names] + written(tmp_path, [night(1), night(2)])
    (tmp_path / "truncated.json").write_text('{"experiment": {')
    report = load_report([*paths, tmp_path / "truncated.json"])
    assert len(report.runs) == 8 and [len(t.points) for t in report.trends] == [2]
    assert [p.source for p in report.unreadable] == ["truncated.json"]
    for fmt in FORMATS:
        assert render(report, fmt)


# -- the single run's page -----------------------------------------------------------------------------


def test_the_impact_card_holds_one_figure_and_a_word():
    dom = DOM(render([read_run(load("alerts.json"))], "html")).root
    card = dom.find(id="impact-1")
    assert card.find(cls="value").text() == "core"
    assert card.find(cls="sub").text() == "the API down 9.02 s · ok"
    assert "Impact seen: the API down 9.02 s (recorded, /readyz each second); core (recorded)" in dom.find(
        "p", cls="explain").text()
    several = DOM(render([read_run(load("impact.json"))], "html")).root.find(id="impact-1")
    assert several.find(cls="value").text() == "core" and several.find(cls="sub").text().startswith(
        "the API down 3.03 s (+")


def test_the_timeline_has_a_lane_per_alert_pending_firing_resolved():
    run = read_run(load("alerts.json"))
    timeline = DOM(render([run], "html")).root.find("svg", id="timeline-1")
    lanes = {row.find("text").text(): row for row in timeline.find_all("g", cls="row")
             if row.find_all("rect", cls="alert-pending")}
    assert list(lanes)[2] == "alert KubeAPIDown · pending +2.39 s, firing +3.40 s, resolved +12.47 s"
    down = next(row for row in timeline.find_all("g", cls="row") if row.find("text").text() == "the API down (recorded)")
    api = lanes["alert KubeAPIDown · pending +2.39 s, firing +3.40 s, resolved +12.47 s"]
    [firing] = api.find_all("rect", cls="alert-firing")
    [resolved] = api.find_all("rect", cls="alert-resolved")
    outage = down.find("rect", cls="outage")
    # it fires after the API went down, and resolves after it came back, on the same clock
    assert float(outage.attrs["x"][:-1]) < float(firing.attrs["x"][:-1])
    assert float(outage.attrs["x"][:-1]) + float(outage.attrs["width"][:-1]) < float(resolved.attrs["x"][:-1])
    # an alert already pending when the recording started, resolved without firing: no firing bar
    cpu = lanes["alert HostCPUSaturated on master1 · pending +0.37 s, resolved +1.38 s"]
    assert not cpu.find_all("rect", cls="alert-firing") and cpu.find_all("rect", cls="alert-resolved")


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "junit"])
def test_one_journal_has_no_trend(fmt):
    out = render([read_run(load("alerts.json"))], fmt)
    assert "Trend" not in out and "trend" not in out.lower().replace("trends across", "")


def test_a_timeline_spanning_a_year_has_a_few_ticks():
    """A journal whose end is a year after its start drew a tick every two hours: 4,380 of them."""
    journal = load("alerts.json")
    journal["end"] = "2027-12-03T07:10:00+00:00"
    ticks = DOM(render([read_run(journal)], "html")).root.find("svg", id="timeline-1").find_all("text", cls="tick")
    assert 2 <= len(ticks) <= 6 and ticks[1].text() == "+1753 h"  # 8,760 h / 5, in whole hours


# -- the lab: master-netcut night after night -----------------------------------------------------------

LIMIT_COLOUR, REGRESSION_COLOUR = (0x0B, 0x72, 0x85), (0xD0, 0x1C, 0x8B)  # the page's --limit and --regression


def drawn(shot: Path) -> tuple[list[int], list[int]]:
    """What a screenshot shows of the trend charts: the rows a limit line runs along (100 pixels of
    its colour or more: no label or legend is that wide), and the centres (y) of the regression
    discs (round blobs of their colour: not the section's stripe, nor the table's ▲)."""
    image = Image.open(shot).convert("RGB")
    width = image.size[0]

    def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 12 for a, b in zip(pixel, colour))

    rows: dict[int, int] = {}
    marked: set[tuple[int, int]] = set()
    data = image.tobytes()  # RGB, row by row
    for index in range(0, len(data), 3):
        pixel = (data[index], data[index + 1], data[index + 2])
        y, x = divmod(index // 3, width)
        if near(pixel, LIMIT_COLOUR):
            rows[y] = rows.get(y, 0) + 1
        elif near(pixel, REGRESSION_COLOUR):
            marked.add((x, y))
    discs = []
    while marked:
        blob, todo = set(), [marked.pop()]
        while todo:
            x, y = todo.pop()
            blob.add((x, y))
            for neighbour in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if neighbour in marked:
                    marked.remove(neighbour)
                    todo.append(neighbour)
        xs, ys = [x for x, _ in blob], [y for _, y in blob]
        w, h = max(xs) - min(xs) + 1, max(ys) - min(ys) + 1
        if 5 <= w <= 16 and 5 <= h <= 16 and abs(w - h) <= 2 and len(blob) >= 0.6 * w * h:
            discs.append(min(ys) + h // 2)
    return [y for y, count in rows.items() if count >= 100], discs


def test_master_netcut_night_after_night_the_longer_cut_is_flagged_and_charted_in_chromium(kube, tmp_path):
    """Three runs of a 4 s master cut, then one of 10 s: the report over their directory flags the
    fourth's API outage against the median of the three before it, and Chromium shows the charts
    with the FMEA's limit line and, below it, the flagged point."""
    runs = tmp_path / "runs"
    for night, cut in enumerate([4, 4, 4, 10], 1):
        folder = runs / f"night-{night}"
        folder.mkdir(parents=True)
        run = chaos_run(folder, "master-netcut.json", [kube.lab.vars_path], "--var", f"cut_seconds:int={cut}",
                        "--var", "settle_seconds:int=2")
        assert passed(journal_of(run, folder))
    report = load_report([runs])
    [trend] = report.trends
    journals = [f"night-{night}/journal.json" for night in range(1, 5)]
    assert [p.source for p in trend.points] == journals
    [longer] = [r for r in report.regressions if r.measure == "API down"]
    assert longer.point.source == journals[3] and [p.source for p in longer.compared] == journals[:3]
    assert longer.value > 1.5 * longer.baseline  # about twice the 4 s cuts' outage

    page = tmp_path / "trend.html"
    assert main(["report", str(runs), "-o", str(page)]) == 0
    dumped = chromium("--dump-dom", "--window-size=1000,1600", page.as_uri(), tmp=tmp_path)
    charts = DOM(dumped.stdout).root.find("section", id="trend-1").find_all("svg", cls="chart")
    [api] = [chart for chart in charts if chart.find("title").text().startswith("API down of")]
    assert api.find("line", cls="limit") and "night-4" in api.find("circle", cls="regression").find("title").text()
    shot = tmp_path / "trend.png"
    chromium(f"--screenshot={shot}", "--window-size=1000,1600", page.as_uri(), tmp=tmp_path)
    limit_rows, discs = drawn(shot)
    assert limit_rows and discs, (limit_rows, discs)
    # the flagged point sits in a chart under its limit line (the API down 30 s at most; this night ~10 s)
    assert any(row < disc < row + 130 for row in limit_rows for disc in discs), (limit_rows, discs)
