"""``chaosali report``: journals as text (the story), Markdown, JSON figures, one HTML page or JUnit
XML (``junit``).

One journal gives its report; several give a summary table of the drill campaign (one row per
run) followed by each report. Everything shown comes from one model of each run
(``chaosali.report.figures.Run``, read from the redacted journal), the text as well.
"""

from __future__ import annotations

import glob
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

from chaosali.core.errors import InvalidArgument
from chaosali.core.tables import md, md_table, text_table
from chaosali.report.figures import Run, campaign_score, read_run
from chaosali.report.model import Activity, seconds_text
from chaosali.report.junit import junit_report
from chaosali.report.render_html import html_report
from chaosali.report.outputs import printable
from chaosali.report.safety import halt_span
from chaosali.report.trends import (
    DEFAULT_MARGIN, Margin, Point, Report, point_of, regression_figures, trend_figures, trend_table, trends_of, unreadable_point,
)
from chaosali.report.words import (
    activity_details, campaign_score_text, expectations, expected_text, fmea_sentence, impact_sentence,
    impact_tables, offset_text, recording_sentence, recovery_seen, recovery_sentence, run_verdict, score_text,
    steady_words, story, summary_rows, together_text,
)

__all__ = ["DETAILED", "FORMATS", "format_for", "journals_in", "load_report", "load_runs", "render"]

FORMATS = ("text", "html", "markdown", "json", "junit")
_SUFFIXES = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".json": "json",
             ".xml": "junit"}
DETAILED = 20  # runs reported in full; of a larger campaign, those that regressed (the newest first)
_PARALLEL = 200  # journals from which reading them takes every CPU


def journals_in(paths: list[Path]) -> list[Path]:
    """The journal files named: a file as it is, a directory's ``*.json`` files (in its
    subdirectories too), the files a quoted glob matches (``'runs/**/journal.json'``)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif not path.exists() and any(char in str(path) for char in "*?["):
            found += [Path(p) for p in sorted(glob.glob(str(path), recursive=True))] or [path]
        else:
            found.append(path)
    return found


def load_runs(paths: list[Path]) -> list[Run]:
    """Read journal files. One that cannot be read fails naming the file; among several, it
    becomes a run that says why, so that one bad journal does not hide the campaign."""
    if len(paths) == 1:
        return [_load(Path(paths[0]), Path(paths[0]).name)]
    sources = _sources(paths)
    return [_read(path, source)[0] for path, source in zip(paths, sources)]


def load_report(paths: list[Path], margin: Margin = DEFAULT_MARGIN) -> Report:
    """The report of journal files, directories or globs (``journals_in``). Up to ``DETAILED``
    runs, each is reported in full; beyond, each journal is read into its point and let go (a
    year of nightly runs fits in memory), and only the runs that regressed are read again to be
    reported in full."""
    files = journals_in(paths)
    if not files:
        raise InvalidArgument(f"no journal in {', '.join(map(str, paths))}: give journal files, a directory of them "
                              "or a glob")
    if len(files) == 1:
        return Report.of(load_runs(files), margin)
    sources = _sources(files)
    if len(files) <= DETAILED:
        read = [_read(path, source) for path, source in zip(files, sources)]
        points = [point for _, point in read]
        return Report([run for run, _ in read], points, trends_of(points, margin))
    if len(files) >= _PARALLEL:
        with ProcessPoolExecutor() as pool:
            points = list(pool.map(_point, files, sources, chunksize=64))
    else:
        points = list(map(_point, files, sources))
    trends = trends_of(points, margin)
    where = dict(zip(sources, files))
    regressed = list(dict.fromkeys(r.point for t in trends for r in t.regressions))
    regressed.sort(key=lambda p: p.start.timestamp() if p.start else 0, reverse=True)
    return Report([_read(where[p.source], p.source)[0] for p in regressed[:DETAILED]], points, trends)


def _sources(paths: list[Path]) -> list[str]:
    """How a report names each journal: its file name, or where names repeat (journal.json in a
    directory per run), its path from the directory all of them are in."""
    names = [Path(path).name for path in paths]
    if len(set(names)) == len(names):
        return names
    absolute = [os.path.abspath(path) for path in paths]
    common = os.path.commonpath(absolute)
    return [os.path.relpath(path, common) for path in absolute]


def _read(path: Path, source: str) -> tuple[Run, Point]:
    try:
        run = _load(Path(path), source)
        return run, point_of(run)
    except InvalidArgument as error:
        unreadable = read_run({"experiment": {"title": Path(path).name}}, source)
        unreadable.problems.append(str(error))
        return unreadable, unreadable_point(source, str(error))


def _point(path: Path, source: str) -> Point:
    return _read(path, source)[1]


def _load(path: Path, source: str) -> Run:
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidArgument(f"{path}: cannot read the journal: {error}") from None
    except RecursionError:  # the JSON parser's own limit
        raise InvalidArgument(f"{path}: cannot read the journal: nested too deep") from None
    return read_run(journal, source)


def format_for(output: Path | None, requested: str | None) -> str:
    """The format asked for, else the one the output file's suffix names, else text."""
    if requested:
        return requested
    return _SUFFIXES.get(output.suffix.lower(), "text") if output else "text"


