"""The `leadsync report` command: the closed-loop report in the terminal, and as an HTML file.

A thin shell over the engine: it checks `--since` and `--by` (a usage error, exit
2, says what to write), asks a `ReportSource` for the leads, builds the report and
prints it with rich; `--html FILE` also writes the self-contained page. A file that
cannot be written is exit 1 with the path and the reason.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import cast

from rich.console import Console

from leadsync.config import parse_duration
from leadsync.report.figures import GROUPINGS, Grouping, build_report
from leadsync.report.render import render_html, render_tables
from leadsync.report.source import ReportSource


def parse_options(since: str, by: str, now: datetime) -> tuple[datetime, Grouping]:
    """`--since 90d --by form` as (the window's start, the grouping); ValueError says the fix."""
    if by not in GROUPINGS:
        raise ValueError(f"by {by[:40]!r} is not a grouping; use one of {', '.join(GROUPINGS)}")
    try:
        span = parse_duration(since)
    except ValueError as exc:
        raise ValueError(f"since: {exc}") from None
    if span.total_seconds() <= 0:
        raise ValueError(f"since {since[:40]!r} must be a positive duration, like 90d")
    return now - span, cast(Grouping, by)


def report_command(
    console: Console,
    errors: Console,
    source: ReportSource,
    *,
    since: str,
    by: str,
    html: Path | None,
    now: datetime,
) -> int:
    """`leadsync report [--since 90d] [--by form] [--html FILE]`; returns the exit code."""
    try:
        start, grouping = parse_options(since, by, now)
    except ValueError as exc:
        errors.print(str(exc), style="red", markup=False, highlight=False)
        return 2
    report = build_report(source.report_leads(start), start, grouping)
    console.print(*render_tables(report))
    if html is not None:
        try:
            html.write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            problem = f"could not write {html}: {exc.strerror}"
            errors.print(problem, style="red", markup=False, highlight=False)
            return 1
        console.print(f"HTML report: {html}", markup=False, highlight=False)
    return 0
