"""Speed to lead: webhook POST to row in the sheet, and Graph calls per webhook lead.

`leadsync run` runs as its own process with one Google Sheets destination;
the Graph and Sheets emulators run in this process, the Sheets emulator with
Google's real per-user quota (60 writes and 60 reads a minute). No page is
polled, so every row comes by the webhook path.

- Latency: 300 leads, one webhook each at a steady 50 a second. For each lead
  the time from just before its POST to the first moment its lead_id is in
  the emulated sheet, read in-process every 20 ms (so a figure may be up to
  20 ms late). p50 and p99 over the leads.
- Graph calls: a burst of 1,000 webhook leads sent by the Graph emulator's own
  webhook sender (32 at once, Meta's retries), then every Graph request the
  emulator served until all 1,000 are stored, divided by 1,000.
- Baseline: the first script one writes (`baselines.naive-flow`, its own
  process and service account): per webhook, one Graph GET and one gspread
  append_row. Measured on 50 leads at the same 50 a second, since past 60 rows
  a minute the quota refuses its appends and the rows are lost.

Run: `python -m benchmarks.bench_latency` (or `--quick`: 100 leads, burst 300, baseline 20).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from benchmarks import processes
from benchmarks.webhook_load import percentile
from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.sheets import SheetsEmulator

RATE = 50.0  # webhooks a second in the latency run
POLL_SECONDS = 0.02
DEADLINE = 180.0  # seconds to wait for every row; past it the missing leads count as lost
TARGET_P50, TARGET_P99 = 1.0, 3.0
TARGET_GRAPH_CALLS = 1 / 20  # DESIGN: Graph batch requests of 50


def create_leads(graph: GraphEmulator, form_id: str, count: int) -> list[str]:
    return [
        graph.create_lead(
            form_id,
            {"full_name": f"Person {n}", "email": f"person{n}@example.com", "job_title": "VP"},
            created_time=processes.before_first_poll(),
        )
        for n in range(count)
    ]


def send_steadily(url: str, graph: GraphEmulator, lead_ids: Sequence[str], sent: dict) -> None:
    """One signed webhook per lead at RATE a second; records when each POST started."""
    with requests.Session() as session:
        started = time.perf_counter()
        for number, lead_id in enumerate(lead_ids):
            pause = started + number / RATE - time.perf_counter()
            if pause > 0:
                time.sleep(pause)  # pacing the load, not waiting for a result
            body, signature = graph.webhook_body([lead_id])
            sent[lead_id] = time.perf_counter()
            headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
            session.post(url, data=body, headers=headers, timeout=30).raise_for_status()


def rows_seen(sheets: SheetsEmulator, spreadsheet: str, lead_ids: Sequence[str]) -> dict:
    """Polls the sheet until every lead has a row (or DEADLINE); first-seen time per lead."""
    wanted, seen = set(lead_ids), {}
    deadline = time.perf_counter() + DEADLINE
    while len(seen) < len(wanted) and time.perf_counter() < deadline:
        now = time.perf_counter()
        for row in sheets.values(spreadsheet, "Leads"):
            if row and row[0] in wanted and row[0] not in seen:
                seen[row[0]] = now
        time.sleep(POLL_SECONDS)
    return seen


def latencies(url: str, graph, sheets, spreadsheet: str, lead_ids: Sequence[str]):
    """Seconds from POST to row for each lead that landed, and how many never did."""
    sent: dict[str, float] = {}
    sender = threading.Thread(target=send_steadily, args=(url, graph, lead_ids, sent))
    sender.start()
    seen = rows_seen(sheets, spreadsheet, lead_ids)
    sender.join()
    return [seen[i] - sent[i] for i in lead_ids if i in seen], len(lead_ids) - len(seen)


def stored_leads(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM leads").fetchone()[0]


def graph_calls_for_burst(url: str, graph: GraphEmulator, db: Path, lead_ids: list[str]) -> float:
    """Graph requests served from the burst's first webhook until all of it is stored, per lead."""
    before_calls, before_leads = graph.call_count(), stored_leads(db)
    graph.set_webhook_target(url)
    posts = graph.send_webhook(lead_ids, concurrency=32).result(timeout=DEADLINE)
    if not all(post.delivered for post in posts):
        raise RuntimeError("leadsync refused part of the burst")
    deadline = time.perf_counter() + DEADLINE
    while stored_leads(db) < before_leads + len(lead_ids):
        if time.perf_counter() > deadline:
            raise RuntimeError("the burst was not stored in time")
        time.sleep(POLL_SECONDS)
    return (graph.call_count() - before_calls) / len(lead_ids)


