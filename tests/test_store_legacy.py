"""A database made by an earlier release opens with this code and keeps working.

tests/fixtures/ holds a SQLite file and a PostgreSQL dump written through the
Store API by the release before the store's rewrite (see
tests/fixtures/make_legacy_stores.py, which also holds the data). Each test
opens a copy, migrates it, checks that every lead, score, event, outbox item,
dead letter, notification, form, checkpoint, lease and status reads back as it
was written, then goes on using it: claims, settles, scores and replays.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from leadsync.abc import ScoreUpdate, Store
from leadsync.models import (
    Checkpoint,
    Contact,
    DeliveryResult,
    Lead,
    LeadStage,
    ServiceStatus,
    utcnow,
)
from leadsync.store import open_store, postgres_target
from tests.fixtures import make_legacy_stores as legacy
from tests.store_fixtures import run_sql

# Every outbox row as the earlier release left it:
# (id, lead, destination, revision, state, attempts, external id, claimed by, last error).
OUTBOX = [
    (1, "1001", "sheet", 1, "delivered", 0, "", None, ""),
    (2, "1001", "crm", 1, "pending", 0, "", None, ""),
    (3, "1001", "sheet", 2, "delivered", 0, "", None, ""),
    (4, "1001", "crm", 2, "pending", 0, "", None, ""),
    (5, "1001", "sheet", 3, "delivered", 0, "row-7", None, ""),
    (6, "1001", "crm", 3, "pending", 0, "", None, ""),
    (7, "1002", "sheet", 1, "pending", 1, "", None, "Sheets 503"),
    (8, "1002", "crm", 1, "dead", 0, "", None, "HubSpot said no"),
    (9, "1003", "sheet", 1, "pending", 0, "", legacy.OWNER, ""),
]
OUTBOX_COLUMNS = (
    "SELECT id, lead_id, destination, revision, state, attempts, external_id, claimed_by,"
    " last_error FROM outbox ORDER BY id"
)


@pytest.fixture
def legacy_url(store_backend, store_url_factory, tmp_path) -> str:
    """A copy of the earlier release's database of the backend under test."""
    if store_backend == "sqlite":
        shutil.copyfile(legacy.SQLITE_FILE, tmp_path / "legacy.db")
        return f"sqlite:///{tmp_path / 'legacy.db'}"
    url = store_url_factory("postgres")
    conninfo, schema = postgres_target(url)
    dump = legacy.POSTGRES_DUMP.read_text(encoding="utf-8")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(dump.replace(legacy.POSTGRES_SCHEMA, schema).encode())
    return url


@pytest.fixture
def old(legacy_url) -> Iterator[Store]:
    store = open_store(legacy_url)
    store.migrate()
    yield store
    store.close()


def test_every_row_an_earlier_release_wrote_reads_back(old, legacy_url):
    assert [tuple(row) for row in run_sql(legacy_url, OUTBOX_COLUMNS)] == OUTBOX
    assert old.get_leads([lead.id for lead in legacy.LEADS]) == {x.id: x for x in legacy.LEADS}
    assert old.count_leads() == 4
    assert old.lead_ids_by_email("ann@example.com") == ["1001"]
    assert old.unscored_lead_ids(10) == ["1004"]
    assert old.current_scores(["1001", "1002", "1003", "1004"]) == {
        "1001": (legacy.SCORES_1001[-1], 3),
        "1002": (legacy.SCORE_1002, 1),
        "1003": (legacy.SCORE_1003, 1),
    }
    assert old.events_for(["1001", "1002"]) == {
        "1001": legacy.EVENTS[:2],
        "1002": legacy.EVENTS[2:],
    }
    assert old.routed_destinations(["1001", "1003"]) == {
        "1001": {"sheet", "crm"},
        "1003": {"sheet"},
    }
    assert old.external_ids("sheet", ["1001", "1002"]) == {"1001": "row-7"}
    assert old.forms() == legacy.FORMS
    assert old.checkpoints() == [
        Checkpoint("f1", legacy.T0, old.checkpoint("f1").polled_at, ""),
        Checkpoint("f2", None, old.checkpoint("f2").polled_at, "Graph said 190"),
    ]
    assert [n.lead_id for n in old.pending_notifications(10)] == ["2001", "2003"]
    assert old.statuses() == [
        ServiceStatus("facebook", True, "", legacy.T0),
        ServiceStatus("sheets:sales", False, "quota exceeded", legacy.T0),
    ]
    assert old.get_meta("rules_version") == "v-legacy"
    assert old.owners() == {legacy.OWNER}


