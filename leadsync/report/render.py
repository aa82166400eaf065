"""Shows a closed-loop report: a rich table for the terminal, one self-contained HTML page.

Both show the same figures per group and a total row; a figure outside the
guide's band is marked, and what it suggests is listed under the table. The
HTML page (templates/report.html) carries its style and SVG charts inline — no
script, no stylesheet, no image and no link to fetch — so it can be mailed,
opened offline, or served at `/report` under the admin CSP (`STYLE_HASH`).
Group names come from whoever runs the ads: the template escapes them.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from leadsync.report.charts import band_chart, funnel_chart
from leadsync.report.figures import (
    MQL_SHARE_BAND,
    MQL_TO_SQL_BAND,
    MQL_TO_SQL_LOOSE,
    MQL_TO_SQL_STRICT,
    GroupFigures,
    Report,
)
from leadsync.templating import MISSING, percent, render, style_hash, stylesheet, times

STYLE = stylesheet("report.css")
STYLE_HASH = style_hash(STYLE)

# (heading, figure name in notes): the columns both renderings show, in order.
COLUMNS = (
    ("leads", ""),
    ("MQLs", ""),
    ("MQL share", "mql_share"),
    ("MQL→SQL", "mql_to_sql"),
    ("MQL→won", ""),
    ("win rate MQL", ""),
    ("win rate other", ""),
    ("lift", "lift"),
    ("to first contact", ""),
    ("to won", ""),
    ("deal value", ""),
)
# Said when no lead in the window has a sales stage: the rates that need them read "—".
NO_OUTCOMES = (
    "No sales stages (contacted, sql, won, lost) are recorded for these leads yet, so "
    "MQL→SQL, wins and times read —. They fill in as outcomes arrive."
)
BY_HEADING = {"form": "form", "campaign": "campaign", "ad": "ad", "owner": "owner"}


def cells(group: GroupFigures) -> list[str]:
    """The group's figures as text, in COLUMNS order; a missing figure is "—"."""
    return [
        str(group.leads),
        str(group.mqls),
        percent(group.mql_share),
        percent(group.mql_to_sql),
        percent(group.mql_to_won),
        percent(group.mql_win_rate),
        percent(group.other_win_rate),
        times(group.lift),
        duration(group.to_contact),
        duration(group.to_won),
        money(group.deal_value) if group.won else MISSING,
    ]


def duration(span: timedelta | None) -> str:
    """A median time as people say it: "25 min", "3.5 h", "12 d"."""
    if span is None:
        return MISSING
    hours = span.total_seconds() / 3600
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.1f}".removesuffix(".0") + " h"
    return f"{hours / 24:.1f}".removesuffix(".0") + " d"


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def summary(report: Report) -> str:
    return (
        f"Leads created since {report.since:%Y-%m-%d %H:%M} UTC, by {report.by}: "
        f"{report.total.leads} leads, {report.total.mqls} MQLs, {report.total.won} won."
    )


def render_tables(report: Report) -> list[RenderableType]:
    """The report for a terminal: the table with a total row, then the notes."""
    table = Table(title=summary(report), show_footer=True)
    table.add_column(BY_HEADING[report.by], footer="Total")
    for (heading, _), footer in zip(COLUMNS, _marked(report.total), strict=True):
        table.add_column(heading, justify="right", footer=footer)
    for group in report.groups:
        table.add_row(Text(group.name), *_marked(group))
    # One Text under the table: rich would join several on one line.
    notes = Text("" if report.outcomes else NO_OUTCOMES + "\n")
    noted = [(g.name, note) for g in (*report.groups, report.total) for note in g.notes]
    if noted:
        notes.append("Outside the usual bands (marked !):\n", style="bold")
        for name, note in noted:
            notes.append(f"- {name}: {note.text}\n")
    return [table, notes] if notes else [table]


def _marked(group: GroupFigures) -> list[Text]:
    flagged = {note.figure for note in group.notes}
    return [
        Text(f"{cell} !", style="bold red") if figure and figure in flagged else Text(cell)
        for (_, figure), cell in zip(COLUMNS, cells(group), strict=True)
    ]


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page: inline style, inline SVG charts."""
    groups = list(report.groups)
    names = [g.name for g in groups]
    return render(
        "report.html",
        style=STYLE,
        summary=summary(report),
        no_outcomes=None if report.outcomes else NO_OUTCOMES,
        by=BY_HEADING[report.by],
        headings=[heading for heading, _ in COLUMNS],
        rows=[_html_row(g) for g in groups],
        total=_html_row(report.total),
        notes=[(g.name, note.text) for g in (*groups, report.total) for note in g.notes],
        bands={
            "share": MQL_SHARE_BAND,
            "sql": MQL_TO_SQL_BAND,
            "loose": MQL_TO_SQL_LOOSE,
            "strict": MQL_TO_SQL_STRICT,
        },
        charts=[
            funnel_chart(f"Funnel by {report.by}: leads → MQLs → SQLs → won", groups),
            band_chart(
                f"MQL share by {report.by}", names, [g.mql_share for g in groups], MQL_SHARE_BAND
            ),
            band_chart(
                f"MQL→SQL rate by {report.by}",
                names,
                [g.mql_to_sql for g in groups],
                MQL_TO_SQL_BAND,
            ),
        ],
    )


def _html_row(group: GroupFigures) -> tuple[str, list[tuple[str, str | None]]]:
    """(name, [(cell text, what it suggests when outside its band, else None)])."""
    notes = {note.figure: note.text for note in group.notes}
    return group.name, [
        (cell, notes.get(figure) if figure else None)
        for (_, figure), cell in zip(COLUMNS, cells(group), strict=True)
    ]
