"""Replicas' fetchers share the notifications: each lead is read from Graph once, stored once.

Three `LeadFetcher`s, each with a store object and a Graph client of its own (as
three replicas have), race over one database on both backends (a SQLite file,
a PostgreSQL schema) against one Graph emulator over real HTTP; the emulator
counts how often each lead was served.
"""

from __future__ import annotations

import threading

from leadsync.config import PageSettings
from leadsync.emulators.graph import GraphEmulator
from leadsync.facebook.graph import GraphClient
from leadsync.ingest.fetch import LeadFetcher
from leadsync.ingest.scope import PageScope
from leadsync.models import Notification
from leadsync.store import open_store
from tests.store_fixtures import race

LEADS = 1000
REPLICAS = 3
# Rounds of one Graph batch each: 20 rounds over 3 fetchers, so every fetcher gets turns.
ROUND = 50


def client_for(graph: GraphEmulator) -> GraphClient:
    return GraphClient(
        access_token=graph.access_token, app_secret=graph.app_secret, graph_url=graph.url
    )


def test_replicas_fetch_each_lead_from_graph_once_and_store_it_once(graph, store, store_url):
    form_id = graph.add_form("111", "F", ["email"])
    lead_ids = [graph.create_lead(form_id, {"email": f"p{n}@example.com"}) for n in range(LEADS)]
    store.add_notifications([Notification(lead_id, "111", form_id) for lead_id in lead_ids])
    replicas = [open_store(store_url) for _ in range(REPLICAS)]
    scope = PageScope.of([PageSettings(id="111")])
    fetchers = [
        LeadFetcher(replica, client_for(graph), scope, owner=f"replica-{n}")
        for n, replica in enumerate(replicas)
    ]
    start, stored = threading.Barrier(REPLICAS), {n: [] for n in range(REPLICAS)}

    def fetch_all(n: int) -> None:
        start.wait()
        while batch := fetchers[n].run_once(limit=ROUND):  # [] once nothing is left to claim
            stored[n].extend(batch)

    race([(fetch_all, (n,)) for n in range(REPLICAS)], replicas)

    assert graph.lead_reads() == dict.fromkeys(lead_ids, 1)
    everything = [lead_id for batch in stored.values() for lead_id in batch]
    assert sorted(everything) == sorted(lead_ids)  # each stored once, by one replica
    assert store.count_leads() == LEADS and store.notification_backlog().waiting == 0
    assert sum(1 for batch in stored.values() if batch) > 1, "the replicas shared the work"
