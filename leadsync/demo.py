"""`leadsync demo`: the whole flow on this machine, no Facebook or Google account needed.

It starts the Graph and Sheets emulators and a real daemon on free local
ports with a temporary SQLite store, creates leads from personas (a VP at a
1,000-person company asking for a demo becomes an MQL; a student with a free
email address does not), delivers them as signed webhooks the way Meta does,
and shows the emulated sheet as rows land. Then one lead attends a webinar
(POST /events) and its existing row flips to MQL in place. It exits 0 once
every row is there with its score, or 1 with what is missing.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.live import Live
from rich.table import Table

from leadsync.config import parse_config
from leadsync.daemon import Daemon
from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.sheets import SheetsEmulator

PAGE_ID = "100200300"
SHEET_ID = "demo-sales-sheet"
WORKSHEET = "Leads"
QUESTIONS = [
    "full_name",
    "email",
    "phone_number",
    "job_title",
    "company_name",
    "company_size",
    "interest",
]
EVENTS_TOKEN = "demo-events-token"
# How long the demo waits for every row before it gives up (it normally takes a second or two).
DEADLINE_SECONDS = 60


@dataclass(frozen=True)
class Persona:
    name: str
    job_title: str
    email_domain: str
    company: str
    company_size: str
    interest: str
    later_events: tuple[str, ...] = ()


PERSONAS = [
    Persona("Vera Petrova", "VP of Sales", "globex.com", "Globex", "1,000+", "Book a demo"),
    Persona("Sam Student", "Student", "gmail.com", "-", "1", "Just browsing"),
    Persona("Carl Chen", "CEO", "initech.io", "Initech", "500-1000", "Pricing for our team"),
    Persona("Mia Moreno", "Marketing Manager", "hooli.com", "Hooli", "50-200", "Newsletter"),
    Persona(
        "Dana Diaz", "Director of Operations", "umbrella.com", "Umbrella", "1,000+", "Case studies",
        later_events=("case_study_downloaded", "webinar_attended"),
    ),
]  # fmt: skip


def run_demo(console: Console, *, leads: int = 12, keep_running: bool = False) -> int:
    """Runs the demo; returns the process exit code."""
    with (
        tempfile.TemporaryDirectory(prefix="leadsync-demo-") as tmp,
        GraphEmulator() as graph,
        SheetsEmulator() as sheets,
    ):
        return asyncio.run(_demo(console, Path(tmp), graph, sheets, leads, keep_running))


async def _demo(
    console: Console,
    tmp: Path,
    graph: GraphEmulator,
    sheets: SheetsEmulator,
    leads: int,
    keep: bool,
) -> int:
    form_id = graph.add_form(PAGE_ID, "Demo request", QUESTIONS)
    graph.subscribe_app(PAGE_ID)
    key = sheets.service_account()
    key_file = tmp / "service-account.json"
    key_file.write_text(json.dumps(key))
    sheets.create_spreadsheet(
        SHEET_ID, "Sales leads", [WORKSHEET], shared_with=[key["client_email"]]
    )
    daemon = Daemon(_settings(graph, sheets, tmp, key_file))
    await daemon.start()
    base = f"http://127.0.0.1:{daemon.port}"
    graph.set_webhook_target(f"{base}/webhook")
    personas = [PERSONAS[n % len(PERSONAS)] for n in range(leads)]
    ids = [graph.create_lead(form_id, _answers(p, n)) for n, p in enumerate(personas)]
    console.print(
        f"[bold]leadsync demo[/bold]: {leads} leads from the emulated Facebook page {PAGE_ID}"
    )
    console.print(f"daemon on {base} (status page at {base}/), store in {tmp}")
    started = time.monotonic()
    await asyncio.wrap_future(graph.send_webhook(ids, per_post=3, copies=2, shuffle=True))
    try:
        landed = await _watch(console, sheets, ids, started)
        flipped = await _engage(console, sheets, base, ids, personas) if landed else False
        if keep and landed:
            console.print(f"Keeping it running: status page {base}/ , Ctrl-C to stop.")
            await asyncio.Event().wait()
    finally:
        await daemon.stop()
    return 0 if landed and flipped else 1


def _settings(graph: GraphEmulator, sheets: SheetsEmulator, tmp: Path, key_file: Path):  # noqa: ANN202
    return parse_config(
        {
            "facebook": {
                "app_id": graph.app_id,
                "app_secret": graph.app_secret,
                "verify_token": "demo-verify-token",
                "access_token": graph.access_token,
                "graph_url": graph.url,
                "poll_interval": "1h",
                "pages": [{"id": PAGE_ID}],
            },
            "server": {"host": "127.0.0.1", "port": 0, "events_token": EVENTS_TOKEN},
            "store": {"url": f"sqlite:///{tmp / 'leadsync.db'}"},
            "destinations": [
                {
                    "name": "sales-sheet",
                    "type": "google_sheets",
                    "spreadsheet": SHEET_ID,
                    "worksheet": WORKSHEET,
                    "credentials": str(key_file),
                    "api_url": sheets.url,
                }
            ],
        },
        {},
    )


def _answers(persona: Persona, n: int) -> dict[str, str]:
    first, last = persona.name.split(" ", 1)
    return {
        "full_name": f"{persona.name} {n}" if n >= len(PERSONAS) else persona.name,
        "email": f"{first.lower()}.{last.lower()}{n}@{persona.email_domain}",
        "phone_number": f"+1555{n:07d}",
        "job_title": persona.job_title,
        "company_name": persona.company,
        "company_size": persona.company_size,
        "interest": persona.interest,
    }


def _rows(sheets: SheetsEmulator) -> dict[str, dict[str, str]]:
    values = sheets.values(SHEET_ID, WORKSHEET)
    if not values:
        return {}
    header = values[0]
    return {row[0]: dict(zip(header, row, strict=False)) for row in values[1:] if row and row[0]}


def _table(rows: dict[str, dict[str, str]], ids: list[str]) -> Table:
    table = Table(
        "lead_id",
        "job_title",
        "company_size",
        "score",
        "mql",
        "score_reasons",
        title="Sheet 'Leads'",
    )
    for lead_id in ids:
        row = rows.get(lead_id)
        if row:
            mql = "[bold green]TRUE[/]" if row.get("mql") == "TRUE" else "FALSE"
            table.add_row(
                lead_id,
                row.get("job_title", ""),
                row.get("company_size", ""),
                row.get("score", ""),
                mql,
                row.get("score_reasons", ""),
            )
        else:
            table.add_row(lead_id, "[dim]waiting...[/]", "", "", "", "")
    return table


async def _watch(console: Console, sheets: SheetsEmulator, ids: list[str], started: float) -> bool:
    with Live(_table({}, ids), console=console, refresh_per_second=8) as live:
        while time.monotonic() - started < DEADLINE_SECONDS:
            rows = _rows(sheets)
            live.update(_table(rows, ids))
            if all(rows.get(i, {}).get("score") for i in ids):
                break
            await asyncio.sleep(0.1)
    console.print()
    rows = _rows(sheets)
    missing = [i for i in ids if i not in rows]
    duplicates = len(sheets.values(SHEET_ID, WORKSHEET)) - 1 - len(rows)
    if missing or duplicates:
        console.print(f"[red]{len(missing)} rows missing, {duplicates} duplicates[/red]")
        return False
    mqls = sum(row.get("mql") == "TRUE" for row in rows.values())
    elapsed = time.monotonic() - started
    console.print(
        f"{len(ids)} rows in the sheet, each once, {mqls} MQLs, "
        f"{elapsed:.1f}s after the first webhook"
    )
    return True


async def _engage(
    console: Console,
    sheets: SheetsEmulator,
    base: str,
    ids: list[str],
    personas: list[Persona],
) -> bool:
    """Posts the later events of one nurture lead; its existing row must flip to MQL."""
    target = next((i for i, p in zip(ids, personas, strict=True) if p.later_events), None)
    if target is None:
        return True
    persona = personas[ids.index(target)]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    events = [
        {"id": f"demo-{target}-{t}", "lead_id": target, "type": t, "at": now}
        for t in persona.later_events
    ]
    headers = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/events", json=events, headers=headers) as reply,
    ):
        reply.raise_for_status()
    console.print(f"Lead {target} ({persona.job_title}) engaged: {', '.join(persona.later_events)}")
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        row = _rows(sheets).get(target, {})
        if row.get("mql") == "TRUE":
            rows_total = len(sheets.values(SHEET_ID, WORKSHEET)) - 1
            console.print(
                f"Its row flipped to MQL in place: score {row['score']} "
                f"({row['score_reasons']}); still {rows_total} rows"
            )
            return True
        await asyncio.sleep(0.1)
    console.print(f"[red]lead {target} did not flip to MQL[/red]")
    return False
