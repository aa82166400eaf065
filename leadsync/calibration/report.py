"""Shows a calibration report: rich tables for the terminal, one self-contained HTML page.

The HTML page carries its style and its charts inline (SVG from charts.py):
no script, no stylesheet, no image, no font and no link to fetch, so it can be
mailed or opened offline. Every text that comes from the config (rule names)
is escaped. Rates with few closed leads behind them are marked as such.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from leadsync.calibration.charts import bar_chart, lift_chart, share_chart

if TYPE_CHECKING:
    from leadsync.calibration.calibrate import CalibrationReport

# A rate with fewer closed leads than this behind it is shown as a hint only.
_FEW = 10


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _lift(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _summary_lines(report: CalibrationReport) -> list[str]:
    low, high = report.mql_band
    lines = [
        f"{report.leads} leads with outcomes: {report.won} won, {report.lost} lost, "
        f"{report.open} open; rules version {report.rules_version}.",
        f"Win rate of all closed leads: {_pct(report.base_win_rate)}.",
        f"At the current threshold {report.threshold:g}, {report.mql_share:.0%} of leads are "
        f"MQLs (usual band {low:.0%}–{high:.0%}); MQL-to-won {_pct(report.mql_to_won)} of "
        f"closed MQLs, other leads {_pct(report.non_mql_win_rate)}.",
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
        rate = _pct(band.win_rate) + (" (few)" if 0 < band.closed < _FEW else "")
        value = f"{band.won_value:,.0f}" if band.won_value else "–"
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
            _pct(lift.win_rate),
            _lift(lift.lift) + few,
        )
    suggestion = Text(f"Suggested threshold: {report.suggested_threshold}\n", style="bold")
    suggestion.append("\n".join(f"- {line}" for line in report.reasoning))
    return [Text("\n".join(_summary_lines(report))), bands, lifts, suggestion]


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; color: #1f2933; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1rem; }
th, td { padding: 0.3rem 0.5rem; border-bottom: 1px solid #e4e7eb; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.few { color: #7b8794; } .suggested { font-size: 1.3rem; font-weight: 600; }
"""


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _few(text: str, closed: int) -> str:
    return f'<span class="few">{escape(text)} (few)</span>' if 0 < closed < _FEW else escape(text)


def _bands_section(report: CalibrationReport) -> str:
    chart = bar_chart(
        "Win rate by score band",
        [band.label for band in report.bands],
        [band.win_rate for band in report.bands],
        [f"{band.leads} leads" for band in report.bands],
    )
    rows = [
        [escape(b.label), str(b.leads), str(b.won), str(b.lost), _few(_pct(b.win_rate), b.closed)]
        for b in report.bands
    ]
    table = _table(["score", "leads", "won", "lost", "win rate"], rows)
    return f"<h2>Conversion by score band</h2>{chart}{table}"


def _lift_section(report: CalibrationReport) -> str:
    drawn = [lift for lift in report.lifts if lift.lift is not None]
    chart = lift_chart(
        "Lift per rule", [lift.rule for lift in drawn], [lift.lift or 0.0 for lift in drawn]
    )
    rows = [
        [
            escape(lift.rule),
            escape(lift.part),
            str(lift.leads),
            str(lift.closed),
            str(lift.won),
            _pct(lift.win_rate),
            _few(_lift(lift.lift), lift.closed),
        ]
        for lift in report.lifts
    ]
    table = _table(["rule", "part", "leads", "closed", "won", "win rate", "lift"], rows)
    return f"<h2>Lift per rule</h2>{chart if drawn else ''}{table}"


def _threshold_section(report: CalibrationReport) -> str:
    chart = ""
    if report.curve:
        chart = share_chart(
            "Share of leads that are MQLs, by threshold",
            [point.threshold for point in report.curve],
            [point.mql_share for point in report.curve],
            report.mql_band,
            [
                (report.threshold, f"current {report.threshold:g}"),
                (report.suggested_threshold, f"suggested {report.suggested_threshold}"),
            ],
        )
    reasons = "".join(f"<li>{escape(line)}</li>" for line in report.reasoning)
    return (
        f'<h2>Threshold</h2><p class="suggested">Suggested threshold: '
        f"{report.suggested_threshold}</p><ul>{reasons}</ul>{chart}"
    )


def render_html(report: CalibrationReport) -> str:
    """The report as one self-contained HTML page: inline style, inline SVG charts."""
    summary = "".join(f"<p>{escape(line)}</p>" for line in _summary_lines(report))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>leadsync calibration</title><style>{_STYLE}</style></head><body>"
        f"<h1>Scoring calibration</h1>{summary}{_threshold_section(report)}"
        f"{_bands_section(report)}{_lift_section(report)}</body></html>"
    )
