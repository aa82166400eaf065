"""The Google Sheets destination: every lead one row, found again by lead_id.

`deliver` upserts a batch per worksheet with one read (two if a person moved the
lead_id column) and at most three writes: it reads the header and the lead_id
column in one values.batchGet (the row index is rebuilt from the
sheet every time, so people may sort, and a crash or a lost reply after an
append is found again instead of appended twice), extends the header if a form
gained a question, appends every new lead in ONE values.append (RAW,
INSERT_ROWS) and writes every changed score in ONE values.batchUpdate that
touches only the score, mql and score_reasons cells. A sliding per-minute
budget keeps requests under the Sheets quota. Built on gspread + google-auth;
their errors are mapped in `sheets_client`. Logs carry ids and counts only.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import gspread
import structlog
from gspread.utils import extract_id_from_url
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors import sheets_layout as layout
from connectors.sheets_client import (
    GOOGLE_SHEETS_URL,
    SERVICE,
    TIMEOUT,
    MinuteBudget,
    google_errors,
    load_key,
    open_client,
)
from leadsync.abc import ConnectorBase
from leadsync.constants import SHEETS_WRITES_PER_MINUTE
from leadsync.errors import AuthError, LeadsyncError, PermanentError, RateLimited
from leadsync.models import DeliveryResult, ScoredLead
from leadsync.outcomes.values import DEFAULT_SHEET_VALUES, stage_lookup

log = structlog.get_logger(__name__)

# Sheets' read quota is 60 requests per minute per user too (Sheets API "Usage limits").
SHEETS_READS_PER_MINUTE = 60
# Longest wait for quota inside deliver(); past it the runner is told to come back later
# (it then hands us a bigger batch, which is how bursts turn into few requests).
MAX_PACING_WAIT = 3.0  # three spaced writes: header, score updates, append
NEW_SHEET_ROWS = 1000


class Settings(BaseModel):
    """`[[destinations]] type = "google_sheets"` keys."""

    # A refused `credentials` is a key in a form we did not expect: never print the input.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    spreadsheet: str = Field(description="spreadsheet id or its full URL")
    worksheet: str = Field("Leads", description='tab name, or a template like "{form_name}"')
    credentials: SecretStr = Field(
        description="service-account key file, the key JSON, or the key JSON in base64"
    )
    api_url: str = GOOGLE_SHEETS_URL
    timezone: str = "UTC"
    writes_per_minute: int = Field(SHEETS_WRITES_PER_MINUTE, ge=1)
    # Outcomes people type (read by leadsync/outcomes/sheets.py, never written): "" = none.
    outcome_column: str = Field("", description='the column sales edits, like "Status"')
    outcome_values: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_SHEET_VALUES.items()},
        description="which of its values mean contacted, sql, won and lost",
    )
    value_column: str = Field("", description='an optional deal value column, like "Deal value"')

    @field_validator("spreadsheet")
    @classmethod
    def _spreadsheet_id(cls, value: str) -> str:
        value = value.strip()
        if "/" in value:
            try:
                return extract_id_from_url(value)
            except gspread.exceptions.NoValidUrlKeyFound:
                raise ValueError("no spreadsheet id in this URL") from None
        if not value:
            raise ValueError("a spreadsheet id or URL is required")
        return value

    @field_validator("worksheet")
    @classmethod
    def _worksheet_template(cls, value: str) -> str:
        try:
            fields = layout.template_fields(value)
        except ValueError:
            raise ValueError('not a valid name template (write a literal brace as "{{")') from None
        unknown = fields - layout.WORKSHEET_FIELDS
        if unknown:
            known = ", ".join("{" + f + "}" for f in sorted(layout.WORKSHEET_FIELDS))
            raise ValueError(f"unknown placeholder {sorted(unknown)}; use {known}")
        if not value.strip():
            raise ValueError("a worksheet name is required")
        return value

    @field_validator("outcome_column", "value_column")
    @classmethod
    def _column(cls, value: str) -> str:
        if value.strip() in layout.OUR_COLUMNS:
            raise ValueError(f"{value.strip()!r} is a column leadsync writes; name sales' own")
        return value.strip()

    @field_validator("outcome_values")
    @classmethod
    def _outcomes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        stage_lookup(value)  # raises with what is wrong
        return value

    @field_validator("credentials")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        load_key(value.get_secret_value())
        return value

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value


def _account(credentials: str) -> str:
    """The service account's email, for messages; a stand-in while the key cannot be read."""
    try:
        return str(load_key(credentials)["client_email"])
    except ValueError:  # the key file went away since the config was read: _open says why
        return "the service account"


