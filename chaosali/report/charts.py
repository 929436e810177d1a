"""The trends in the HTML report: the regressions first, then per experiment a small inline SVG
chart per measure (time on the x axis, the FMEA's limit as a dashed line, failed runs and
regressions marked) and the table of its runs. Drawn here, with no script and nothing fetched:
the page works offline.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from chaosali.report.trends import PERCENT, SCORE, WORSE, Point, Regression, Report, Trend, trend_table, value_text

__all__ = ["regressions_html", "trends_html"]

_WIDTH, _HEIGHT = 320, 140
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 312, 24, 112  # the plot area
_POINTS_MAX = 60  # every run is a dot up to this many; beyond, only the marked ones (and the line)
_REGRESSIONS_SHOWN = 10


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def regressions_html(report: Report, h2: str, anchors: dict[str, int]) -> str:
    """The regressions, the newest first, each linking to its run's report when it is in the page;
    past the first ``_REGRESSIONS_SHOWN``, folded."""
    if not report.regressions:
        return ""
    items = []
    for regression in report.regressions:
        number = anchors.get(regression.point.source)
        run = (f'<a href="#run-{number}">{_e(regression.point.source)}</a>' if number
               else _e(regression.point.source))
        items.append(f"<li><strong>{_e(regression.point.title)}</strong>: {run} ({_e(regression.point.day)}): "
                     f"{_e(regression.text())}</li>")
    shown, older = items[:_REGRESSIONS_SHOWN], items[_REGRESSIONS_SHOWN:]
    folded = (f"<details><summary>{len(older)} older regressions</summary><ul>{''.join(older)}</ul></details>"
              if older else "")
    return (f'<section class="regressions" id="regressions"><{h2}>{_e(report.regressions_title)}</{h2}>'
            f"<ul>{''.join(shown)}</ul>{folded}</section>")


def trends_html(report: Report, h2: str, h3: str) -> str:
    """Each experiment's trend: its charts, then its table."""
    return "".join(_trend(trend, number, h2, h3) for number, trend in enumerate(report.trends, 1))


def _trend(trend: Trend, number: int, h2: str, h3: str) -> str:
    table = trend_table(trend)
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in table.header)
    rows = "".join(
        "<tr>" + "".join(f'<td data-label="{_e(c)}"{" class=worse" if flag else ""}>{_e(v)}{f" {WORSE}" if flag else ""}</td>'
                         for c, v, flag in zip(table.header, row, flags)) + "</tr>"
        for row, flags in zip(table.rows, table.flagged))
    charts = "".join(_chart(trend, measure, unit, f"trend-{number}-{index}")
                     for index, (measure, unit) in enumerate(trend.measures, 1))
    first, last = trend.points[0].day, trend.points[-1].day
    return (f'<section class="trend" id="trend-{number}"><{h2}>Trend: {_e(trend.title)}</{h2}>'
            f'<p class="meta">{len(trend.points)} runs, {_e(first)} to {_e(last)}; '
            f'{len(trend.regressions)} regression{"s" * (len(trend.regressions) != 1)}. {_legend()}</p>'
            f'<div class="charts">{charts}</div>'
            f'<{h3}>Runs</{h3}><table class="stack trend"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
            + (f'<p class="explain">{_e(table.note)}</p>' if table.note else "") + "</section>")


def _legend() -> str:
    items = [("series", "each run"), ("limit", "FMEA limit"), ("failed", "failed run"), ("regression", "regression")]
    return '<span class="legend">' + "".join(
        f'<span><i class="swatch {cls}"></i>{label}</span>' for cls, label in items) + "</span>"


