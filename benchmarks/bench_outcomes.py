"""Sheets outcome rounds: read requests per round stay constant as the sheet grows.

The Sheets outcome reader (`leadsync/outcomes/sheets.py`) reads a sales sheet
every round to find the statuses people typed. Its cost in Google's read quota
(60 reads a minute per user, shared with the connector) must not grow with the
sheet: a round asks for the header and the lead_id, status and value columns of
every worksheet in one `values.batchGet`. Here a sheet of 100 rows and one of
10,000 rows (2,000 with --quick) are read by the real reader on gspread over
HTTP against the Sheets emulator, with a real SQLite store holding the leads.
Each size gets a first round (which finds the columns), then a person types a
status into 1% of the rows and a second round is measured: read requests counted
at the emulator, wall time, and the reader's peak Python heap during the round
(tracemalloc). There is no baseline process: the figure is the growth, 10,000
rows against 100.

Run: `python -m benchmarks.bench_outcomes [--quick]`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from connectors.google_sheets import Settings
from connectors.sheets_client import MinuteBudget, open_client
from leadsync.emulators.sheets import SheetsEmulator
from leadsync.models import Lead, utcnow
from leadsync.outcomes.sheets import SheetsOutcomes
from leadsync.store import open_store

SMALL = 100
# Stores live beside the benchmarks, not in /tmp (a RAM disk there would flatter fsync).
HERE = Path(__file__).resolve().parent


def fill(emu: SheetsEmulator, key: dict, book: str, rows: int) -> list[str]:
    """A sales sheet of `rows` leads with a Status column, as the connector and a person leave it
    (appended over the API, which grows the grid as Google does)."""
    ids = [f"7{rows:06d}{n:08d}" for n in range(rows)]
    worksheet = open_client(key, emu.url).open_by_key(book).worksheet("Leads")
    values = [["lead_id", "Status", "Deal value"]]
    values += [[lead_id, "Contacted" if n % 2 else "", ""] for n, lead_id in enumerate(ids)]
    worksheet.append_rows(values, value_input_option="RAW")
    return ids


def measure(emu: SheetsEmulator, rows: int, workdir: Path) -> dict[str, float]:
    """Requests, seconds and peak heap of one outcome round on a sheet of `rows` rows."""
    key = emu.service_account(f"reader{rows}@bench-project.iam.gserviceaccount.com")
    book = emu.create_spreadsheet(
        f"sales{rows}", worksheets=["Leads"], shared_with=[key["client_email"]]
    )
    ids = fill(emu, key, book, rows)
    store = open_store(f"sqlite:///{workdir / f'outcomes{rows}.db'}")
    store.migrate()
    created = utcnow() - timedelta(days=1)
    store.save_leads([Lead(i, created, "111", "222") for i in ids])
    settings = Settings(
        spreadsheet=book, credentials=json.dumps(key), api_url=emu.url, outcome_column="Status"
    )
    budget = MinuteBudget(100_000)  # the round's own cost, not the quota's pacing
    reader = SheetsOutcomes("bench", settings, store, budget=budget)
    try:
        first_before = len(emu.requests(kind="read"))
        reader.read()  # finds the columns
        first = len(emu.requests(kind="read")) - first_before
        for n in range(2, rows + 2, 100):  # a person marks 1% of the rows
            emu.set_cell(book, "Leads", f"B{n}", "Won")
        before = len(emu.requests(kind="read"))
        tracemalloc.start()
        started = time.perf_counter()
        new = reader.read()
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        requests = len(emu.requests(kind="read")) - before
        assert len(new) == len(range(2, rows + 2, 100)), f"{len(new)} stages recorded"
    finally:
        reader.close()
        store.close()
    return {"first": first, "requests": requests, "seconds": seconds, "peak_mb": peak / 2**20}


def run(quick: bool = False) -> list[dict]:
    """One round on a 100-row sheet and one on a large sheet, same emulator."""
    large = 2_000 if quick else 10_000
    with tempfile.TemporaryDirectory(dir=HERE) as tmp, SheetsEmulator(reads_per_minute=None) as emu:
        small_round = measure(emu, SMALL, Path(tmp))
        large_round = measure(emu, large, Path(tmp))
    grew = f"{SMALL:,} -> {large:,} rows"
    return [
        {
            "figure": f"Sheets read requests per outcome round, {large:,} rows (baseline: {SMALL})",
            "leadsync": large_round["requests"],
            "baseline": small_round["requests"],
            "unit": "requests",
            "target": "= baseline (constant)",
            "check": lambda row: row["leadsync"] == row["baseline"],
            "note": (
                f"first round (finds the columns): {small_round['first']} and "
                f"{large_round['first']} read requests, {grew}"
            ),
        },
        {
            "figure": f"outcome round wall time, {large:,} rows, 1% marked ({SMALL}: baseline)",
            "leadsync": round(large_round["seconds"], 3),
            "baseline": round(small_round["seconds"], 3),
            "unit": "s",
            "target": "< 5",
        },
        {
            "figure": f"outcome reader peak heap per round, {large:,} rows ({SMALL}: baseline)",
            "leadsync": round(large_round["peak_mb"], 1),
            "baseline": round(small_round["peak_mb"], 2),
            "unit": "MB",
            "target": "< 50",
        },
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(
            f"{row['figure']}: leadsync {row['leadsync']} {row['unit']}, "
            f"baseline {row['baseline']} {row['unit']}, target {row['target']}"
        )
