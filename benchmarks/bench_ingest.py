"""Durable webhook ingest: notifications/s and ack latency at 32 connections, 1 change a POST.

Three receivers, each its own process on 127.0.0.1, take the same load in the
same run: every POST is signed with the app secret and carries one leadgen
change for a lead id not sent before.

- leadsync: `leadsync run` on a fresh SQLite file (WAL, synchronous=FULL),
  the real `POST /webhook` with group commit. Its Graph emulator (in this
  process) knows every lead, so the fetch job resolves them while the load
  runs, as in production; the emulator's own CPU is taken from the same two
  cores, so the figures are, if anything, pessimistic for leadsync. No page is
  polled and no destination is configured: this measures ingest.
- bare handler (the DESIGN's ceiling): HMAC check and JSON parse, no store.
- one commit per request: the same checks, one SQLite INSERT + COMMIT per
  request with the same durability (WAL, synchronous=FULL).

Load: `wrk` with a Lua script cycling through pre-signed bodies when it is
installed, else an aiohttp client in this process (see `webhook_load`). After
each run the store is counted: every acknowledged notification must be in it.

CPU seconds per 1,000 notifications (`cpu_cost`), without a target: the
leadsync process tree is read before the measured load (once the warm-up's
leads are fetched, so no backlog is counted), the HTTP process right after
the load, the worker and the whole tree once every acknowledged notification
is a stored lead. The baselines' CPU is read over the load and shown in the note.

Run: `python -m benchmarks.bench_ingest` (or `--quick`).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import processes
from benchmarks.cpu_cost import WORKER, CpuMeter, journal_ids, wait_fetched
from benchmarks.processes import HTTP
from benchmarks.webhook_load import LoadResult, SignedPost, drive
from leadsync.emulators.graph import GraphEmulator

CONNECTIONS = 32
# Above what the bare handler reaches here (~11,000 requests/s), so no id is sent twice.
BODIES_PER_SECOND = 16_000
RECEIVERS = ("leadsync", "bare", "one-commit")
TARGET_VS_BARE = 0.7  # DESIGN: >= 0.7x a bare aiohttp handler in the same run
TARGET_P99_MS = 25.0  # DESIGN: p99 ack < 25 ms
TARGET_VS_ONE_COMMIT = 1.5  # issue 16: >= 1.5x the one-commit-per-request baseline
ISSUE_RATE, ISSUE_P99_MS = 2_000.0, 20.0  # the issue: >= 2,000 notifications/s, p99 < 20 ms


def signed_posts(graph: GraphEmulator, count: int) -> list[SignedPost]:
    """`count` leads created in the Graph emulator, one signed webhook body each."""
    form_id = graph.add_form("111", "Ingest benchmark", ["full_name", "email", "job_title"])
    posts = []
    for number in range(count):
        answers = {"full_name": f"Person {number}", "email": f"person{number}@example.com"}
        lead_id = graph.create_lead(
            form_id, answers | {"job_title": "VP Sales"}, created_time=processes.before_first_poll()
        )
        posts.append(SignedPost(lead_id, *graph.webhook_body([lead_id])))
    return posts


def stored_ids(db: Path, table: str, column: str) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {row[0] for row in conn.execute(f"SELECT {column} FROM {table}")}  # noqa: S608


def missing(results: Sequence[LoadResult | None], stored: set[str]) -> int:
    """Acknowledged notifications the store does not have (must be 0)."""
    done = [result for result in results if result is not None]
    if all(result.acked_ids is not None for result in done):  # the aiohttp client knows ids
        return len({i for result in done for i in result.acked_ids or ()} - stored)
    # wrk counts acknowledgements, not ids; every request carried an id not sent before.
    return max(0, sum(result.acked - result.reused for result in done) - len(stored))


@dataclass
class Round:
    """One receiver's measured run: its load, lost notifications and CPU per 1,000 acked."""

    result: LoadResult
    lost: int
    cpu: dict[str, float | None]
    caught_up: bool = True  # the worker fetched every acknowledged notification in time


def measure(kind: str, graph: GraphEmulator, folder: Path, warm_up, posts, seconds: float):
    """One receiver, started fresh on an empty store: a warm-up on its own leads, then the
    measured run."""
    folder.mkdir()
    port, db = processes.free_port(), folder / "store.db"
    log, url = folder / "server.log", f"sqlite:///{db}"
    if kind == "leadsync":
        config = processes.leadsync_config(folder / "leadsync.toml", graph, url, port)
        server = processes.leadsync_run(config, port, log)
    else:
        options = {"db": str(db)} if kind == "one-commit" else {}
        server = processes.baseline(kind, port, log, graph.app_secret, **options)
    caught_up = True
    with server:
        assert server.proc is not None
        first = drive(server.url + "/webhook", warm_up, CONNECTIONS, 1) if warm_up else None
        if kind == "leadsync":
            caught_up = wait_fetched(url)  # the meter starts on no backlog
        meter = CpuMeter([server.proc.pid])
        meter.read("start")
        result = drive(server.url + "/webhook", posts, CONNECTIONS, seconds)
        meter.read("load_done")
        if kind == "leadsync":
            caught_up = wait_fetched(url) and caught_up
        meter.read("fetched")
    stored = stored_ids(db, "notifications", "lead_id") if db.exists() else None
    if stored is not None:  # leadsync's HTTP process commits to a journal the worker empties
        stored |= set(journal_ids(db))
    lost = 0 if stored is None else missing((first, result), stored)
    return Round(result, lost, meter.per_thousand(result.acked), caught_up)


