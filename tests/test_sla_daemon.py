"""Speed to lead through the real daemon: Graph emulator -> store -> score (MQL) -> routing,
then the SLA job on an injected clock, sending over a real SMTP server (aiosmtpd). Of three
MQLs, the one marked contacted in time (POST /events) gets nothing; the others get exactly one
reminder at 5 minutes and one escalation at 10, and a restart in between sends nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from leadsync.config import load_config
from leadsync.emulators.graph import GraphEmulator
from tests.daemon_harness import DaemonThread, daemon_settings, wait_until
from tests.smtp_server import SmtpServer

ANA, BOSS = "ana@example.com", "boss@example.com"
ANSWERS = {"full_name": "Dana Diaz", "email": "dana@umbrella.com"}


class Clock:
    """The daemon's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def settings_for(graph: GraphEmulator, store_url: str, smtp: SmtpServer) -> Any:
    return daemon_settings(
        graph,
        store_url,
        pages=["111"],
        destinations=[{"name": "owners", "type": "email", **smtp.settings(to=[])}],
        scoring={"threshold": 0},  # every lead is an MQL at once
        routing={
            "owners": [{"name": "Ana", "email": ANA}],
            "rules": [
                {
                    "name": "inbound",
                    "owners": ["Ana"],
                    "speed_to_lead": "5m",
                    "escalate_to": BOSS,
                }
            ],
        },
    )


def sla_mail(smtp: SmtpServer, to: str, kind: str) -> list[str]:
    """Lead ids of the SLA alerts of `kind` that `to` got, in order."""
    return sorted(
        m["X-Leadsync-Lead-Id"]
        for m in smtp.messages_to(to)
        if m["X-Leadsync-Trigger"] == f"sla-{kind}"
    )


def contacted(url: str, lead_id: str) -> dict[str, Any]:
    event = {"id": f"call-{lead_id}", "lead_id": lead_id, "type": "contacted"}
    event["at"] = datetime.now(UTC).isoformat()
    headers = {"Authorization": "Bearer events-secret"}
    return requests.post(f"{url}/events", json=[event], headers=headers, timeout=10).json()


def routed_mqls(running: DaemonThread, clock: Clock) -> list[Any]:
    waiting = running.store.waiting_mqls(clock.now - timedelta(hours=1))
    return waiting if len(waiting) == 3 and all(w.owner for w in waiting) else []


def round_at(running: DaemonThread, clock: Clock, at: datetime) -> None:
    clock.now = at
    assert running.daemon is not None
    running.daemon.sla.run_once()  # the scheduled round may run too: claims keep it once


def test_late_mqls_get_one_reminder_then_one_escalation_and_contacted_ones_none(store_url, smtp):
    clock = Clock()
    with GraphEmulator() as graph:
        settings = settings_for(graph, store_url, smtp)
        form_id = graph.add_form("111", "Demo", list(ANSWERS))
        ids = [graph.create_lead(form_id, ANSWERS) for _ in range(3)]
        called, late = ids[0], sorted(ids[1:])
        with DaemonThread(settings, clock=clock) as running:
            graph.set_webhook_target(f"{running.url}/webhook")
            graph.send_webhook(ids).result(timeout=30)
            waiting = wait_until(lambda: routed_mqls(running, clock), 30, "three routed MQLs")
            start = max(w.mql_at for w in waiting)
            round_at(running, clock, start + timedelta(minutes=4))
            assert contacted(running.url, called)["stages"] == 1
            round_at(running, clock, start + timedelta(minutes=4, seconds=59))
            assert sla_mail(smtp, ANA, "reminder") == []

            round_at(running, clock, start + timedelta(minutes=5, seconds=1))
            wait_until(lambda: sla_mail(smtp, ANA, "reminder") == late, 30, "two reminders")
            round_at(running, clock, start + timedelta(minutes=9))
        with DaemonThread(settings, clock=clock) as restarted:
            round_at(restarted, clock, start + timedelta(minutes=9, seconds=30))
            assert sla_mail(smtp, ANA, "reminder") == late  # nothing twice after the restart
            assert sla_mail(smtp, BOSS, "escalation") == []

            round_at(restarted, clock, start + timedelta(minutes=10, seconds=1))
            wait_until(lambda: sla_mail(smtp, BOSS, "escalation") == late, 30, "escalations")
            round_at(restarted, clock, start + timedelta(hours=2))

    assert sla_mail(smtp, ANA, "reminder") == late
    assert sla_mail(smtp, BOSS, "escalation") == late
    assert sla_mail(smtp, ANA, "escalation") == sla_mail(smtp, BOSS, "reminder") == []
    assert called not in [m["X-Leadsync-Lead-Id"] for m in smtp.messages_to(BOSS)]


def test_sighup_that_gives_a_rule_speed_to_lead_starts_the_sla_job(tmp_path, smtp):
    with GraphEmulator() as graph:
        email = "".join(f"{k} = {json.dumps(v)}\n" for k, v in smtp.settings().items())
        base = (
            f'[facebook]\napp_id = "{graph.app_id}"\napp_secret = "{graph.app_secret}"\n'
            f'verify_token = "v"\naccess_token = "{graph.access_token}"\n'
            f'graph_url = "{graph.url}"\n[server]\nhost = "127.0.0.1"\nport = 0\n'
            f'[store]\nurl = "sqlite:///{tmp_path / "l.db"}"\n'
            '[[routing.owners]]\nname = "Ana"\nemail = "ana@example.com"\n'
            '[[routing.rules]]\nowners = ["Ana"]\n'
        )
        dests = f'[[destinations]]\nname = "mail"\ntype = "email"\n{email}'
        path = tmp_path / "leadsync.toml"
        path.write_text(base + dests)
        with DaemonThread(load_config(path), config_path=path) as running:
            assert running.daemon is not None
            assert running.daemon.scheduler.get_job("sla") is None  # no rule has an SLA
            path.write_text(base + 'speed_to_lead = "5m"\n' + dests)
            running.run(running.daemon.reload_config())
            assert running.daemon.scheduler.get_job("sla") is not None
