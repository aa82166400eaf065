"""`leadsync score FILE.csv`: scores a CSV of leads on this machine, no daemon, no network.

Columns are the Sheet's: the fixed lead columns (`lead_id`, `created_time`,
`form_id`, `campaign_name`, `is_organic`, ...) become lead attributes, every
other column is a form question named by its header, and an empty cell is an
unanswered question. An optional `events` column lists engagement events as
`type@time` separated by ";" (`demo_requested@2026-05-01T10:00:00+00:00;
email_opened`); an event without a time counts as fresh (at `now`). Existing
`score`, `mql` and `score_reasons` columns are ignored and rewritten, so a Sheet
export can be re-scored as it is. The output keeps every input column and row,
in order, and adds `score`, `mql` (TRUE/FALSE) and `score_reasons`; text cells
that a spreadsheet would run as a formula are written with a leading quote.
This module only reads and writes the files; scoring is the engine's.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from leadsync.csv_formulas import FormulaSafeDictWriter, restore
from leadsync.errors import BadLead
from leadsync.models import LEAD_ATTRIBUTES, Event, Lead, parse_time
from leadsync.scoring.engine import Scorer

# Sheet columns that are lead attributes, not questions (DESIGN "Sheet columns"), plus the
# attributes a Sheet does not show but an export from elsewhere may carry.
ATTRIBUTE_COLUMNS = ("lead_id", "created_time", *LEAD_ATTRIBUTES)
SCORE_COLUMNS = ("score", "mql", "score_reasons")
EVENTS_COLUMN = "events"
_NOT_ANSWERS = frozenset((*ATTRIBUTE_COLUMNS, *SCORE_COLUMNS, EVENTS_COLUMN))
_TRUE = frozenset({"true", "yes", "1", "y", "t"})


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """What `score_csv` did: how many rows it scored and how many are MQLs."""

    rows: int
    mqls: int


def score_csv(scorer: Scorer, input_path: Path, output_path: Path, now: datetime) -> ScoreSummary:
    """Writes `input_path`'s rows to `output_path` with their score, MQL flag and reasons."""
    if Path(output_path).resolve() == Path(input_path).resolve():
        raise ValueError(f"{output_path} is the input file; write the scores to another file")
    rows = mqls = 0
    with open(input_path, newline="", encoding="utf-8-sig") as source:
        reader = csv.DictReader(source)
        header = [name for name in reader.fieldnames or () if name not in SCORE_COLUMNS]
        with open(output_path, "w", newline="", encoding="utf-8") as target:
            # A lead's "=HYPERLINK(...)" must open as text in whoever's spreadsheet.
            writer = FormulaSafeDictWriter(target, [*header, *SCORE_COLUMNS], extrasaction="ignore")
            writer.writeheader()
            for number, row in _rows(reader):
                lead, events = lead_from_row(row, number, now)
                score = scorer.score(lead, events, now)
                writer.writerow(
                    {
                        **row,
                        "score": score.points,
                        "mql": "TRUE" if score.mql else "FALSE",
                        "score_reasons": score.reasons_text,
                    }
                )
                rows += 1
                mqls += score.mql
    return ScoreSummary(rows=rows, mqls=mqls)


def read_leads_csv(path: Path, now: datetime) -> dict[str, tuple[Lead, list[Event]]]:
    """Every lead of a CSV (as `score_csv` reads it) with its events, by lead id."""
    with open(path, newline="", encoding="utf-8-sig") as source:
        leads = (lead_from_row(row, number, now) for number, row in _rows(csv.DictReader(source)))
        return {lead.id: (lead, events) for lead, events in leads}


def _rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Non-blank rows with their line number in the file (the header is line 1)."""
    for number, row in enumerate(reader, start=2):
        if any((value or "").strip() for value in row.values() if isinstance(value, str)):
            yield number, row


def lead_from_row(row: Mapping[str, str], number: int, now: datetime) -> tuple[Lead, list[Event]]:
    """The lead and events of one CSV row; `number` names the row in error messages."""
    cell = {n: restore(v or "").strip() for n, v in row.items() if isinstance(n, str)}
    lead_id = cell.get("lead_id") or f"row-{number}"
    try:
        created = parse_time(cell.get("created_time")) or now
    except ValueError:
        raise BadLead(
            f"row {number}: created_time {cell['created_time']!r} is not a time; "
            "write ISO 8601 (2026-05-01T10:00:00+00:00) or unix seconds"
        ) from None
    lead = Lead(
        id=lead_id,
        created_time=created,
        page_id=cell.get("page_id", ""),
        form_id=cell.get("form_id", ""),
        form_name=cell.get("form_name", ""),
        ad_id=cell.get("ad_id", ""),
        ad_name=cell.get("ad_name", ""),
        adset_id=cell.get("adset_id", ""),
        adset_name=cell.get("adset_name", ""),
        campaign_id=cell.get("campaign_id", ""),
        campaign_name=cell.get("campaign_name", ""),
        platform=cell.get("platform", ""),
        is_organic=cell.get("is_organic", "").casefold() in _TRUE,
        answers={
            name: (value,) for name, value in cell.items() if value and name not in _NOT_ANSWERS
        },
    )
    return lead, parse_events(cell.get(EVENTS_COLUMN, ""), lead_id, number, now)


def parse_events(text: str, lead_id: str, number: int, now: datetime) -> list[Event]:
    """Events written as `type@time; type` in one cell; a missing time means `now`."""
    events = []
    for index, item in enumerate(part.strip() for part in text.replace("\n", ";").split(";")):
        if not item:
            continue
        kind, _, when = (piece.strip() for piece in item.partition("@"))
        try:
            at = parse_time(when) or now
        except ValueError:
            raise BadLead(
                f"row {number}: event {kind!r} has time {when!r}; write type@ISO-time, "
                "e.g. webinar_attended@2026-05-01T10:00:00+00:00"
            ) from None
        events.append(Event(id=f"{lead_id}-{index}", type=kind, at=at, lead_id=lead_id))
    return events
