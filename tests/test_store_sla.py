"""The speed-to-lead part of the `Store` contract (waiting MQLs, alerts once), on both backends."""

from __future__ import annotations

from datetime import timedelta

from leadsync.models import Lead, LeadStage, Owner, Pool, RouteRequest, utcnow
from leadsync.sla import SlaAlert
from leadsync.store import open_store
from tests.store_fixtures import race

NOW = utcnow()
ANA = Owner("Ana", "ana@example.com", "U0ANA", "", "mon-fri 09:00-17:00 Europe/Paris")
LEASE = timedelta(minutes=1)


def mqls(store, *minutes_ago: int) -> list[str]:
    """Leads "1", "2", ... that became MQLs that many minutes ago."""
    ids = [str(n) for n in range(1, len(minutes_ago) + 1)]
    store.save_leads([Lead(i, NOW, "p1", "f1") for i in ids])
    store.record_stages(
        [
            LeadStage(i, "mql", NOW - timedelta(minutes=m))
            for i, m in zip(ids, minutes_ago, strict=True)
        ]
    )
    return ids


def alert(lead_id: str, kind: str = "reminder") -> SlaAlert:
    return SlaAlert(lead_id, kind, NOW, "ana@example.com")  # type: ignore[arg-type]


def test_waiting_mqls_oldest_first_with_owner_until_contacted(store):
    mqls(store, 5, 30, 10)

    pool = Pool("Ana", "inbound", (ANA,), (1,))
    store.assign_owners([RouteRequest("2", "", pool)], {"Ana": ANA})
    waiting = store.waiting_mqls(NOW - timedelta(hours=1))
    assert [w.lead_id for w in waiting] == ["2", "3", "1"]
    assert waiting[0].owner == ANA and waiting[0].rule == "inbound"
    assert waiting[0].mql_at == NOW - timedelta(minutes=30)
    assert waiting[1].owner is None
    store.record_stages([LeadStage("3", "sql", NOW)])  # any sales stage is a first contact
    assert [w.lead_id for w in store.waiting_mqls(NOW - timedelta(hours=1))] == ["2", "1"]
    assert [w.lead_id for w in store.waiting_mqls(NOW - timedelta(minutes=20))] == ["1"]


def test_an_alert_is_claimed_once_and_sent_alerts_are_known(store):
    mqls(store, 10)
    assert store.claim_sla_alerts([alert("1")], "a", LEASE) == [alert("1")]
    assert store.claim_sla_alerts([alert("1")], "b", LEASE) == []  # claimed by a
    store.settle_sla_alerts([alert("1")])
    assert store.claim_sla_alerts([alert("1")], "b", timedelta(0)) == []  # sent: never again
    [stored] = store.sla_alerts(["1"])
    assert (stored.state, stored.attempts, stored.target) == ("sent", 1, "ana@example.com")
    assert stored.sent_at is not None and stored.due_at == NOW
    [waiting] = store.waiting_mqls(NOW - timedelta(hours=1))
    assert waiting.alerted == {"reminder"}


def test_a_failed_or_expired_claim_is_claimed_again_and_a_given_up_one_is_not(store):
    mqls(store, 10, 10)
    store.claim_sla_alerts([alert("1"), alert("2")], "a", timedelta(0))  # expires at once
    assert store.claim_sla_alerts([alert("1")], "b", LEASE) == [alert("1")]
    store.settle_sla_alerts([], [alert("1")], "relay down")
    assert store.claim_sla_alerts([alert("1")], "c", LEASE) == [alert("1")]
    store.settle_sla_alerts([], [alert("1")], "no address", give_up=True)
    assert store.claim_sla_alerts([alert("1")], "d", timedelta(0)) == []
    stored = {a.lead_id: a for a in store.sla_alerts(["1", "2"])}
    assert (stored["1"].state, stored["1"].attempts, stored["1"].last_error) == (
        "failed",
        2,
        "no address",
    )
    first = store.waiting_mqls(NOW - timedelta(hours=1))[0]
    assert first.alerted == first.given_up == {"reminder"}
    assert stored["2"].state == "claimed"


def test_racing_replicas_claim_each_alert_once(store_backend, store_url_factory):
    url = store_url_factory(store_backend)
    first = open_store(url)
    first.migrate()
    ids = mqls(first, *([10] * 20))
    alerts = [alert(i, kind) for i in ids for kind in ("reminder", "escalation")]
    stores = [first, open_store(url), open_store(url)]
    claimed: list[list[SlaAlert]] = [[] for _ in stores]

    def claim(n: int) -> None:
        for one in alerts:
            claimed[n].extend(stores[n].claim_sla_alerts([one], f"r{n}", LEASE))

    race([(claim, (n,)) for n in range(len(stores))], stores)
    everything = [a for part in claimed for a in part]
    assert sorted((a.lead_id, a.kind) for a in everything) == sorted(
        (a.lead_id, a.kind) for a in alerts
    )
