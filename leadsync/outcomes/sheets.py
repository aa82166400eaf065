"""Reads the outcomes people type into a Google Sheets destination: one request a round.

Sales keeps a column of its own (`outcome_column`, e.g. "Status") and maybe a
deal value column. Each round reads, for every worksheet of the destination,
its header row and the lead_id, outcome and value columns in ONE
values.batchGet, whatever the sheet's size; columns are found by header name
with the letters of the round before, so only a round after someone moved a
column reads again (a second request). Rows are found by lead_id, so people
may sort; a mapped status (trimmed, any case) is the lead's stage, first seen
now. Only readings that changed since the last round go to the store, which
keeps one stage per lead and ignores leads it never stored. Reads share the
destination's per-minute read budget with its connector. Logs carry ids only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import gspread
import structlog
from gspread.utils import absolute_range_name

from connectors.google_sheets import SHEETS_READS_PER_MINUTE, Settings
from connectors.sheets_client import TIMEOUT, MinuteBudget, google_errors, load_key, open_client
from connectors.sheets_layout import column_letter, template_fields
from leadsync.abc import Store
from leadsync.errors import AuthError, LeadsyncError
from leadsync.models import LeadStage, Stage, utcnow
from leadsync.outbox.stages import StageRecorder
from leadsync.outcomes.values import normal, parse_value, stage_lookup

log = structlog.get_logger(__name__)

# Longest wait for the read budget in a round; past it the round is skipped (the next one reads).
MAX_BUDGET_WAIT = 5.0
# The worksheets of a per-form destination are listed again this often (new forms, new tabs).
WORKSHEETS_REFRESH = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Columns:
    """Where a worksheet keeps what we read: column letters ("" when it has no such column)."""

    lead_id: str
    outcome: str
    value: str

    def ranges(self, title: str) -> list[str]:
        letters = [self.lead_id, self.outcome, *([self.value] if self.value else [])]
        return [absolute_range_name(title, f"{c}2:{c}") for c in letters]


@dataclass(frozen=True, slots=True)
class Reading:
    """One row's outcome: the lead, the stage its status means, and the deal value cell."""

    lead_id: str
    stage: Stage
    value_text: str