class _Axes:
    """Runs' times and a measure's values to the chart's coordinates."""

    def __init__(self, points: list[tuple[Point, float]], unit: str, limit: float | None) -> None:
        times = [p.start.timestamp() for p, _ in points if p.start]
        self.first, self.span = (min(times), max(times) - min(times)) if times else (0.0, 0.0)
        values = [value for _, value in points] + ([limit] if limit is not None else [])
        if unit in (PERCENT, SCORE):  # out of 100
            self.low, self.high = max(0.0, (min(values) // 5) * 5 - 5), 100.0
        else:
            self.low, self.high = 0.0, max(values) * 1.15 or 1.0

    def x(self, start: dt.datetime | None) -> float:
        if start is None or not self.span:
            return (_LEFT + _RIGHT) / 2
        return _LEFT + (start.timestamp() - self.first) / self.span * (_RIGHT - _LEFT)

    def y(self, value: float) -> float:
        return _BOTTOM - (value - self.low) / (self.high - self.low) * (_BOTTOM - _TOP)


def _chart(trend: Trend, measure: str, unit: str, chart_id: str) -> str:
    points = [(p, value) for p in trend.points if (value := p.value(measure)) is not None]
    limit = trend.limit(measure)
    axes = _Axes(points, unit, limit)
    flagged: dict[int, Regression] = {id(r.point): r for r in trend.regressions if r.measure == measure}
    line = " ".join(f"{axes.x(p.start):.1f},{axes.y(v):.1f}" for p, v in points)
    marks = []
    for point, value in points:
        x, y = axes.x(point.start), axes.y(value)
        tip = f"{point.source} ({point.day}): {value_text(unit, value)}, {point.verdict}"
        if id(point) in flagged:
            marks.append(f'<circle class="regression" cx="{x:.1f}" cy="{y:.1f}" r="5">'
                         f"<title>regression: {_e(point.source)} ({_e(point.day)}): {_e(flagged[id(point)].text())}</title>"
                         "</circle>")
        elif point.red:
            marks.append(f'<circle class="failed" cx="{x:.1f}" cy="{y:.1f}" r="3.5"><title>{_e(tip)}</title></circle>')
        elif len(points) <= _POINTS_MAX or point is points[-1][0]:
            marks.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.2"><title>{_e(tip)}</title></circle>')
    limit_line = ""
    if limit is not None:
        y = axes.y(limit)
        limit_line = (f'<line class="limit" x1="{_LEFT}" x2="{_RIGHT}" y1="{y:.0f}" y2="{y:.0f}">'
                      f"<title>FMEA limit: {_e(value_text(unit, limit))}</title></line>"
                      f'<text class="limit-label" x="{_RIGHT}" y="{y - 3:.0f}" text-anchor="end">limit '
                      f"{_e(value_text(unit, limit))}</text>")
    latest = points[-1][1] if points else None
    first, last = trend.points[0].start, trend.points[-1].start
    return (
        f'<figure class="chart"><svg id="{chart_id}" class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{_e(measure)} of {_e(trend.title)}, run by run</title>'
        f'<text class="chart-title" x="4" y="14">{_e(measure)}: {_e(value_text(unit, latest))}</text>'
        f'<line class="axis" x1="{_LEFT}" x2="{_RIGHT}" y1="{_BOTTOM}" y2="{_BOTTOM}"/>'
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_BOTTOM}"/>'
        f'<text class="tick" x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end">{_e(_tick(unit, axes.high))}</text>'
        f'<text class="tick" x="{_LEFT - 4}" y="{_BOTTOM}" text-anchor="end">{_e(_tick(unit, axes.low))}</text>'
        f'<text class="tick" x="{_LEFT}" y="{_BOTTOM + 14}">{_e(_date(first, axes.span))}</text>'
        f'<text class="tick" x="{_RIGHT}" y="{_BOTTOM + 14}" text-anchor="end">{_e(_date(last, axes.span))}</text>'
        f"{limit_line}"
        f'<polyline class="series" points="{line}"/>{"".join(marks)}</svg></figure>'
    )


def _tick(unit: str, value: float) -> str:
    return f"{value:.3g}" + {"seconds": " s", PERCENT: " %"}.get(unit, "")


def _date(moment: dt.datetime | None, span: float) -> str:
    """A run's start on the x axis: its day, or its time of day when the runs fit in two days."""
    return moment.strftime("%H:%M" if span < 2 * 86400 else "%b %d") if moment else "-"
