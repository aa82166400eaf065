"""The Google Sheets connector over real gspread + google-auth against the Sheets emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import gspread
import pytest
from google.oauth2.service_account import Credentials
from pydantic import ValidationError
from structlog.testing import capture_logs

import connectors
from connectors import sheets_layout as layout
from connectors.google_sheets import GoogleSheetsConnector, Settings, build
from connectors.sheets_client import RebasedSession
from leadsync.abc import Connector
from leadsync.emulators.sheets import SheetsEmulator
from leadsync.errors import AuthError, PermanentError, RateLimited, TransientError
from leadsync.models import Lead, Reason, Score, ScoredLead

BOOK = "sheet-123"
ACCOUNT = "leadsync@demo-project.iam.gserviceaccount.com"
HEADER = [*layout.FIXED_COLUMNS, *layout.SCORE_COLUMNS, *layout.ROUTING_COLUMNS]


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def lead(number: int, form: str = "F1", **answers: str | list[str]) -> Lead:
    return Lead(
        id=f"10000{number}",
        created_time=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        page_id="P1",
        form_id=form,
        form_name=f"Form {form}",
        ad_id="A1",
        campaign_name="Autumn",
        platform="fb",
        answers={k: tuple(v) if isinstance(v, list) else (v,) for k, v in answers.items()},
    )


def scored(item: Lead, points: int = 25, revision: int = 1) -> ScoredLead:
    score = Score(points, points >= 60, (Reason("VP title", points),))
    return ScoredLead(item, score, revision)


@pytest.fixture
def emu():
    with SheetsEmulator() as emulator:
        yield emulator


@pytest.fixture
def key(emu) -> dict:
    return emu.service_account(ACCOUNT)


@pytest.fixture
def make(emu, key):
    """Builds connectors on a spreadsheet shared with the service account."""
    emu.create_spreadsheet(BOOK, worksheets=["Sheet1"], shared_with=[ACCOUNT])

    def connector(clock: FakeClock | None = None, timeout=None, **overrides):
        settings = {"spreadsheet": BOOK, "credentials": json.dumps(key), "api_url": emu.url}
        settings = Settings(**(settings | overrides))
        if clock is None and timeout is None:
            return build("sales", settings)
        clock = clock or FakeClock()
        extra = {"timeout": timeout} if timeout else {}
        return GoogleSheetsConnector("sales", settings, clock=clock, sleep=clock.sleep, **extra)

    return connector


def rows(emu, worksheet: str = "Leads") -> list[dict[str, str]]:
    header, *lines = emu.values(BOOK, worksheet)
    return [
        dict(zip(header, line + [""] * (len(header) - len(line)), strict=True)) for line in lines
    ]


def test_registered_and_implements_connector(make):
    module = connectors.load("google_sheets")
    assert module.Settings is Settings and module.build is build
    assert isinstance(make(), Connector)


def test_ensure_ready_creates_worksheet_with_frozen_header(emu, make):
    make().ensure_ready()
    assert emu.values(BOOK, "Leads") == [HEADER]
    assert emu.state.books[BOOK].worksheet("Leads").frozen_rows == 1


def test_ensure_ready_keeps_an_existing_header(emu, make, key):
    emu.create_spreadsheet("other", worksheets=["Leads"], shared_with=[ACCOUNT])
    emu.set_cell("other", "Leads", "A1", "lead_id")
    emu.set_cell("other", "Leads", "B1", "Status")
    make(spreadsheet="other").ensure_ready()
    assert emu.values("other", "Leads") == [["lead_id", "Status", *HEADER[1:]]]


def test_first_delivery_puts_questions_before_score(emu, make):
    connector = make()
    connector.ensure_ready()
    connector.deliver([scored(lead(1, email="a@example.com", job_title="VP"))])
    header = emu.values(BOOK, "Leads")[0]
    assert header == [
        *layout.FIXED_COLUMNS,
        "email",
        "job_title",
        *layout.SCORE_COLUMNS,
        *layout.ROUTING_COLUMNS,
    ]


def test_new_question_is_one_new_column_at_the_end(emu, make):
    connector = make()
    connector.deliver([scored(lead(1, email="a@example.com"))])
    before = emu.values(BOOK, "Leads")
    connector.deliver([scored(lead(2, email="b@example.com", budget="5000"))])
    after = emu.values(BOOK, "Leads")
    assert after[0] == [*before[0], "budget"]
    assert after[1] == before[1]  # the old row is intact
    assert rows(emu)[1]["budget"] == "5000"


def test_score_update_finds_row_after_person_sorts(emu, make):
    connector = make()
    connector.deliver([scored(lead(n, email=f"{n}@example.com")) for n in (1, 2, 3)])
    status = emu.add_column(BOOK, "Leads", "Status")
    emu.set_cell(BOOK, "Leads", f"{status}2", "called")  # the row of lead 100001
    emu.sort_rows(BOOK, "Leads", "lead_id", descending=True)
    connector.deliver([scored(lead(1, email="1@example.com"), points=80, revision=2)])
    by_id = {r["lead_id"]: r for r in rows(emu)}
    assert [r["lead_id"] for r in rows(emu)] == ["100003", "100002", "100001"]
    assert (by_id["100001"]["score"], by_id["100001"]["mql"]) == ("80", "TRUE")
    assert by_id["100001"]["Status"] == "called"
    assert by_id["100002"]["score"] == by_id["100003"]["score"] == "25"


def test_columns_are_found_by_name_when_a_person_inserts_one(emu, make, key):
    connector = make()
    connector.deliver([scored(lead(1))])
    creds = Credentials.from_service_account_info(key, scopes=gspread.auth.DEFAULT_SCOPES)
    client = gspread.Client(auth=creds, session=RebasedSession(creds, emu.url))
    client.open_by_key(BOOK).worksheet("Leads").insert_cols([["Priority", "high"]], 1)
    connector.deliver([scored(lead(1), points=70, revision=2), scored(lead(2))])
    table = rows(emu)
    assert [(r["Priority"], r["lead_id"], r["score"]) for r in table] == [
        ("high", "100001", "70"),
        ("", "100002", "25"),
    ]


def test_values_are_raw_text_and_typed_cells(emu, make):
    answers = {"full_name": '=IMPORTXML("http://evil","//a")', "phone_number": "+0031612345678"}
    extra = {"postcode": "00123", "services": ["SEO", "Ads"]}
    make(timezone="Europe/Paris").deliver([scored(lead(1, **answers, **extra), points=75)])
    row = rows(emu)[0]
    formula_col = layout.column_letter(emu.values(BOOK, "Leads")[0].index("full_name"))
    assert not emu.is_formula(BOOK, "Leads", f"{formula_col}2")
    assert row["full_name"] == '=IMPORTXML("http://evil","//a")'
    assert (row["phone_number"], row["postcode"]) == ("+0031612345678", "00123")
    assert row["services"] == "SEO, Ads"
    assert row["created_time"] == "2026-11-20T10:30:00+01:00"
    assert (row["mql"], row["is_organic"], row["score_reasons"]) == (
        "TRUE",
        "FALSE",
        "VP title +75",
    )
    score_col = layout.column_letter(emu.values(BOOK, "Leads")[0].index("score"))
    assert emu.cell(BOOK, "Leads", f"{score_col}2")["value"] == 75  # a number people can sort


def test_answer_longer_than_a_cell_is_cut(emu, make):
    make().deliver([scored(lead(1, story="x" * 60_000))])
    story = rows(emu)[0]["story"]
    assert len(story) == layout.MAX_CELL_CHARS and story.endswith(layout.CUT_MARK)


def test_duplicate_delivery_makes_one_row(emu, make):
    connector = make()
    first = scored(lead(1))
    results = connector.deliver([first, first])
    assert [r.ok for r in results] == [True, True]
    connector.deliver([first])
    assert [r["lead_id"] for r in rows(emu)] == ["100001"]


def test_one_append_and_one_batch_update_per_batch(emu, make):
    connector = make()
    connector.deliver([scored(lead(n)) for n in range(50)])
    emu.reset_counters()
    connector.deliver(
        [scored(lead(n), points=61, revision=2) for n in range(40)]
        + [scored(lead(n)) for n in range(50, 60)]
    )
    writes = [r.op for r in emu.requests(kind="write")]
    assert writes == ["values.batchUpdate", "values.append"]
    assert len(rows(emu)) == 60
    assert sum(r["mql"] == "TRUE" for r in rows(emu)) == 40


def test_quota_429_is_rate_limited_and_redelivery_does_not_duplicate(emu, make):
    clock = FakeClock()
    connector = make(clock)
    connector.deliver([scored(lead(1))])
    emu.fail_next(1, 429, kind="write")
    batch = [scored(lead(1), points=65, revision=2), scored(lead(2))]
    with pytest.raises(RateLimited) as caught:
        connector.deliver(batch)
    assert caught.value.retry_after == 60  # Sheets sends no Retry-After; quotas refill per minute
    with pytest.raises(RateLimited):  # our own budget now waits out the window too
        connector.deliver(batch)
    clock.now += 60
    connector.deliver(batch)
    assert [(r["lead_id"], r["score"]) for r in rows(emu)] == [("100001", "65"), ("100002", "25")]


def test_burst_past_google_quota_is_rate_limited_then_resumes(emu, make):
    """Another writer used the account's quota: Google's real 429, then a clean resume."""
    clock = FakeClock()
    connector = make(clock)
    connector.deliver([scored(lead(1))])
    emu.set_quota(writes_per_minute=2, reads_per_minute=None)  # a new window, 2 writes left
    connector.deliver([scored(lead(2))])
    connector.deliver([scored(lead(3))])
    with pytest.raises(RateLimited):
        connector.deliver([scored(lead(3), points=70, revision=2), scored(lead(4))])
    assert [r.status for r in emu.requests(kind="write")][-1] == 429
    emu.reset_quota()  # Google's minute passes
    clock.now += 60  # and ours
    connector.deliver([scored(lead(3), points=70, revision=2), scored(lead(4))])
    assert [(r["lead_id"], r["score"]) for r in rows(emu)][2:] == [
        ("100003", "70"),
        ("100004", "25"),
    ]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(emu, make, status):
    connector = make()
    connector.ensure_ready()
    emu.fail_next(1, status)
    with pytest.raises(TransientError, match=str(status)):
        connector.deliver([scored(lead(1))])
    connector.deliver([scored(lead(1))])
    assert len(rows(emu)) == 1


@pytest.mark.parametrize(("status", "kind"), [(400, PermanentError), (403, AuthError)])
def test_refusals_map_to_their_kind(emu, make, status, kind):
    connector = make()
    connector.ensure_ready()
    emu.fail_next(1, status, kind="write")
    with pytest.raises(kind):
        connector.deliver([scored(lead(1))])


def test_lost_reply_after_append_is_not_appended_twice(emu, make):
    connector = make()
    connector.ensure_ready()
    emu.fail_next(1, 503, kind="write", after_apply=True)
    with pytest.raises(TransientError):
        connector.deliver([scored(lead(1)), scored(lead(2))])
    connector.deliver([scored(lead(1), points=90, revision=2), scored(lead(2))])
    assert [(r["lead_id"], r["score"]) for r in rows(emu)] == [("100001", "90"), ("100002", "25")]


def test_timed_out_append_that_landed_is_not_appended_twice(emu, make):
    """The reply never comes (client timeout) but the rows were written: no second row."""
    connector = make(timeout=(2.0, 0.5))
    connector.ensure_ready()
    emu.fail_next(1, 503, kind="write", after_apply=True, delay=1.5)
    with pytest.raises(TransientError, match="Timeout"):
        connector.deliver([scored(lead(1))])
    connector.deliver([scored(lead(1), points=66, revision=2)])
    assert [(r["lead_id"], r["score"]) for r in rows(emu)] == [("100001", "66")]


def test_crash_after_append_a_fresh_connector_finds_the_row(emu, make):
    """The daemon died after the append but before committing; a new process redelivers."""
    make().deliver([scored(lead(1)), scored(lead(2))])
    restarted = make()
    restarted.deliver([scored(lead(1)), scored(lead(2), points=70, revision=2)])
    assert [(r["lead_id"], r["score"]) for r in rows(emu)] == [("100001", "25"), ("100002", "70")]


def test_unshared_sheet_says_whom_to_share_with(emu, make):
    connector = make()
    emu.unshare(BOOK, ACCOUNT)
    with pytest.raises(AuthError) as caught:
        connector.ensure_ready()
    assert str(caught.value) == f"share the sheet {BOOK} with {ACCOUNT} as Editor"
    emu.share(BOOK, ACCOUNT)
    connector.ensure_ready()  # resumes by itself once shared


def test_sheet_unshared_mid_run_is_auth_error(emu, make):
    connector = make()
    connector.deliver([scored(lead(1))])
    emu.unshare(BOOK, ACCOUNT)
    with pytest.raises(AuthError, match=ACCOUNT):
        connector.deliver([scored(lead(2))])


def test_deleted_key_is_auth_error_naming_the_account(emu, make):
    connector = make()
    connector.ensure_ready()
    emu.delete_key(ACCOUNT)
    with pytest.raises(AuthError, match=f"key of {ACCOUNT}"):
        connector.deliver([scored(lead(1))])


def test_key_file_removed_at_run_time_is_auth_error(emu, key, make, tmp_path):
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    connector = make(credentials=str(path))
    path.unlink()
    with pytest.raises(AuthError, match="No such file or directory"):
        connector.ensure_ready()
    path.write_text(json.dumps(key))
    connector.ensure_ready()  # the key is back: resumes without a restart


def test_unknown_spreadsheet_is_auth_error(make):
    with pytest.raises(AuthError, match="not-there was not found"):
        make(spreadsheet="not-there").ensure_ready()


def test_worksheet_per_form(emu, make):
    connector = make(worksheet="{form_name}")
    connector.ensure_ready()
    connector.deliver(
        [
            scored(lead(1, "F1", email="a@x.io")),
            scored(lead(2, "F2", budget="9")),
            scored(lead(3, "F1", email="c@x.io")),
        ]
    )
    assert emu.worksheet_titles(BOOK) == ["Sheet1", "Form F1", "Form F2"]
    assert [r["lead_id"] for r in rows(emu, "Form F1")] == ["100001", "100003"]
    assert "budget" in emu.values(BOOK, "Form F2")[0]
    assert "budget" not in emu.values(BOOK, "Form F1")[0]


def test_worksheet_deleted_by_a_person_is_made_again(emu, make, key):
    connector = make()
    connector.deliver([scored(lead(1))])
    emu.delete_worksheet(BOOK, "Leads")
    with pytest.raises(TransientError):
        connector.deliver([scored(lead(2))])
    connector.deliver([scored(lead(2))])
    assert [r["lead_id"] for r in rows(emu)] == ["100002"]


def test_existing_worksheet_is_found_whatever_its_case(emu, make):
    emu.create_spreadsheet("lower", worksheets=["leads"], shared_with=[ACCOUNT])
    make(spreadsheet="lower").deliver([scored(lead(1))])
    assert emu.worksheet_titles("lower") == ["leads"]
    assert len(emu.values("lower", "leads")) == 2


def test_unreachable_api_is_transient(make):
    connector = make(api_url="http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(TransientError, match="could not reach Google Sheets"):
        connector.ensure_ready()


def test_header_without_lead_id_is_refused(emu, make):
    emu.create_spreadsheet("bad", worksheets=["Leads"], shared_with=[ACCOUNT])
    emu.set_cell("bad", "Leads", "A1", "Name")
    with pytest.raises(PermanentError, match="lead_id"):
        make(spreadsheet="bad").deliver([scored(lead(1))])


def test_pacing_holds_writes_under_the_quota(emu, make):
    """Past its per-minute budget the connector asks to come back later instead of a 429."""
    clock = FakeClock()
    connector = make(clock, writes_per_minute=6)  # a burst of 1, then one write every 10 s
    for _ in range(5):  # the first delivery creates the worksheet and header: three writes
        try:
            connector.deliver([scored(lead(1))])
            break
        except RateLimited as held_back:
            clock.now += held_back.retry_after
    assert len(rows(emu)) == 1
    with pytest.raises(RateLimited) as caught:
        connector.deliver([scored(lead(2))])
    assert 0 < caught.value.retry_after <= 60
    assert not [r for r in emu.requests() if r.status == 429]
    clock.now += caught.value.retry_after
    connector.deliver([scored(lead(2))])
    assert len(rows(emu)) == 2


def test_writes_past_the_burst_are_spaced_evenly(emu, make):
    """A sustained flow spends the quota over the minute, not in its first seconds."""
    clock = FakeClock()
    connector = make(clock, writes_per_minute=60)  # a burst of 10, then one write a second
    start = clock.now
    for n in range(1, 31):
        connector.deliver([scored(lead(n))])
    writes = [r for r in emu.requests(kind="write")]
    assert len(rows(emu)) == 30 and not [r for r in emu.requests() if r.status == 429]
    # Past the burst every write waited its turn: about one a second, never a minute's stall.
    assert 15 <= clock.now - start <= 25, clock.now - start
    assert len(writes) >= 30


def test_logs_carry_ids_and_counts_only(emu, make):
    with capture_logs() as events:
        make().deliver([scored(lead(1, email="secret.person@example.com", full_name="Ann Lee"))])
    text = json.dumps(events, default=str)
    assert events and "sheet.rows_appended" in text
    assert "secret.person" not in text and "Ann Lee" not in text


def test_settings_validation(key, tmp_path):
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    url = f"https://docs.google.com/spreadsheets/d/{BOOK}/edit#gid=0"
    settings = Settings(spreadsheet=url, credentials=str(path))
    assert settings.spreadsheet == BOOK
    assert key["private_key"][40:80] not in repr(
        Settings(spreadsheet=BOOK, credentials=json.dumps(key))
    )
    bad = {
        "worksheet": "{campaign}",
        "timezone": "Mars/Olympus",
        "credentials": str(tmp_path / "missing.json"),
        "colour": "red",
    }
    with pytest.raises(ValidationError) as caught:
        Settings(spreadsheet=BOOK, **bad)
    assert {e["loc"][0] for e in caught.value.errors()} == set(bad)
