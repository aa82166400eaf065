"""The status page (`GET /`) as the person on call sees it, in a real headless chromium.

A daemon runs in-process against the Graph and Sheets emulators with two
destinations: a shared sheet that takes every lead, and an "archive" sheet whose
header lost its lead_id column, so each delivery there is dead-lettered. One form's
poll fails and the Facebook token expires; the browser then reads the banner,
leads, queues, dead letter, forms and services off the rendered page, and saves a
full-page screenshot to test-artifacts/status-page.png.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from leadsync.abc import ExpiredStage, LeadOverview
from leadsync.health import HealthReport
from leadsync.models import Checkpoint, DeadLetter, DestinationStats, Form, OutboxItem
from leadsync.server.status_page import DEAD_LETTERS_SHOWN, REFRESH_SECONDS, relative, render
from leadsync.status import StatusSnapshot
from tests.browser import ARTIFACTS, chromium_page, png_size, require_chromium
from tests.daemon_harness import (
    DaemonThread,
    daemon_settings,
    sheet_rows,
    sheets_destination,
    wait_until,
)

QUESTIONS = ["full_name", "email", "phone_number", "job_title", "company_size", "interest"]
SCREENSHOT = ARTIFACTS / "status-page.png"
# Form names are typed by whoever runs the ads: the page must show them, never run them.
HOSTILE_NAME = "Spring promo <script>document.title='owned'</script>"

HOT = {  # 20 (VP title) + 15 (size) + 35 (demo request) = 70: an MQL
    "full_name": "Ada Quill",
    "email": "ada.quill@acme-hot.example",
    "phone_number": "+441234500001",
    "job_title": "VP Sales",
    "company_size": "1,000+",
    "interest": "Book a demo",
}
WARM = {
    "full_name": "Bo Fennick",
    "email": "bo.fennick@acme-warm.example",
    "phone_number": "+441234500002",
    "job_title": "Director",
    "company_size": "1,000+",
    "interest": "Case studies",
}


@pytest.fixture
def chromium() -> str:
    """The browser, looked up before any daemon starts (skip, or fail on CI, without one)."""
    return require_chromium()


@pytest.fixture
def troubled_daemon(graph, sheets, tmp_path):
    """A daemon that has delivered two leads, dead-lettered them once, and lost its token."""
    broken_form = graph.add_form("111", HOSTILE_NAME, QUESTIONS)
    form = graph.add_form("111", "Demo request", QUESTIONS)  # newest: polled first
    graph.inject_fault("http500", times=20, path=f"/{broken_form}/leads")
    sales = sheets_destination(sheets, tmp_path, name="sales-sheet")
    # The same service account (a second key would revoke the first) on a second spreadsheet.
    account = json.loads(Path(sales["credentials"]).read_text())["client_email"]
    sheets.create_spreadsheet("archive", "Archive", ["Leads"], shared_with=[account])
    sheets.set_cell("archive", "Leads", "A1", "Name")  # a person retyped the header
    destinations = [sales, {**sales, "name": "archive", "spreadsheet": "archive"}]
    settings = daemon_settings(
        graph, f"sqlite:///{tmp_path / 'l.db'}", pages=["111"], destinations=destinations
    )
    with DaemonThread(settings) as running:
        store = running.store
        wait_until(lambda: _polled(store, form, broken_form), 15, "the first poll round")
        graph.set_webhook_target(f"{running.url}/webhook")
        ids = [graph.create_lead(form, HOT), graph.create_lead(form, WARM)]
        graph.send_webhook(ids).result(timeout=15)
        wait_until(lambda: _settled(sheets, store, ids), 15, "rows in sales, dead in archive")
        graph.expire_token()
        graph.send_webhook([graph.create_lead(form, {**HOT, "email": "late@x.example"})])
        wait_until(lambda: _facebook_failing(store), 15, "the token failure")
        yield running, form, broken_form, ids


@pytest.mark.browser
def test_status_page_in_chromium_shows_what_an_operator_needs(
    chromium, troubled_daemon, graph, sheets
):
    running, form, broken_form, (hot, warm) = troubled_daemon
    rows = {r["lead_id"]: r for r in sheet_rows(sheets)}
    with chromium_page(chromium) as page:
        page.goto(f"{running.url}/")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        refresh = page.locator("meta[http-equiv=refresh]").get_attribute("content")
        assert refresh == str(REFRESH_SECONDS)
        page.get_by_role("link", name="pause").click()  # read at leisure, without reloads
        page.wait_for_url("**/?refresh=off")
        assert page.locator("meta[http-equiv=refresh]").count() == 0
        html = page.content()

        banner = page.locator("#health").inner_text()
        assert banner.startswith("Unhealthy")
        assert "facebook_token_invalid" in banner
        assert page.title() == "leadsync: UNHEALTHY"

        for lead_id in (hot, warm):
            cells = _row(page, "leads", lead_id)
            assert cells[3] == rows[lead_id]["score"]  # the score the sheet got
            assert cells[4] == ("MQL" if rows[lead_id]["mql"] == "TRUE" else "no")
            assert cells[2] == "Demo request"  # the form by name, its id in the tooltip
            assert "sales-sheet: delivered" in cells[5] and "archive: dead" in cells[5]
        assert _row(page, "leads", hot)[3:5] == ["70", "MQL"]
        assert _row(page, "leads", warm)[4] == "no"

        assert _row(page, "queues", "sales-sheet")[1:4:2] == ["0", "2"]  # pending, delivered
        archive = _row(page, "queues", "archive")
        assert archive[4] == "2" and "lead_id column" in archive[5]  # dead, and why
        page.locator("#queues a[href='#dead-letters']").click()
        expect(page.locator("#dead-letters")).to_be_in_viewport()

        dead = {lead_id: _row(page, "dead-letters", lead_id) for lead_id in (hot, warm)}
        assert all(r[1] == "archive" and "lead_id column" in r[4] for r in dead.values())
        hint = page.locator("#replay-hint").inner_text()
        assert "leadsync replay --destination archive" in hint

        assert re.fullmatch(r"just now|\d+ (s|min) ago", _row(page, "forms", form)[4])
        broken = _row(page, "forms", broken_form)
        assert broken[1] == HOSTILE_NAME and "HTTP 500" in broken[6]  # shown as text, not run
        facebook = _row(page, "services", "facebook")
        assert facebook[1] == "failing"

    # Ids, scores and states only: no answers, and no secret, ever reach the page.
    for personal in (*HOT.values(), *WARM.values(), "late@x.example"):
        assert personal not in html
    assert graph.access_token not in html and graph.app_secret not in html
    width, height = png_size(SCREENSHOT)
    assert width == 1280 and height > 900  # the whole page, taller than one screen
    assert SCREENSHOT.stat().st_size > 30_000  # text and tables, not a blank page


def _row(page, table: str, key: str) -> list[str]:
    """The visible text of each cell in the row of `table` that mentions `key`."""
    row = page.locator(f"#{table} tr", has_text=key)
    assert row.count() == 1, f"expected one row for {key} in #{table}, got {row.count()}"
    return [cell.strip() for cell in row.locator("td").all_inner_texts()]


def _polled(store, form: str, broken_form: str) -> bool:
    checkpoints = {c.form_id: c for c in store.checkpoints()}
    done = checkpoints.get(form)
    failed = checkpoints.get(broken_form)
    return bool(done and done.polled_at and failed and failed.last_error)


def _settled(sheets, store, ids: list[str]) -> bool:
    landed = {r["lead_id"] for r in sheet_rows(sheets) if r.get("score")}
    dead = {d.item.lead_id for d in store.dead_letters() if d.item.destination == "archive"}
    return landed >= set(ids) and dead >= set(ids)


def _facebook_failing(store) -> bool:
    return any(s.service == "facebook" and not s.ok for s in store.statuses())


# -- the same page rendered without a browser: states the daemon above does not reach --------
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _snapshot(dead: int = 0, leads: int = 0) -> StatusSnapshot:
    item = OutboxItem(1, "lead-1", "crm", 2, created_at=NOW)
    return StatusSnapshot(
        destinations=[DestinationStats("crm", 0, None, dead, 5)] if dead or leads else [],
        dead_letters=[
            DeadLetter(replace(item, id=n, lead_id=f"lead-{n}"), NOW - timedelta(minutes=n), "boom")
            for n in range(dead)
        ],
        forms=[],
        checkpoints={},
        services=[],
        recent=[LeadOverview(f"lead-{n}", NOW, "form-1", None, None) for n in range(leads)],
        leads=leads,
    )


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (timedelta(seconds=2), "just now"),
        (timedelta(seconds=42), "42 s ago"),
        (timedelta(minutes=5, seconds=59), "5 min ago"),
        (timedelta(hours=3), "3 h ago"),
        (timedelta(days=2, hours=23), "2 d ago"),
        (-timedelta(minutes=2), "in 2 min"),  # a retry scheduled for later
    ],
)
def test_relative_times_read_in_the_largest_whole_unit(ago, text):
    assert relative(NOW - ago, NOW) == text


def test_healthy_page_is_green_and_still_points_at_dead_letters_left_behind():
    html = render(_snapshot(dead=1), HealthReport(True), NOW)
    assert '<div id="health" class="ok"><strong>Healthy</strong>' in html
    assert "1 dead-lettered delivery waits for a replay" in html
    assert "leadsync replay --destination crm" in html


def test_dead_letter_shows_the_newest_fifty_and_counts_the_rest():
    html = render(_snapshot(dead=DEAD_LETTERS_SHOWN + 7), HealthReport(True), NOW)
    shown = re.findall(r'<span class="id">(lead-\d+)</span>', html.split('id="dead-letters"')[1])
    assert shown[0] == "lead-0" and len(set(shown)) == DEAD_LETTERS_SHOWN
    assert "7 older ones are not shown" in html


def test_a_fresh_daemon_says_what_is_missing_instead_of_empty_tables():
    html = render(_snapshot(), HealthReport(False, ["polling_stalled: last poll at x"]), NOW)
    for placeholder in ("no destinations", "no forms discovered yet", "no leads yet", "empty"):
        assert placeholder in html
    assert "<code>polling_stalled</code> last poll at x" in html


def test_unscored_leads_say_so_and_a_paused_page_does_not_reload():
    html = render(_snapshot(leads=1), HealthReport(True), NOW, refresh=False)
    assert "not scored" in html and "not routed yet" in html
    assert 'http-equiv="refresh"' not in html and "auto-refresh paused" in html


def test_text_from_facebook_and_errors_is_shown_escaped_never_as_markup():
    """A form name or an error message holding markup reaches the page as text."""
    snap = replace(
        _snapshot(leads=1),
        forms=[Form("form-1", "111", HOSTILE_NAME)],
        checkpoints={"form-1": Checkpoint("form-1", None, NOW, "<img src=x onerror=alert(1)>")},
    )
    html = render(snap, HealthReport(False, ["graph_error: <b>bold</b>"]), NOW)
    assert "<script>" not in html and "<img" not in html and "<b>bold" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "Spring promo &lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_expired_stages_are_listed_with_why_they_were_not_sent():
    snap = replace(_snapshot(), expired=[ExpiredStage("lead-9", "meta", "won")])
    html = render(snap, HealthReport(True), NOW)
    table = html.split('id="expired"')[1].split("</table>")[0]
    assert "lead-9" in table and "meta" in table and "won" in table
    assert "1 stage reached more than 7 days before" in html
    assert 'id="expired"' in render(_snapshot(), HealthReport(True), NOW)  # "none", still there


def test_expired_stages_show_the_first_fifty_and_count_all():
    many = [ExpiredStage(f"lead-{n}", "meta", "sql") for n in range(DEAD_LETTERS_SHOWN + 3)]
    html = render(replace(_snapshot(), expired=many), HealthReport(True), NOW)
    table = html.split('id="expired"')[1].split("</table>")[0]
    assert table.count("<tr>") == DEAD_LETTERS_SHOWN + 1  # the header row, then fifty
    assert f"{DEAD_LETTERS_SHOWN + 3} stages reached" in html
