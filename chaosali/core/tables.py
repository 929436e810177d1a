"""Tables as plain text and as Markdown, for every command that prints one (report, plan)."""

from __future__ import annotations

from typing import Any

__all__ = ["text_table", "md", "md_table"]


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Aligned columns, two spaces apart, the header first."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]


def md(text: Any) -> str:
    """Text made inert in Markdown: no markup, no HTML, no broken table."""
    out = str(text).replace("\r", "").replace("\n", " ")
    for char in "\\`*_[]<>|#~!":
        out = out.replace(char, "\\" + char)
    return out


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A GitHub/GitLab-flavoured Markdown table, then a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows] + [""]
