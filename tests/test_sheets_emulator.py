"""The Sheets emulator behaves like the Sheets v4 API for real gspread + google-auth clients."""

from __future__ import annotations

import json
import subprocess
import sys

import gspread
import pytest
import requests
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.service_account import Credentials
from hypothesis import given
from hypothesis import strategies as st

from leadsync.emulators import sheets_a1 as a1
from leadsync.emulators.google_oauth import make_service_account_key
from leadsync.emulators.sheets import SheetsEmulator

GOOGLE = "https://sheets.googleapis.com"
BOOK = "book-1"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class EmulatorSession(AuthorizedSession):
    """gspread's session, sent to the emulator instead of Google."""

    def __init__(self, credentials, base: str):
        super().__init__(credentials)
        self.base = base

    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace(GOOGLE, self.base), *args, **kwargs)


def client_for(emu: SheetsEmulator, key: dict) -> gspread.Client:
    creds = Credentials.from_service_account_info(key, scopes=gspread.auth.DEFAULT_SCOPES)
    return gspread.Client(auth=creds, session=EmulatorSession(creds, emu.url))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock):
    with SheetsEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
def key(emu) -> dict:
    return emu.service_account()


@pytest.fixture
def book(emu, key) -> gspread.Spreadsheet:
    emu.create_spreadsheet(
        BOOK, worksheets=["Leads", "Sheet Two"], shared_with=[key["client_email"]]
    )
    return client_for(emu, key).open_by_key(BOOK)


def test_service_account_gets_token_and_reads_metadata(emu, book):
    """google-auth's JWT grant is verified and its token opens the spreadsheet."""
    assert [ws.title for ws in book.worksheets()] == ["Leads", "Sheet Two"]
    leads = book.worksheet("Leads")
    assert (leads.row_count, leads.col_count) == (1000, 26)
    assert emu.state.authority.issued == 1


def test_assertion_signed_by_unknown_key_is_refused(emu, key):
    """A key the emulator never registered gets Google's invalid_grant answer."""
    foreign, _ = make_service_account_key(emu.token_uri, key["client_email"])
    emu.create_spreadsheet(BOOK, shared_with=[key["client_email"]])
    with pytest.raises(RefreshError, match="Invalid JWT Signature"):
        client_for(emu, foreign).open_by_key(BOOK)


def test_deleted_key_stops_tokens_and_grants(emu, key, book):
    """After the key is deleted the old token is refused and no new one is issued."""
    emu.delete_key(key["client_email"])
    with pytest.raises(RefreshError, match="account not found"):
        book.worksheet("Leads").get("A1")


def test_requests_without_valid_bearer_get_401(emu, book):
    url = f"{emu.url}/v4/spreadsheets/{BOOK}"
    missing = requests.get(url, timeout=5)
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["error"]["status"] == "UNAUTHENTICATED"


def test_expired_token_is_refreshed_by_google_auth(emu, book):
    emu.expire_tokens()
    assert book.worksheet("Leads").get("A1") == [[]]
    assert emu.state.authority.issued == 2


def test_unshared_spreadsheet_is_permission_denied(emu, key, book):
    emu.unshare(BOOK, key["client_email"])
    with pytest.raises(gspread.exceptions.APIError) as caught:
        book.worksheet("Leads")
    assert caught.value.code == 403
    assert caught.value.error == {
        "code": 403,
        "message": "The caller does not have permission",
        "status": "PERMISSION_DENIED",
    }


def test_unknown_spreadsheet_is_not_found(emu, key):
    with pytest.raises(gspread.SpreadsheetNotFound):
        client_for(emu, key).open_by_key("missing")


def test_raw_keeps_text_and_user_entered_parses(emu, book):
    """RAW keeps "=IMPORTXML(...)" and "+0612" as text; USER_ENTERED makes formula, number."""
    ws = book.worksheet("Leads")
    ws.update([['=IMPORTXML("http://x","//a")', "+0612345678", "0034"]], "A1")
    ws.update([['=IMPORTXML("http://x","//a")', "+0612345678", "0034"]], "A2", raw=False)
    assert not emu.is_formula(BOOK, "Leads", "A1")
    assert emu.is_formula(BOOK, "Leads", "A2")
    assert emu.values(BOOK, "Leads")[0] == ['=IMPORTXML("http://x","//a")', "+0612345678", "0034"]
    assert emu.values(BOOK, "Leads")[1][1:] == ["612345678", "34"]


