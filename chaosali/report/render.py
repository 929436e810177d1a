"""``chaosali report``: journals as text (the story), Markdown, JSON figures, one HTML page or JUnit
XML (``junit``).

One journal gives its report; several give a summary table of the drill campaign (one row per
run) followed by each report. Everything shown comes from one model of each run
(``chaosali.report.figures.Run``, read from the redacted journal), the text as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from chaosali.core.errors import InvalidArgument
from chaosali.core.tables import md, md_table, text_table
from chaosali.report.figures import Run, campaign_score, read_run
from chaosali.report.model import Activity, seconds_text
from chaosali.report.junit import junit_report
from chaosali.report.render_html import html_report
from chaosali.report.outputs import printable
from chaosali.report.safety import halt_span
from chaosali.report.words import (
    activity_details, campaign_score_text, expectations, expected_text, fmea_sentence, impact_sentence,
    impact_tables, offset_text, recording_sentence, recovery_seen, recovery_sentence, run_verdict, score_text,
    steady_words, story, summary_rows, together_text,
)

__all__ = ["FORMATS", "format_for", "load_runs", "render"]

FORMATS = ("text", "html", "markdown", "json", "junit")
_SUFFIXES = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".json": "json",
             ".xml": "junit"}


def load_runs(paths: list[Path]) -> list[Run]:
    """Read journal files. One that cannot be read fails naming the file; among several, it
    becomes a run that says why, so that one bad journal does not hide the campaign."""
    runs = []
    for path in paths:
        try:
            runs.append(_load(Path(path)))
        except InvalidArgument as error:
            if len(paths) == 1:
                raise
            unreadable = read_run({"experiment": {"title": Path(path).name}}, Path(path).name)
            unreadable.problems.append(str(error))
            runs.append(unreadable)
    return runs


def _load(path: Path) -> Run:
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidArgument(f"{path}: cannot read the journal: {error}") from None
    except RecursionError:  # the JSON parser's own limit
        raise InvalidArgument(f"{path}: cannot read the journal: nested too deep") from None
    return read_run(journal, path.name)


def format_for(output: Path | None, requested: str | None) -> str:
    """The format asked for, else the one the output file's suffix names, else text."""
    if requested:
        return requested
    return _SUFFIXES.get(output.suffix.lower(), "text") if output else "text"


def render(runs: list[Run], fmt: str = "text") -> str:
    if not runs:
        raise InvalidArgument("no journal to report on")
    renderers: dict[str, Callable[[list[Run]], str]] = {
        "text": _text, "markdown": _markdown, "json": _json, "html": html_report, "junit": junit_report,
    }
    if fmt not in renderers:
        raise InvalidArgument(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    out = renderers[fmt](runs)
    # journal text reaches a terminal as it is: no escape sequence of a title or an exception may act on it
    return printable(out) if fmt in ("text", "markdown") else out


# -- text -------------------------------------------------------------------------------------------------


def _text(runs: list[Run]) -> str:
    reports = [_text_one(run) for run in runs]
    if len(runs) == 1:
        return reports[0] + "\n"
    rows = summary_rows(runs)
    for row in rows:  # the reports below give the titles in full; the table must fit a terminal
        row["scenario"] = row["scenario"] if len(row["scenario"]) <= 48 else row["scenario"][:47] + "…"
    columns = [c for c in rows[0] if c != "journal"]
    parts = [f"Drill campaign: {len(runs)} runs, resilience score {campaign_score_text(runs)}",
             "\n".join(text_table(columns, [[row[c] for c in columns] for row in rows]))]
    for number, (run, report) in enumerate(zip(runs, reports), 1):
        parts.append(f"{'=' * 72}\n#{number} {run.source}\n{report}")
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


def _markdown(runs: list[Run]) -> str:
    if len(runs) == 1:
        return "\n".join(_markdown_one(runs[0], "#")).rstrip("\n") + "\n"
    rows = summary_rows(runs)
    columns = [c for c in rows[0]]
    lines = [f"# Drill campaign: {len(runs)} runs", "", f"Resilience score: {campaign_score_text(runs)}", ""]
    lines += md_table(columns, [[row[c] for c in columns] for row in rows])
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


def _json(runs: list[Run]) -> str:
    figures = [run.figures() for run in runs]
    summary = {
        "runs": len(runs),
        "completed": sum(run.status == "completed" for run in runs),
        "deviated": sum(run.deviated for run in runs),
        "recovery_exceeded": sum(run.recovery.exceeded is True for run in runs),
        "impact_exceeded": sum(run.impact_exceeded is True for run in runs),
        "fault_not_observed": sum(run.fault_proven is False for run in runs),
        "not_detected": sum(run.not_detected for run in runs),
        "score": campaign_score(runs),
    }
    return json.dumps({"summary": summary, "runs": figures}, indent=2, ensure_ascii=False) + "\n"
