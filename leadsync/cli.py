"""The `leadsync` command line: run (the daemon), healthcheck, and the one-shot commands.

Each command is a thin shell: it loads the config (every problem printed with
its key path and fix, exit code 2), calls the module that does the work, and
prints the outcome with rich.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from leadsync import logs
from leadsync.config import (
    DEFAULT_CONFIG_PATH,
    Settings,
    load_config,
    parse_duration,
    secret_values,
)
from leadsync.errors import ConfigError, LeadsyncError
from leadsync.models import utcnow

if TYPE_CHECKING:
    from leadsync.abc import ExpiredStage

# Tracebacks never show locals: a frame's variables can hold a token, a key or a lead's email.
app = typer.Typer(
    help="Every Facebook lead, once, fast, explained.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
# Piped into grep or a log, rich would cut tables at 80 columns: keep whole ids and errors.
PIPE_WIDTH = 200
console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else PIPE_WIDTH)

ConfigOption = Annotated[
    Path,
    typer.Option("-c", "--config", envvar="LEADSYNC_CONFIG", help="Config file (TOML)."),
]
LogFormat = Annotated[str, typer.Option("--log-format", help="auto, console or json.")]


def _settings(path: Path, log_format: str | None = None) -> Settings:
    try:
        settings = load_config(path)
    except ConfigError as exc:
        errors.print(f"[red]{path}: the configuration has {len(exc.problems)} problem(s):[/red]")
        for problem in exc.problems:
            errors.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    logs.configure(
        log_format or settings.logging.format, settings.logging.level, secret_values(settings)
    )
    return settings


def _store(settings: Settings):  # noqa: ANN202
    from leadsync.store import open_store

    store = open_store(settings.store.url)
    store.migrate()
    return store


@app.command()
def run(config: ConfigOption = Path(DEFAULT_CONFIG_PATH), log_format: LogFormat = "") -> None:
    """Run the daemon: webhook server, poller and delivery, until SIGTERM."""
    from leadsync.acceptor import Acceptor

    settings = _settings(config, log_format or None)
    worker_args = ["--log-format", log_format] if log_format else []
    asyncio.run(Acceptor(settings, config, worker_args=worker_args).run_until_signalled())


@app.command(hidden=True)
def worker(
    sockets: Annotated[Path, typer.Option("--sockets", help="The HTTP process's socket folder.")],
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
    log_format: LogFormat = "",
) -> None:
    """The pipeline half of `leadsync run`, which starts it: not a command to run by hand."""
    from leadsync.worker import run_worker

    settings = _settings(config, log_format or None)
    asyncio.run(run_worker(settings, config, sockets))


@app.command()
def healthcheck(config: ConfigOption = Path(DEFAULT_CONFIG_PATH)) -> None:
    """Ask the running daemon's /healthz on the configured port: exit 0 when healthy."""
    from leadsync.healthcheck import probe

    settings = _settings(config, "console")
    result = probe(settings.server)
    console.print(result.message, markup=False, highlight=False)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def demo(
    leads: Annotated[int, typer.Option(help="How many sample leads to send.")] = 12,
    keep_running: Annotated[bool, typer.Option(help="Keep the sheet and status page up.")] = False,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """The whole flow on this machine: emulated Facebook and Sheets, no account needed."""
    from leadsync.demo import run_demo

    logs.configure("console", "warning")
    raise typer.Exit(run_demo(console, leads=leads, keep_running=keep_running))


@app.command()
def check(config: ConfigOption = Path(DEFAULT_CONFIG_PATH)) -> None:
    """Validate the config, token, permissions, page subscription and destinations."""
    from leadsync.check import run_checks

    settings = _settings(config, "console")
    console.print(f"ok   config {config}: valid")
    findings = run_checks(settings)
    for finding in findings:
        console.print(str(finding), style=None if finding.ok else "red", markup=False)
    raise typer.Exit(0 if all(f.ok for f in findings) else 1)


@app.command()
def backfill(
    since: Annotated[str, typer.Option(help="How far back, e.g. 30d.")] = "30d",
    form: Annotated[str | None, typer.Option(help="Only this form id.")] = None,
    include_archived: Annotated[
        bool, typer.Option("--include-archived", help="Read archived forms too.")
    ] = False,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Read past leads into the store (resumable, waits out throttling); the daemon sends them."""
    from leadsync.daemon import graph_client
    from leadsync.ingest.backfill_cli import backfill_command

    settings = _settings(config, "console")
    start = utcnow() - parse_duration(since)
    store = _store(settings)
    try:
        code = backfill_command(
            console,
            errors,
            settings,
            store,
            graph_client(settings),
            since=start,
            only_form=form,
            include_archived=include_archived,
        )
    finally:
        store.close()
    raise typer.Exit(code)


@app.command()
def pages(config: ConfigOption = Path(DEFAULT_CONFIG_PATH)) -> None:
    """Pages the token manages, with their leadgen webhook subscription."""
    from leadsync.daemon import graph_client
    from leadsync.facebook.pages_cli import pages_command

    settings = _settings(config, "console")
    raise typer.Exit(pages_command(console, errors, settings, graph_client(settings)))


@app.command()
def subscribe(
    page_ids: Annotated[list[str] | None, typer.Argument(help="Page ids.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every page the token manages.")] = False,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Subscribe the app to pages' leadgen webhooks (with each page's own token)."""
    from leadsync.daemon import graph_client
    from leadsync.facebook.pages_cli import subscribe_command

    settings = _settings(config, "console")
    code = subscribe_command(console, errors, graph_client(settings), page_ids or [], every)
    raise typer.Exit(code)


@app.command()
def forms(config: ConfigOption = Path(DEFAULT_CONFIG_PATH)) -> None:
    """Pages and forms seen, with their last poll."""
    from leadsync.daemon import graph_client
    from leadsync.ingest.poller import Poller

    settings = _settings(config, "console")
    store = _store(settings)
    poller = Poller(store, graph_client(settings))
    table = Table("page", "form", "name", "status", "last poll", "checkpoint", "last error")
    try:
        for page in settings.facebook.pages:
            poller.discover(page.id)
    except LeadsyncError as exc:
        errors.print(
            f"could not list forms from Facebook: {exc}; showing what is stored", markup=False
        )
    checkpoints = {c.form_id: c for c in store.checkpoints()}
    for f in store.forms():
        cp = checkpoints.get(f.id)
        table.add_row(
            f.page_id,
            f.id,
            f.name,
            f.status,
            _when(cp and cp.polled_at),
            _when(cp and cp.last_created_time),
            cp.last_error if cp else "",
        )
    store.close()
    console.print(table)


@app.command()
def status(config: ConfigOption = Path(DEFAULT_CONFIG_PATH)) -> None:
    """Queues, dead letters, last poll per form, last error per destination."""
    from leadsync.ingest.journal import waiting_backlog
    from leadsync.status import snapshot
    from leadsync.store import SQLITE_PREFIX, sqlite_path

    settings = _settings(config, "console")
    store = _store(settings)
    snap = snapshot(store, recent=0)
    backlog = store.notification_backlog()
    store.close()
    console.print(f"{snap.leads} leads stored")
    if settings.store.url.startswith(SQLITE_PREFIX):  # what the HTTP process journaled too
        backlog = backlog.plus(*waiting_backlog(sqlite_path(settings.store.url)))
    if backlog.waiting:
        oldest = _when(backlog.oldest_received_at)
        console.print(f"{backlog.waiting} notifications waiting to be fetched (oldest {oldest})")
    queues = Table("destination", "pending", "oldest pending", "delivered", "dead", title="Outbox")
    for d in snap.destinations:
        queues.add_row(
            d.destination, str(d.pending), _when(d.oldest_pending), str(d.delivered), str(d.dead)
        )
    console.print(queues)
    polls = Table("form", "name", "last poll", "last error", title="Polling")
    for f in snap.forms:
        cp = snap.checkpoints.get(f.id)
        polls.add_row(f.id, f.name, _when(cp and cp.polled_at), cp.last_error if cp else "")
    console.print(polls)
    services = Table("service", "state", "message", "at", title="Services")
    for s in snap.services:
        services.add_row(s.service, "ok" if s.ok else "[red]failing[/red]", s.message, _when(s.at))
    console.print(services)
    if snap.dead_letters:
        dead = Table(
            "lead", "destination", "revision", "dead at", "last error", title="Dead letter"
        )
        for d in snap.dead_letters:
            dead.add_row(
                d.item.lead_id,
                d.item.destination,
                str(d.item.revision),
                _when(d.dead_at),
                d.last_error,
            )
        console.print(dead)
        console.print("Send them again with: leadsync replay [--destination NAME] [--lead ID]")
    _print_expired(snap.expired)


def _print_expired(expired: Sequence[ExpiredStage]) -> None:
    """Stages not sent because they were too old (Meta takes 7 days) or before the lead."""
    console.print(f"{len(expired)} lead stages expired (not sent)")
    if expired:
        table = Table("lead", "destination", "stage", title="Expired stages")
        for e in expired:
            table.add_row(e.lead_id, e.destination, e.stage)
        console.print(table)


@app.command()
def replay(
    destination: Annotated[str, typer.Option(help="Only this destination.")] = "",
    lead: Annotated[str, typer.Option(help="Only this lead id.")] = "",
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Send dead-lettered deliveries again (the running daemon picks them up)."""
    settings = _settings(config, "console")
    store = _store(settings)
    count = store.replay(destination=destination, lead_id=lead)
    store.close()
    console.print(f"{count} dead-lettered deliveries queued again")


SCORE_OUTPUT_HELP = (
    "Where to write the scored CSV (default FILE.scored.csv). A cell starting with = + - @, "
    "a tab, CR or LF gets a leading ' so a spreadsheet opens it as text, never as a formula "
    "a lead typed (OWASP CSV injection); scoring the file again reads it without the quote."
)


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="CSV of answers, one lead per row.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help=SCORE_OUTPUT_HELP)] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Score a CSV offline: adds score, mql and score_reasons columns."""
    from leadsync.calibration.cli import score_command

    raise typer.Exit(score_command(console, file, output, config))


@app.command()
def calibrate(
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV of lead_id,outcome[,deal_size]; none: the stored outcomes."),
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Conversion by score band, lift per rule and a suggested threshold, from outcomes."""
    from leadsync.calibration.cli import calibrate_command

    raise typer.Exit(calibrate_command(console, file, html, config))


@app.command()
def report(
    since: Annotated[str, typer.Option(help="How far back, e.g. 90d.")] = "90d",
    by: Annotated[str, typer.Option(help="Group by form, campaign, ad or owner.")] = "form",
    html: Annotated[Path | None, typer.Option(help="Also write an HTML report here.")] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """The closed-loop report per form, campaign, ad or owner: MQLs, SQLs, wins, deal value."""
    from leadsync.report.cli import report_command

    store = _store(_settings(config, "console"))
    try:
        code = report_command(console, errors, store, since=since, by=by, html=html, now=utcnow())
    finally:
        store.close()
    raise typer.Exit(code)


def _when(value: datetime | None | bool) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else ""
