"""The routing part of the `Store` contract (contacts, persons, owners), on both backends."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from leadsync.models import Contact, Lead, Owner, Pool, RouteRequest, utcnow
from leadsync.store import open_store
from tests.store_fixtures import race

NOW = utcnow()
ANA, BO, CY = Owner("Ana", "ana@example.com", "U0ANA"), Owner("Bo"), Owner("Cy")
KNOWN = {owner.name: owner for owner in (ANA, BO, CY)}
POOL = Pool("Ana,Bo,Cy", "everyone", (ANA, BO, CY), (2, 1, 1))


def lead(lead_id: str, minutes: int = 0) -> Lead:
    return Lead(lead_id, NOW - timedelta(minutes=minutes), "p1", "f1")


def test_a_person_seen_again_is_a_repeat_of_their_first_lead_with_an_event(store):
    store.save_leads([lead("1", 5), lead("2", 1), lead("3")])
    first = store.record_contacts([Contact("1", "email:a@x.io", "+14155552671")])
    again = store.record_contacts([Contact("2", "email:a@x.io"), Contact("3", "", "", False, "12")])
    assert first["1"].repeat_of == ""
    assert again["2"].repeat_of == "1"
    assert again["3"] == Contact("3", "", "", False, "12")  # no key: never a repeat, kept as typed
    [event] = store.events_for(["2"])["2"]
    assert (event.id, event.type, event.at) == (
        "repeat_submission:2",
        "repeat_submission",
        NOW - timedelta(minutes=1),
    )
    assert store.events_for(["1", "3"]) == {}


def test_a_recorded_contact_is_never_recorded_again(store):
    store.save_leads([lead("1"), lead("2")])
    store.record_contacts([Contact("1", "email:a@x.io")])
    store.record_contacts([Contact("2", "email:a@x.io")])
    # Recorded again (a re-score, another replica): what was recorded stands, no new event.
    again = store.record_contacts([Contact("2", "email:other@x.io"), Contact("1", "email:a@x.io")])
    assert again["2"].repeat_of == "1" and again["2"].person_key == "email:a@x.io"
    assert store.contacts(["1", "2"]) == again
    assert len(store.events_for(["2"])["2"]) == 1


def test_weighted_round_robin_splits_a_pool_by_weight(store):
    ids = [str(n) for n in range(1, 41)]
    store.save_leads([lead(i) for i in ids])
    assigned = store.assign_owners([RouteRequest(i, "", POOL) for i in ids], KNOWN)
    assert Counter(owner.name for owner in assigned.values()) == {"Ana": 20, "Bo": 10, "Cy": 10}
    assert store.assignments(ids) == assigned
    assert assigned["1"] == ANA  # the owner's details as configured


def test_an_assigned_lead_keeps_its_owner_and_takes_no_turn(store):
    store.save_leads([lead("1"), lead("2")])
    store.assign_owners([RouteRequest("1", "", POOL)], KNOWN)
    assert store.assign_owners([RouteRequest("1", "", POOL)], KNOWN) == {}
    # Had "1" taken a second turn, Ana (2 turns for weight 2) would not get "2".
    assert store.assign_owners([RouteRequest("2", "", POOL)], KNOWN) == {"2": BO}
    assert store.assignments(["1"]) == {"1": ANA}


def test_a_repeat_goes_to_the_persons_owner_whatever_the_pool(store):
    store.save_leads([lead("1"), lead("2"), lead("3")])
    store.assign_owners([RouteRequest("1", "email:a@x.io", POOL)], KNOWN)
    only_cy = Pool("Cy", "cy", (CY,), (1,))
    got = store.assign_owners(
        [RouteRequest("2", "email:a@x.io", only_cy), RouteRequest("3", "email:a@x.io")], KNOWN
    )
    assert got == {"2": ANA, "3": ANA}
    # An owner no longer configured: the repeat takes a turn in its pool instead.
    store.save_leads([lead("4")])
    assert store.assign_owners([RouteRequest("4", "email:a@x.io", only_cy)], {"Cy": CY}) == {
        "4": CY
    }


def test_no_pool_and_no_person_owner_leaves_the_lead_unassigned(store):
    store.save_leads([lead("1")])
    assert store.assign_owners([RouteRequest("1", "email:a@x.io")], KNOWN) == {}
    assert store.assignments(["1"]) == {}


def test_replicas_assigning_the_same_leads_at_once_assign_each_once(store, store_url):
    ids = [str(n) for n in range(1, 101)]
    store.save_leads([lead(i) for i in ids])
    replicas = [open_store(store_url) for _ in range(4)]
    results: list[dict[str, Owner]] = []

    def assign(replica) -> None:
        for start in range(0, len(ids), 10):
            batch = [RouteRequest(i, "", POOL) for i in ids[start : start + 10]]
            results.append(replica.assign_owners(batch, KNOWN))

    race([(assign, (replica,)) for replica in replicas], replicas)
    made = [lead_id for result in results for lead_id in result]
    assert sorted(made) == sorted(ids)  # every lead assigned once, by exactly one replica
    split = Counter(owner.name for owner in store.assignments(ids).values())
    assert split == {"Ana": 50, "Bo": 25, "Cy": 25}
