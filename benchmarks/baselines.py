"""The webhook receivers leadsync is measured against, each run as its own process.

- `bare`: the ceiling. An aiohttp handler that reads the body, checks the
  X-Hub-Signature-256 HMAC (constant time), parses the JSON and answers 200.
  Nothing is stored: no receiver that stores can beat it.
- `one-commit`: the first durable receiver one writes. The same checks, then
  one SQLite INSERT and COMMIT per request, inline, with the durability
  leadsync's store uses (WAL, `synchronous=FULL`): one fsync per request.
- `naive-flow`: the first webhook-to-sheet script. Per lead: one Graph GET for
  its answers, then one gspread `append_row`; it answers the webhook after the
  row is written and retries nothing.

Each runs in its own process, like `leadsync run`, so a load generator never
shares its interpreter. Run: `python -m benchmarks.baselines KIND --port N
--secret S [...]`; it prints `listening on http://127.0.0.1:N` when ready and
exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import requests
from aiohttp import web

OK = "EVENT_RECEIVED"


def signed(body: bytes, header: str | None, secret: bytes) -> bool:
    """Meta's check: `sha256=<hex HMAC-SHA256 of the raw body>`, compared in constant time."""
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header or "")


def leadgen_changes(payload: dict) -> list[dict]:
    return [change["value"] for entry in payload["entry"] for change in entry["changes"]]


def bare_app(secret: bytes) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not signed(body, request.headers.get("X-Hub-Signature-256"), secret):
            return web.Response(status=403, text="bad signature")
        leadgen_changes(json.loads(body))
        return web.Response(text=OK)

    app = web.Application()
    app.router.add_post("/webhook", receive)
    return app


def one_commit_app(secret: bytes, db_path: Path) -> web.Application:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS notifications (lead_id TEXT PRIMARY KEY, page_id TEXT,"
        " form_id TEXT, received_at REAL)"
    )

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not signed(body, request.headers.get("X-Hub-Signature-256"), secret):
            return web.Response(status=403, text="bad signature")
        rows = [
            (str(v["leadgen_id"]), str(v["page_id"]), str(v.get("form_id", "")), v["created_time"])
            for v in leadgen_changes(json.loads(body))
        ]
        conn.execute("BEGIN")
        conn.executemany("INSERT OR IGNORE INTO notifications VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        return web.Response(text=OK)

    app = web.Application()
    app.router.add_post("/webhook", receive)
    return app


def naive_flow_app(secret: bytes, args: argparse.Namespace) -> web.Application:
    from connectors.sheets_client import open_client

    key = json.loads(Path(args.key_file).read_text())
    worksheet = open_client(key, args.sheets_url).open_by_key(args.spreadsheet).worksheet("Leads")
    graph = requests.Session()

    def lead_to_row(lead_id: str) -> None:
        reply = graph.get(
            f"{args.graph_url}/v24.0/{lead_id}",
            params={"access_token": args.token, "fields": "created_time,form_id,field_data"},
            timeout=10,
        )
        reply.raise_for_status()
        lead = reply.json()
        answers = [", ".join(item["values"]) for item in lead.get("field_data", [])]
        worksheet.append_row([lead_id, lead["created_time"], lead["form_id"], *answers])

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not signed(body, request.headers.get("X-Hub-Signature-256"), secret):
            return web.Response(status=403, text="bad signature")
        for value in leadgen_changes(json.loads(body)):
            await asyncio.to_thread(lead_to_row, str(value["leadgen_id"]))
        return web.Response(text=OK)

    app = web.Application()
    app.router.add_post("/webhook", receive)
    return app


async def serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines")
    parser.add_argument("kind", choices=["bare", "one-commit", "naive-flow"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--db", help="one-commit: the SQLite file")
    parser.add_argument("--graph-url", help="naive-flow: the Graph API")
    parser.add_argument("--token", help="naive-flow: the Graph access token")
    parser.add_argument("--sheets-url", help="naive-flow: the Sheets API")
    parser.add_argument("--key-file", help="naive-flow: the service-account key")
    parser.add_argument("--spreadsheet", help="naive-flow: the spreadsheet id")
    args = parser.parse_args(argv)
    secret = args.secret.encode()
    builders: dict[str, Callable[[], web.Application]] = {
        "bare": lambda: bare_app(secret),
        "one-commit": lambda: one_commit_app(secret, Path(args.db)),
        "naive-flow": lambda: naive_flow_app(secret, args),
    }
    asyncio.run(serve(builders[args.kind](), args.port))


if __name__ == "__main__":
    main()
