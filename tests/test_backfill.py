"""Backfill against the Graph emulator: throttles waited out, resumed by cursor, totals, archived.

The Graph emulator serves real HTTP to the real facebook-business SDK; the store
is a real SQLite file. Throttle waits go through an injected sleeper that records
what it was asked to wait, so no test really waits a minute.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from leadsync.cli import app
from leadsync.emulators.graph import GraphEmulator
from leadsync.facebook.graph import GraphClient
from leadsync.ingest.backfill import PROGRESS_KEY, Backfill, FormProgress, View, plan
from leadsync.models import Form, utcnow
from leadsync.store import open_store
from tests.cli_config import write_cli_config

runner = CliRunner()
PAGE = "111"


@pytest.fixture
def graph():
    with GraphEmulator() as emu:
        emu.add_page(PAGE, "Acme")
        emu.subscribe_app(PAGE)
        yield emu


@pytest.fixture
def store(tmp_path):
    opened = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    opened.migrate()
    yield opened
    opened.close()


def client(emu: GraphEmulator) -> GraphClient:
    return GraphClient(
        access_token=emu.access_token,
        app_secret=emu.app_secret,
        graph_url=emu.url,
        app_id=emu.app_id,
    )


def form_with_leads(emu: GraphEmulator, count: int, status: str = "ACTIVE") -> Form:
    form_id = emu.add_form(PAGE, "Big form", ["email"], status=status)
    start = utcnow() - timedelta(days=20)
    for n in range(count):
        emu.create_lead(
            form_id, {"email": f"p{n}@acme.com"}, created_time=start + timedelta(minutes=n)
        )
    return Form(form_id, PAGE, "Big form", status)


def lead_reads(emu: GraphEmulator, form_id: str) -> list[dict[str, str]]:
    return [params for method, path, params in emu.requests if path == f"/{form_id}/leads"]


class Recorder(View):
    def __init__(self):
        self.totals: list[int | None] = []
        self.waits: list[tuple[float, str]] = []

    def form_started(self, form, progress, total):
        self.totals.append(total)

    def waiting(self, form, seconds, reason):
        self.waits.append((seconds, reason))


def test_a_throttle_is_waited_out_as_the_usage_header_says_and_the_read_goes_on(graph, store):
    """2,500 leads, 80005 on the second list call (twice): waits, then reads every lead."""
    form = form_with_leads(graph, 2500)

    class ThrottleSecondCall(Recorder):
        def page_read(self, form, progress):
            if progress.read == 100:  # no regain estimate, then one of 2 minutes
                graph.inject_fault(80005, times=1, path=f"/{form.id}/leads")
                graph.inject_fault(80005, times=1, path=f"/{form.id}/leads", regain_minutes=2)

    slept: list[float] = []
    view = ThrottleSecondCall()
    run = Backfill(store, client(graph), view=view, sleep=slept.append)
    assert run.run_form(form, utcnow() - timedelta(days=30))
    assert run.report.leads_read == 2500 and run.report.leads_new == 2500
    assert store.count_leads() == 2500
    assert slept == [60.0, 120.0]  # GRAPH_THROTTLE_WAIT, then estimated_time_to_regain_access
    assert all("throttling" in reason for _, reason in view.waits)
    assert view.totals == [2500]  # the form's leads_count, from Graph
    assert len(lead_reads(graph, form.id)) == 27  # 25 pages of 100 and the 2 throttled asks
    assert store.checkpoint(form.id).last_created_time is not None


def test_a_throttle_on_a_later_page_resumes_from_that_page_not_from_the_start(graph, store):
    form = form_with_leads(graph, 300)
    seen_pages: list[int] = []

    class Throttle(View):
        def page_read(self, form, progress):
            seen_pages.append(progress.read)
            if progress.read == 100:  # Graph throttles the second list call
                graph.inject_fault(80005, times=1, path=f"/{form.id}/leads", regain_minutes=1)

    slept: list[float] = []
    run = Backfill(store, client(graph), view=Throttle(), sleep=slept.append)
    assert run.run_form(form, utcnow() - timedelta(days=30))
    assert slept == [60.0] and seen_pages == [100, 200, 300]
    reads = lead_reads(graph, form.id)
    assert len(reads) == 4  # page 1, throttled page 2, page 2 again, page 3
    assert reads[1]["after"] == reads[2]["after"]  # the same cursor, not a restart
    assert store.count_leads() == 300


def test_an_interrupted_backfill_resumes_from_its_cursor_without_rereading(graph, store):
    form = form_with_leads(graph, 2500)

    class StopAfterThreePages(View):
        def page_read(self, form, progress):
            if progress.read >= 300:
                first.stop.set()  # as Ctrl-C or SIGTERM would

    first = Backfill(store, client(graph), view=StopAfterThreePages())
    assert not first.run_form(form, utcnow() - timedelta(days=30))
    assert first.report.interrupted and first.report.leads_read == 300
    saved = FormProgress.from_json(store.get_meta(PROGRESS_KEY.format(form_id=form.id)))
    assert saved.read == 300 and saved.after and not saved.done
    assert store.checkpoint(form.id).last_created_time is None  # the poller is not misled
    calls_before = len(lead_reads(graph, form.id))

    second = Backfill(store, client(graph))
    assert second.run_form(form, utcnow() - timedelta(days=30))
    assert second.report.leads_read == 2200 and second.report.leads_new == 2200
    reads = lead_reads(graph, form.id)[calls_before:]
    assert reads[0]["after"] == saved.after  # went on from the saved cursor
    assert len(reads) == 22
    assert store.count_leads() == 2500


def test_a_finished_form_is_only_topped_up_with_newer_leads(graph, store):
    form = form_with_leads(graph, 250)
    assert Backfill(store, client(graph)).run_form(form, utcnow() - timedelta(days=30))
    graph.create_lead(form.id, {"email": "new@acme.com"})
    again = Backfill(store, client(graph))
    assert again.run_form(form, utcnow() - timedelta(days=30))
    assert again.report.leads_read == 1 and again.report.leads_new == 1


def test_asking_for_more_history_than_was_read_reads_again_from_the_new_start():
    now = utcnow()
    done = FormProgress(now - timedelta(days=7), now, now - timedelta(days=7), done=True)
    wider = plan(done, now - timedelta(days=30), now)
    assert wider.read_from == now - timedelta(days=30) and wider.after == "" and not wider.done
    same = plan(done, now - timedelta(days=7) + timedelta(seconds=5), now)
    assert same.history_from == done.history_from and same.read_from > done.read_from


def write_config(tmp_path, emu: GraphEmulator) -> str:
    return write_cli_config(tmp_path, emu, pages=[PAGE])


def test_backfill_command_shows_the_total_and_reads_archived_forms_when_asked(graph, tmp_path):
    active = form_with_leads(graph, 120)
    archived = form_with_leads(graph, 30, status="ARCHIVED")
    config = write_config(tmp_path, graph)
    result = runner.invoke(app, ["backfill", "--since", "30d", "-c", config])
    assert result.exit_code == 0, result.output
    assert "120/120" in result.output  # progress against Graph's leads_count
    assert "120 leads read, 120 new, from 1 forms" in result.output
    assert not lead_reads(graph, archived.id)
    result = runner.invoke(app, ["backfill", "--form", archived.id, "-c", config])
    assert result.exit_code == 1
    assert "--include-archived" in result.output
    result = runner.invoke(app, ["backfill", "--include-archived", "--since", "30d", "-c", config])
    assert result.exit_code == 0, result.output
    assert "30 leads read, 30 new, from 2 forms" in result.output
    assert lead_reads(graph, active.id)


def test_backfill_command_resumes_a_stopped_run(graph, tmp_path):
    form = form_with_leads(graph, 500)
    config = write_config(tmp_path, graph)
    store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    store.migrate()

    class Stop(View):
        def page_read(self, form, progress):
            run.stop.set()

    run = Backfill(store, client(graph), view=Stop())
    run.run_form(form, utcnow() - timedelta(days=30))
    store.close()
    result = runner.invoke(app, ["backfill", "--since", "30d", "-c", config])
    assert result.exit_code == 0, result.output
    assert "resuming after 100" in result.output
    assert "400 leads read, 400 new" in result.output
    assert json.loads(open_meta(tmp_path, form.id))["done"] is True


def open_meta(tmp_path, form_id: str) -> str:
    store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        return store.get_meta(PROGRESS_KEY.format(form_id=form_id)) or "{}"
    finally:
        store.close()
