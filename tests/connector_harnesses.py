"""Harnesses that put each built-in connector in front of its emulator, for the contract suite.

Each subclasses `leadsync.testing.Harness` (the same base a third-party connector's
harness uses): it starts its destination's emulator, builds the connector pointed at
it, reads back what the destination holds for a lead id (`Held`), counts the
destination's write requests and injects faults by name. `tests/test_connector_contract.py`
runs the shipped suite (`leadsync.testing.ConnectorContract`) against every harness in
`HARNESSES`; adding a destination type means adding one class here (a Google Sheets
harness: start the Sheets emulator, `held` = rows whose lead_id matches,
`delivery_requests` = values write requests, faults from the emulator's 401/429/500
and a stall). The lead makers are re-exported for the connectors' own tests.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from connectors import email, google_sheets, hubspot, meta_conversions, slack, webhook
from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.hubspot import HubSpotEmulator
from leadsync.emulators.receivers import SlackReceiver, WebhookReceiver
from leadsync.emulators.sheets import SheetsEmulator
from leadsync.testing import FAULTS, Courier, Harness, Held, make_lead, scored
from leadsync.testing.harness import STALL_SECONDS
from tests.smtp_server import SmtpServer

__all__ = ["FAULTS", "HARNESSES", "Courier", "Harness", "Held", "make_lead", "scored"]


class EmulatorHarness(Harness):
    """A harness whose destination is one of leadsync's emulators, started in a thread."""

    emulator: Any

    def start(self) -> None:
        self.emulator.start()

    def stop(self) -> None:
        self.emulator.stop()


class HubSpotHarness(EmulatorHarness):
    id = "hubspot"
    expected_wait = 10.0  # no Retry-After: the 10-second window of X-HubSpot-RateLimit-*

    def __init__(self) -> None:
        super().__init__()
        self.emulator = HubSpotEmulator(token="pat-na1-11111111-2222-3333-4444-555555555555")

    def build(self, **overrides: Any) -> Any:
        values = {"token": self.emulator.token, "api_url": "", "lifecycle_stage_for_mql": True}
        settings = hubspot.Settings(**{**values, "api_url": self.emulator.url, **overrides})
        return hubspot.build("crm", settings)

    def held(self, lead_id: str) -> Held:
        contacts = self.emulator.contacts_with("leadsync_lead_id", lead_id)
        if not contacts:
            return Held(0)
        props = contacts[-1]["properties"]
        return Held(
            len(contacts), int(float(props["leadsync_score"])), props["leadsync_mql"] == "true"
        )

    def delivery_requests(self) -> int:
        return self.emulator.upsert_requests

    def expected_requests(self, leads: int) -> int:
        return math.ceil(leads / hubspot.BATCH_LIMIT)

    def inject(self, fault: str) -> None:
        emu = self.emulator
        {
            "auth": emu.revoke_token,
            "rate_limit": lambda: emu.throttle(),
            "server_error": lambda: emu.fail(502, html=True),
            "timeout": lambda: emu.stall(STALL_SECONDS),
            "rejected": lambda: emu.reject(),
        }[fault]()

    def secrets(self) -> list[str]:
        return [self.emulator.token]


class WebhookHarness(EmulatorHarness):
    id = "webhook"
    expected_wait = 7.0
    batch = False

    def __init__(self) -> None:
        super().__init__()
        self.emulator = WebhookReceiver()

    def build(self, **overrides: Any) -> Any:
        values = {"url": f"{self.emulator.url}/hooks/leads", "secret": self.emulator.secret}
        settings = webhook.Settings(**{**values, "batch": self.batch, **overrides})
        return webhook.build("n8n", settings)

    def held(self, lead_id: str) -> Held:
        documents = self.emulator.documents_for(lead_id)
        if not documents:
            return Held(0)
        latest = max(doc["revision"] for _, doc in documents)
        ids = {item_id for item_id, doc in documents if doc["revision"] == latest}
        doc = next(doc for _, doc in reversed(documents) if doc["revision"] == latest)
        return Held(len(ids), doc["score"]["points"], doc["score"]["mql"])

    def delivery_requests(self) -> int:
        return len(self.emulator.deliveries())

    def expected_requests(self, leads: int) -> int:
        return math.ceil(leads / webhook.BATCH_LIMIT) if self.batch else leads

    def inject(self, fault: str) -> None:
        emu = self.emulator
        {
            "auth": lambda: emu.fail(401, times=1000),
            "rate_limit": lambda: emu.throttle(retry_after=int(self.expected_wait)),
            "server_error": lambda: emu.fail(503),
            "timeout": lambda: emu.stall(STALL_SECONDS),
            "rejected": lambda: emu.fail(422),
        }[fault]()

    def secrets(self) -> list[str]:
        return [self.emulator.secret, self.emulator.secret.removeprefix("whsec_")]