def test_a1_ranges_with_quoted_titles_and_open_ends(emu, book):
    ws = book.worksheet("Sheet Two")
    ws.update([["h1", "h2"], ["a", "b"], ["c", ""], ["e", "f"]], "A1")
    assert ws.get("1:1") == [["h1", "h2"]]
    assert ws.get("A2:A") == [["a"], ["c"], ["e"]]
    got = book.values_get("'Sheet Two'!A1:Z")
    assert got["range"] == "'Sheet Two'!A1:Z1000"
    assert got["values"][2] == ["c"]  # trailing empty cells are left out
    assert ws.get("B1:B", major_dimension="COLUMNS") == [["h2", "b", "", "f"]]


def test_append_inserts_rows_after_the_table(emu, book):
    ws = book.worksheet("Leads")
    ws.update([["lead_id"], ["1"], ["2"]], "A1")
    answer = ws.append_rows([["3"], ["4"]], insert_data_option="INSERT_ROWS")
    assert answer["tableRange"] == "Leads!A1:A3"
    assert answer["updates"]["updatedRange"] == "Leads!A4:A5"
    assert emu.grid_size(BOOK, "Leads") == (1002, 26)
    assert [r[0] for r in emu.values(BOOK, "Leads")] == ["lead_id", "1", "2", "3", "4"]


def test_append_to_a_cell_finds_the_table_in_its_column(emu, book):
    """Appending to A1 lands below the table at A1; to an empty column it lands at the top."""
    ws = book.worksheet("Leads")
    ws.update([["id", "name", "", "Status"], ["1", "a", "", "called"], ["2"]], "A1")
    answer = ws.append_rows([["3", "c"]], table_range="A1", insert_data_option="INSERT_ROWS")
    assert answer["tableRange"] == "Leads!A1:B3"
    assert answer["updates"]["updatedRange"] == "Leads!A4:B4"
    answer = ws.append_rows([["note"]], table_range="C1")
    assert answer["updates"]["updatedRange"] == "Leads!C1"


def test_grid_limits_like_the_real_api(emu, book):
    """A write starting outside the grid fails; one starting inside grows the grid."""
    ws = book.add_worksheet("Small", rows=3, cols=2)
    with pytest.raises(gspread.exceptions.APIError, match=r"exceeds grid limits. Max rows: 3"):
        ws.update([["x"]], "C1")
    with pytest.raises(gspread.exceptions.APIError, match="tried writing to column"):
        ws.update([["a", "b", "c"]], "A1:B1")
    ws.update([["a", "b", "c", "d"]], "A3")
    ws.append_rows([["1", "2", "3", "4", "5"]])
    assert emu.grid_size(BOOK, "Small") == (4, 5)


def test_cell_over_50000_characters_is_refused(book):
    with pytest.raises(gspread.exceptions.APIError, match="50000 characters"):
        book.worksheet("Leads").update([["x" * 50_001]], "A1")


def test_spreadsheet_batch_update_is_all_or_nothing(emu, book):
    body = {
        "requests": [
            {"addSheet": {"properties": {"title": "New"}}},
            {"appendDimension": {"sheetId": 424242, "dimension": "ROWS", "length": 1}},
        ]
    }
    with pytest.raises(gspread.exceptions.APIError, match=r"requests\[1\]"):
        book.batch_update(body)
    assert emu.worksheet_titles(BOOK) == ["Leads", "Sheet Two"]


def test_dimension_and_property_requests(emu, book):
    ws = book.worksheet("Leads")
    ws.update([["a", "b"], ["1", "2"]], "A1")
    ws.insert_cols([["new", "x"]], col=2)  # insertDimension + values.append
    ws.add_cols(3)  # updateSheetProperties
    book.batch_update(
        {"requests": [{"appendDimension": {"sheetId": ws.id, "dimension": "ROWS", "length": 5}}]}
    )
    assert emu.values(BOOK, "Leads") == [["a", "new", "b"], ["1", "x", "2"]]
    assert emu.grid_size(BOOK, "Leads") == (1005, 30)


def test_sort_range_keeps_frozen_header_and_blanks_last(emu, book):
    ws = book.worksheet("Leads")
    ws.update([["name", "score"], ["b", 5], ["c", ""], ["a", 40]], "A1")
    ws.freeze(rows=1)
    ws.sort((2, "des"))
    assert emu.values(BOOK, "Leads") == [["name", "score"], ["a", "40"], ["b", "5"], ["c"]]
    emu.sort_rows(BOOK, "Leads", "name")
    assert [r[0] for r in emu.values(BOOK, "Leads")] == ["name", "a", "b", "c"]


def test_person_edits(emu, book):
    ws = book.worksheet("Leads")
    ws.update([[f"h{i}" for i in range(26)]], "A1")
    assert emu.add_column(BOOK, "Leads", "Status") == "AA"
    emu.set_cell(BOOK, "Leads", "AA2", "called")
    assert emu.grid_size(BOOK, "Leads") == (1000, 27)
    assert ws.get("AA1:AA2") == [["Status"], ["called"]]


