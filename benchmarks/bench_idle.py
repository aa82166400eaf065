"""Idle daemon memory: resident set size of `leadsync run` once start-up has settled.

leadsync must fit the smallest VPS, so the target is under 100 MB. The daemon
runs as its own process with the configuration a user starts with: one page
polled on the Graph emulator, one Google Sheets destination on the Sheets
emulator (both in this process), a SQLite store. After it listens and its
first poll has run, VmRSS is read from /proc/PID/status every half second
until three readings in a row agree within 1%. For context, the baseline is a
bare `python -c "import aiohttp, asyncio"` process, idle.

Run: `python -m benchmarks.bench_idle` (or `--quick`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import processes
from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.sheets import SheetsEmulator

TARGET_MB = 100.0
SAMPLE_SECONDS = 0.5
SETTLE_TIMEOUT = 30.0


def settled_rss(server: processes.ServerProcess, at_least: float) -> float:
    """VmRSS in MB once three readings agree within 1%, no sooner than `at_least` seconds."""
    started = time.monotonic()
    readings: list[float] = []
    while time.monotonic() - started < SETTLE_TIMEOUT:
        readings.append(server.rss_mb())
        last = readings[-3:]
        elapsed = time.monotonic() - started
        if elapsed >= at_least and len(last) == 3 and max(last) <= min(last) * 1.01:
            break
        time.sleep(SAMPLE_SECONDS)  # sampling memory at a fixed interval
    return readings[-1]


def bare_python_rss() -> float:
    code = "import aiohttp, asyncio, sys; print('ready', flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return processes.rss_mb(proc.pid)
    finally:
        proc.communicate(timeout=10)


def run(quick: bool = False) -> list[dict]:
    """The idle daemon's settled RSS against an idle interpreter with aiohttp imported."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        GraphEmulator() as graph,
        SheetsEmulator() as sheets,
    ):
        folder = Path(tmp)
        graph.add_form("111", "Contact us", ["full_name", "email"])
        sheet = processes.sheets_destination(sheets, folder, "sales")
        port = processes.free_port()
        store = f"sqlite:///{folder / 'leadsync.db'}"
        config = processes.leadsync_config(
            folder / "leadsync.toml", graph, store, port, pages=["111"], sheet=sheet
        )
        with processes.leadsync_run(config, port, folder / "leadsync.log") as daemon:
            rss = settled_rss(daemon, at_least=2 if quick else 5)
            assert daemon.proc is not None
            peak = processes.rss_mb(daemon.proc.pid, "VmHWM")
    return [
        {
            "figure": "idle daemon RSS (one page polled, one Sheets destination, SQLite)",
            "leadsync": round(rss, 1),
            "baseline": round(bare_python_rss(), 1),
            "unit": "MB",
            "target": f"< {TARGET_MB:.0f} MB",
            "below": TARGET_MB,
            "note": f"baseline: idle python with aiohttp imported; daemon peak VmHWM {peak:.1f} MB",
        }
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['figure']}: leadsync {row['leadsync']}, baseline {row['baseline']} "
              f"{row['unit']}, target {row['target']}")  # fmt: skip