class BatchWebhookHarness(WebhookHarness):
    id = "webhook-batch"
    batch = True


class SlackHarness(EmulatorHarness):
    id = "slack"
    updates_in_place = False
    only_mql = True
    expected_wait = 3.0

    def __init__(self) -> None:
        super().__init__()
        self.emulator = SlackReceiver()

    def build(self, **overrides: Any) -> Any:
        values = {
            "webhook_url": self.emulator.webhook_url,
            "sheet_url": "https://sheets.test/{lead_id}",
        }
        return slack.build("sales-alerts", slack.Settings(**{**values, **overrides}))

    def held(self, lead_id: str) -> Held:
        alerts = self.emulator.alerts_for(lead_id)
        if not alerts:
            return Held(0)
        match = re.search(r"Score \*(\d+)\*", alerts[0]["text"]["text"])
        return Held(len(alerts), int(match[1]) if match else None, True)

    def delivery_requests(self) -> int:
        return len(self.emulator.messages)

    def expected_requests(self, leads: int) -> int:
        return math.ceil(leads / slack.LEADS_PER_MESSAGE)

    def inject(self, fault: str) -> None:
        emu = self.emulator
        {
            "auth": lambda: emu.revoke(),
            "rate_limit": lambda: emu.throttle(retry_after=int(self.expected_wait)),
            "server_error": lambda: emu.fail(500, body="rollup_error"),
            "timeout": lambda: emu.stall(STALL_SECONDS),
            "rejected": lambda: emu.fail(400, body="invalid_payload"),
        }[fault]()

    def secrets(self) -> list[str]:
        return [self.emulator.token]


class SheetsHarness(EmulatorHarness):
    """Google Sheets (connectors/google_sheets.py, its owner's emulator), through its public API."""

    id = "google_sheets"
    expected_wait = 60.0  # Sheets' quota is per minute and its 429s say nothing more
    faults = FAULTS

    def __init__(self) -> None:
        super().__init__()
        self.emulator = SheetsEmulator()

    def start(self) -> None:
        super().start()
        self.key = self.emulator.service_account()
        account = self.key["client_email"]
        self.book = self.emulator.create_spreadsheet(worksheets=("Leads",), shared_with=[account])

    def build(self, **overrides: Any) -> Any:
        # The read timeout is a constructor argument, not a config key (the keys are fixed).
        timeout = overrides.pop("timeout", None)
        values = {"spreadsheet": self.book, "worksheet": "Leads", "api_url": self.emulator.url}
        settings = google_sheets.Settings(**values, credentials=json.dumps(self.key), **overrides)
        if timeout is None:
            return google_sheets.build("sales-sheet", settings)
        return google_sheets.GoogleSheetsConnector("sales-sheet", settings, timeout=(5.0, timeout))

    def held(self, lead_id: str) -> Held:
        header, *rows = self.emulator.values(self.book, "Leads") or [[]]
        mine = [dict(zip(header, row, strict=False)) for row in rows if row[:1] == [lead_id]]
        if not mine:
            return Held(0)
        return Held(len(mine), int(mine[-1]["score"]), mine[-1]["mql"] == "TRUE")

    def delivery_requests(self) -> int:
        return self.emulator.writes

    def expected_requests(self, leads: int) -> int:
        return 2  # a fresh sheet: its header row, then one append of every new lead

    def inject(self, fault: str) -> None:
        emu = self.emulator
        {
            "auth": lambda: emu.delete_key(self.key["client_email"]),
            "rate_limit": lambda: emu.fail_next(status=429),
            "server_error": lambda: emu.fail_next(status=500),
            "rejected": lambda: emu.fail_next(status=400),
            "timeout": lambda: emu.fail_next(status=200, delay=STALL_SECONDS),
        }[fault]()

    def secrets(self) -> list[str]:
        return [self.key["private_key"].splitlines()[1]]