def run(quick: bool = False) -> list[dict]:
    """The three receivers under the same load, in alternating rounds; each one's best round."""
    seconds, rounds = (3, 1) if quick else (10, 2)
    warm = 0 if quick else BODIES_PER_SECOND
    best: dict[str, Round] = {}
    lost = dict.fromkeys(RECEIVERS, 0)
    # Stores beside this file, not in /tmp, which may be a RAM disk where fsync costs nothing.
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp, GraphEmulator() as graph:
        every = signed_posts(graph, warm + BODIES_PER_SECOND * seconds)
        for number in range(rounds):
            for kind in RECEIVERS:
                folder = Path(tmp) / f"{kind}-{number}"
                done = measure(kind, graph, folder, every[:warm], every[warm:], seconds)
                lost[kind] += done.lost
                if kind not in best or done.result.rate > best[kind].result.rate:
                    best[kind] = done
    return rows(best, lost, rounds) + cpu_rows(best)


def rows(best: dict[str, Round], lost: dict[str, int], rounds: int) -> list[dict]:
    ours, bare, naive = (best[kind].result for kind in RECEIVERS)
    load_text = f"{CONNECTIONS} connections, 1 change per POST"
    note = (
        f"load by {ours.tool}; each receiver a fresh process and store, best of {rounds} "
        f"alternating round(s) of {ours.seconds:.0f} s"
    )
    for kind, done in best.items():
        result = done.result
        if result.reused or result.errors:
            note += f"; {kind}: {result.reused} reused ids, {result.errors} errors"
    return [
        {
            "figure": f"webhook ingest, durable, {load_text}, vs bare handler (HMAC, no store)",
            "leadsync": round(ours.rate),
            "baseline": round(bare.rate),
            "unit": "notifications/s",
            "target": f">= {TARGET_VS_BARE}x bare handler",
            "min_ratio": TARGET_VS_BARE,
            "note": note,
        },
        {
            "figure": "webhook ack latency p99, same load, vs bare handler",
            "leadsync": round(ours.p99_ms, 1),
            "baseline": round(bare.p99_ms, 1),
            "unit": "ms",
            "target": f"< {TARGET_P99_MS:.0f} ms",
            "below": TARGET_P99_MS,
        },
        {
            "figure": "webhook ack latency p50, same load, vs bare handler",
            "leadsync": round(ours.p50_ms, 1),
            "baseline": round(bare.p50_ms, 1),
            "unit": "ms",
            "target": "",
        },
        {
            "figure": f"webhook ingest (issue: >= {ISSUE_RATE:,.0f}/s with p99 < 20 ms)",
            "leadsync": round(ours.rate),
            "baseline": None,
            "unit": "notifications/s",
            "target": f">= {ISSUE_RATE:,.0f}/s and p99 < {ISSUE_P99_MS:.0f} ms",
            "p99_ms": round(ours.p99_ms, 1),
            "check": lambda row: row["leadsync"] >= ISSUE_RATE and row["p99_ms"] < ISSUE_P99_MS,
        },
        {
            "figure": "webhook ingest, durable, vs one SQLite commit per request (same fsync)",
            "leadsync": round(ours.rate),
            "baseline": round(naive.rate),
            "unit": "notifications/s",
            "target": f">= {TARGET_VS_ONE_COMMIT}x one commit per request",
            "min_ratio": TARGET_VS_ONE_COMMIT,
            "baseline_p99_ms": round(naive.p99_ms, 1),
        },
        {
            "figure": "acknowledged notifications missing from the store after the run",
            "leadsync": lost["leadsync"],
            "baseline": lost["one-commit"],
            "unit": "notifications",
            "target": "0",
            "max": 0,
        },
    ]


def cpu_rows(best: dict[str, Round]) -> list[dict]:
    """CPU seconds per 1,000 acknowledged notifications in leadsync's best round, per role."""
    cpu = best["leadsync"].cpu
    context = "; ".join(
        f"{kind}: {best[kind].cpu['all']:.2f} CPU s per 1,000 over the load"
        for kind in RECEIVERS[1:]
    )
    if not best["leadsync"].caught_up:
        context += "; the worker had NOT fetched every notification when last read"
    if cpu[WORKER] is None:
        context += "; one process (no worker): it answers and fetches, so its figure has both"
    spans = (
        (HTTP, "HTTP process (the `leadsync run` PID), during the measured load"),
        (WORKER, "worker process, from the load's start until every notification is fetched"),
        ("all", "all leadsync processes, from the load's start until everything is fetched"),
    )
    return [
        {
            "figure": f"CPU seconds per 1,000 notifications, SQLite, {text}",
            "leadsync": None if cpu[name] is None else round(cpu[name], 3),
            "baseline": None,
            "unit": "CPU s",
            "target": "",  # issue 16 asks for the figures, not a bound
            "note": context if name == "all" else "",
        }
        for name, text in spans
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['figure']}: leadsync {row['leadsync']}, baseline {row['baseline']} "
              f"{row['unit']}, target {row['target']}")  # fmt: skip
