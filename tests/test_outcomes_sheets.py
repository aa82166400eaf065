"""Outcomes typed into a Google Sheets destination (leadsync/outcomes/sheets.py).

The sheet is filled by the real connector over the Sheets emulator, then a
person (the emulator) adds a Status and a Deal value column, types into them,
sorts and inserts columns; the reader, on the real gspread, turns what it reads
into stages in a real SQLite store. Its clock is injected, so "first seen"
times are exact.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import structlog.testing

from connectors.google_sheets import GoogleSheetsConnector, Settings
from leadsync.config import parse_config
from leadsync.errors import ConfigError, RateLimited
from leadsync.jobs import ScheduledRuns
from leadsync.leases import LeaseKeeper
from leadsync.models import Lead, Score, ScoredLead, utcnow
from leadsync.outcomes.job import OutcomeJobs, interval_for
from leadsync.outcomes.sheets import SheetsOutcomes
from tests.daemon_harness import sheet_rows, sheets_destination

T0 = utcnow().replace(microsecond=0)


@pytest.fixture
def store_backend() -> str:
    """The reader is the same on every store; tests/test_store_outcomes.py covers both."""
    return "sqlite"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self):  # noqa: ANN204
        return self.now

    def tick(self, minutes: float = 1) -> None:
        self.now += timedelta(minutes=minutes)


class Sheet:
    """The sales sheet: leads delivered by the connector, then worked on by a person."""

    def __init__(self, sheets, store, tmp_path, count: int, **keys):
        sheets.set_quota(writes_per_minute=None, reads_per_minute=None)
        dest = sheets_destination(
            sheets, tmp_path, outcome_column="Status", value_column="Deal value", **keys
        )
        self.sheets, self.store, self.name = sheets, store, dest.pop("name")
        dest.pop("type")
        self.settings = Settings.model_validate(dest)
        self.ids = [str(7_000_000 + n) for n in range(count)]
        leads = [Lead(i, T0 - timedelta(days=1), "p1", "f1") for i in self.ids]
        store.save_leads(leads)
        connector = GoogleSheetsConnector(self.name, self.settings)
        connector.deliver([ScoredLead(lead, Score(10, False)) for lead in leads])
        connector.close()
        self.status = sheets.add_column("sales", "Leads", "Status")
        self.value = sheets.add_column("sales", "Leads", "Deal value")

    def type(self, lead_id: str, status: str, value: str | None = None) -> None:
        """A person types a status (and a deal value) into the lead's row, wherever it is now."""
        header = self.sheets.values("sales", "Leads")[0]
        row = 2 + [r["lead_id"] for r in sheet_rows(self.sheets)].index(lead_id)
        letter = chr(ord("A") + header.index("Status"))
        self.sheets.set_cell("sales", "Leads", f"{letter}{row}", status)
        if value is not None:
            letter = chr(ord("A") + header.index("Deal value"))
            self.sheets.set_cell("sales", "Leads", f"{letter}{row}", value)

    def reader(self, clock: Clock) -> SheetsOutcomes:
        return SheetsOutcomes(self.name, self.settings, self.store, clock=clock)


def reached(store, lead_id: str) -> list[tuple]:
    return [(s.stage, s.reached_at, s.value) for s in store.stages_for([lead_id]).get(lead_id, [])]


def test_typed_outcomes_become_stages_once_with_the_time_first_seen(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 5), Clock()
    a, b, c, d, e = sheet.ids
    reader = sheet.reader(clock)
    assert reader.read() == []  # nothing typed yet
    sheet.type(a, "Contacted")
    sheet.type(b, " qualified ")  # any case, spaces around
    sheet.type(c, "Won", "$1,200.50")
    sheet.type(d, "Lost")
    sheet.type(e, "Left a voicemail")  # not a stage
    clock.tick()
    new = reader.read()
    assert sorted((s.lead_id, s.stage) for s in new) == [
        (a, "contacted"),
        (b, "sql"),
        (c, "won"),
        (d, "lost"),
    ]
    assert reached(store, c) == [("won", clock.now, Decimal("1200.50"))]
    assert all(s.source == "google_sheets:sheet" for s in new)
    seen = clock.now
    clock.tick()
    sheet.type(c, "won", "$1,200.50")  # typed again: not a second stage
    sheet.type(a, "Qualified")  # moved on
    new = reader.read()
    assert [(s.lead_id, s.stage) for s in new] == [(a, "sql")]
    assert reached(store, a) == [("contacted", seen, None), ("sql", clock.now, None)]
    clock.tick()
    sheet.type(a, "Contacted")  # back again: the first time stays
    assert reader.read() == []
    assert reached(store, a) == [
        ("contacted", seen, None),
        ("sql", seen + timedelta(minutes=1), None),
    ]
    assert reached(store, e) == []