class SheetsOutcomes:
    """The outcome reader of one google_sheets destination (`read` is one round)."""

    def __init__(
        self,
        destination: str,
        settings: Settings,
        store: Store,
        *,
        recorder: StageRecorder | None = None,
        budget: MinuteBudget | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout: tuple[float, float] = TIMEOUT,
    ):
        self.name = destination
        self.source = f"google_sheets:{destination}"
        self.settings = settings
        self._store = store
        self._recorder: StageRecorder = recorder or store
        self._budget = budget or MinuteBudget(SHEETS_READS_PER_MINUTE, sleep=time.sleep)
        self._clock = clock
        self._timeout = timeout
        self._lookup = stage_lookup(settings.outcome_values)
        self._per_form = bool(template_fields(settings.worksheet))
        self._book: gspread.Spreadsheet | None = None
        self._titles: list[str] = []
        self._titles_at: datetime | None = None
        self._columns: dict[str, Columns] = {}
        self._missing: set[str] = set()  # worksheets said to lack a column (said once)
        self._seen: dict[tuple[str, Stage], Decimal | None] = {}

    def read(self) -> list[LeadStage]:
        """Reads the sheet once and records what changed; returns the stages new to the store."""
        try:
            with google_errors(self.settings.spreadsheet, self.name):
                found = self._read_sheet()
        except LeadsyncError:
            self._forget()
            raise
        return self._record(found)

    def close(self) -> None:
        """Closes the HTTP session to Google."""
        self._forget()

    # -- reading -------------------------------------------------------------------------
    def _read_sheet(self) -> list[Reading]:
        book = self._open()
        titles = self._worksheets(book)
        ranges = [r for t in titles for r in self._ranges(t)]
        replies = self._batch_get(book, ranges)
        readings: list[Reading] = []
        moved: dict[str, Columns] = {}
        for title in titles:
            header, *cols = [replies.pop(0) for _ in self._ranges(title)]
            wanted = self._find_columns(title, [c[0] if c else "" for c in header])
            if wanted is not None and wanted == self._columns.get(title):
                readings.extend(self._rows(*cols))
            elif wanted is not None:
                moved[title] = wanted
            else:
                self._columns.pop(title, None)  # its ranges may no longer exist
        if moved:  # first round, or someone moved a column: read those where they are now
            self._columns.update(moved)
            again = self._batch_get(book, [r for t in moved for r in moved[t].ranges(t)])
            for title, columns in moved.items():
                readings.extend(self._rows(*[again.pop(0) for _ in columns.ranges(title)]))
        return readings

    def _ranges(self, title: str) -> list[str]:
        columns = self._columns.get(title)
        return [absolute_range_name(title, "1:1"), *(columns.ranges(title) if columns else [])]

    def _batch_get(self, book: gspread.Spreadsheet, ranges: list[str]) -> list[list[list[Any]]]:
        """Every range in one values.batchGet, each as its columns (COLUMNS major)."""
        self._budget.take(1, MAX_BUDGET_WAIT, f"outcomes of destination {self.name}")
        reply = book.values_batch_get(ranges, params={"majorDimension": "COLUMNS"})
        return [r.get("values", []) for r in reply.get("valueRanges", [])]

    def _find_columns(self, title: str, header: list[str]) -> Columns | None:
        """The columns by header name; None when lead_id or the status column is missing.

        A missing column is logged once per worksheet (a per-form destination's tabs
        that are not ours, with no lead_id, quietly). Without its value column a sheet
        is still read, without values.
        """
        names = [str(h).strip() for h in header]
        wanted = ["lead_id", self.settings.outcome_column, self.settings.value_column]
        letters = [column_letter(names.index(n)) if n and n in names else "" for n in wanted]
        lacking = [n for n, letter in zip(wanted, letters, strict=True) if n and not letter]
        if not lacking:
            self._missing.discard(title)
        elif title not in self._missing:
            self._missing.add(title)
            if letters[0] or not self._per_form:
                log.warning("outcomes.columns_missing", destination=self.name, columns=lacking)
        return Columns(*letters) if letters[0] and letters[1] else None

    def _rows(self, ids: list, outcomes: list, values: list | None = None) -> list[Reading]:
        ids, outcomes = (ids[0] if ids else []), (outcomes[0] if outcomes else [])
        amounts = values[0] if values else []
        readings = []
        for row, status in enumerate(outcomes):
            stage = self._lookup.get(normal(status))
            lead_id = str(ids[row]).strip() if row < len(ids) else ""
            if stage and lead_id:
                amount = str(amounts[row]) if row < len(amounts) else ""
                readings.append(Reading(lead_id, stage, amount))
        return readings

    # -- recording -----------------------------------------------------------------------
    def _record(self, readings: Sequence[Reading]) -> list[LeadStage]:
        """Sends the readings that changed since the last round to the store."""
        now, changed = self._clock(), []
        for reading in readings:
            value = parse_value(reading.value_text)
            key = (reading.lead_id, reading.stage)
            if key in self._seen and self._seen[key] == value:
                continue
            if value is None and reading.value_text.strip():
                log.warning("outcomes.value_unreadable", destination=self.name, lead_id=key[0])
            self._seen[key] = value
            changed.append(LeadStage(reading.lead_id, reading.stage, now, value, self.source))
        try:
            return self._recorder.record_stages(changed)
        except BaseException:
            for stage in changed:  # not stored: read as new next round
                self._seen.pop((stage.lead_id, stage.stage), None)
            raise

    # -- spreadsheet ---------------------------------------------------------------------
    def _open(self) -> gspread.Spreadsheet:
        if self._book is None:
            try:  # read again each time: a replaced key file is picked up without a restart
                key = load_key(self.settings.credentials.get_secret_value())
            except ValueError as exc:
                raise AuthError(f"credentials of destination {self.name}: {exc}") from exc
            self._budget.take(1, MAX_BUDGET_WAIT, f"outcomes of destination {self.name}")
            client = open_client(key, self.settings.api_url, self._timeout)
            self._book = client.open_by_key(self.settings.spreadsheet)
        return self._book

    def _worksheets(self, book: gspread.Spreadsheet) -> list[str]:
        """The worksheets to read: the destination's one, or every tab of a per-form one."""
        now = self._clock()
        if self._titles_at is None or now - self._titles_at > WORKSHEETS_REFRESH:
            self._budget.take(1, MAX_BUDGET_WAIT, f"outcomes of destination {self.name}")
            titles = [ws.title for ws in book.worksheets()]
            if not self._per_form:
                wanted = self.settings.worksheet.casefold()
                titles = [t for t in titles if t.casefold() == wanted]
            self._titles, self._titles_at = titles, now
        return self._titles

    def _forget(self) -> None:
        """After a failure, or at the end: open, list and find columns again next time."""
        if self._book is not None:
            self._book.client.session.close()
            self._book = None
        self._titles_at = None
        self._columns.clear()
