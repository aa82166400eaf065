"""What people type, read as stages and deal values.

A mapping such as `{contacted = ["Contacted"], sql = ["Qualified"], won =
["Won"], lost = ["Lost"]}` says which words mean which stage; words match
trimmed and case-insensitively, and one word may mean one stage only. Deal
values are read the way people write money: "1,200.50", "$1200", "1.200,50 €"
and "1 200" all read as numbers; anything else is no value (the caller logs
the lead id), never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

from leadsync.models import OUTCOMES, Stage

DEFAULT_SHEET_VALUES: dict[str, list[str]] = {
    "contacted": ["Contacted"],
    "sql": ["Qualified"],
    "won": ["Won"],
    "lost": ["Lost"],
}

# HubSpot's lifecycle stages that mean a leadsync stage (opportunity: sales accepted it too).
DEFAULT_LIFECYCLE_STAGES: dict[str, list[str]] = {
    "sql": ["salesqualifiedlead", "opportunity"],
    "won": ["customer"],
}

# Currency signs and codes, spaces (also the no-break and thin ones) and apostrophes
# (Swiss thousands) around or inside a number.
_NOISE = re.compile(r"[\s\u00a0\u202f'’]|[$€£¥₹]|\b[A-Z]{3}\b", re.IGNORECASE)
_PLAIN = re.compile(r"\d+(\.\d+)?")
_THOUSANDS = {",": re.compile(r"\d{1,3}(,\d{3})+"), ".": re.compile(r"\d{1,3}(\.\d{3})+")}


def normal(text: object) -> str:
    """A typed word as it is compared: trimmed, case folded."""
    return str(text).strip().casefold()


def stage_lookup(mapping: Mapping[str, Sequence[str]]) -> dict[str, Stage]:
    """Word -> stage for a `{stage: [words]}` mapping; ValueError naming what is wrong."""
    lookup: dict[str, Stage] = {}
    for stage, words in mapping.items():
        if stage not in OUTCOMES:
            raise ValueError(f"unknown stage {stage!r}; use {', '.join(OUTCOMES)}")
        for word in words:
            key = normal(word)
            if not key:
                raise ValueError(f"{stage}: an empty value never matches; remove it")
            if lookup.get(key, stage) != stage:
                raise ValueError(f"{word!r} is listed for both {lookup[key]} and {stage}")
            lookup[key] = stage  # type: ignore[assignment]
    return lookup


def parse_value(text: object) -> Decimal | None:
    """A deal value as people type it; None when the cell is empty or not a number ≥ 0."""
    compact = _NOISE.sub("", str(text))
    if not compact:
        return None
    if "," in compact and "." in compact:
        decimal_mark = "," if compact.rfind(",") > compact.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        compact = compact.replace(thousands, "").replace(decimal_mark, ".")
    else:
        for mark, grouped in _THOUSANDS.items():
            if grouped.fullmatch(compact):  # "1,200" and "1.200.000": thousands
                compact = compact.replace(mark, "")
        compact = compact.replace(",", ".")  # "1200,50": a decimal comma
    if not _PLAIN.fullmatch(compact):
        return None
    try:
        return Decimal(compact)
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain numbers
        return None
