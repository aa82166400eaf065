"""The SLA job on a store, a real SMTP server and the Slack receiver emulator, driven by a
clock: working hours hold the clock, Slack escalations mention the owner, failed sends are
retried or given up, stale alerts are not sent, and the config names what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadsync.config import parse_config
from leadsync.emulators.receivers import SlackReceiver
from leadsync.errors import ConfigError
from leadsync.jobs import ScheduledRuns
from leadsync.leases import LeaseKeeper
from leadsync.models import Lead, LeadStage, Pool, RouteRequest
from leadsync.sla_job import SlaJob
from tests.smtp_server import SmtpServer

ANA = "ana@example.com"


def config(smtp: SmtpServer | None, rule: dict[str, Any], hours: str = "", **more: Any) -> Any:
    destinations = [{"name": "mail", "type": "email", **smtp.settings(to=[])}] if smtp else []
    raw = {
        "facebook": {"app_id": "1", "app_secret": "s", "verify_token": "v", "access_token": "t"},
        "destinations": destinations + more.get("destinations", []),
        "routing": {
            "owners": [{"name": "Ana", "email": ANA, "slack_id": "U0ANA", "hours": hours}],
            "rules": [{"name": "inbound", "owners": ["Ana"], "speed_to_lead": "5m"} | rule],
        },
    }
    return parse_config(raw, {})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def job_on(store, settings, start: datetime) -> tuple[SlaJob, Clock]:
    clock = Clock(start)
    return SlaJob(store, LeaseKeeper(store, "host:1:me"), ScheduledRuns(), settings, clock), clock


def an_mql(store, settings, lead_id: str, at: datetime) -> None:
    """A lead that became an MQL at `at`, assigned to Ana under the rule "inbound"."""
    store.save_leads([Lead(lead_id, at, "p1", "f1", answers={"full_name": ("Dana Diaz",)})])
    store.record_stages([LeadStage(lead_id, "mql", at)])
    ana = settings.routing.owners[0].owner()
    pool = Pool("Ana", "inbound", (ana,), (1,))
    store.assign_owners([RouteRequest(lead_id, "", pool)], {"Ana": ana})


def sla_mail(smtp: SmtpServer, to: str, kind: str) -> list[str]:
    trigger = f"sla-{kind}"
    return [
        m["X-Leadsync-Lead-Id"] for m in smtp.messages_to(to) if m["X-Leadsync-Trigger"] == trigger
    ]


def last_friday_at(hour: int, minute: int) -> datetime:
    today = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return today - timedelta(days=(today.weekday() - 4) % 7 or 7)


def test_the_clock_waits_outside_working_hours(store, smtp):
    settings = config(smtp, {}, hours="mon-fri 09:00-17:00 UTC")
    friday = last_friday_at(16, 58)
    an_mql(store, settings, "1", friday)
    job, clock = job_on(store, settings, friday)
    for late in (timedelta(minutes=30), timedelta(days=1), timedelta(days=2, hours=16, minutes=4)):
        clock.now = friday + late  # friday 17:28, saturday 16:58, monday 09:02
        assert job.run_once() == 0
    clock.now = friday + timedelta(days=2, hours=16, minutes=5)  # monday 09:03: 2 + 3 minutes
    assert job.run_once() == 1
    assert sla_mail(smtp, ANA, "reminder") == ["1"]
    [message] = smtp.messages_to(ANA)
    assert "Dana Diaz" in message["Subject"] and "Owner: Ana" in message.get_content()


def test_an_escalation_to_a_slack_destination_mentions_the_owner_once(store, smtp):
    with SlackReceiver() as slack:
        hook = {"name": "alerts", "type": "slack", "webhook_url": slack.webhook_url}
        settings = config(smtp, {"escalate_to": "alerts"}, destinations=[hook])
        start = datetime.now(UTC)
        an_mql(store, settings, "1", start)
        job, clock = job_on(store, settings, start + timedelta(minutes=10))
        assert job.run_once() == 2  # reminder and escalation were both due
        clock.now += timedelta(minutes=30)
        assert job.run_once() == 0
        [message] = slack.messages
    assert "<@U0ANA>" in message["text"] and "lead 1 " in message["text"]
    assert sla_mail(smtp, ANA, "reminder") == ["1"]


def test_a_refused_send_is_retried_next_round_and_an_impossible_one_given_up(store, smtp):
    settings = config(smtp, {"escalate_to": "boss@example.com"})
    start = datetime.now(UTC)
    an_mql(store, settings, "1", start)
    job, clock = job_on(store, settings, start + timedelta(minutes=6))
    smtp.refuse("RCPT", "451 4.3.0 try again later")
    assert job.run_once() == 0
    [alert] = store.sla_alerts(["1"])
    assert (alert.state, alert.attempts, alert.target) == ("claimed", 1, ANA)
    assert "451" in alert.last_error
    assert job.run_once() == 1 and sla_mail(smtp, ANA, "reminder") == ["1"]

    clock.now += timedelta(minutes=5)
    smtp.refuse("RCPT", "550 5.1.1 no such user", address="boss@example.com")
    assert job.run_once() == 0
    assert job.run_once() == 0  # given up: not tried again
    states = {a.kind: a.state for a in store.sla_alerts(["1"])}
    assert states == {"reminder": "sent", "escalation": "failed"}
    assert sla_mail(smtp, "boss@example.com", "escalation") == []


def test_an_alert_due_more_than_a_day_ago_is_not_sent(store, smtp):
    settings = config(smtp, {})
    start = datetime.now(UTC) - timedelta(days=3)
    an_mql(store, settings, "1", start)
    job, _ = job_on(store, settings, datetime.now(UTC))
    assert job.run_once() == 0
    [alert] = store.sla_alerts(["1"])
    assert alert.state == "failed" and "too long ago" in alert.last_error
    assert smtp.messages_to(ANA) == []


@pytest.mark.parametrize(
    ("rule", "with_smtp", "path"),
    [
        ({"escalate_to": "nobody"}, True, "routing.rules[0].escalate_to"),
        ({}, False, "routing.rules[0].speed_to_lead"),
    ],
)
def test_config_names_what_stops_alerts(smtp, rule, with_smtp, path):
    with pytest.raises(ConfigError) as raised:
        config(smtp if with_smtp else None, rule)
    assert path in str(raised.value)


def test_escalate_to_takes_an_owner_an_address_or_a_slack_destination(smtp):
    hook = {"name": "alerts", "type": "slack", "webhook_url": "https://hooks.slack.com/x"}
    for target in ("Ana", "boss@example.com", "alerts"):
        rule = config(smtp, {"escalate_to": target}, destinations=[hook]).routing.rules[0]
        assert rule.escalate_to == target