def render(report: Report | list[Run], fmt: str = "text") -> str:
    if isinstance(report, list):
        report = Report.of(report)
    if not report.points:
        raise InvalidArgument("no journal to report on")
    renderers: dict[str, Callable[[Report], str]] = {
        "text": _text, "markdown": _markdown, "json": _json, "html": html_report, "junit": junit_report,
    }
    if fmt not in renderers:
        raise InvalidArgument(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    out = renderers[fmt](report)
    # journal text reaches a terminal as it is: no escape sequence of a title or an exception may act on it
    return printable(out) if fmt in ("text", "markdown") else out


# -- text -------------------------------------------------------------------------------------------------


def _text(report: Report) -> str:
    runs = report.runs
    if len(report.points) == 1:
        return _text_one(runs[0]) + "\n"
    parts = [f"Drill campaign: {report.counted}, resilience score {campaign_score_text(report.points)}"]
    if report.regressions:
        parts.append("\n".join([report.regressions_title, *(f"  {r.line()}" for r in report.regressions)]))
    if report.unreadable:
        parts.append("\n".join([f"Journals that cannot be read: {len(report.unreadable)}",
                                 *(f"  {p.source}: {p.unreadable}" for p in report.unreadable)]))
    if report.left_out:
        parts.append(report.left_out_sentence)
    elif runs:
        rows = summary_rows(runs)
        for row in rows:  # the reports below give the titles in full; the table must fit a terminal
            row["scenario"] = row["scenario"] if len(row["scenario"]) <= 48 else row["scenario"][:47] + "…"
        columns = [c for c in rows[0] if c != "journal"]
        parts.append("\n".join(text_table(columns, [[row[c] for c in columns] for row in rows])))
    for trend in report.trends:
        table = trend_table(trend)
        parts.append("\n".join([f"Trend of {trend.title}: {len(trend.points)} runs, ▲ worse than the runs before",
                                 *("  " + line for line in text_table(table.header, table.marked)),
                                 *([f"  ({table.note})"] if table.note else [])]))
    for number, run in enumerate(runs, 1):
        parts.append(f"{'=' * 72}\n#{number} {run.source}\n{_text_one(run)}")
    return "\n\n".join(parts) + "\n"


def _text_one(run: Run) -> str:
    # the story leaves errors out; a report must say why an activity failed (in one line: the
    # traceback is in the HTML and JSON reports)
    errors = [f"error in {a.phase} {a.name}: {a.error_line}" for a in run.activities if a.error]
    recorded = recording_sentence(run)
    lines = [
        *story(run),
        *(f"journal problem: {problem}" for problem in run.problems),
        *errors,
        f"FMEA: {fmea_sentence(run)}",
        f"impact seen: {impact_sentence(run)}",
        f"recovery: {recovery_sentence(run.recovery)}",
        *([recorded] if recorded else []),
    ]
    for table in impact_tables(run):
        lines += ["", f"{table.title}:", *("  " + line for line in text_table(table.header, table.rows))]
    lines += ["", f"expectations: {run_verdict(run)}"]
    lines += [f"  {_mark(e.met)} {e.name}: {e.sentence}" for e in expectations(run)]
    lines.append(f"resilience score: {score_text(run)}")
    return "\n".join(lines)


def _mark(met: bool | None) -> str:
    return {True: "met   ", False: "MISSED", None: "-     "}[met]


# -- Markdown (GitHub / GitLab flavoured: tables, no raw HTML) -------------------------------------------


def _markdown(report: Report) -> str:
    runs = report.runs
    if len(report.points) == 1:
        return "\n".join(_markdown_one(runs[0], "#")).rstrip("\n") + "\n"
    lines = [f"# Drill campaign: {report.counted}", "", f"Resilience score: {campaign_score_text(report.points)}", ""]
    if report.regressions:
        lines += [f"## {report.regressions_title}", "", *(f"- {md(r.line())}" for r in report.regressions), ""]
    if report.unreadable:
        lines += ["## Journals that cannot be read", "", *(f"- {md(p.source)}: {md(p.unreadable)}"
                                                           for p in report.unreadable), ""]
    if report.left_out:
        lines += [md(report.left_out_sentence), ""]
    elif runs:
        rows = summary_rows(runs)
        lines += md_table(list(rows[0]), [list(row.values()) for row in rows])
    for trend in report.trends:
        table = trend_table(trend)
        lines += [f"## Trend: {md(trend.title)}", "", f"{len(trend.points)} runs; ▲ worse than the runs before.", ""]
        lines += md_table(table.header, table.marked) + ([md(table.note), ""] if table.note else [])
    for run in runs:
        lines += _markdown_one(run, "##")
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_one(run: Run, h: str) -> list[str]:
    recovery = run.recovery
    lines = [
        f"{h} {md(run.title)}",
        "",
        f"Journal `{run.source.replace('`', '')}`: status **{md(run.status)}**, "
        f"{'**deviated**' if run.deviated else 'not deviated'}, "
        f"took {seconds_text(run.duration)}, started {run.start.strftime('%Y-%m-%d %H:%M:%S UTC') if run.start else '-'}.",
        "",
    ]
    if run.problems:
        lines += [f"{h}# Journal problems", "", *(f"- {md(problem)}" for problem in run.problems), ""]
    lines += md_table(
        ["recovery measured", "expected", "verdict", "impact seen", "score"],
        [[recovery_seen(recovery), expected_text(recovery), run_verdict(run), impact_sentence(run),
          score_text(run)]],
    )
    lines += [f"Recovery: {md(recovery_sentence(recovery))}", ""]
    lines += [f"{h}# Expectations", ""]
    lines += md_table(["expectation", "result", "measured"],
                       [[e.name, _mark(e.met).strip(), e.sentence] for e in expectations(run)])
    recorded = recording_sentence(run)
    if recorded:
        lines += [f"{h}# Impact recorded", "", md(recorded), ""]
        for table in impact_tables(run):
            lines += [f"**{table.title}**", "", *md_table(table.header, table.rows)]
    lines += [f"{h}# FMEA", ""]
    if run.fmea:
        fmea = run.fmea
        lines += md_table(
            ["failure mode", "category", "severity", "impact", "recovery", "expected recovery", "detection"],
            [[fmea["failure_mode"], fmea["category"], fmea["severity"], fmea["impact"], fmea["recovery"],
              seconds_text(float(fmea["recovery_seconds"])), fmea["detection"]]],
        )
    else:
        lines += [f"Not usable: {md(run.fmea_error)}", ""]
    lines += [f"{h}# Steady state", ""]
    lines += md_table(
        ["check", "hypothesis", "probes"],
        [[c.phase, steady_words(c.met),
          ", ".join(f"{p.name} {_probe_mark(p)}" for p in c.probes)] for c in run.steady],
    ) if run.steady else ["No steady-state hypothesis ran.", ""]
    if run.faults:
        lines += [f"{h}# Faults", ""]
        lines += md_table(
            ["fault", "hosts", "from", "to", "for", "ended", "started together"],
            [[f"{f.kind} {f.fault_id}".strip(), ", ".join(f.hosts), offset_text(run, f.start), offset_text(run, f.end),
              seconds_text(f.seconds), f.ended_by, together_text(f)] for f in run.faults],
        )
    lines += [f"{h}# Timeline", ""]
    halt = halt_span(run.journal)
    lines += md_table(
        ["start", "end", "phase", "activity", "status", "what it did"],
        [[offset_text(run, a.start), offset_text(run, a.end), a.phase, f"{a.name} ({a.type})", a.status_text,
          "; ".join(activity_details(a))] for a in run.activities]
        + ([[offset_text(run, halt[0]), offset_text(run, halt[1]), "halt", "stop", "halted", halt[2]]] if halt else []),
    ) if run.activities else ["No activity ran.", ""]
    return lines


def _probe_mark(probe: Activity) -> str:
    marks: dict[bool | None, str] = {True: "✓", False: "✗", None: "?"}
    return marks.get(probe.tolerance_met, "?")


# -- JSON --------------------------------------------------------------------------------------------------


def _json(report: Report) -> str:
    points = report.points
    summary = {
        "runs": len(points),
        "completed": sum(point.status == "completed" for point in points),
        "deviated": sum(point.deviated for point in points),
        "recovery_exceeded": sum(point.recovery_exceeded for point in points),
        "impact_exceeded": sum(point.impact_exceeded for point in points),
        "fault_not_observed": sum(point.proven is False for point in points),
        "not_detected": sum(point.not_detected for point in points),
        "score": campaign_score(points),
    }
    if report.left_out:
        summary["reported_in_full"] = len(report.runs)
    out: dict[str, Any] = {"summary": summary}
    if len(points) > 1:
        out |= {"regressions": [regression_figures(r) for r in report.regressions],
                "unreadable": [{"journal": p.source, "why": p.unreadable} for p in report.unreadable],
                "trends": [trend_figures(trend) for trend in report.trends]}
    return json.dumps({**out, "runs": [run.figures() for run in report.runs]}, indent=2, ensure_ascii=False) + "\n"