def test_write_quota_gives_google_429_until_the_window_passes(emu, clock, book):
    ws = book.worksheet("Leads")
    emu.set_quota(writes_per_minute=2, reads_per_minute=None)
    ws.update([["1"]], "A1")
    ws.update([["2"]], "A2")
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.update([["3"]], "A3")
    error = caught.value.error
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "Write requests per minute per user" in error["message"]
    assert error["details"][0]["metadata"]["quota_limit_value"] == "2"
    assert ws.get("A1") == [["1"]]  # reads have their own quota
    clock.now += 60.0
    ws.update([["3"]], "A3")
    assert [r[0] for r in emu.values(BOOK, "Leads")] == ["1", "2", "3"]


def test_injected_faults_before_and_after_apply(emu, book):
    ws = book.worksheet("Leads")
    emu.fail_next(2, 503, kind="write")
    for _ in range(2):
        with pytest.raises(gspread.exceptions.APIError, match="503"):
            ws.append_row(["lost"])
    assert ws.get("A1:A2") == [[]]  # reads were not affected, nothing was written
    emu.fail_next(1, 500, after_apply=True)
    with pytest.raises(gspread.exceptions.APIError, match="500"):
        ws.append_row(["applied"])
    assert emu.values(BOOK, "Leads") == [["applied"]]
    emu.fail_next(1, 502)
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.get("A1")
    assert caught.value.response.status_code == 502
    assert "<html" in caught.value.response.text.lower()


def test_counters_name_each_request(emu, book):
    emu.reset_counters()
    ws = book.worksheet("Leads")
    ws.append_rows([["1"], ["2"]])
    ws.batch_update([{"range": "A1", "values": [["x"]]}, {"range": "A2", "values": [["y"]]}])
    assert [r.op for r in emu.requests()] == [
        "spreadsheets.get",
        "values.append",
        "values.batchUpdate",
    ]
    assert (emu.reads, emu.writes) == (1, 2)


def test_http_controls_for_subprocesses(emu):
    base = f"{emu.url}/_emulator"
    key = requests.post(f"{base}/service_accounts", json={}, timeout=5).json()
    made = requests.post(
        f"{base}/spreadsheets",
        json={"id": "ctl", "worksheets": ["Leads"], "shared_with": [key["client_email"]]},
        timeout=5,
    )
    assert made.json() == {"id": "ctl"}
    client_for(emu, key).open_by_key("ctl").worksheet("Leads").update([["lead_id"]], "A1")
    edit = {"action": "add_column", "name": "Status"}
    assert requests.post(
        f"{base}/spreadsheets/ctl/edits", params={"worksheet": "Leads"}, json=edit, timeout=5
    ).json() == {"column": "B"}
    seen = requests.get(f"{base}/spreadsheets/ctl/values", params={"worksheet": "Leads"}, timeout=5)
    assert seen.json()["values"] == [["lead_id", "Status"]]
    stats = requests.get(f"{base}/stats", timeout=5).json()
    assert stats["writes"] == 1
    page = requests.get(f"{base}/spreadsheets/ctl", timeout=5).text
    assert "<td>lead_id</td><td>Status</td>" in page
    missing = requests.get(f"{base}/spreadsheets/nope/values", params={"worksheet": "x"}, timeout=5)
    assert missing.status_code == 404


def test_standalone_process_serves_gspread(tmp_path):
    key_file = tmp_path / "key.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leadsync.emulators.sheets",
            "--port",
            "0",
            "--spreadsheet",
            "demo",
            "--key-file",
            str(key_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.rsplit(" ", 1)[1].strip()
        key = json.loads(key_file.read_text())
        creds = Credentials.from_service_account_info(key, scopes=gspread.auth.DEFAULT_SCOPES)
        client = gspread.Client(auth=creds, session=EmulatorSession(creds, url))
        assert client.open_by_key("demo").sheet1.title == "Sheet1"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


@given(
    st.integers(0, 5000),
    st.integers(1, 50),
    st.integers(0, 700),
    st.integers(1, 30),
    st.text(min_size=1, max_size=12).filter(lambda t: t.strip() == t and "!" not in t),
)
def test_a1_format_and_parse_round_trip(row, height, col, width, title):
    text = a1.format_range(title, row, row + height, col, col + width)
    grid = a1.parse(text)
    assert (grid.sheet, grid.start_row, grid.start_col) == (title, row, col)
    assert (grid.end_row, grid.end_col) == (row + height, col + width)
