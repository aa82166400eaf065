"""Routing in the store: contacts recorded once, persons recognised, owners assigned once.

Both writes run under the dialect's routing lock (SQLite's write lock, a
PostgreSQL advisory lock), so replicas take turns: a person's first lead is
whichever lead was recorded first, and a pool's turns (`routing_turns`, one
count per owner) are read and moved in the same transaction as the assignment
they decide. Weighted round-robin is deterministic: the owner with the fewest
leads for their weight (count / weight, ties to the first listed) takes the
next one, so 2:1:1 weights split any run of leads within one lead of 2:1:1.
A lead already recorded or assigned is left alone, so re-delivery, re-scoring,
restarts and racing replicas never change a lead's owner. Each call reads what
it needs in a few queries, decides in memory (`Plan`) while it holds the lock
and writes in batches: 1,000 leads take about 70 ms on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from leadsync.abc import RoutingStore
from leadsync.models import Contact, Owner, Pool, RouteRequest, utcnow
from leadsync.store.rows import first_of_each, params
from leadsync.store.sql import SQLRole, Tx

REPEAT_EVENT = "repeat_submission"

ADD_PERSON = """
INSERT INTO persons (person_key, first_lead_id, created_at) VALUES (:key, :lead_id, :now)
ON CONFLICT (person_key) DO NOTHING
"""

ADD_CONTACT = """
INSERT INTO lead_contacts (lead_id, person_key, phone_e164, phone_valid, phone_typed, repeat_of,
    recorded_at)
VALUES (:lead_id, :person_key, :phone_e164, :phone_valid, :phone_typed, :repeat_of, :now)
ON CONFLICT (lead_id) DO NOTHING
"""

# The repeat is an event like any other, dated when the lead was submitted, so scoring rules
# reward it with their caps and decay.
ADD_REPEAT_EVENT = """
INSERT INTO events (id, lead_id, email, type, at, received_at)
SELECT :id, id, '', :type, created_time, :now FROM leads WHERE id = :lead_id
ON CONFLICT (id) DO NOTHING
"""

ASSIGN = """
INSERT INTO assignments (lead_id, name, email, slack_id, hubspot_owner_id, hours, pool, rule,
    assigned_at)
