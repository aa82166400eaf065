"""Meta's Conversions API for CRM: lead stages as Conversion Leads events, and their sender.

`stage_events` is pure: it turns a lead's stages into the events Meta's
"Conversion Leads" payload specification asks for (the lead id unhashed in
`user_data.lead_id`, `action_source = "system_generated"`, `custom_data` with
`event_source = "crm"` and `lead_event_source`), built with the
facebook-business SDK's own serverside objects, in stage order, each with the
stable id `{lead_id}.{stage}` so Meta drops a resend. Meta refuses a whole
request when one event is more than 7 days old, and discards an event dated
before the lead, so those stages come back as `expired` instead of being sent.

`ConversionsSender` POSTs them, at most 1,000 per request, through
`GraphClient.request` and so through the SDK's `FacebookAdsApi` (our own api
object, crash reporting off, HTTP failures checked, errors mapped once by
`facebook/errors.py`). Not the SDK's `EventRequest.execute()`: it posts through
the process-wide default api, or with an `http_client` to the global
`FacebookSession.GRAPH` and `FacebookAdsApi.API_VERSION`, so it can neither keep
to our own api object nor be pointed at another Graph URL per client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.user_data import UserData

from leadsync.errors import AuthError, BadLead, PermanentError, TransientError
from leadsync.facebook.graph import GraphClient
from leadsync.models import STAGES, Lead, LeadStage

# Meta event names by stage, after the payload specification's example funnel.
DEFAULT_STAGE_NAMES: Mapping[str, str] = {
    "lead": "Lead",
    "mql": "Marketing Qualified Lead",
    "sql": "Sales Qualified Lead",
    "won": "Converted",
}
# "The event_time can be up to 7 days before you send an event" (Server Event parameters);
# the margin covers the time between building a batch and Meta reading it (retries included).
MAX_EVENT_AGE = timedelta(days=7)
SAFETY_MARGIN = timedelta(hours=1)
# Conversions API: at most 1,000 events per request.
EVENTS_PER_REQUEST = 1000
LEAD_EVENT_SOURCE = "leadsync"


def stage_rank(stage: str) -> int:
    """A stage's place in `STAGES`, the order events go out in (Meta: earlier stages first)."""
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def stage_events(
    lead: Lead,
    stages: Sequence[LeadStage],
    stage_names: Mapping[str, str],
    now: datetime,
    *,
    currency: str = "USD",
) -> tuple[list[dict[str, Any]], list[LeadStage]]:
    """(events to send, stages too old to send) for `lead`; unmapped stages are neither."""
    oldest = now - MAX_EVENT_AGE + SAFETY_MARGIN
    events: list[dict[str, Any]] = []
    expired: list[LeadStage] = []
    for stage in sorted(stages, key=lambda s: (stage_rank(s.stage), s.reached_at)):
        name = stage_names.get(stage.stage)
        if not name:
            continue
        if stage.reached_at < oldest or stage.reached_at < lead.created_time:
            expired.append(stage)
            continue
        events.append(stage_event(lead.id, stage, name, now, currency))
    return events, expired


def stage_event(
    lead_id: str, stage: LeadStage, name: str, now: datetime, currency: str
) -> dict[str, Any]:
    """One Conversion Leads event, as the SDK normalizes it for the request."""
    custom = {"event_source": "crm", "lead_event_source": LEAD_EVENT_SOURCE}
    value = getattr(stage, "value", None)
    event = Event(
        event_name=name,
        # Never in the future: Meta refuses those, and a CRM clock may run ahead.
        event_time=int(min(stage.reached_at, now).timestamp()),
        event_id=f"{lead_id}.{stage.stage}",
        action_source=ActionSource.SYSTEM_GENERATED,
        user_data=UserData(lead_id=lead_id),
        custom_data=CustomData(
            value=float(value) if value is not None else None,
            currency=currency if value is not None else None,
            custom_properties=custom,
        ),
    )
    return event.normalize()


@dataclass(frozen=True)
class Sent:
    """What Meta said to one request: events it received, and its trace id for support."""

    events_received: int
    fbtrace_id: str


class ConversionsSender:
    """POSTs Conversion Leads events to one dataset; one instance may serve several threads."""

    def __init__(
        self,
        *,
        dataset_id: str,
        access_token: str,
        api_version: str = "v24.0",
        graph_url: str = "https://graph.facebook.com",
        timeout: float = 30,
    ):
        self.dataset_id = dataset_id
        self._graph = GraphClient(
            access_token=access_token,
            app_secret="",
            api_version=api_version,
            graph_url=graph_url,
            timeout=timeout,
        )

    def send(self, events: Sequence[Mapping[str, Any]]) -> list[Sent]:
        """Every event, 1,000 per request; a failed request raises a leadsync error kind."""
        return [
            self._post(events[start : start + EVENTS_PER_REQUEST])
            for start in range(0, len(events), EVENTS_PER_REQUEST)
        ]

    def _post(self, events: Sequence[Mapping[str, Any]]) -> Sent:
        what = f"{len(events)} events for dataset {self.dataset_id}"
        # As the SDK's EventRequest does: each event a JSON string inside the `data` array.
        data = [json.dumps(event, separators=(",", ":")) for event in events]
        try:
            body = self._graph.request("POST", (self.dataset_id, "events"), what, data=data)
        except AuthError as exc:  # the fix is this destination's token, not facebook.access_token
            reason = str(exc).split("; ", 1)[0]
            raise AuthError(
                f"{reason}; generate a token for dataset {self.dataset_id} (Events Manager > the "
                "dataset > Settings > Conversions API) or give the system user the dataset, put "
                "it in the destination's access_token and restart",
                service="facebook",
            ) from exc
        except BadLead as exc:  # Graph's "no such object" is about the dataset here, not a lead
            raise PermanentError(
                f"dataset {self.dataset_id} does not exist or the token may not send to it; "
                "check dataset_id and the system user's access to the dataset in Events Manager"
            ) from exc
        received = body.get("events_received")
        if received != len(events):
            raise TransientError(f"{what}: Meta acknowledged {received!r} of them; will resend")
        return Sent(received, str(body.get("fbtrace_id", "")))

    def close(self) -> None:
        self._graph.close()
