"""Reads the outcomes sales records in HubSpot: the lifecycle stage of the contacts we made.

Each round asks HubSpot's contact search for the contacts leadsync made
(`leadsync_lead_id` set) modified since the last read, oldest first, 100 a
page. The cursor (the newest `lastmodifieddate` read) is kept in the store's
meta values, so a replica taking over reads on from there; each round starts
a little before it, because HubSpot's search index trails its writes. A
contact's lifecycle stage (`lifecycle_stages`) or lost property
(`lost_property`/`lost_values`) is the stage of the lead it was made for,
found by the contact id leadsync stored at delivery, else by its
`leadsync_lead_id`. The stage is dated by HubSpot's own
`hs_lifecyclestage_<stage>_date` when it has one, else by the contact's last
change. Search pages stop at 10,000 results, so a longer backlog is read on
after the newest change seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.hubspot import HubSpotConnector, Settings
from connectors.hubspot_contact import LEAD_ID
from leadsync.abc import Store
from leadsync.models import LeadStage, Stage, utcnow
from leadsync.outbox.stages import StageRecorder
from leadsync.outcomes.values import normal, stage_lookup

log = structlog.get_logger(__name__)

# HubSpot's search index trails its writes by seconds; each round re-reads this much before.
OVERLAP = timedelta(minutes=2)
# The first round of a destination reads contacts changed this far back.
FIRST_LOOKBACK = timedelta(days=90)
PAGE_SIZE = 100
# Search pages stop at 10,000 results: past them the search starts again from the newest seen.
SEARCH_RESULTS_CAP = 10_000
# Pages one round reads at most; a longer backlog goes on in the next round.
MAX_PAGES = 50


def cursor_key(destination: str) -> str:
    return f"outcomes:{destination}:modified_since"


def to_ms(when: datetime) -> str:
    return str(int(when.timestamp() * 1000))


def parse_hubspot_time(value: object) -> datetime | None:
    """A HubSpot date-time: ISO text ("2026-11-20T10:00:00.000Z") or Unix milliseconds."""
    text = "" if value is None else str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class HubSpotOutcomes:
    """The outcome reader of one hubspot destination (`read` is one round)."""

    def __init__(
        self,
        destination: str,
        settings: Settings,
        store: Store,
        *,
        recorder: StageRecorder | None = None,
        connector: HubSpotConnector | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.name = destination
        self.source = f"hubspot:{destination}"
        self.settings = settings
        self._store = store
        self._recorder: StageRecorder = recorder or store
        self._own = connector is None
        self._connector = connector or HubSpotConnector(destination, settings)
        self._clock = clock
        self._lifecycle = stage_lookup(settings.lifecycle_stages)
        self._lost = {normal(v) for v in settings.lost_values}

    def read(self) -> list[LeadStage]:
        """Reads the contacts changed since the last round; returns the stages new to the store."""
        now = self._clock()
        saved = parse_hubspot_time(self._store.get_meta(cursor_key(self.name)))
        since = saved - OVERLAP if saved else now - FIRST_LOOKBACK
        contacts, newest = self._search(since)
        leads = self._leads_of(contacts)
        stages = [
            stage
            for contact in contacts
            if contact["id"] in leads
            for stage in self._stages(contact, leads[contact["id"]], now)
        ]
        new = self._recorder.record_stages(stages)
        if newest and (saved is None or newest > saved):  # only once what it read is recorded
            self._store.set_meta(cursor_key(self.name), newest.isoformat())
        return new

    def close(self) -> None:
        if self._own:
            self._connector.close()

    def _search(self, since: datetime) -> tuple[list[dict[str, Any]], datetime | None]:
        """Contacts we made that changed since `since`, each once, and the newest change.

        Pages are offsets into one search, which HubSpot stops at 10,000 results; past
        that the search starts again after the newest change seen, once the contacts
        changed in that very millisecond (a bulk import makes many) are read by id.
        """
        found: dict[str, dict[str, Any]] = {}
        query, after, pages = self._changed("GTE", since), "", 0
        while pages < MAX_PAGES:
            page, pages = self._connector.search_contacts(query | self._after(after)), pages + 1
            offset = int(after or 0) + len(self._keep(page, found))
            after = str(page.get("paging", {}).get("next", {}).get("after", ""))
            if not after and int(page.get("total", 0)) <= offset:
                break  # all read
            if not after or int(after) + PAGE_SIZE >= SEARCH_RESULTS_CAP:
                newest = self._newest(found.values())
                if newest is None:  # contacts without a last change: nothing to go on from
                    break
                pages += self._read_tied(newest, found, MAX_PAGES - pages)
                query, after = self._changed("GT", newest), ""
        return list(found.values()), self._newest(found.values())

    def _read_tied(self, when: datetime, found: dict[str, dict[str, Any]], budget: int) -> int:
        """Reads, by id, every contact whose last change is `when`; returns the pages read."""
        last_id, pages = "0", 0
        while pages < budget:
            filters = [
                {"propertyName": "lastmodifieddate", "operator": "EQ", "value": to_ms(when)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": last_id},
                {"propertyName": LEAD_ID, "operator": "HAS_PROPERTY"},
            ]
            query = self._body(filters, "hs_object_id")
            page, pages = self._connector.search_contacts(query), pages + 1
            results = self._keep(page, found)
            if not results or "paging" not in page:
                break
            last_id = str(results[-1]["id"])
        return pages

    def _keep(self, page: dict[str, Any], found: dict[str, dict[str, Any]]) -> list[Any]:
        results = page.get("results", [])
        found.update((str(contact["id"]), contact) for contact in results)
        return results

    @staticmethod
    def _newest(contacts: Iterable[dict[str, Any]]) -> datetime | None:
        times = [
            parse_hubspot_time(c.get("properties", {}).get("lastmodifieddate")) for c in contacts
        ]
        return max((t for t in times if t), default=None)

    @staticmethod
    def _after(after: str) -> dict[str, str]:
        return {"after": after} if after else {}

    def _changed(self, operator: str, since: datetime) -> dict[str, Any]:
        filters = [
            {"propertyName": "lastmodifieddate", "operator": operator, "value": to_ms(since)},
            {"propertyName": LEAD_ID, "operator": "HAS_PROPERTY"},
        ]
        return self._body(filters, "lastmodifieddate")

    def _body(self, filters: list[dict[str, str]], sort: str) -> dict[str, Any]:
        """A search body: our filters, one sort (all HubSpot takes), the properties we read."""
        dated = [f"hs_lifecyclestage_{value}_date" for value in self._lifecycle]
        wanted = ["lifecyclestage", LEAD_ID, *dated]
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": wanted + ([self.settings.lost_property] if self._lost else []),
            "limit": PAGE_SIZE,
        }

    def _leads_of(self, contacts: Iterable[dict[str, Any]]) -> dict[str, str]:
        """Contact id -> lead: by the contact id stored at delivery, else its leadsync_lead_id."""
        contacts = list(contacts)
        known = self._store.leads_by_external_id(self.name, [str(c["id"]) for c in contacts])
        for contact in contacts:
            lead_id = str(contact.get("properties", {}).get(LEAD_ID) or "")
            if contact["id"] not in known and lead_id:
                known[contact["id"]] = lead_id  # the store ignores it if the lead is not ours
        return known

    def _stages(self, contact: dict[str, Any], lead_id: str, now: datetime) -> list[LeadStage]:
        properties = contact.get("properties", {})
        changed = parse_hubspot_time(properties.get("lastmodifieddate")) or now
        found: list[tuple[Stage, datetime]] = []
        lifecycle = normal(properties.get("lifecyclestage") or "")
        if stage := self._lifecycle.get(lifecycle):
            dated = parse_hubspot_time(properties.get(f"hs_lifecyclestage_{lifecycle}_date"))
            found.append((stage, dated or changed))
        lost = normal(properties.get(self.settings.lost_property) or "") if self._lost else ""
        if lost and lost in self._lost:
            found.append(("lost", changed))
        return [LeadStage(lead_id, s, min(at, now), None, self.source) for s, at in found]
