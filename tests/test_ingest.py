"""Every Facebook lead ends up once in the store: webhooks, polling, backfill, faults.

The daemon, the poller and the real facebook-business SDK run against the Graph
emulator over real HTTP, on a real SQLite file.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import requests

from leadsync.daemon import graph_client
from leadsync.emulators.graph import GraphEmulator
from leadsync.errors import AuthError
from leadsync.facebook.graph import GraphClient
from leadsync.ingest.poller import Poller
from leadsync.models import Form, utcnow
from tests.daemon_harness import DaemonThread, daemon_settings, wait_until

QUESTIONS = ["full_name", "email", "phone_number", "job_title", "interests"]


@pytest.fixture
def store_backend() -> str:
    """These flows run on the default store; tests/test_store*.py cover both backends."""
    return "sqlite"


def make_lead(graph: GraphEmulator, form_id: str, n: int, **kwargs) -> str:
    answers = {
        "full_name": f"Person {n}",
        "email": f"person{n}@example.com",
        "phone_number": f"+1555{n:07d}",
        "job_title": "VP Sales",
        "interests": ["pricing", "demo", "support"][: 1 + n % 3],  # multi-value answers
    }
    return graph.create_lead(form_id, answers, **kwargs)


def client_for(graph: GraphEmulator) -> GraphClient:
    return GraphClient(
        access_token=graph.access_token, app_secret=graph.app_secret, graph_url=graph.url
    )


def test_webhooks_twice_out_of_order_plus_poll_only_leads_store_each_lead_once(graph, store_url):
    """1,000 webhook leads over 3 forms on 2 pages, each notified twice and shuffled, and 200
    leads visible only by polling: the store holds exactly 1,200 leads, all answers intact."""
    forms = [graph.add_form("111", "A", QUESTIONS), graph.add_form("111", "B", QUESTIONS)]
    forms.append(graph.add_form("222", "C", QUESTIONS))
    hooked = [make_lead(graph, forms[n % 3], n) for n in range(1000)]
    polled = [make_lead(graph, forms[n % 3], n) for n in range(1000, 1200)]
    settings = daemon_settings(graph, store_url, pages=["111", "222"])
    with DaemonThread(settings) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        posts = graph.send_webhook(hooked, copies=2, shuffle=True, per_post=7).result(timeout=120)
        assert all(post.delivered for post in posts)
        wait_until(lambda: running.store.count_leads() == 1200, 90, "1,200 stored leads")
        stored = running.store.get_leads(hooked + polled)
    assert set(stored) == set(hooked + polled)
    for n, lead_id in enumerate(hooked + polled):
        lead = stored[lead_id]
        assert lead.answers["email"] == (f"person{n}@example.com",)
        assert lead.answers["interests"] == tuple(["pricing", "demo", "support"][: 1 + n % 3])
        assert lead.form_name in {"A", "B", "C"}
    # Fetched in Graph batches: far fewer calls than leads.
    assert graph.call_count("/") < 1000 / 10


def test_backfill_reads_2500_leads_across_an_empty_page_with_next(graph, store):
    """A form with 2,500 leads and an empty page that still has paging.next mid-way."""
    form_id = graph.add_form("111", "Big", QUESTIONS)
    start = (utcnow() - timedelta(days=20)).replace(microsecond=0)  # Graph times are whole seconds
    ids = [
        make_lead(graph, form_id, n, created_time=start + timedelta(minutes=n)) for n in range(2500)
    ]
    graph.inject_fault("empty_page", times=1, path=f"/{form_id}/leads")
    poller = Poller(store, client_for(graph))
    (form,) = poller.discover("111")
    assert poller.poll_form(form, since=utcnow() - timedelta(days=30))
    assert store.count_leads() == 2500
    assert set(store.get_leads(ids)) == set(ids)
    assert store.checkpoint(form_id).last_created_time == start + timedelta(minutes=2499)


def test_form_created_while_daemon_runs_is_polled_without_restart(graph, store_url):
    graph.add_form("111", "First", QUESTIONS)
    settings = daemon_settings(graph, store_url, pages=["111"], facebook={"poll_interval": "1s"})
    with DaemonThread(settings) as running:
        wait_until(lambda: running.store.forms("111"), 20, "first form discovered")
        new_form = graph.add_form("111", "Added later", QUESTIONS)
        lead_id = make_lead(graph, new_form, 1)  # no webhook: only the poller can find it
        wait_until(lambda: running.store.get_leads([lead_id]), 30, "lead of the new form")
        assert {f.id for f in running.store.forms("111")} >= {new_form}


@pytest.mark.parametrize("kind", [4, 17, 32, 613, 80005, "http500", "html502"])
def test_poll_fault_keeps_checkpoint_and_loses_nothing(graph, store, kind):
    """Each throttling code, 500 and 502: the poll fails, the checkpoint does not move, and the
    next poll stores every lead."""
    form_id = graph.add_form("111", "F", QUESTIONS)
    first = make_lead(graph, form_id, 1, created_time=utcnow() - timedelta(hours=2))
    poller = Poller(store, client_for(graph))
    (form,) = poller.discover("111")
    assert poller.poll_form(form)
    before = store.checkpoint(form_id).last_created_time
    later = [make_lead(graph, form_id, n) for n in range(2, 40)]
    graph.inject_fault(kind, times=1, path=f"/{form_id}/leads")
    assert not poller.poll_form(form)
    assert store.checkpoint(form_id).last_created_time == before
    assert store.checkpoint(form_id).last_error
    assert poller.poll_form(form)
    assert set(store.get_leads([first, *later])) == {first, *later}
    assert store.checkpoint(form_id).last_created_time > before
    assert store.checkpoint(form_id).last_error == ""


def test_expired_token_is_reported_and_polling_resumes_with_a_new_one(graph, store):
    form_id = graph.add_form("111", "F", QUESTIONS)
    lead_id = make_lead(graph, form_id, 1)
    client = client_for(graph)
    poller = Poller(store, client)
    graph.expire_token()
    report = poller.poll_page("111")
    assert report.auth_failed and not store.get_leads([lead_id])
    (facebook,) = [s for s in store.statuses() if s.service == "facebook"]
    assert not facebook.ok and "leadsync check" in facebook.message
    with pytest.raises(AuthError):
        client.list_forms("111")
    client.set_access_token(graph.issue_token("fresh-token"))
    report = poller.poll_page("111")
    assert not report.errors and store.get_leads([lead_id])


def test_webhook_lead_arrives_after_token_replaced_in_config(graph, tmp_path, store_url):
    """The daemon reports code 190 and takes a token rotated in its config file (SIGHUP path)."""
    form_id = graph.add_form("111", "F", QUESTIONS)
    settings = daemon_settings(graph, store_url, pages=["111"])
    config = tmp_path / "leadsync.toml"
    with DaemonThread(settings, config_path=config) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        wait_until(lambda: running.store.statuses(), 20, "first poll")
        graph.expire_token()
        lead_id = make_lead(graph, form_id, 1)
        assert graph.send_webhook([lead_id]).result(timeout=30)[0].delivered

        def unhealthy() -> str:
            reply = requests.get(f"{running.url}/healthz", timeout=5)
            return reply.text if reply.status_code == 503 else ""

        assert "facebook_token_invalid" in wait_until(unhealthy, 20, "unhealthy")
        assert not running.store.get_leads([lead_id])
        new_token = graph.issue_token("rotated-token")
        config.write_text(_config_text(settings, new_token))
        running.daemon.reload()
        wait_until(lambda: running.store.get_leads([lead_id]), 60, "lead fetched with new token")


def _config_text(settings, token: str) -> str:
    """The same settings with another token (its pages kept: a reload applies them too)."""
    fb = settings.facebook
    pages = "".join(f'[[facebook.pages]]\nid = "{page.id}"\n' for page in fb.pages)
    return f"""
