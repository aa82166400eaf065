"""The columns of a leads worksheet and the cell values of one lead.

The header is `lead_id ... is_organic`, one column per form question (its name,
in form order), then `score, mql, score_reasons`, then `owner, phone_e164,
repeat_of` (an older sheet gets these three at its end). A phone that could not
be read is written as typed after `invalid: `, so a filter finds it. Columns are found by header
name, never by position, so people may move, sort and add their own columns
(Status, Called by), which leadsync never writes. A question the header lacks
is added at the end once rows exist (old rows stay intact); on a sheet with no
lead rows yet it goes before `score`, where the layout puts questions.
Values are written RAW: text stays text, phone numbers keep their + and zeros,
booleans are TRUE/FALSE cells, the score is a number people can sort by.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from gspread.exceptions import IncorrectCellLabel
from gspread.utils import a1_to_rowcol, rowcol_to_a1

from leadsync.models import Lead, Score, ScoredLead

FIXED_COLUMNS = (
    "lead_id",
    "created_time",
    "page_id",
    "form_id",
    "form_name",
    "ad_id",
    "ad_name",
    "campaign_name",
    "platform",
    "is_organic",
)
SCORE_COLUMNS = ("score", "mql", "score_reasons")
ROUTING_COLUMNS = ("owner", "phone_e164", "repeat_of")
OUR_COLUMNS = frozenset(FIXED_COLUMNS + SCORE_COLUMNS + ROUTING_COLUMNS)
INVALID_PHONE = "invalid: "
# A cell holds at most 50,000 characters (Sheets "Usage limits"); longer answers are cut.
MAX_CELL_CHARS = 50_000
CUT_MARK = " [cut]"
# Placeholders a worksheet name may use: one worksheet per form.
WORKSHEET_FIELDS = frozenset({"form_name", "form_id", "page_id"})
# A worksheet title is at most 100 characters.
MAX_TITLE_CHARS = 100


def question_column(name: str) -> str:
    """The column of a form question; a question named like one of ours gets a suffix."""
    return f"{name} (answer)" if name in OUR_COLUMNS else name


def questions_of(batch: Iterable[ScoredLead]) -> list[str]:
    """The question columns of a batch, in form order, each once."""
    seen: dict[str, None] = {}
    for item in batch:
        for name in item.lead.answers:
            seen.setdefault(question_column(name), None)
    return list(seen)


def template_fields(template: str) -> set[str]:
    """The placeholders of a worksheet name; ValueError when it is not a valid template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def worksheet_title(template: str, lead: Lead) -> str:
    """The worksheet a lead goes to: the template filled from the lead (form name or id)."""
    title = template.format_map(
        {
            "form_name": lead.form_name or lead.form_id,
            "form_id": lead.form_id,
            "page_id": lead.page_id,
        }
    )
    return title.strip()[:MAX_TITLE_CHARS] or lead.form_id


@dataclass(frozen=True, slots=True)
class HeaderChange:
    """Names to add to the header at column `at` (zero-based).

    With `insert`, columns from `at` on move right to make room (an empty sheet);
    otherwise the names go after the last header cell.
    """

    at: int
    names: tuple[str, ...]
    insert: bool = False


def plan_header(
    header: Sequence[str], questions: Sequence[str], has_rows: bool
) -> tuple[list[str], HeaderChange | None]:
    """The header after adding what the batch needs, and the change that gets it there."""
    wanted = [*FIXED_COLUMNS, *questions, *SCORE_COLUMNS, *ROUTING_COLUMNS]
    if not any(header):
        return wanted, HeaderChange(0, tuple(wanted))
    missing = tuple(name for name in wanted if name not in header)
    if not missing:
        return list(header), None
    only_questions = not set(missing) & OUR_COLUMNS
    if not has_rows and only_questions and "score" in header:
        at = list(header).index("score")
        return [*header[:at], *missing, *header[at:]], HeaderChange(at, missing, insert=True)
    return [*header, *missing], HeaderChange(len(header), missing)


