"""Only configured pages and forms are ours (ingest/scope.py, through the webhook route and
the fetcher): one Meta app serves several clients' pages, and a lead of another page, or of
a form excluded by `pages[].forms`, is never fetched, stored or delivered; a lead is filed
under the page Graph gives its form, whatever the webhook claimed."""

from __future__ import annotations

import requests

from leadsync.config import PageSettings
from leadsync.emulators.receivers import WebhookReceiver
from leadsync.facebook.graph import GraphClient
from leadsync.ingest.fetch import LeadFetcher
from leadsync.ingest.scope import PageScope
from leadsync.models import Notification
from tests.daemon_harness import DaemonThread, daemon_settings, wait_until
from tests.store_fixtures import run_sql

QUESTIONS = ["full_name", "email"]


def test_only_leads_of_configured_pages_and_forms_are_stored_and_delivered(graph, tmp_path):
    ours = graph.add_form("111", "Ours", QUESTIONS)
    excluded = graph.add_form("111", "Excluded", QUESTIONS)
    other_client = graph.add_form("222", "Another client's", QUESTIONS)
    graph.add_page("333", "Ours too")

    def lead(form_id: str) -> str:
        return graph.create_lead(form_id, {"full_name": "Ann Example", "email": "a@example.com"})

    kept, of_excluded, of_other = lead(ours), lead(excluded), lead(other_client)
    # Signed by Meta, yet their page ids are claims: Graph's form -> page decides.
    claims_ours = lead(other_client)  # no form_id, page 111: Graph says page 222
    misfiled = lead(ours)  # no form_id, page 333 (configured): Graph says page 111
    with WebhookReceiver() as receiver:
        destination = {"name": "crm", "type": "webhook", "url": f"{receiver.url}/in"}
        settings = daemon_settings(
            graph,
            f"sqlite:///{tmp_path / 'l.db'}",
            pages=[],
            destinations=[{**destination, "secret": receiver.secret}],
            facebook={"pages": [{"id": "111", "forms": [ours]}, {"id": "333"}]},
        )
        with DaemonThread(settings) as running:
            graph.set_webhook_target(f"{running.url}/webhook")
            posts = graph.send_webhook([kept, of_excluded, of_other]).result(timeout=30)
            assert all(post.delivered for post in posts)  # 200: Meta must not retry them
            created = {"created_time": int(graph.world.leads[kept].created_time.timestamp())}
            claims = [
                {"leadgen_id": claims_ours, "page_id": "111", **created},
                {"leadgen_id": misfiled, "page_id": "333", **created},
            ]
            body, signature = graph.webhook_body(claims)
            reply = requests.post(
                f"{running.url}/webhook", data=body, timeout=10,
                headers={"X-Hub-Signature-256": signature},
            )  # fmt: skip
            assert reply.status_code == 200

            def settled() -> bool:
                delivered = receiver.documents_for(kept) and receiver.documents_for(misfiled)
                return bool(delivered) and running.store.pending_notifications(10) == []

            wait_until(settled, 30, "the leads that are ours delivered, the rest settled")
            metrics = requests.get(f"{running.url}/metrics", timeout=5).text
            stored = running.store.get_leads([kept, of_excluded, of_other, claims_ours, misfiled])
            forms = {form.id for form in running.store.forms()}
        delivered = {str(lead["lead_id"]) for r in receiver.deliveries() for lead in r.leads()}
    assert set(stored) == {kept, misfiled}
    assert stored[misfiled].page_id == "111" and stored[misfiled].form_id == ours
    assert stored[misfiled].form_name == "Ours"
    assert delivered == {kept, misfiled}
    assert other_client not in forms  # another client's form is not on our status page
    assert "leadsync_webhook_notifications_ignored_total 2.0" in metrics  # excluded + other


def test_a_lead_whose_form_graph_will_not_show_waits_or_is_dropped(graph, store, store_url):
    """Whose lead it is comes from its form's page: a Graph hiccup defers the lead, a form
    this token may never see drops it; neither stores a lead under a guessed page."""
    form_id = graph.add_form("111", "Hidden", QUESTIONS)
    hiccup, hidden = (graph.create_lead(form_id, {"email": f"{n}@example.com"}) for n in "ab")
    client = GraphClient(
        access_token=graph.access_token, app_secret=graph.app_secret, graph_url=graph.url
    )
    fetcher = LeadFetcher(store, client, PageScope.of([PageSettings(id="111")]), owner="test")
    store.add_notifications([Notification(hiccup, "111")])
    graph.inject_fault("http500", times=1, path=f"/{form_id}")
    assert fetcher.run_once() == [] and not store.get_leads([hiccup])
    assert store.pending_notifications(10) == []  # deferred, not lost: it comes back later

    store.add_notifications([Notification(hidden, "111")])
    graph.inject_fault("hidden", times=1, path=f"/{form_id}")
    fresh = LeadFetcher(store, client, PageScope.of([PageSettings(id="111")]), owner="test")
    assert fresh.run_once() == [] and not store.get_leads([hidden])
    states = run_sql(store_url, "SELECT lead_id, state FROM notifications ORDER BY lead_id")
    assert states == sorted([(hiccup, "pending"), (hidden, "dropped")])
    assert form_id not in {form.id for form in store.forms()}
