"""Judges benchmark rows against their targets and shows them as one table.

A row says its target in words (`"target"`) and, where it can, in a form a
machine can check, in this order of preference:

- `"check"`: a callable taking the row and returning True when the target is met;
- numbers: `"min"`/`"max"` (inclusive) and `"above"`/`"below"` (strict) bound
  `leadsync`; `"min_ratio"`/`"max_ratio"` bound `leadsync / baseline`;
- otherwise the target text is read when it is a plain comparison such as
  ">= 40", "< 60", "0", ">= 100,000 leads/s" or ">= 5x baseline".

A row with none of these is shown with its target text and no verdict.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

MET, MISSED, UNJUDGED, FAILED = "met", "NOT met", "", "error"

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "≥": operator.ge,
    "<=": operator.le,
    "≤": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
    "==": operator.eq,
    "": operator.eq,
}
_TARGET_TEXT = re.compile(
    r"^\s*(?P<op>>=|<=|==|≥|≤|>|<|=)?\s*(?P<number>\d[\d,]*(?:\.\d+)?)\s*"
    r"(?P<times>[x×]\s*(?:baseline\b)?)?(?P<rest>.*)$"
)
# Columns for output that is not a terminal (CI logs, `| tee`), so each figure fits one line.
WIDE = 170
_BOUNDS = {"min": operator.ge, "max": operator.le, "above": operator.gt, "below": operator.lt}


def ratio(row: dict[str, Any]) -> float | None:
    ours, base = row.get("leadsync"), row.get("baseline")
    if not isinstance(ours, int | float) or not isinstance(base, int | float) or base == 0:
        return None
    return ours / base


def judge(row: dict[str, Any]) -> str:
    """MET, MISSED, or UNJUDGED when the row gives no target a machine can read."""
    if row.get("error"):
        return FAILED
    if callable(row.get("check")):
        return MET if row["check"](row) else MISSED
    ours = row.get("leadsync")
    verdicts = [test(ours, row[key]) for key, test in _BOUNDS.items() if key in row]
    for key, test in (("min_ratio", operator.ge), ("max_ratio", operator.le)):
        if key in row:
            value = ratio(row)
            verdicts.append(value is not None and test(value, row[key]))
    if verdicts:
        return MET if all(verdicts) else MISSED
    return judge_text(row)


def judge_text(row: dict[str, Any]) -> str:
    """Reads a plain comparison from the target text, e.g. ">= 40" or ">= 5x baseline"."""
    match = _TARGET_TEXT.match(str(row.get("target", "")))
    ours = row.get("leadsync")
    if match is None or not isinstance(ours, int | float):
        return UNJUDGED
    bound = float(match["number"].replace(",", ""))
    value = ratio(row) if match["times"] else ours
    if value is None:
        return UNJUDGED
    return MET if _COMPARE[match["op"] or ""](value, bound) else MISSED


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, int) or (isinstance(value, float) and value >= 1000):
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    grid = Table(title=title, title_justify="left", show_lines=False, expand=False)
    grid.add_column("#", justify="right")
    grid.add_column("figure", overflow="fold", max_width=80)
    grid.add_column("leadsync", justify="right")
    grid.add_column("baseline", justify="right")
    grid.add_column("ratio", justify="right")
    grid.add_column("target")
    grid.add_column("verdict")
    styles = {MET: "green", MISSED: "bold red", FAILED: "bold red", UNJUDGED: ""}
    for number, row in enumerate(rows, 1):
        value = ratio(row)
        unit = row.get("unit", "")
        grid.add_row(
            str(number),
            row["figure"],
            f"{_number(row.get('leadsync'))} {unit}".strip() if row.get("leadsync") is not None
            else "–",
            f"{_number(row.get('baseline'))} {unit}".strip() if row.get("baseline") is not None
            else "–",
            f"{value:.2f}x" if value is not None else "–",
            str(row.get("target", "")),
            _verdict(row, styles),
        )  # fmt: skip
    return grid


def _verdict(row: dict[str, Any], styles: dict[str, str]) -> str:
    if row["verdict"]:
        return f"[{styles[row['verdict']]}]{row['verdict']}[/]"
    return "see target" if row.get("target") else "–"


def summary(rows: Sequence[dict[str, Any]]) -> str:
    count = {v: sum(r["verdict"] == v for r in rows) for v in (MET, MISSED, UNJUDGED, FAILED)}
    judged = count[MET] + count[MISSED]
    line = f"{count[MET]} of {judged} targets met"
    if count[MISSED]:
        line += f", {count[MISSED]} NOT met"
    if count[UNJUDGED]:
        line += f", {count[UNJUDGED]} without a verdict"
    if count[FAILED]:
        line += f", {count[FAILED]} benchmarks FAILED to run"
    return line


def show(rows: Sequence[dict[str, Any]], title: str, console: Console | None = None) -> None:
    """Prints the table, the rows' notes, what was missed and the summary line."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log or a pipe: no terminal width to wrap the figures at
            console = Console(width=WIDE)
    console.print(table(rows, title))
    notes = [(n, r["note"]) for n, r in enumerate(rows, 1) if r.get("note")]
    for number, note in notes:
        console.print(f"  [{number}] {note}", markup=False, highlight=False)
    missed = [r["figure"] for r in rows if r["verdict"] in (MISSED, FAILED)]
    for figure in missed:
        console.print(f"  NOT met: {figure}", style="red", markup=False, highlight=False)
    console.print(summary(rows), style="bold", markup=False, highlight=False)


def serializable(row: dict[str, Any]) -> dict[str, Any]:
    """The row for JSON: everything but callables, NaN as null."""
    clean: dict[str, Any] = {}
    for key, value in row.items():
        if callable(value):
            continue
        clean[key] = None if isinstance(value, float) and math.isnan(value) else value
    clean["ratio"] = ratio(row)
    return clean