[facebook]
app_id = "{fb.app_id}"
app_secret = "{fb.app_secret.get_secret_value()}"
verify_token = "{fb.verify_token.get_secret_value()}"
access_token = "{token}"
graph_url = "{fb.graph_url}"
{pages}[store]
url = "{settings.store.url}"
"""


def test_graph_client_from_settings_points_at_graph_url(graph, store_url):
    settings = daemon_settings(graph, store_url, pages=["111"])
    graph.add_form("111", "F", QUESTIONS)
    forms = graph_client(settings).list_forms("111")
    assert [f.name for f in forms] == ["F"] and isinstance(forms[0], Form)


def test_random_duplicates_across_webhook_and_poll_store_once(graph, store):
    """The same leads by webhook-style notifications and by polling are stored once."""
    form_id = graph.add_form("111", "F", QUESTIONS)
    ids = [make_lead(graph, form_id, n) for n in range(60)]
    poller = Poller(store, client_for(graph))
    (form,) = poller.discover("111")
    random.shuffle(ids)
    from leadsync.config import PageSettings
    from leadsync.ingest.fetch import LeadFetcher
    from leadsync.ingest.scope import PageScope
    from leadsync.models import Notification

    store.add_notifications([Notification(i, "111", form_id) for i in ids[:30]])
    poller.poll_form(form)
    fetcher = LeadFetcher(
        store, client_for(graph), PageScope.of([PageSettings(id="111")]), owner="test"
    )
    fetcher.run_once()
    assert store.count_leads() == 60
    assert store.pending_notifications(100) == []


def test_poller_slows_down_when_graph_usage_passes_80_percent(graph, store):
    """Above 80% usage a round stops after the form in hand; the rest wait for the next one."""
    ids = [graph.add_form("111", f"F{n}", QUESTIONS) for n in range(3)]
    for form_id in ids:
        make_lead(graph, form_id, 1)
    poller = Poller(store, client_for(graph))
    graph.set_usage(85)
    report = poller.poll_page("111")
    assert report.forms == 1 and report.leads_new == 1
    graph.set_usage(10)
    report = poller.poll_page("111")
    assert report.forms == 3 and report.leads_new == 2  # the skipped forms come first
