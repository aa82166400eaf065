"""Routing in the store: contacts recorded once, persons recognised, owners assigned once.

Both writes run under the dialect's routing lock (SQLite's write lock, a
PostgreSQL advisory lock), so replicas take turns: a person's first lead is
whichever lead was recorded first, and a pool's turns (`routing_turns`, one
count per owner) are read and moved in the same transaction as the assignment
they decide. Weighted round-robin is deterministic: the owner with the fewest
leads for their weight (count / weight, ties to the first listed) takes the
next one, so 2:1:1 weights split any run of leads within one lead of 2:1:1.
A lead already recorded or assigned is left alone, so re-delivery, re-scoring,
restarts and racing replicas never change a lead's owner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from leadsync.abc import RoutingStore
from leadsync.models import Contact, Owner, Pool, RouteRequest, utcnow
from leadsync.store.rows import params
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

TAKE_TURN = """
INSERT INTO routing_turns (pool, owner, assigned) VALUES (:pool, :owner, 1)
ON CONFLICT (pool, owner) DO UPDATE SET assigned = routing_turns.assigned + 1
"""


class Routing(SQLRole, RoutingStore):
    """Contacts, persons and owners of `leadsync.abc.Store`."""

    def record_contacts(self, contacts: Sequence[Contact]) -> dict[str, Contact]:
        if not contacts:
            return {}
        ids = [contact.lead_id for contact in contacts]
        now = utcnow()
        with self._write() as tx:
            self._dialect.lock_routing(tx)
            known = self._contacts(tx, ids)
            for contact in contacts:
                if contact.lead_id not in known:
                    known[contact.lead_id] = self._record(tx, contact, now)
        return known

    def _record(self, tx: Tx, contact: Contact, now: datetime) -> Contact:
        repeat_of = ""
        if contact.person_key:
            tx.run(ADD_PERSON, {"key": contact.person_key, "lead_id": contact.lead_id, "now": now})
            [person] = tx.rows(
                "SELECT first_lead_id FROM persons WHERE person_key = :key",
                {"key": contact.person_key},
            )
            first = person["first_lead_id"]
            repeat_of = "" if first == contact.lead_id else first
        tx.run(ADD_CONTACT, params(contact, repeat_of=repeat_of, now=now))
        if repeat_of:
            event = {"id": f"{REPEAT_EVENT}:{contact.lead_id}", "type": REPEAT_EVENT}
            tx.run(ADD_REPEAT_EVENT, event | {"lead_id": contact.lead_id, "now": now})
        return Contact(**{**params(contact), "repeat_of": repeat_of})

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
        assigned: dict[str, Owner] = {}
        with self._write() as tx:
            self._dialect.lock_routing(tx)
            done = self._assigned(tx, [request.lead_id for request in requests])
            for request in requests:
                if request.lead_id in done or request.lead_id in assigned:
                    continue
                chosen = self._choose(tx, request, known)
                if chosen is None:
                    continue
                owner, pool = chosen
                rule = pool.rule if pool else "same person"
                row = params(owner, lead_id=request.lead_id, pool=pool.key if pool else "")
                tx.run(ASSIGN, row | {"rule": rule, "now": now})
                if request.person_key:
                    person = {"key": request.person_key, "lead_id": request.lead_id}
                    tx.run(KEEP_OWNER, person | {"owner": owner.name, "now": now})
                assigned[request.lead_id] = owner
        return assigned

    def _choose(
        self, tx: Tx, request: RouteRequest, known: Mapping[str, Owner]
    ) -> tuple[Owner, Pool | None] | None:
        """The person's owner when they have one still configured, else the pool's next turn."""
        if request.person_key:
            rows = tx.rows(
                "SELECT owner FROM persons WHERE person_key = :key", {"key": request.person_key}
            )
            if rows and rows[0]["owner"] in known:
                return known[rows[0]["owner"]], None
        if request.pool is None:
            return None
        owner = self._next_turn(tx, request.pool)
        tx.run(TAKE_TURN, {"pool": request.pool.key, "owner": owner.name})
        return owner, request.pool

    def _next_turn(self, tx: Tx, pool: Pool) -> Owner:
        rows = tx.rows(
            "SELECT owner, assigned FROM routing_turns WHERE pool = :pool", {"pool": pool.key}
        )
        counts = {row["owner"]: row["assigned"] for row in rows}
        order = range(len(pool.owners))
        best = min(order, key=lambda i: (counts.get(pool.owners[i].name, 0) / pool.weights[i], i))
        return pool.owners[best]

    def assignments(self, lead_ids: Sequence[str]) -> dict[str, Owner]:
        with self._read() as tx:
            return self._assigned(tx, lead_ids)

    def _assigned(self, tx: Tx, lead_ids: Sequence[str]) -> dict[str, Owner]:
        rows = tx.rows(
            "SELECT * FROM assignments WHERE lead_id = ANY(:ids)", {"ids": list(lead_ids)}
        )
        return {row["lead_id"]: self._rows.model(Owner, row) for row in rows}
