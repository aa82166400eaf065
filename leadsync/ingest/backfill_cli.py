"""`leadsync backfill` on a terminal: forms to read, a progress bar per form, Ctrl-C to stop.

The work is `ingest/backfill.py`'s; this module picks the forms, draws the
progress (with the form's total when Graph gives `leads_count`), says when and
why it waits for Facebook, and turns SIGINT/SIGTERM into a clean stop after
the page in hand, so the next run resumes from the saved cursor.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leadsync.abc import Store
from leadsync.config import Settings
from leadsync.errors import LeadsyncError
from leadsync.facebook.graph import GraphClient
from leadsync.ingest.backfill import Backfill, FormProgress, View
from leadsync.models import Form

# Exit status of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class ProgressView(View):
    """One rich progress bar per form: leads read, of the form's total when Graph says it."""

    def __init__(self, progress: Progress, console: Console):
        self._progress = progress
        self._console = console
        self._tasks: dict[str, Any] = {}

    def form_started(self, form: Form, progress: FormProgress, total: int | None) -> None:
        where = f" (resuming after {progress.read})" if progress.read else ""
        self._tasks[form.id] = self._progress.add_task(
            f"form {form.id} {form.name}{where}", total=total, completed=progress.read
        )

    def page_read(self, form: Form, progress: FormProgress) -> None:
        task = self._tasks[form.id]
        if progress.done:  # the form's total counts leads older than --since too
            self._progress.update(task, total=progress.read)
        self._progress.update(task, completed=progress.read)

    def waiting(self, form: Form, seconds: float, reason: str) -> None:
        self._console.print(
            f"form {form.id}: {reason}; waiting {seconds:.0f}s, then going on from the same page",
            markup=False,
        )


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (the run ends after the page in hand) while inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def backfill_command(
    console: Console,
    errors: Console,
    settings: Settings,
    store: Store,
    graph: GraphClient,
    *,
    since: datetime,
    only_form: str | None,
    include_archived: bool,
) -> int:
    """Runs a backfill over every configured page's forms; the process exit status."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        run = Backfill(store, graph, view=ProgressView(progress, console))
        with stop_on_signals(run.stop):
            _read_pages(run, settings, errors, since, only_form, include_archived)
    report = run.report
    console.print(
        f"{report.leads_read} leads read, {report.leads_new} new, from {report.forms} forms"
    )
    for where, error in report.errors.items():
        errors.print(f"{where}: {error}", markup=False)
    if report.interrupted:
        errors.print("stopped; run `leadsync backfill` again to go on where it stopped")
        return EXIT_INTERRUPTED
    return 1 if report.errors else 0


def _read_pages(
    run: Backfill,
    settings: Settings,
    errors: Console,
    since: datetime,
    only_form: str | None,
    include_archived: bool,
) -> None:
    found = False
    for page in settings.facebook.pages:
        try:
            forms = run.forms(page.id, include_archived=include_archived)
        except LeadsyncError as exc:
            run.report.errors[f"page {page.id}"] = str(exc)
            continue
        for form in forms:
            if run.stop.is_set():
                run.report.interrupted = not run.report.auth_failed
                return
            if (only_form and form.id != only_form) or (page.forms and form.id not in page.forms):
                continue
            found = True
            run.run_form(form, since)
    if only_form and not found and not run.report.errors:
        kinds = "form" if include_archived else "active form (--include-archived for archived ones)"
        run.report.errors[f"form {only_form}"] = f"not an {kinds} of the configured pages"
