"""The status page's speed-to-lead part: MQLs waiting for first contact, oldest first."""

from __future__ import annotations

import re
from datetime import timedelta

from leadsync.health import HealthReport
from leadsync.models import Lead, LeadStage, Owner, Pool, RouteRequest, utcnow
from leadsync.server.status_page import render
from leadsync.sla import SlaAlert
from leadsync.status import WAITING_SHOWN, snapshot

NOW = utcnow()
ANA = Owner("Ana <b>", "ana@example.com")


def waiting_rows(html: str) -> list[str]:
    """The waiting table's rows as text (tags dropped, entities kept)."""
    table = html.split('id="waiting"')[1].split("</table>")[0]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in table.split("<tr>")[2:]]


def test_waiting_mqls_are_listed_oldest_first_with_owner_and_how_long(store):
    store.save_leads([Lead(str(n), NOW, "p1", "f1") for n in (1, 2, 3)])
    store.record_stages(
        [LeadStage("1", "mql", NOW - timedelta(minutes=3)),
         LeadStage("2", "mql", NOW - timedelta(minutes=42)),
         LeadStage("3", "mql", NOW - timedelta(minutes=7)),
         LeadStage("3", "contacted", NOW)]
    )  # fmt: skip
    store.assign_owners([RouteRequest("2", "", Pool("Ana", "r", (ANA,), (1,)))], {"Ana <b>": ANA})
    reminder = SlaAlert("2", "reminder", NOW, "ana@example.com")
    store.claim_sla_alerts([reminder], "me", timedelta(minutes=1))
    store.settle_sla_alerts([reminder])
    html = render(snapshot(store), HealthReport(True, []), NOW)
    assert waiting_rows(html) == [
        "2 Ana &lt;b&gt; 42 min ago reminder sent",
        "1 no owner 3 min ago none yet",
    ]
    assert "Ana <b>" not in html  # an owner's name is text, never markup


def test_an_empty_list_says_so_and_a_long_one_says_only_the_oldest_are_shown(store):
    assert "no MQL waits" in render(snapshot(store), HealthReport(True, []), NOW)
    ids = [str(n) for n in range(WAITING_SHOWN + 5)]
    store.save_leads([Lead(i, NOW, "p1", "f1") for i in ids])
    store.record_stages([LeadStage(i, "mql", NOW - timedelta(minutes=int(i))) for i in ids])
    html = render(snapshot(store), HealthReport(True, []), NOW)
    rows = waiting_rows(html)
    assert len(rows) == WAITING_SHOWN and rows[0].startswith(f"{ids[-1]} ")
    assert f"Only the {WAITING_SHOWN} oldest are shown." in html