def test_a_deal_value_typed_later_fills_in_the_stage(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 2), Clock()
    reader = sheet.reader(clock)
    sheet.type(sheet.ids[0], "Won")
    reader.read()
    won_at = clock.now
    clock.tick()
    sheet.type(sheet.ids[0], "Won", "1.200,50 €")
    assert reader.read() == []  # no new stage...
    assert reached(store, sheet.ids[0]) == [("won", won_at, Decimal("1200.50"))]  # ...its value


def test_an_unreadable_value_is_no_value_logged_by_lead_id(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 1), Clock()
    sheet.type(sheet.ids[0], "Won", "about ten grand")
    with structlog.testing.capture_logs() as logs:
        sheet.reader(clock).read()
    assert reached(store, sheet.ids[0]) == [("won", clock.now, None)]
    [warning] = [e for e in logs if e["event"] == "outcomes.value_unreadable"]
    assert warning["lead_id"] == sheet.ids[0]
    assert "grand" not in str(logs)


def test_rows_are_found_by_lead_id_after_sorting_and_moving_columns(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 6), Clock()
    reader = sheet.reader(clock)
    reader.read()  # finds its columns
    sheets.sort_rows("sales", "Leads", "lead_id", descending=True)
    sheets.insert_column("sales", "Leads", "A")  # every column moves right
    sheets.insert_column("sales", "Leads", "C")
    sheet.type(sheet.ids[1], "Won", "300")
    sheet.type(sheet.ids[4], "Contacted")
    new = reader.read()
    assert sorted((s.lead_id, s.stage, s.value) for s in new) == [
        (sheet.ids[1], "won", Decimal("300")),
        (sheet.ids[4], "contacted", None),
    ]


def test_only_leads_leadsync_stored_count(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 1), Clock()
    rows = len(sheet_rows(sheets)) + 2
    sheets.set_cell("sales", "Leads", f"A{rows}", "123456")  # a row a person added by hand
    sheets.set_cell("sales", "Leads", f"{sheet.status}{rows}", "Won")
    sheet.type(sheet.ids[0], "Lost")
    new = sheet.reader(clock).read()
    assert [(s.lead_id, s.stage) for s in new] == [(sheet.ids[0], "lost")]
    assert store.stages_for(["123456"]) == {}


@pytest.mark.parametrize("rows", [100, 2000])
def test_each_round_is_one_request_whatever_the_sheet_s_size(sheets, store, tmp_path, rows):
    sheet, clock = Sheet(sheets, store, tmp_path, rows), Clock()
    reader = sheet.reader(clock)
    reader.read()  # the first round opens the spreadsheet and finds the columns
    for n in (3, rows - 1):
        sheets.reset_counters()
        sheet.type(sheet.ids[n], "Won", "10")
        clock.tick()
        assert [s.lead_id for s in reader.read()] == [sheet.ids[n]]
        assert [r.op for r in sheets.requests()] == ["values.batchGet"]


def test_a_moved_column_costs_one_more_request_that_round_only(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 3), Clock()
    reader = sheet.reader(clock)
    reader.read()
    sheets.insert_column("sales", "Leads", "B")
    sheet.type(sheet.ids[0], "Lost")
    sheets.reset_counters()
    assert [s.lead_id for s in reader.read()] == [sheet.ids[0]]
    assert [r.op for r in sheets.requests()] == ["values.batchGet"] * 2
    sheets.reset_counters()
    reader.read()
    assert len(sheets.requests()) == 1