def test_leads_that_were_mqls_before_stages_existed_have_reached_the_mql_stage(old):
    found = old.stages_for(["1001", "1002", "1003", "1004"])
    assert [(s.lead_id, s.stage, s.source) for v in found.values() for s in v] == [
        ("1001", "mql", "scoring")
    ]
    assert old.record_stages([LeadStage("1002", "won", legacy.T0, Decimal("10"), "events")])


def test_the_dead_letter_and_queue_figures_read_back(old):
    [dead] = old.dead_letters()
    assert (dead.item.lead_id, dead.item.destination, dead.item.revision) == ("1002", "crm", 1)
    assert dead.last_error == "HubSpot said no"
    stats = {s.destination: (s.pending, s.dead, s.delivered) for s in old.destination_stats()}
    assert stats == {"crm": (3, 1, 0), "sheet": (2, 0, 3)}
    overview = {o.lead_id: (o.points, dict(o.destinations)) for o in old.recent_leads()}
    assert overview["1001"] == (75, {"sheet": "delivered", "crm": "pending"})
    assert overview["1002"] == (40, {"sheet": "pending", "crm": "dead"})
    assert overview["1004"] == (None, {})


def test_an_earlier_release_s_database_keeps_working(old):
    [item] = old.claim("crm", 10, "new", timedelta(minutes=1))  # the newest revision only
    assert (item.lead_id, item.revision) == ("1001", 3)
    old.complete([item], [DeliveryResult("1001", external_id="crm-1")])
    assert old.claim("sheet", 10, "new", timedelta(minutes=1)) == []  # held or not yet due
    assert not old.acquire_lease("poller", "new", timedelta(minutes=1))
    old.release_owner(legacy.OWNER)
    assert [i.lead_id for i in old.claim("sheet", 10, "new", timedelta(minutes=1))] == ["1003"]
    assert old.replay(destination="crm") == 1
    notes = old.claim_notifications("new", 10, timedelta(minutes=1))  # unclaimed before 0007
    assert [n.lead_id for n in notes] == ["2001", "2003"]
    assert old.save_leads([Lead("1005", legacy.T0, "p1", "f1")]) == ["1005"]
    changed = old.save_scores(
        [
            ScoreUpdate("1005", legacy.SCORE_1003, ("crm",), read_revision=0),
            ScoreUpdate("1001", legacy.SCORE_1002, ("crm",), read_revision=3),
        ]
    )
    assert changed == {"1005": 1, "1001": 4}
    claimed = old.claim("crm", 10, "new", timedelta(minutes=1))
    assert sorted((i.lead_id, i.revision) for i in claimed) == [
        ("1001", 4),
        ("1002", 1),
        ("1005", 1),
    ]
    stats = {s.destination: (s.pending, s.dead, s.delivered) for s in old.destination_stats()}
    assert stats == {"crm": (3, 0, 3), "sheet": (2, 0, 3)}


def schema(url: str) -> list[tuple]:
    """Every table's columns, and every index and constraint, as the database describes them."""
    if url.startswith("sqlite:"):
        tables = [
            name for (name,) in run_sql(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        described = []
        for table in sorted(tables):
            for _, name, kind, notnull, default, pk in run_sql(url, f"PRAGMA table_info({table})"):
                described.append((table, name, kind.upper(), notnull, default, pk))
            described += [
                (table, *key) for key in run_sql(url, f"PRAGMA foreign_key_list({table})")
            ]
        indexes = "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        return described + run_sql(url, indexes)
    columns = run_sql(
        url,
        "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default,"
        " collation_name, is_identity, identity_generation FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    )
    indexes = run_sql(
        url,
        "SELECT indexname, replace(indexdef, current_schema(), 'S') FROM pg_indexes"
        " WHERE schemaname = current_schema() ORDER BY indexname",
    )
    constraints = run_sql(
        url,
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2",
    )
    return columns + indexes + constraints


def test_a_new_database_gets_the_schema_an_earlier_release_made(legacy_url, store_url):
    for url in (legacy_url, store_url):
        store = open_store(url)
        store.migrate()
        store.close()
    assert schema(store_url) == schema(legacy_url)
    assert len(schema(store_url)) > 80


def test_an_earlier_release_s_people_are_known_so_their_next_lead_is_a_repeat(old):
    later = Lead("1009", utcnow(), "p1", "f1", answers={"email": (" ANN@example.com",)})
    old.save_leads([later])
    [contact] = old.record_contacts([Contact("1009", "email:ann@example.com")]).values()
    assert contact.repeat_of == "1001"  # Ann's earliest lead of the earlier release
