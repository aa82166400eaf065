"""Speed to lead in the store: MQLs waiting for first contact, and alerts claimed once.

An alert is a row per lead and kind (reminder, escalation). Claiming inserts it,
or takes over one whose claim expired unsent, in one statement per alert inside
one transaction: two replicas meeting on one row agree (SQLite's write lock; on
PostgreSQL the second insert waits for the first to commit, then finds the row
claimed), so an alert is sent by one process. A sent alert is never claimed
again; one that failed goes back for a later round, or is given up ("failed").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from leadsync.abc import SlaStore
from leadsync.models import Owner, utcnow
from leadsync.sla import SlaAlert, WaitingMql
from leadsync.store.rows import params
from leadsync.store.sql import SQLRole

WAITING = """
SELECT m.lead_id, m.reached_at AS mql_at, a.name, a.email, a.slack_id, a.hubspot_owner_id,
    a.hours, a.rule
FROM lead_stages AS m LEFT JOIN assignments AS a ON a.lead_id = m.lead_id
WHERE m.stage = 'mql' AND m.reached_at >= :since AND NOT EXISTS (
    SELECT 1 FROM lead_stages AS c
    WHERE c.lead_id = m.lead_id AND c.stage IN ('contacted', 'sql', 'won', 'lost'))
ORDER BY m.reached_at, m.lead_id LIMIT :limit
"""

CLAIM = """
INSERT INTO sla_alerts (lead_id, kind, due_at, target, state, claimed_by, claimed_until)
VALUES (:lead_id, :kind, :due_at, :target, 'claimed', :owner, :until)
ON CONFLICT (lead_id, kind) DO UPDATE SET claimed_by = excluded.claimed_by,
    claimed_until = excluded.claimed_until, target = excluded.target
WHERE sla_alerts.state = 'claimed'
    AND (sla_alerts.claimed_until IS NULL OR sla_alerts.claimed_until <= :now)
RETURNING lead_id, kind
"""

SENT = """
UPDATE sla_alerts SET state = 'sent', sent_at = :now, attempts = attempts + 1,
    claimed_by = NULL, claimed_until = NULL
WHERE lead_id = :lead_id AND kind = :kind
"""

FAILED = """
UPDATE sla_alerts SET state = :state, attempts = attempts + 1, last_error = :error,
    claimed_by = NULL, claimed_until = NULL
WHERE lead_id = :lead_id AND kind = :kind AND state = 'claimed'
"""


class Sla(SQLRole, SlaStore):
    """Speed-to-lead alerts of `leadsync.abc.Store`."""

    def waiting_mqls(self, since: datetime, limit: int = 1000) -> list[WaitingMql]:
        with self._read() as tx:
            rows = tx.rows(WAITING, {"since": since, "limit": limit})
            ids = [row["lead_id"] for row in rows]
            done = tx.rows(
                "SELECT lead_id, kind, state FROM sla_alerts WHERE lead_id = ANY(:ids)"
                " AND state <> 'claimed'",
                {"ids": ids},
            )
        alerted: dict[str, set[str]] = {}
        given_up: dict[str, set[str]] = {}
        for row in done:
            alerted.setdefault(row["lead_id"], set()).add(row["kind"])
            if row["state"] == "failed":
                given_up.setdefault(row["lead_id"], set()).add(row["kind"])
        return [
            WaitingMql(
                row["lead_id"],
                self._rows.decode_time(row["mql_at"]),
                self._rows.model(Owner, row) if row["name"] is not None else None,
                row["rule"] or "",
                frozenset(alerted.get(row["lead_id"], ())),
                frozenset(given_up.get(row["lead_id"], ())),
            )
            for row in rows
        ]

    def claim_sla_alerts(
        self, alerts: Sequence[SlaAlert], owner: str, lease: timedelta
    ) -> list[SlaAlert]:
        if not alerts:
            return []
        now = utcnow()
        extra = {"owner": owner, "until": now + lease, "now": now}
        with self._write() as tx:
            rows = tx.inserted(CLAIM, [_keys(alert) | extra for alert in alerts])
        claimed = {(row["lead_id"], row["kind"]) for row in rows}
        return [alert for alert in alerts if (alert.lead_id, alert.kind) in claimed]

    def settle_sla_alerts(
        self,
        sent: Sequence[SlaAlert],
        failed: Sequence[SlaAlert] = (),
        error: str = "",
        give_up: bool = False,
    ) -> None:
        now, state = utcnow(), "failed" if give_up else "claimed"
        with self._write() as tx:
            tx.many(SENT, [_keys(alert) | {"now": now} for alert in sent])
            tx.many(FAILED, [_keys(a) | {"state": state, "error": error} for a in failed])

    def sla_alerts(self, lead_ids: Sequence[str]) -> list[SlaAlert]:
        query = "SELECT * FROM sla_alerts WHERE lead_id = ANY(:ids) ORDER BY lead_id, kind DESC"
        return [self._rows.model(SlaAlert, row) for row in self._fetch(query, {"ids": lead_ids})]


def _keys(alert: SlaAlert) -> dict[str, object]:
    return {k: v for k, v in params(alert).items() if k in ("lead_id", "kind", "due_at", "target")}
