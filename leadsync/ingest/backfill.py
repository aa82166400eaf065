"""`leadsync backfill`: reads past leads of every form into the store, resumably.

It reads `/{form}/leads` page by page (newest first, filtered on
`time_created`) like the poller, but a throttled answer (80005 and the other
rate-limit codes) is waited out — as long as the usage headers'
`estimated_time_to_regain_access` says, else GRAPH_THROTTLE_WAIT — and the
same page is asked again. After each page is committed, the form's progress
(the paging cursor and the time filter) is saved in the store's meta table, so
a run that is interrupted (Ctrl-C, SIGTERM, a crash) goes on from its cursor
the next time instead of reading everything again. A form whose history was
read completely is only topped up afterwards (leads created since that read
began, minus the poll overlap). The poll checkpoint moves only when a form's
read is complete, as the poller's does, so an unfinished backfill never makes
the poller skip leads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import structlog

from leadsync.abc import Store
from leadsync.constants import GRAPH_THROTTLE_WAIT, POLL_OVERLAP
from leadsync.errors import AuthError, LeadsyncError, RateLimited, TransientError
from leadsync.facebook.graph import GraphClient, LeadsPage
from leadsync.models import Form, parse_time, utcnow

log = structlog.get_logger(__name__)

PROGRESS_KEY = "backfill:{form_id}"
# A transient failure (5xx, timeout) of one page is asked again this many times, with a
# growing wait, before the form is reported as failed (its progress is kept for the next run).
TRANSIENT_RETRIES = 5
# Graph may answer empty pages that still have a next one; past this many in a row we stop.
MAX_EMPTY_PAGES = 50
# Form statuses read by default, and with --include-archived.
ACTIVE = ("ACTIVE",)
ACTIVE_AND_ARCHIVED = ("ACTIVE", "ARCHIVED")


@dataclass
class FormProgress:
    """Where a form's backfill stands; saved as JSON after every committed page.

    `read_from` is the time filter of the current read and `after` the cursor of
    its next page. A finished read covers `history_from` up to `started_at`.
    """

    read_from: datetime
    started_at: datetime
    history_from: datetime
    after: str = ""
    read: int = 0
    done: bool = False
    newest: datetime | None = None

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("read_from", "started_at", "history_from", "newest"):
            data[key] = data[key].isoformat() if data[key] else None
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> FormProgress:
        data = json.loads(text)
        for key in ("read_from", "started_at", "history_from", "newest"):
            data[key] = parse_time(data[key]) if data.get(key) else None
        return cls(**data)


def plan(saved: FormProgress | None, since: datetime, now: datetime) -> FormProgress:
    """The read to do now: resume an unfinished one, top up a finished one, or start afresh."""
    if saved is None or saved.history_from > since:  # never read, or more history is wanted
        return FormProgress(read_from=since, started_at=now, history_from=since)
    if not saved.done:
        return saved
    top_up_from = max(saved.started_at - POLL_OVERLAP, since)
    return FormProgress(read_from=top_up_from, started_at=now, history_from=saved.history_from)


class View:
    """What a backfill tells its user; the command line draws it, tests may record it."""

    def form_started(self, form: Form, progress: FormProgress, total: int | None) -> None: ...

    def page_read(self, form: Form, progress: FormProgress) -> None: ...

    def waiting(self, form: Form, seconds: float, reason: str) -> None: ...


@dataclass
class BackfillReport:
    forms: int = 0
    leads_read: int = 0
    leads_new: int = 0
    waited: list[float] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM; the next run resumes
    auth_failed: bool = False  # the token was refused: the run stopped, not interrupted


class Backfill:
    """One backfill run; `stop` (set on Ctrl-C or SIGTERM) ends it after the page in hand."""

    def __init__(
        self,
        store: Store,
        graph: GraphClient,
        *,
        view: View | None = None,
        stop: threading.Event | None = None,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._store = store
        self._graph = graph
        self._view = view or View()
        self.stop = stop or threading.Event()
        # Waiting on the stop event: a throttle wait of minutes ends at once on Ctrl-C.
        self._sleep = sleep or self.stop.wait
        self._clock = clock
        self.report = BackfillReport()

    def forms(self, page_id: str, *, include_archived: bool = False) -> list[Form]:
        """The page's forms to read (active ones, archived too when asked), saved to the store."""
        forms = self._graph.list_forms(page_id)
        self._store.save_forms(forms)
        statuses = ACTIVE_AND_ARCHIVED if include_archived else ACTIVE
        return [f for f in forms if f.status in statuses]

    def run_form(self, form: Form, since: datetime) -> bool:
        """Reads the form's leads since `since` to the end; False when stopped or failed."""
        self.report.forms += 1
        progress = plan(self._load(form.id), since, self._clock())
        self._save(form.id, progress)
        self._view.form_started(form, progress, self._total(form))
        empty = 0
        while not self.stop.is_set():
            page = self._next_page(form, progress)
            if page is None:
                return False
            empty = 0 if page.leads else empty + 1
            if empty >= MAX_EMPTY_PAGES:
                self._fail(form, TransientError(f"form {form.id}: Graph kept sending empty pages"))
                return False
            self._commit(form, progress, page)
            self._view.page_read(form, progress)
            if progress.done:
                if progress.newest is not None:
                    self._store.advance_checkpoint(form.id, progress.newest)
                log.info("backfill.form_finished", form_id=form.id, leads_read=progress.read)
                return True
        self._stopped()
        return False

    def _stopped(self) -> None:
        self.report.interrupted = not self.report.auth_failed

    def _next_page(self, form: Form, progress: FormProgress) -> LeadsPage | None:
        """The page at the progress' cursor, throttles waited out; None when stopped or failed."""
        failures = 0
        while not self.stop.is_set():
            try:
                return self._graph.form_leads_page(
                    form.id, form.page_id, progress.read_from, progress.after
                )
            except RateLimited as exc:
                wait = exc.retry_after or GRAPH_THROTTLE_WAIT.total_seconds()
                self._wait(form, wait, "Facebook is throttling us")
            except TransientError as exc:
                failures += 1
                if failures > TRANSIENT_RETRIES:
                    self._fail(form, exc)
                    return None
                self._wait(form, 2.0**failures, str(exc))
            except LeadsyncError as exc:
                self._fail(form, exc)
                return None
        self._stopped()
        return None

    def _commit(self, form: Form, progress: FormProgress, page: LeadsPage) -> None:
        leads = [replace(lead, form_name=lead.form_name or form.name) for lead in page.leads]
        new_ids = self._store.save_leads(leads)
        if new_ids:
            log.info("leads.stored", lead_ids=new_ids, form_id=form.id, source="backfill")
        times = [lead.created_time for lead in leads]
        if progress.newest is not None:
            times.append(progress.newest)
        progress.newest = max(times, default=None)
        progress.after = page.after
        progress.read += len(leads)
        progress.done = not page.after
        self._save(form.id, progress)  # after the leads: a crash in between re-reads one page
        self.report.leads_read += len(leads)
        self.report.leads_new += len(new_ids)

    def _wait(self, form: Form, seconds: float, reason: str) -> None:
        log.warning("backfill.waiting", form_id=form.id, seconds=seconds, reason=reason)
        self.report.waited.append(seconds)
        self._view.waiting(form, seconds, reason)
        self._sleep(seconds)

    def _fail(self, form: Form, exc: LeadsyncError) -> None:
        self.report.errors[form.id] = str(exc)
        if isinstance(exc, AuthError):
            self.report.auth_failed = True
            self.stop.set()  # every other form would fail the same way
        log.warning("backfill.failed", form_id=form.id, kind=type(exc).__name__, error=str(exc))

    def _total(self, form: Form) -> int | None:
        try:
            return self._graph.leads_count(form.id)
        except LeadsyncError:  # a total is nice to have; the read itself reports real failures
            return None

    def _load(self, form_id: str) -> FormProgress | None:
        text = self._store.get_meta(PROGRESS_KEY.format(form_id=form_id))
        try:
            return FormProgress.from_json(text) if text else None
        except (ValueError, TypeError, KeyError):
            log.warning("backfill.progress_unreadable", form_id=form_id)
            return None

    def _save(self, form_id: str, progress: FormProgress) -> None:
        self._store.set_meta(PROGRESS_KEY.format(form_id=form_id), progress.to_json())
