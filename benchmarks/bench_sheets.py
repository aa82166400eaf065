"""Sheets writes for a 1,000-lead burst under the real quota of 60 write requests a minute.

Both sides run real gspread + google-auth over HTTP against the Sheets emulator
with Google's per-user quotas (60 writes and 60 reads a minute), each as its
own service account on its own spreadsheet, in the same run.

- leadsync: the Google Sheets connector, handed the burst in batches of
  `DELIVERY_BATCH_SIZE` as the delivery runner does. Every write request it
  makes counts (worksheet creation, header, appends).
- baseline: the script one writes first, `worksheet.append_row()` per lead,
  catching nothing. It is measured for real: it sends all its requests, and
  every one past the quota comes back 429 and its row is lost. Its time to the
  last row is extrapolated, not waited for: a script that retried perfectly
  could send request k no earlier than (k // 60) minutes in, so its last row
  lands after at least 16 full quota windows plus one request's latency.

Run: `python benchmarks/bench_sheets.py` (or `--quick`, a 300-lead burst).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

import gspread

from connectors.google_sheets import Settings, build
from connectors.sheets_client import open_client
from leadsync.constants import DELIVERY_BATCH_SIZE, SHEETS_WRITES_PER_MINUTE
from leadsync.emulators.sheets import SheetsEmulator
from leadsync.models import Lead, Reason, Score, ScoredLead

QUOTA_WINDOW = 60.0
TARGET_ROWS_PER_WRITE = 40


def burst(count: int) -> list[ScoredLead]:
    """`count` leads of one form with the usual questions, scored."""
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    leads = []
    for n in range(count):
        lead = Lead(
            id=f"9{n:014d}",
            created_time=start + timedelta(seconds=n),
            page_id="111",
            form_id="222",
            form_name="Demo request",
            ad_id="333",
            campaign_name="Autumn",
            platform="fb",
            answers={
                "full_name": (f"Person {n}",),
                "email": (f"person{n}@example.com",),
                "phone_number": (f"+0031612{n:06d}",),
                "job_title": ("VP Sales" if n % 3 else "Analyst",),
                "company_size": ("201-500",),
            },
        )
        score = Score(35 if n % 3 else 5, False, (Reason("VP title", 20), Reason("Demo", 15)))
        leads.append(ScoredLead(lead, score))
    return leads


def measure_leadsync(emu: SheetsEmulator, leads: list[ScoredLead]) -> dict[str, float]:
    key = emu.service_account("leadsync@bench-project.iam.gserviceaccount.com")
    emu.create_spreadsheet("ours", shared_with=[key["client_email"]])
    settings = Settings(spreadsheet="ours", credentials=json.dumps(key), api_url=emu.url)
    connector = build("bench", settings)
    started = time.perf_counter()
    connector.ensure_ready()
    for first in range(0, len(leads), DELIVERY_BATCH_SIZE):
        connector.deliver(leads[first : first + DELIVERY_BATCH_SIZE])
    elapsed = time.perf_counter() - started
    landed = len(emu.values("ours", "Leads")) - 1
    assert landed == len(leads), f"leadsync wrote {landed} of {len(leads)} rows"
    mine = [r for r in emu.requests() if r.spreadsheet_id == "ours"]
    writes = sum(r.kind == "write" for r in mine)
    return {
        "writes": writes,
        "rows_per_write": landed / writes,
        "rejected": sum(r.status == 429 for r in mine),
        "seconds": elapsed,
    }


def measure_baseline(emu: SheetsEmulator, leads: list[ScoredLead]) -> dict[str, float]:
    key = emu.service_account("naive@bench-project.iam.gserviceaccount.com")
    emu.create_spreadsheet("naive", worksheets=["Leads"], shared_with=[key["client_email"]])
    worksheet = open_client(key, emu.url).open_by_key("naive").worksheet("Leads")
    rejected = 0
    started = time.perf_counter()
    for item in leads:
        lead = item.lead
        row = [lead.id, lead.created_time.isoformat(), *map(lead.answer, lead.answers)]
        row.append(item.score.points)
        try:
            worksheet.append_row(row)
        except gspread.exceptions.APIError as exc:
            if exc.response.status_code != 429:
                raise
            rejected += 1  # the naive script has no retry: this row is lost
    elapsed = time.perf_counter() - started
    landed = len(emu.values("naive", "Leads"))
    sent = len([r for r in emu.requests("values.append") if r.spreadsheet_id == "naive"])
    per_request = elapsed / sent
    windows = (len(leads) - 1) // SHEETS_WRITES_PER_MINUTE
    return {
        "writes": sent,
        "rows_per_write": landed / (sent - rejected),
        "rejected": rejected,
        "seconds": windows * QUOTA_WINDOW + per_request,
    }


def run(quick: bool = False) -> list[dict]:
    """The burst through the connector and through one append per lead, same emulator."""
    count = 300 if quick else 1000
    leads = burst(count)
    with SheetsEmulator(writes_per_minute=SHEETS_WRITES_PER_MINUTE, reads_per_minute=60) as emu:
        ours = measure_leadsync(emu, leads)
        naive = measure_baseline(emu, leads)
    burst_name = f"{count:,}-lead burst, quota {SHEETS_WRITES_PER_MINUTE} writes/min"
    return [
        {
            "figure": f"Sheets rows per write request, {burst_name}",
            "leadsync": round(ours["rows_per_write"], 1),
            "baseline": round(naive["rows_per_write"], 1),
            "unit": "rows/request",
            "target": f">= {TARGET_ROWS_PER_WRITE}",
        },
        {
            "figure": f"Sheets write requests, {burst_name}",
            "leadsync": ours["writes"],
            "baseline": naive["writes"],
            "unit": "requests",
            "target": f"<= {count // TARGET_ROWS_PER_WRITE}",
        },
        {
            "figure": f"Sheets 429s left unhandled (rows lost without a retry), {burst_name}",
            "leadsync": ours["rejected"],
            "baseline": naive["rejected"],
            "unit": "responses",
            "target": "0",
        },
        {
            "figure": f"time to last row, {burst_name} (baseline extrapolated at the quota)",
            "leadsync": round(ours["seconds"], 2),
            "baseline": round(naive["seconds"], 1),
            "unit": "s",
            "target": f"< {QUOTA_WINDOW:.0f}",
        },
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(
            f"{row['figure']}: leadsync {row['leadsync']} {row['unit']}, "
            f"baseline {row['baseline']} {row['unit']}, target {row['target']}"
        )