def measure_leadsync(graph, sheets, folder: Path, steady: list[str], burst: list[str]) -> dict:
    sheet = processes.sheets_destination(sheets, folder, "sales")
    port, db = processes.free_port(), folder / "leadsync.db"
    config = processes.leadsync_config(
        folder / "leadsync.toml", graph, f"sqlite:///{db}", port, sheet=sheet
    )
    with processes.leadsync_run(config, port, folder / "leadsync.log") as daemon:
        url = daemon.url + "/webhook"
        seconds, lost = latencies(url, graph, sheets, "sales", steady)
        made = [r for r in sheets.requests() if r.spreadsheet_id == "sales"]
        calls = graph_calls_for_burst(url, graph, db, burst)
    sheet_requests = {kind: sum(r.kind == kind for r in made) for kind in ("read", "write")}
    sheet_requests["429"] = sum(r.status == 429 for r in made)
    return {"seconds": seconds, "lost": lost, "graph_calls": calls, "sheets": sheet_requests}


def measure_naive(graph, sheets, folder: Path, lead_ids: list[str]) -> dict:
    sheet = processes.sheets_destination(sheets, folder, "naive")
    port = processes.free_port()
    options = {"graph_url": graph.url, "token": graph.access_token, "sheets_url": sheets.url}
    options |= {"key_file": sheet["credentials"], "spreadsheet": "naive"}
    log = folder / "naive.log"
    with processes.baseline("naive-flow", port, log, graph.app_secret, **options) as naive:
        before = graph.call_count()
        seconds, lost = latencies(naive.url + "/webhook", graph, sheets, "naive", lead_ids)
        calls = (graph.call_count() - before) / len(lead_ids)
    return {"seconds": seconds, "lost": lost, "graph_calls": calls}


def run(quick: bool = False) -> list[dict]:
    """Latency and Graph calls for leadsync, then for the naive script, on the same emulators."""
    steady_count, burst_count, naive_count = (100, 300, 20) if quick else (300, 1_000, 50)
    with (
        tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp,
        GraphEmulator() as graph,
        SheetsEmulator() as sheets,
    ):
        form_id = graph.add_form("111", "Latency benchmark", ["full_name", "email", "job_title"])
        steady = create_leads(graph, form_id, steady_count)
        burst = create_leads(graph, form_id, burst_count)
        ours = measure_leadsync(graph, sheets, Path(tmp), steady, burst)
        naive = measure_naive(graph, sheets, Path(tmp), create_leads(graph, form_id, naive_count))
    return rows(ours, naive, steady_count, burst_count, naive_count)


def rows(ours: dict, naive: dict, steady: int, burst: int, naive_count: int) -> list[dict]:
    load = f"{steady} leads at {RATE:.0f}/s, real Sheets quota"
    note = f"baseline: naive script on {naive_count} leads at {RATE:.0f}/s (stays within quota)"
    if ours["lost"] or naive["lost"]:
        note += f"; rows missing after {DEADLINE:.0f} s: leadsync {ours['lost']}, "
        note += f"baseline {naive['lost']}"
    made = ours["sheets"]
    sheets_note = (
        f"leadsync's Sheets requests for the {steady} leads: {made['write']} writes, "
        f"{made['read']} reads, {made['429']} answered 429 (quota: 60 each a minute)"
    )
    figures = []
    for name, q, limit in (("p50", 50, TARGET_P50), ("p99", 99, TARGET_P99)):
        figures.append(
            {
                "figure": f"webhook -> sheet row {name}, {load}",
                "leadsync": round(percentile(ours["seconds"], q), 3),
                "baseline": round(percentile(naive["seconds"], q), 3),
                "unit": "s",
                "target": f"< {limit:.0f} s",
                "below": limit,
                "note": note if name == "p50" else sheets_note,
            }
        )
    figures.append(
        {
            "figure": f"Graph calls per webhook lead, {burst:,}-lead burst",
            "leadsync": round(ours["graph_calls"], 4),
            "baseline": round(naive["graph_calls"], 2),
            "unit": "calls/lead",
            "target": "<= 1/20",
            "max": TARGET_GRAPH_CALLS,
        }
    )
    figures.append(
        {
            "figure": f"webhook leads with no sheet row after {DEADLINE:.0f} s",
            "leadsync": ours["lost"],
            "baseline": naive["lost"],
            "unit": "leads",
            "target": "0",
            "max": 0,
        }
    )
    return figures


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['figure']}: leadsync {row['leadsync']}, baseline {row['baseline']} "
              f"{row['unit']}, target {row['target']}")  # fmt: skip