def header_requests(
    sheet_id: int, column_count: int, change: HeaderChange, freeze: bool
) -> list[dict[str, Any]]:
    """The spreadsheets.batchUpdate requests that make `change` (one write request)."""
    count = len(change.names)
    requests: list[dict[str, Any]] = []
    if change.insert:
        span = {"sheetId": sheet_id, "dimension": "COLUMNS"}
        span |= {"startIndex": change.at, "endIndex": change.at + count}
        requests.append({"insertDimension": {"range": span, "inheritFromBefore": change.at > 0}})
    elif change.at + count > column_count:
        grow = change.at + count - column_count
        requests.append(
            {"appendDimension": {"sheetId": sheet_id, "dimension": "COLUMNS", "length": grow}}
        )
    cells = [{"userEnteredValue": {"stringValue": name}} for name in change.names]
    requests.append(
        {
            "updateCells": {
                "rows": [{"values": cells}],
                "fields": "userEnteredValue",
                "start": {"sheetId": sheet_id, "rowIndex": 0, "columnIndex": change.at},
            }
        }
    )
    if freeze:
        props = {"sheetId": sheet_id, "gridProperties": {"frozenRowCount": 1}}
        requests.append(
            {
                "updateSheetProperties": {
                    "properties": props,
                    "fields": "gridProperties.frozenRowCount",
                }
            }
        )
    return requests


def _text(value: str) -> str:
    if len(value) <= MAX_CELL_CHARS:
        return value
    return value[: MAX_CELL_CHARS - len(CUT_MARK)] + CUT_MARK


def lead_values(lead: Lead, score: Score, tz: ZoneInfo) -> dict[str, Any]:
    """Every value leadsync writes for a lead, by column name."""
    values: dict[str, Any] = {
        "lead_id": lead.id,
        "created_time": lead.created_time.astimezone(tz).isoformat(timespec="seconds"),
        "page_id": lead.page_id,
        "form_id": lead.form_id,
        "form_name": _text(lead.form_name),
        "ad_id": lead.ad_id,
        "ad_name": _text(lead.ad_name),
        "campaign_name": _text(lead.campaign_name),
        "platform": lead.platform,
        "is_organic": bool(lead.is_organic),
    }
    for name in lead.answers:
        values[question_column(name)] = _text(lead.answer(name))
    values.update(score_values(score))
    return values


def score_values(score: Score) -> dict[str, Any]:
    """The cells a score revision changes."""
    return {"score": score.points, "mql": score.mql, "score_reasons": _text(score.reasons_text)}


def routing_values(scored: ScoredLead) -> dict[str, Any]:
    """The owner's name, the phone in E.164 (or flagged as typed), the lead this one repeats."""
    contact = scored.contact
    phone = scored.phone_e164
    if contact is not None and not contact.phone_valid:
        phone = INVALID_PHONE + contact.phone_typed
    owner = scored.owner.name if scored.owner else ""
    return {"owner": _text(owner), "phone_e164": _text(phone), "repeat_of": scored.repeat_of}


def row_for(header: Sequence[str], values: dict[str, Any]) -> list[Any]:
    """A new row in header order; people's columns and unknown ones stay empty."""
    row = [values.get(name, "") for name in header]
    while row and row[-1] == "":
        row.pop()
    return row


def score_cells(header: Sequence[str], row: int, score: Score) -> list[dict[str, Any]]:
    """values.batchUpdate data for the score cells of one row (1-based row number)."""
    return [
        {"range": rowcol_to_a1(row, header.index(name) + 1), "values": [[value]]}
        for name, value in score_values(score).items()
    ]


def routing_cells(header: Sequence[str], row: int, scored: ScoredLead) -> list[dict[str, Any]]:
    """values.batchUpdate data for the routing cells of one row: an owner given since shows."""
    return [
        {"range": rowcol_to_a1(row, header.index(name) + 1), "values": [[value]]}
        for name, value in routing_values(scored).items()
        if name in header
    ]


def column_letter(index: int) -> str:
    """Zero-based column index -> letters (0 -> A)."""
    return rowcol_to_a1(1, index + 1)[:-1]


def column_count_of(value_range: str) -> int | None:
    """The grid width from the range Google echoes for a `1:1` read (`'Leads'!A1:Z1` -> 26)."""
    last = value_range.rpartition("!")[2].rpartition(":")[2]
    try:
        return a1_to_rowcol(last)[1]
    except IncorrectCellLabel:
        return None


def index_rows(ids: Sequence[Sequence[str]], first_row: int = 2) -> dict[str, int]:
    """lead_id -> 1-based row number from the lead_id column read from `first_row` down."""
    index: dict[str, int] = {}
    for offset, cells in enumerate(ids):
        lead_id = str(cells[0]).strip() if cells else ""
        if lead_id:
            index.setdefault(lead_id, first_row + offset)
    return index