def test_reads_share_the_destination_s_read_budget(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 1), Clock()
    connector = GoogleSheetsConnector(sheet.name, sheet.settings, sleep=lambda _s: None)
    reader = SheetsOutcomes(
        sheet.name, sheet.settings, store, clock=clock, budget=connector.read_budget
    )
    for _ in range(60):
        connector.read_budget.take(1, 3600, "filling the minute")
    sheets.reset_counters()
    with pytest.raises(RateLimited):
        reader.read()  # the connector spent the minute's reads: the reader holds back
    assert sheets.requests(op="values.batchGet") == []


def test_one_replica_reads_a_source_at_a_time(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 1), Clock()
    sheet.type(sheet.ids[0], "Contacted")
    first = OutcomeJobs(store, LeaseKeeper(store, "host:1:a"), ScheduledRuns())
    second = OutcomeJobs(store, LeaseKeeper(store, "host:2:b"), ScheduledRuns())
    assert first.read_if_ours(sheet.reader(clock)) == 1
    assert second.read_if_ours(sheet.reader(clock)) is None  # not its turn
    assert [s.stage for s in store.stages_for([sheet.ids[0]])[sheet.ids[0]]] == ["contacted"]


def test_outcomes_are_read_at_least_as_often_as_leads_are_polled():
    assert interval_for(timedelta(minutes=5)) == timedelta(minutes=1)
    assert interval_for(timedelta(seconds=20)) == timedelta(seconds=20)


def test_outcome_keys_are_checked_with_their_key_path(sheets, tmp_path):
    dest = sheets_destination(sheets, tmp_path, outcome_column="score")
    dest["outcome_values"] = {"won": ["Won", "Closed"], "lost": ["closed "], "maybe": ["?"]}
    raw = {
        "facebook": {"app_secret": "s", "verify_token": "v", "access_token": "t"},
        "destinations": [dest],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, {})
    found = "\n".join(str(p) for p in caught.value.problems)
    assert "destinations[0].outcome_column: " in found and "a column leadsync writes" in found
    assert "destinations[0].outcome_values: " in found
    assert "unknown stage 'maybe'" in found or "'closed ' is listed for both won and lost" in found


def test_a_sheet_without_its_value_column_is_read_without_values(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 2, name="no-values"), Clock()
    settings = sheet.settings.model_copy(update={"value_column": "Amount"})
    reader = SheetsOutcomes(sheet.name, settings, store, clock=clock)
    sheet.type(sheet.ids[0], "Won", "500")
    with structlog.testing.capture_logs() as logs:
        assert [(s.stage, s.value) for s in reader.read()] == [("won", None)]
        reader.read()
    missing = [e for e in logs if e["event"] == "outcomes.columns_missing"]
    assert [e["columns"] for e in missing] == [["Amount"]]  # said once


def test_a_sheet_without_its_status_column_says_so_once(sheets, store, tmp_path):
    sheet, clock = Sheet(sheets, store, tmp_path, 1), Clock()
    settings = sheet.settings.model_copy(update={"outcome_column": "Stage"})
    reader = SheetsOutcomes(sheet.name, settings, store, clock=clock)
    with structlog.testing.capture_logs() as logs:
        assert reader.read() == []
        assert reader.read() == []
    missing = [e for e in logs if e["event"] == "outcomes.columns_missing"]
    assert [e["columns"] for e in missing] == [["Stage"]]
    sheets.add_column("sales", "Leads", "Stage")
    header = sheets.values("sales", "Leads")[0]
    sheets.set_cell("sales", "Leads", f"{chr(ord('A') + header.index('Stage'))}2", "Lost")
    assert [s.stage for s in reader.read()] == ["lost"]


def test_check_says_when_the_sheet_lacks_an_outcome_column(sheets, store, tmp_path):
    sheet = Sheet(sheets, store, tmp_path, 1)
    sheets.reset_counters()
    present = GoogleSheetsConnector(sheet.name, sheet.settings)
    assert present.check_ready() == []
    update = {"outcome_column": "Stage", "value_column": "Deal value"}
    lacking = GoogleSheetsConnector(sheet.name, sheet.settings.model_copy(update=update))
    assert lacking.check_ready() == [
        "worksheet 'Leads' has no column 'Stage' yet: outcomes are read once it is added"
    ]
    for connector in (present, lacking):
        connector.close()
    assert sheets.writes == 0  # check changes nothing
