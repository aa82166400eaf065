"""HubSpot requests for a burst of leads: leads per request, against one contact per request.

HubSpot limits each portal to about 100 requests per rolling 10 seconds (and a
daily quota), shared by every app installed in it, so what a burst costs is
counted in requests. A burst of 1,000 leads goes through the HubSpot connector
the way the delivery runner hands it over (batches of DELIVERY_BATCH_SIZE),
against the HubSpot emulator over real HTTP, and every request the emulator
answers is counted: the property check, the creation of leadsync's properties
on a fresh portal, and the batch upserts. Measured twice: on a fresh portal
(first run ever) and after a restart (properties in place). The baseline is
the script one writes first: one `POST /crm/v3/objects/contacts` per lead,
measured the same way in the same run. Target: at least 80 leads per request.

Run: `python benchmarks/bench_hubspot.py` (or `--quick`, a 200-lead baseline).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import requests
import structlog

from connectors import hubspot
from leadsync.constants import DELIVERY_BATCH_SIZE
from leadsync.emulators.hubspot import HubSpotEmulator
from leadsync.models import Lead, Reason, Score, ScoredLead

BURST = 1_000
TARGET = 80.0
TOKEN = "pat-na1-bench"


def make_burst(count: int) -> list[ScoredLead]:
    """`count` scored leads, each a different person, as a lead-ads campaign brings them."""
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    burst = []
    for number in range(count):
        lead = Lead(
            id=f"12{number:013d}",
            created_time=start + timedelta(seconds=number),
            page_id="1111",
            form_id="2222",
            form_name="Demo request",
            campaign_name="Autumn launch",
            answers={
                "full_name": (f"Person {number}",),
                "email": (f"person{number}@example.test",),
                "phone_number": (f"+1555{number:07d}",),
                "company_name": (f"Company {number % 97}",),
                "job_title": ("VP Marketing" if number % 3 else "Analyst",),
            },
        )
        points = 40 + number % 50
        reasons = (Reason("Demo request", points, "intent"),)
        burst.append(ScoredLead(lead, Score(points, points >= 60, reasons)))
    return burst


def leadsync_requests(burst: Sequence[ScoredLead], emu: HubSpotEmulator) -> int:
    """Requests a freshly started connector spends on the burst (all of them, setup included)."""
    before = emu.total_requests
    connector = hubspot.build("crm", hubspot.Settings(token=TOKEN, api_url=emu.url))
    try:
        for start in range(0, len(burst), DELIVERY_BATCH_SIZE):
            results = connector.deliver(burst[start : start + DELIVERY_BATCH_SIZE])
            assert all(r.ok for r in results), "every lead must arrive"
    finally:
        connector.close()
    return emu.total_requests - before


def naive_requests(burst: Sequence[ScoredLead], emu: HubSpotEmulator) -> int:
    """One contact created per request, as a first script does it."""
    before = emu.total_requests
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        for scored in burst:
            lead = scored.lead
            first, _, last = lead.answer("full_name").partition(" ")
            properties = {"email": lead.email, "firstname": first, "lastname": last}
            url = emu.url + "/crm/v3/objects/contacts"
            response = session.post(url, json={"properties": properties}, timeout=30)
            assert response.status_code == 201, response.status_code
    return emu.total_requests - before


def run(quick: bool = False) -> list[dict]:
    """Leads per HubSpot request for a 1,000-lead burst, leadsync against one per request."""
    burst = make_burst(BURST)
    with HubSpotEmulator(token=TOKEN) as emu:
        fresh = leadsync_requests(burst, emu)
        assert len(emu.contacts()) == BURST
        restarted = leadsync_requests(burst, emu)  # a score change for all, after a restart
    baseline_burst = burst[: 200 if quick else BURST]
    with HubSpotEmulator(token=TOKEN) as emu:
        naive = naive_requests(baseline_burst, emu)
    baseline = len(baseline_burst) / naive
    target = f">= {TARGET:.0f} leads/request"
    return [
        {
            "figure": "HubSpot leads per request, 1,000-lead burst, fresh portal",
            "leadsync": round(BURST / fresh, 1),
            "baseline": round(baseline, 1),
            "unit": "leads/request",
            "target": target,
        },
        {
            "figure": "HubSpot leads per request, 1,000-lead burst, after a restart",
            "leadsync": round(BURST / restarted, 1),
            "baseline": round(baseline, 1),
            "unit": "leads/request",
            "target": target,
        },
    ]


if __name__ == "__main__":
    # Only the figures on stdout: the connector's info events would drown them.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    for row in run(quick="--quick" in sys.argv):
        print(
            f"{row['figure']}: leadsync {row['leadsync']:,} {row['unit']}, "
            f"baseline {row['baseline']:,} {row['unit']} "
            f"({row['leadsync'] / row['baseline']:.0f}x), target {row['target']}"
        )