VALUES (:lead_id, :name, :email, :slack_id, :hubspot_owner_id, :hours, :pool, :rule, :now)
"""

# The person keeps the owner of their first assigned lead (recorded already, as a rule).
KEEP_OWNER = """
INSERT INTO persons (person_key, first_lead_id, owner, created_at)
VALUES (:key, :lead_id, :owner, :now)
ON CONFLICT (person_key) DO UPDATE SET owner = excluded.owner WHERE persons.owner = ''
"""

# Turns are read and written under the routing lock, so the count written is the count.
SET_TURNS = """
INSERT INTO routing_turns (pool, owner, assigned) VALUES (:pool, :owner, :assigned)
ON CONFLICT (pool, owner) DO UPDATE SET assigned = excluded.assigned
"""


class Routing(SQLRole, RoutingStore):
    """Contacts, persons and owners of `leadsync.abc.Store`."""

    def record_contacts(self, contacts: Sequence[Contact]) -> dict[str, Contact]:
        if not contacts:
            return {}
        now = utcnow()
        with self._write() as tx:
            self._dialect.lock_routing(tx)
            known = self._contacts(tx, [contact.lead_id for contact in contacts])
            new = first_of_each(
                (c for c in contacts if c.lead_id not in known), lambda c: c.lead_id
            )
            keys = [contact.person_key for contact in new if contact.person_key]
            firsts = self._pairs(tx, "first_lead_id", keys)
            recorded = [replace(c, repeat_of=repeat_of(c, firsts)) for c in new]
            people = [c for c in recorded if c.person_key and not c.repeat_of]
            tx.many(
                ADD_PERSON,
                [{"key": c.person_key, "lead_id": c.lead_id, "now": now} for c in people],
            )
            tx.many(ADD_CONTACT, [params(c, now=now) for c in recorded])
            tx.many(
                ADD_REPEAT_EVENT,
                [
                    {"id": f"{REPEAT_EVENT}:{c.lead_id}", "type": REPEAT_EVENT}
                    | {"lead_id": c.lead_id, "now": now}
                    for c in recorded
                    if c.repeat_of
                ],
            )
        return known | {c.lead_id: c for c in recorded}

    def _pairs(self, tx: Tx, column: str, keys: list[str]) -> dict[str, str]:
        """person_key -> `column` of the persons among `keys`."""
        query = f"SELECT person_key, {column} AS value FROM persons WHERE person_key = ANY(:keys)"
        return {row["person_key"]: row["value"] for row in tx.rows(query, {"keys": keys})}

    def contacts(self, lead_ids: Sequence[str]) -> dict[str, Contact]:
        with self._read() as tx:
            return self._contacts(tx, lead_ids)

    def _contacts(self, tx: Tx, lead_ids: Sequence[str]) -> dict[str, Contact]:
        query = "SELECT * FROM lead_contacts WHERE lead_id = ANY(:ids)"
        rows = tx.rows(query, {"ids": list(lead_ids)})
        return {
            row["lead_id"]: self._rows.model(Contact, row, phone_valid=bool(row["phone_valid"]))
            for row in rows
        }

    def assign_owners(
        self, requests: Sequence[RouteRequest], known: Mapping[str, Owner]
    ) -> dict[str, Owner]:
        if not requests:
            return {}
        now = utcnow()
        with self._write() as tx:
            self._dialect.lock_routing(tx)
            done = self._assigned(tx, [request.lead_id for request in requests])
            todo = first_of_each(
                (r for r in requests if r.lead_id not in done), lambda r: r.lead_id
            )
            keys = [request.person_key for request in todo if request.person_key]
            plan = Plan(known, self._pairs(tx, "owner", keys), self._turns(tx, todo))
            chosen = [(request, *found) for request in todo if (found := plan.choose(request))]
            tx.many(ASSIGN, [assignment_params(r, o, p, now) for r, o, p in chosen])
            tx.many(
                KEEP_OWNER,
                [
                    {"key": r.person_key, "lead_id": r.lead_id, "owner": o.name, "now": now}
                    for r, o, _ in chosen
                    if r.person_key
                ],
            )
            tx.many(SET_TURNS, plan.turns_taken())
        return {request.lead_id: owner for request, owner, _ in chosen}

    def _turns(self, tx: Tx, requests: Sequence[RouteRequest]) -> dict[tuple[str, str], int]:
        pools = sorted({request.pool.key for request in requests if request.pool})
        rows = tx.rows(
            "SELECT pool, owner, assigned FROM routing_turns WHERE pool = ANY(:pools)",
            {"pools": pools},
        )
        return {(row["pool"], row["owner"]): row["assigned"] for row in rows}

    def assignments(self, lead_ids: Sequence[str]) -> dict[str, Owner]:
        with self._read() as tx:
            return self._assigned(tx, lead_ids)

    def _assigned(self, tx: Tx, lead_ids: Sequence[str]) -> dict[str, Owner]:
        rows = tx.rows(
            "SELECT * FROM assignments WHERE lead_id = ANY(:ids)", {"ids": list(lead_ids)}
        )
        return {row["lead_id"]: self._rows.model(Owner, row) for row in rows}


def repeat_of(contact: Contact, firsts: dict[str, str]) -> str:
    """The person's first lead when `contact` repeats it ("" otherwise); a new person's lead
    becomes their first (in `firsts`), so a later lead of the same batch repeats it."""
    if not contact.person_key:
        return ""
    first = firsts.setdefault(contact.person_key, contact.lead_id)
    return "" if first == contact.lead_id else first


def assignment_params(
    request: RouteRequest, owner: Owner, pool: Pool | None, now: datetime
) -> dict[str, object]:
    rule = pool.rule if pool else "same person"
    return params(owner, lead_id=request.lead_id, pool=pool.key if pool else "", rule=rule, now=now)


class Plan:
    """Owners for a batch, decided in memory from what the store holds under the lock."""

    def __init__(
        self,
        known: Mapping[str, Owner],
        person_owners: dict[str, str],
        turns: dict[tuple[str, str], int],
    ):
        self._known, self._person_owners, self._turns = known, person_owners, turns
        self._taken: set[tuple[str, str]] = set()

    def choose(self, request: RouteRequest) -> tuple[Owner, Pool | None] | None:
        """The person's owner when still configured, else the pool's next turn; None: neither."""
        key = request.person_key
        if key and self._person_owners.get(key) in self._known:
            return self._known[self._person_owners[key]], None
        if request.pool is None:
            return None
        owner = self._next_turn(request.pool)
        if key and not self._person_owners.get(key):
            self._person_owners[key] = owner.name  # the person's later leads of this batch
        return owner, request.pool

    def _next_turn(self, pool: Pool) -> Owner:
        def share(i: int) -> tuple[float, int]:
            return self._turns.get((pool.key, pool.owners[i].name), 0) / pool.weights[i], i

        owner = pool.owners[min(range(len(pool.owners)), key=share)]
        turn = (pool.key, owner.name)
        self._turns[turn] = self._turns.get(turn, 0) + 1
        self._taken.add(turn)
        return owner

    def turns_taken(self) -> list[dict[str, object]]:
        """The new count of every (pool, owner) that took a turn."""
        return [
            {"pool": pool, "owner": owner, "assigned": self._turns[(pool, owner)]}
            for pool, owner in sorted(self._taken)
        ]
