"""Soak: 10 minutes at 100 leads a second through webhook, fetch, score and sheet.

`leadsync run` (its own process, SQLite store beside this file, one Google
Sheets destination on the Sheets emulator with Google's real quota, no lead
found by polling) is sent 100 signed webhooks a second, one lead each, by a
paced aiohttp client in this process. Every `EVERY` seconds the process tree
`leadsync run` heads (with its worker, once issue 16 lands) is read: RSS and
PSS summed, open descriptors summed, CPU seconds, and the store's size on
disk (every `*.db*` file: the database, its WAL and shared memory); the
descriptors include the sender's connections, open throughout. After the
load, every acknowledged lead must be in the sheet exactly once.

Flatness. Samples in the first `WARM_UP` seconds are dropped (caches, pools,
the first batches). Through the rest a least-squares line is drawn; the
judged figure is its value at the last sample over its value at the first,
target <= 1.10: how much the daemon grew over the measured window. The plain
max / min over the same samples is kept beside it (row key `max_over_min`,
and the note) but not judged: under steady load a flat daemon still wobbles
by a sample (one more Sheets or Graph connection open is 3-4 % of ~27
descriptors, a batch in flight, an arena freed), and max / min calls the
largest wobble anywhere "growth". Comparing the median of the last third with
that of the first third ignores the wobble too, but it sees only two thirds of
a steady leak (the thirds' centres are two thirds of the window apart), so
1.10 on thirds would let about 15 % growth pass. The line ignores one odd
sample (it moves the fit by about 1/n) and keeps the whole trend. There is no
other process to compare with: the row's baseline is the same daemon at the
start of the window (the line's first value), and its ratio the growth.

Run: `python -m benchmarks.bench_soak` (or `--quick`: 60 s, 20 s warm-up,
a sample every 2 s).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import processes
from benchmarks.bench_burst import all_rows_at, copies, settled
from benchmarks.bench_ingest import signed_posts
from benchmarks.processes import total
from benchmarks.webhook_load import LoadResult, SignedPost, paced
from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.sheets import SheetsEmulator

RATE = 100.0  # leads a second, one webhook each
SENDER_CONNECTIONS = 8  # at 100/s, enough that one slow answer never delays the next send
TARGET_GROWTH = 1.10
FULL, QUICK = (600.0, 120.0, 10.0), (60.0, 20.0, 2.0)  # seconds: load, warm-up, sample every
SHEET_POLL = 1.0  # seconds between reads of a sheet of up to 60,000 rows at the end


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the first webhook was due
    processes: int
    rss_mb: float
    pss_mb: float
    fds: int
    cpu_seconds: float
    store_mb: float


def store_mb(folder: Path) -> float:
    """Every file of the SQLite store on disk: the database, its -wal and -shm."""
    return sum(path.stat().st_size for path in folder.glob("*.db*")) / 1e6


def read(daemon: processes.ServerProcess, folder: Path, started: float) -> Sample:
    tree = daemon.tree()
    return Sample(
        at=round(time.perf_counter() - started, 1),
        processes=len(tree),
        rss_mb=round(total(tree, "rss_mb"), 1),
        pss_mb=round(total(tree, "pss_mb"), 1),
        fds=int(total(tree, "fds")),
        cpu_seconds=round(total(tree, "cpu_seconds"), 2),
        store_mb=round(store_mb(folder), 2),
    )


def trend(times: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """The least-squares line through (time, value): its value at the first and last time."""
    if len(values) < 3:
        raise ValueError(f"need at least 3 samples after the warm-up, got {len(values)}")
    line = statistics.linear_regression(times, values)
    return line.intercept + line.slope * times[0], line.intercept + line.slope * times[-1]


def max_over_min(values: Sequence[float]) -> float:
    return max(values) / min(values)


def soak(daemon, folder: Path, posts: list[SignedPost], every: float):  # noqa: ANN001
    """Sends `posts` at RATE in a thread while this one reads the tree every `every` seconds
    while the load runs (not as it ends: the sender's connections close then)."""
    done: list[LoadResult] = []
    url = daemon.url + "/webhook"
    sender = threading.Thread(
        target=lambda: done.append(asyncio.run(paced(url, posts, RATE, SENDER_CONNECTIONS)))
    )
    started = time.perf_counter()
    sender.start()
    samples = []
    for number in range(math.ceil(len(posts) / RATE / every)):
        # Waits for the next reading's time; returns early only if the sender died.
        sender.join(timeout=max(0.0, started + number * every - time.perf_counter()))
        if not sender.is_alive():
            break
        samples.append(read(daemon, folder, started))
    sender.join()
    if not done:
        raise RuntimeError("the soak's sender failed; see the traceback above")
    return done[0], samples


def run(quick: bool = False) -> list[dict]:
    """The soak, then every acknowledged lead looked up in the sheet."""
    seconds, warm_up, every = QUICK if quick else FULL
    with (
        tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp,
        GraphEmulator() as graph,
        SheetsEmulator() as sheets,
    ):
        folder = Path(tmp)
        posts = signed_posts(graph, round(seconds * RATE))
        sheet = processes.sheets_destination(sheets, folder, "sales")
        port, db = processes.free_port(), folder / "leadsync.db"
        url = f"sqlite:///{db}"
        config = processes.leadsync_config(folder / "leadsync.toml", graph, url, port, sheet=sheet)
        with processes.leadsync_run(config, port, folder / "leadsync.log") as daemon:
            load, samples = soak(daemon, folder, posts, every)
            acked = load.acked_ids or []
            all_rows_at(sheets, acked, every=SHEET_POLL)
            quiet = settled(db)
            missing, duplicated = copies(sheets, acked)
    return rows(load, samples, warm_up, (missing, duplicated, quiet))


def growth_row(name: str, unit: str, samples: list[Sample], field: str, setup: str) -> dict:
    values = [getattr(sample, field) for sample in samples]
    first, last = trend([sample.at for sample in samples], values)
    return {
        "figure": f"{name}, growth over the soak after the warm-up (fitted line), {setup}",
        "leadsync": round(last, 1),
        "baseline": round(first, 1),
        "unit": unit,
        "target": f"<= {TARGET_GROWTH:.2f}x at the start",
        "max_ratio": TARGET_GROWTH,
        "max_over_min": round(max_over_min(values), 3),
        "note": f"max/min after the warm-up {max_over_min(values):.3f}; every sample: "
        + " ".join(f"{value:.0f}" for value in values),
    }


def rows(load: LoadResult, samples: list[Sample], warm_up: float, sheet: tuple) -> list[dict]:
    """Growth of memory and descriptors, the store's size, and the sheet's count at the end."""
    missing, duplicated, quiet = sheet
    after = [sample for sample in samples if sample.at >= warm_up]
    minutes = (samples[-1].at if samples else 0) / 60
    setup = f"{RATE:.0f} leads/s for {minutes:.0f} min, SQLite, one sheet"
    leads = max(RATE * (after[-1].at - after[0].at), 1) if after else 1
    memory = growth_row("RSS of all leadsync processes", "MB", after, "rss_mb", setup)
    cpu = (after[-1].cpu_seconds - after[0].cpu_seconds) * 1000 / leads
    memory["note"] = (
        f"{load.acked:,} of {load.completed + load.errors:,} webhooks acknowledged in "
        f"{load.seconds:.0f} s ({load.rate:.1f}/s, ack p99 {load.p99_ms:.0f} ms, {load.errors} "
        f"errors); {after[-1].processes} process(es); warm-up {warm_up:.0f} s; {cpu:.2f} CPU s "
        f"per 1,000 leads after it; " + memory["note"]
    )
    memory["samples"] = [asdict(sample) for sample in samples]
    descriptors = growth_row(
        "open descriptors of all leadsync processes", "fds", after, "fds", setup
    )
    per_lead = (after[-1].store_mb - after[0].store_mb) * 1e6 / leads
    store = {
        "figure": f"store on disk at the end of the soak (database, WAL, shm), {setup}",
        "leadsync": samples[-1].store_mb,
        "baseline": None,
        "unit": "MB",
        "target": "",  # it grows with the leads it keeps, by design
        "note": f"{per_lead:,.0f} bytes per lead after the warm-up; largest sample "
        f"{max(s.store_mb for s in samples):.1f} MB",
    }
    late = "" if quiet else "; the outbox still had pending items when the sheet was read"
    ends = [
        {
            "figure": f"acknowledged leads {what} at the end of the soak",
            "leadsync": count,
            "baseline": None,
            "unit": "leads",
            "target": "0",
            "max": 0,
            "note": f"read once every acknowledged lead had a row{late}" if not count else "",
        }
        for what, count in (
            ("missing from the sheet", missing),
            ("in more than one row", duplicated),
        )
    ]
    return [memory, descriptors, store, *ends]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['figure']}: leadsync {row['leadsync']}, baseline {row['baseline']} "
              f"{row['unit']}, target {row['target']}")  # fmt: skip