class MetaConversionsHarness(EmulatorHarness):
    """Meta's Conversions API (connectors/meta_conversions.py) on the Graph emulator's CRM dataset.

    Meta keeps events, not records: a lead is held once when its "Lead" event arrived
    once, an MQL when its "Marketing Qualified Lead" event did; no score is held (so it
    is not in HARNESSES, whose all-destinations test reads one back).
    """

    id = "meta_conversions"
    updates_in_place = False  # stages are announced once; a new score changes nothing sent
    expected_wait = 60.0  # the throttle's estimated_time_to_regain_access of 1 minute
    dataset = "880000000000001"

    def __init__(self) -> None:
        super().__init__()
        self.emulator = GraphEmulator(access_token="emulator-capi-token-4b1d9e")

    def start(self) -> None:
        super().start()
        self.emulator.add_dataset(self.dataset)
        self.token = self.emulator.access_token

    def build(self, **overrides: Any) -> Any:
        values = {"dataset_id": self.dataset, "access_token": self.token}
        settings = meta_conversions.Settings(**values, graph_url=self.emulator.url, **overrides)
        return meta_conversions.build("meta-crm", settings)

    def held(self, lead_id: str) -> Held:
        names = [
            e["event_name"]
            for e in self.emulator.conversion_events(self.dataset)
            if e["user_data"]["lead_id"] == lead_id
        ]
        copies = names.count("Lead")
        return Held(copies, None, "Marketing Qualified Lead" in names if copies else None)

    def delivery_requests(self) -> int:
        return self.emulator.call_count(f"/{self.dataset}/events")

    def expected_requests(self, leads: int) -> int:
        return math.ceil(leads / meta_conversions.LEADS_PER_REQUEST)

    def inject(self, fault: str) -> None:
        emu, path = self.emulator, f"/{self.dataset}/events"
        {
            "auth": lambda: emu.expire_token(self.token),
            "rate_limit": lambda: emu.inject_fault(4, path=path, regain_minutes=1),
            "server_error": lambda: emu.inject_fault("http500", path=path),
            # Graph's "no such object" for the dataset (deleted, or the token lost it).
            "rejected": lambda: emu.inject_fault("hidden", path=f"/{self.dataset}"),
            "timeout": lambda: emu.inject_fault("slow", path=path, seconds=STALL_SECONDS),
        }[fault]()

    def secrets(self) -> list[str]:
        return [self.token]


class EmailHarness(Harness):
    """Email alerts (connectors/email.py) through a real SMTP server in the test process.

    The destination takes every lead (`only_mql = false`), so a lead gets a "new" alert
    and, when it becomes an MQL, an "MQL" alert: two messages for two triggers, not a
    duplicate. `copies` is therefore the most alerts of any one trigger, and `score` and
    `mql` are what the latest alert said. Acknowledgements to the leads are on (they are
    not alerts and do not count). SMTP has no Retry-After, so a provider's "slow down" is
    a 4xx like any other (TransientError, the runner's backoff): no rate_limit fault.
    """

    id = "email"
    updates_in_place = False
    faults = ("auth", "server_error", "timeout", "rejected")
    expected_wait = 0.0
    owner = "sales@example.com"

    def start(self) -> None:
        self.server = SmtpServer()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def build(self, **overrides: Any) -> Any:
        ack = {"subject": "Thanks, {{ first_name }}", "body": "We got your {{ form_name }}.\n"}
        values = self.server.settings(
            to=[self.owner], sheet_url="https://sheets.test/{lead_id}", acknowledge=ack
        )
        return email.build("owners", email.Settings(**{**values, **overrides}))

    def alerts(self, lead_id: str) -> list[Any]:
        return [
            m for m in self.server.messages_to(self.owner) if m["X-Leadsync-Lead-Id"] == lead_id
        ]

    def held(self, lead_id: str) -> Held:
        alerts = self.alerts(lead_id)
        if not alerts:
            return Held(0)
        per_trigger: dict[str, int] = {}
        for alert in alerts:
            per_trigger[alert["X-Leadsync-Trigger"]] = (
                per_trigger.get(alert["X-Leadsync-Trigger"], 0) + 1
            )
        match = re.search(r"score (\d+)$", alerts[-1]["Subject"])
        mql = alerts[-1]["Subject"].startswith("MQL:")
        return Held(max(per_trigger.values()), int(match[1]) if match else None, mql)

    def delivery_requests(self) -> int:
        return len(self.server.messages_to(self.owner))

    def expected_requests(self, leads: int) -> int:
        return leads  # one alert per lead; SMTP has no batch of messages

    def inject(self, fault: str) -> None:
        srv = self.server
        {
            "auth": srv.revoke_password,
            "server_error": lambda: srv.refuse(
                "RCPT", "451 4.3.0 try again later", address=self.owner
            ),
            "timeout": lambda: srv.stall("MAIL", STALL_SECONDS),
            "rejected": lambda: srv.refuse("RCPT", "550 5.1.1 no such user", address=self.owner),
        }[fault]()

    def secrets(self) -> list[str]:
        return [self.server.password.removeprefix("revoked-")]


HARNESSES: list[type[Harness]] = [
    SheetsHarness,
    HubSpotHarness,
    WebhookHarness,
    BatchWebhookHarness,
    SlackHarness,
    EmailHarness,
]