def build(name: str, settings: Settings) -> GoogleSheetsConnector:
    return GoogleSheetsConnector(name, settings)


class GoogleSheetsConnector(ConnectorBase):
    """Upserts scored leads into a worksheet (or one worksheet per form) by lead_id."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = TIMEOUT,
    ):
        self.name = name
        self._timeout = timeout
        self.settings = settings
        self.account = _account(settings.credentials.get_secret_value())
        self._tz = ZoneInfo(settings.timezone)
        self._writes = MinuteBudget(settings.writes_per_minute, clock=clock, sleep=sleep)
        self._reads = MinuteBudget(SHEETS_READS_PER_MINUTE, clock=clock, sleep=sleep)
        self._book: gspread.Spreadsheet | None = None
        self._sheets: dict[str, gspread.Worksheet] = {}
        self._id_columns: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def spreadsheet_id(self) -> str:
        return self.settings.spreadsheet

    @property
    def read_budget(self) -> MinuteBudget:
        """The sheet's read quota, shared with the outcome reader of this destination."""
        return self._reads

    @property
    def per_form(self) -> bool:
        return bool(layout.template_fields(self.settings.worksheet))

    def ready_in(self) -> float:
        """Seconds until a delivery could read and write without waiting for the quota."""
        return max(self._reads.wait_time(1), self._writes.wait_time(1))

    def ensure_ready(self) -> None:
        """Opens the spreadsheet; for a fixed worksheet, creates it and writes its header."""
        with self._lock, self._edge():
            self._open()
            if self.per_form:
                return  # worksheets are made as forms send their first leads
            sheet = self._sheet(self.settings.worksheet, [])
            change = self._read_state(sheet, [])[2]
            if change is not None:
                self._writes.take(1, MAX_PACING_WAIT, self._what())
                self._write_header(sheet, *change)

    def check_ready(self) -> list[str]:
        """What `ensure_ready` would write, without writing; raises what would stop delivery.

        Read-only, for `leadsync check`: opens the spreadsheet (shared with us?),
        finds the worksheet and reads its header (has a lead_id column?).
        """
        with self._lock, self._edge():
            book = self._open()
            if self.per_form:
                return []
            title = self.settings.worksheet
            self._reads.take(1, MAX_PACING_WAIT, self._what())
            found = {ws.title.casefold(): ws for ws in book.worksheets()}.get(title.casefold())
            if found is None:
                return [f"the daemon will create the worksheet {title!r} with its header"]
            header, _, change = self._read_state(found, [])
            if change is not None:
                return [f"the daemon will write the header row of worksheet {title!r}"]
            return self._outcome_notes(title, header)

    def _outcome_notes(self, title: str, header: list[str]) -> list[str]:
        """Outcome columns the worksheet lacks: nothing fails, but nothing is read from them."""
        wanted = (self.settings.outcome_column, self.settings.value_column)
        return [
            f"worksheet {title!r} has no column {name!r} yet: outcomes are read once it is added"
            for name in wanted
            if name and name not in header
        ]

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        """Upserts every lead of the batch; a whole-call failure is raised."""
        groups: dict[str, list[ScoredLead]] = {}
        for item in batch:
            title = layout.worksheet_title(self.settings.worksheet, item.lead)
            groups.setdefault(title, []).append(item)
        with self._lock, self._edge():
            for title, items in groups.items():
                self._deliver_to(title, items)
        return [DeliveryResult(item.lead.id, external_id=item.lead.id) for item in batch]

    @contextmanager
    def _edge(self) -> Iterator[None]:
        """Maps errors once and, after any failure, forgets what may now be stale."""
        try:
            with google_errors(self.spreadsheet_id, self.account):
                yield
        except LeadsyncError as exc:
            self._forget(exc)
            raise

    def _forget(self, error: LeadsyncError) -> None:
        # A failed or lost write may have changed the sheet: find worksheets and rows again.
        self._sheets.clear()
        self._id_columns.clear()
        cause = error.__cause__
        if isinstance(error, RateLimited) and isinstance(cause, gspread.exceptions.APIError):
            budget = self._reads if cause.response.request.method == "GET" else self._writes
            budget.exhaust()
        if isinstance(error, AuthError):
            self._drop_book()  # a new key or a new share is picked up on the next call

    def close(self) -> None:
        """Closes the HTTP session to Google; a later call would open a new one."""
        with self._lock:
            self._drop_book()
            self._sheets.clear()
            self._id_columns.clear()

    def _drop_book(self) -> None:
        if self._book is not None:
            self._book.client.session.close()
            self._book = None

    # -- one worksheet -------------------------------------------------------------
    def _deliver_to(self, title: str, items: list[ScoredLead]) -> None:
        latest: dict[str, ScoredLead] = {}
        for item in items:  # the newest revision of a lead wins within a batch
            known = latest.get(item.lead.id)
            if known is None or item.revision >= known.revision:
                latest[item.lead.id] = item
        questions = layout.questions_of(latest.values())
        sheet = self._sheet(title, questions)
        header, index, change = self._read_state(sheet, questions)
        new = [item for lead_id, item in latest.items() if lead_id not in index]
        changed = [(index[lead_id], item) for lead_id, item in latest.items() if lead_id in index]
        # Every write of this call is paid for before the first, so pacing never splits it.
        self._writes.take(
            (change is not None) + bool(new) + bool(changed), MAX_PACING_WAIT, self._what()
        )
        if change is not None:
            self._write_header(sheet, *change)
        # Scores first: an append may insert its rows above some of ours (after a gap a person
        # left), which would move the rows the index points at.
        if changed:
            self._update_scores(sheet, header, changed)
        if new:
            self._append(sheet, header, new)

    def _read_state(
        self, sheet: gspread.Worksheet, questions: list[str]
    ) -> tuple[list[str], dict[str, int], tuple[layout.HeaderChange, int, bool] | None]:
        """The header the sheet will have, its lead_id -> row index, and the header change."""
        header, ids, width = self._read_header_and_ids(sheet)
        if header and "lead_id" not in header:
            raise PermanentError(
                f"worksheet {sheet.id} of spreadsheet {self.spreadsheet_id} has a header without "
                "a lead_id column; put the lead_id header back so rows can be found"
            )
        index = layout.index_rows(ids)
        wanted, change = layout.plan_header(header, questions, has_rows=bool(index))
        return wanted, index, None if change is None else (change, width, not header)

    def _write_header(
        self, sheet: gspread.Worksheet, change: layout.HeaderChange, width: int, fresh: bool
    ) -> None:
        requests = layout.header_requests(sheet.id, width, change, freeze=fresh)
        self._open().batch_update({"requests": requests})
        log.info(
            "sheet.header_written",
            destination=self.name,
            sheet_id=sheet.id,
            columns=len(change.names),
        )

    def _read_header_and_ids(self, sheet: gspread.Worksheet) -> tuple[list[str], list, int]:
        letter = self._id_columns.get(sheet.title, "A")
        self._reads.take(1, MAX_PACING_WAIT, self._what())
        head, ids = sheet.batch_get(["1:1", f"{letter}2:{letter}"])
        header = [str(v).strip() for v in (head[0] if head else [])]
        width = layout.column_count_of(head.range) or sheet.col_count
        if "lead_id" in header and layout.column_letter(header.index("lead_id")) != letter:
            letter = layout.column_letter(header.index("lead_id"))
            self._reads.take(1, MAX_PACING_WAIT, self._what())
            ids = sheet.get(f"{letter}2:{letter}")
        self._id_columns[sheet.title] = letter
        return header, list(ids), width

    def _append(self, sheet: gspread.Worksheet, header: list[str], new: list[ScoredLead]) -> None:
        rows = [
            layout.row_for(
                header, layout.lead_values(i.lead, i.score, self._tz) | layout.routing_values(i)
            )
            for i in new
        ]
        sheet.append_rows(
            rows, value_input_option="RAW", insert_data_option="INSERT_ROWS", table_range="A1"
        )
        log.info("sheet.rows_appended", destination=self.name, sheet_id=sheet.id, rows=len(rows))

    def _update_scores(
        self, sheet: gspread.Worksheet, header: list[str], changed: list[tuple[int, ScoredLead]]
    ) -> None:
        data: list[dict[str, Any]] = []
        for row, item in changed:
            data.extend(layout.score_cells(header, row, item.score))
            data.extend(layout.routing_cells(header, row, item))
        sheet.batch_update(data, raw=True)
        log.info(
            "sheet.scores_updated", destination=self.name, sheet_id=sheet.id, rows=len(changed)
        )

    # -- spreadsheet and worksheets ----------------------------------------------------
    def _open(self) -> gspread.Spreadsheet:
        if self._book is None:
            self._reads.take(1, MAX_PACING_WAIT, self._what())
            try:  # read again each time: a replaced key file is picked up without a restart
                key = load_key(self.settings.credentials.get_secret_value())
            except ValueError as exc:
                raise AuthError(
                    f"credentials of destination {self.name}: {exc}", service=SERVICE
                ) from exc
            client = open_client(key, self.settings.api_url, self._timeout)
            self._book = client.open_by_key(self.spreadsheet_id)
        return self._book

    def _sheet(self, title: str, questions: list[str]) -> gspread.Worksheet:
        """The worksheet named `title`, created with its header when missing."""
        if title in self._sheets:
            return self._sheets[title]
        book = self._open()
        self._reads.take(1, MAX_PACING_WAIT, self._what())
        # Sheets titles are unique regardless of case: "leads" is the tab "Leads" asks for.
        existing = {ws.title.casefold(): ws for ws in book.worksheets()}
        found = existing.get(title.casefold())
        sheet = found or self._create(book, title, questions, existing.values())
        self._sheets[title] = sheet
        return sheet

    def _create(
        self, book: gspread.Spreadsheet, title: str, questions: list[str], existing: Any
    ) -> gspread.Worksheet:
        header = [*layout.FIXED_COLUMNS, *questions, *layout.SCORE_COLUMNS, *layout.ROUTING_COLUMNS]
        taken = {ws.id for ws in existing}
        sheet_id = random.randrange(1, 2**31 - 1)
        while sheet_id in taken:
            sheet_id = random.randrange(1, 2**31 - 1)
        grid = {"rowCount": NEW_SHEET_ROWS, "columnCount": len(header)}
        add = {
            "addSheet": {
                "properties": {"sheetId": sheet_id, "title": title, "gridProperties": grid}
            }
        }
        change = layout.HeaderChange(0, tuple(header))
        requests = [add, *layout.header_requests(sheet_id, len(header), change, freeze=True)]
        self._writes.take(1, MAX_PACING_WAIT, self._what())
        reply = book.batch_update({"requests": requests})
        log.info("sheet.worksheet_created", destination=self.name, sheet_id=sheet_id)
        properties = reply["replies"][0]["addSheet"]["properties"]
        return gspread.Worksheet(book, properties, book.id, book.client)

    def _what(self) -> str:
        return f"destination {self.name} (spreadsheet {self.spreadsheet_id})"
