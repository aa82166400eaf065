"""Shows a calibration report: rich tables for the terminal, one self-contained HTML page.

The HTML page (templates/calibration.html) carries its style and its charts inline
(SVG drawn from charts.py's shapes):
no script, no stylesheet, no image, no font and no link to fetch, so it can be
mailed or opened offline. Every text that comes from the config (rule names)
is escaped (the template is autoescaped). Rates with few closed leads behind them
are marked as such.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from leadsync.calibration.charts import bar_chart, lift_chart, share_chart
from leadsync.svg import Chart
from leadsync.templating import MISSING, percent, render, stylesheet, times

if TYPE_CHECKING:
    from leadsync.calibration.calibrate import CalibrationReport

# A rate with fewer closed leads than this behind it is shown as a hint only.
_FEW = 10


def _summary_lines(report: CalibrationReport) -> list[str]:
    low, high = report.mql_band
    lines = [
        f"{report.leads} leads with outcomes: {report.won} won, {report.lost} lost, "
        f"{report.open} open; rules version {report.rules_version}.",
        f"Win rate of all closed leads: {percent(report.base_win_rate)}.",
        f"At the current threshold {report.threshold:g}, {report.mql_share:.0%} of leads are "
        f"MQLs (usual band {low:.0%}–{high:.0%}); MQL-to-won {percent(report.mql_to_won)} of "
        f"closed MQLs, other leads {percent(report.non_mql_win_rate)}.",
    ]
    if report.missing:
        lines.append(f"{report.missing} outcomes name leads that were not found; left out.")
    return lines


def render_tables(report: CalibrationReport) -> list[RenderableType]:
    """The report for a terminal: a summary, bands, rule lift, and the suggestion."""
    bands = Table(title="Conversion by score band")
    for column in ("score", "leads", "won", "lost", "win rate", "won value"):
        bands.add_column(column, justify="left" if column == "score" else "right")
    for band in report.bands:
        rate = percent(band.win_rate) + (" (few)" if 0 < band.closed < _FEW else "")
        value = f"{band.won_value:,.0f}" if band.won_value else MISSING
        bands.add_row(band.label, str(band.leads), str(band.won), str(band.lost), rate, value)
    lifts = Table(title="Lift per rule (win rate of leads it fired on / all closed leads)")
    for column in ("rule", "part", "leads", "closed", "won", "win rate", "lift"):
        lifts.add_column(column, justify="left" if column in ("rule", "part") else "right")
    for lift in report.lifts:
        few = " (few)" if 0 < lift.closed < _FEW else ""
        lifts.add_row(
            lift.rule,
            lift.part,
            str(lift.leads),
            str(lift.closed),
            str(lift.won),
            percent(lift.win_rate),
            times(lift.lift) + few,
        )
    suggestion = Text(f"Suggested threshold: {report.suggested_threshold}\n", style="bold")
    suggestion.append("\n".join(f"- {line}" for line in report.reasoning))
    return [Text("\n".join(_summary_lines(report))), bands, lifts, suggestion]


STYLE = stylesheet("calibration.css")


def render_html(report: CalibrationReport) -> str:
    """The report as one self-contained HTML page: inline style, inline SVG charts."""
    drawn = [lift for lift in report.lifts if lift.lift is not None]
    return render(
        "calibration.html",
        style=STYLE,
        report=report,
        summary=_summary_lines(report),
        few_below=_FEW,
        share_chart=_share_chart(report),
        bands_chart=bar_chart(
            "Win rate by score band",
            [band.label for band in report.bands],
            [band.win_rate for band in report.bands],
            [f"{band.leads} leads" for band in report.bands],
        ),
        lift_chart=lift_chart(
            "Lift per rule", [lift.rule for lift in drawn], [lift.lift or 0.0 for lift in drawn]
        )
        if drawn
        else None,
    )


def _share_chart(report: CalibrationReport) -> Chart | None:
    if not report.curve:
        return None
    return share_chart(
        "Share of leads that are MQLs, by threshold",
        [point.threshold for point in report.curve],
        [point.mql_share for point in report.curve],
        report.mql_band,
        [
            (report.threshold, f"current {report.threshold:g}"),
            (report.suggested_threshold, f"suggested {report.suggested_threshold}"),
        ],
    )
