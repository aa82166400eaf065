"""Two `leadsync run` replicas on PostgreSQL route 400 leads to three owners (weights 2:1:1).

320 people submit one of three forms by signed webhook, spread over both ports;
once half of them are routed the replica holding the sheet's delivery lease is
SIGKILLed and restarted. Then 80 of those people submit another form. Every lead must have
exactly one owner; the first submissions split within ±2 of 160/80/80; each
repeat goes to its person's first owner and is marked with the first lead's id
(sheet `repeat_of`); the sheet's `owner` column says the same. After another
SIGKILL and restart (which re-scores every lead at start) no owner has changed.
Phone numbers typed in five national formats from three countries come out in
`phone_e164`; an unreadable one is kept as typed and flagged.

An email destination alerts each lead's owner over a real SMTP relay in the test process
(the `smtp` fixture: STARTTLS and a login, its CA as `ca_file`): each owner's inbox holds
exactly one "new lead" alert per lead of theirs (one distinct Message-ID per owner and lead)
and none of another owner's. Delivery is at least once: the connector sends a claimed batch
over one SMTP session and the outbox settles the batch when `deliver` returns, so a SIGKILL
in between makes the claim's next holder send every alert of that batch already sent again,
with the same Message-ID (which mail clients show once): one kill can repeat up to a batch
of alerts, not just one (13 in one run here). So the count is of distinct Message-IDs, and a
raw repeat is allowed only across a kill: its first copy arrived before the kill's window
closed and its second after it opened; a repeat that straddles no kill is a bug.
No alert is "MQL:" (these leads never qualify).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from tests.daemon_harness import sheet_rows, wait_until
from tests.e2e.process import LeadsyncProcess, free_port, sheets_destination_toml, write_config
from tests.smtp_server import SmtpServer
from tests.store_fixtures import run_sql

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PAGE = "111"
QUESTIONS = ["full_name", "email", "phone_number", "country"]
PEOPLE = 320
REPEATS = 80  # a fifth of the 400 leads: people who come back on another form
SENDERS = 8
ROUTING = """
[contacts]
default_region = "US"

[[routing.owners]]
name = "Ana"
email = "ana@example.com"
slack_id = "U0ANA"
weight = 2
[[routing.owners]]
name = "Bo"
email = "bo@example.com"
weight = 1
[[routing.owners]]
name = "Cy"
email = "cy@example.com"
weight = 1
"""
ADDRESSES = {"Ana": "ana@example.com", "Bo": "bo@example.com", "Cy": "cy@example.com"}
# (typed, country answer, E.164): five national formats from three countries, one unreadable.
PHONES = [
    ("(415) 555-2671", "", "+14155552671"),  # the default region, US
    ("415.555.0132", "US", "+14155550132"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("07911 123456", "GB", "+447911123456"),
    ("030 901820", "DE", "+4930901820"),
    ("12", "DE", "invalid: 12"),
]


def post_webhooks(graph: GraphEmulator, ports: list[int], lead_ids: list[str]) -> None:
    """Each lead's signed webhook, round-robin over the replicas; a refused POST moves on."""
    turn = itertools.count()

    def send(lead_id: str) -> None:
        body, signature = graph.webhook_body([lead_id])
        headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
        for _ in range(20):
            port = ports[next(turn) % len(ports)]
            try:
                url = f"http://127.0.0.1:{port}/webhook"
                if requests.post(url, data=body, headers=headers, timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass  # that replica is dead: the next one
        raise AssertionError(f"no replica acknowledged lead {lead_id}")

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(send, lead_ids))


def submit(graph: GraphEmulator, form_id: str, person: int) -> str:
    typed, country, _ = PHONES[person] if person < len(PHONES) else ("", "", "")
    answers = {"full_name": f"Person {person}", "email": f"P{person}@Acme.example"}
    return graph.create_lead(form_id, answers | {"phone_number": typed, "country": country})


def owners(store_url: str) -> dict[str, str]:
    return dict(run_sql(store_url, "SELECT lead_id, name FROM assignments"))


def lease_holder(store_url: str, replicas: list[LeadsyncProcess]) -> LeadsyncProcess:
    """The replica holding the sheet's delivery lease (the first one when none does)."""
    rows = run_sql(store_url, "SELECT owner FROM leases WHERE name = 'deliver:sheet'")
    pids = {int(owner.split(":")[1]) for (owner,) in rows}
    return next((r for r in replicas if r.proc and pids & set(r.pids)), replicas[0])


def in_sheet(sheets, store_url: str, lead_ids: set[str]) -> bool:
    if run_sql(store_url, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'")[0][0]:
        return False
    return {row["lead_id"] for row in sheet_rows(sheets)} >= lead_ids


def email_destination_toml(smtp: SmtpServer) -> str:
    """An email destination on the test's relay: the owners' alerts, no acknowledgement."""
    keys = smtp.settings(only_mql=False)
    del keys["to"]  # every lead has an owner with an address
    lines = [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return '\n[[destinations]]\nname = "alerts"\ntype = "email"\n' + "\n".join(lines) + "\n"


def kill_and_restart(victim: LeadsyncProcess, smtp: SmtpServer, kills: list[range]) -> None:
    """SIGKILLs and restarts `victim`. `kills` gets the window of the relay's message count
    from before the kill to after the restart: a message the victim sent just before dying
    may be taken by the relay a moment later, but not after the victim serves again."""
    before = len(smtp.received)
    victim.kill()
    victim.start()
    kills.append(range(before, len(smtp.received) + 1))


def start_replicas(tmp_path: Path, graph, sheets, smtp, store_url) -> list[LeadsyncProcess]:
    destination = sheets_destination_toml(sheets, tmp_path, name="sheet")
    destination += email_destination_toml(smtp)
    replicas = []
    for number in range(2):
        port = free_port()
        config = write_config(
            tmp_path / f"replica-{number}.toml",
            graph,
            store_url,
            port,
            [PAGE],
            ROUTING + destination,
        )
        replicas.append(LeadsyncProcess(config, port, tmp_path / f"replica-{number}.log"))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(LeadsyncProcess.start, replicas))
    return replicas


def first_wave_with_a_kill(graph, store_url, forms, replicas, smtp, kills) -> dict[int, str]:
    """Every person's first submission; once half are routed, the delivering replica is
    SIGKILLed (routing, scoring and delivery in flight) and restarted."""
    firsts = {person: submit(graph, forms[person % 3], person) for person in range(PEOPLE)}
    ports = [replica.port for replica in replicas]
    with ThreadPoolExecutor(1) as sender:
        sending = sender.submit(post_webhooks, graph, ports, list(firsts.values()))
        wait_until(lambda: len(owners(store_url)) >= PEOPLE // 2, 60, "half the wave routed")
        kill_and_restart(lease_holder(store_url, replicas), smtp, kills)
        sending.result()
    wait_until(lambda: len(owners(store_url)) >= PEOPLE, 60, "every first submission assigned")
    return firsts


@pytest.mark.timeout(180)
def test_two_replicas_route_every_lead_to_one_owner_through_sigkills(
    graph, sheets, smtp, store_url_factory, tmp_path
):
    store_url = store_url_factory("postgres")
    forms = [graph.add_form(PAGE, f"Form {n}", QUESTIONS) for n in range(3)]
    kills: list[range] = []  # the relay's message count around each SIGKILL
    replicas = start_replicas(tmp_path, graph, sheets, smtp, store_url)
    try:
        firsts = first_wave_with_a_kill(graph, store_url, forms, replicas, smtp, kills)
        repeats = {p: submit(graph, forms[(p + 1) % 3], p) for p in range(0, PEOPLE, 4)}
        assert len(repeats) == REPEATS
        post_webhooks(graph, [r.port for r in replicas], list(repeats.values()))
        everyone = set(firsts.values()) | set(repeats.values())
        wait_until(lambda: in_sheet(sheets, store_url, everyone), 90, "all 400 leads in the sheet")
        before = owners(store_url)

        kill_and_restart(replicas[1], smtp, kills)  # re-scores every lead at start
        wait_until(lambda: '"leads.rescored"' in replicas[1].output(), 60, "the start re-score")
        wait_until(lambda: in_sheet(sheets, store_url, everyone), 60, "an empty outbox again")
        after = owners(store_url)
        rows = {row["lead_id"]: row for row in sheet_rows(sheets)}
    finally:
        for replica in replicas:
            replica.ensure_stopped()

    assert len(rows) == len(everyone) == 400 and set(after) == everyone  # one owner each
    assert after == before, "no owner changed after a SIGKILL and a restart"
    split = Counter(after[lead_id] for lead_id in firsts.values())
    for name, expected in {"Ana": 160, "Bo": 80, "Cy": 80}.items():
        assert abs(split[name] - expected) <= 2, split
    for person, lead_id in repeats.items():
        first = firsts[person]
        assert after[lead_id] == after[first], f"person {person}'s repeat went to another owner"
        assert rows[lead_id]["repeat_of"] == first
        assert rows[first].get("repeat_of", "") == ""
    assert all(rows[lead_id]["owner"] == after[lead_id] for lead_id in everyone)
    for person, (_, _, e164) in enumerate(PHONES):
        assert rows[firsts[person]]["phone_e164"] == e164
    assert_one_alert_per_lead(smtp, after, kills)


def assert_one_alert_per_lead(smtp: SmtpServer, owner_of: dict[str, str], kills: list[range]):
    """Each owner got exactly one "new lead" alert (Message-ID) per lead of theirs and no
    other; a Message-ID came twice only across a SIGKILL (see the module docstring)."""
    arrivals: dict[str, list[int]] = {}  # Message-ID -> indexes in the relay's list
    inbox: dict[tuple[str, str], set[str]] = {}  # (recipient, lead id) -> Message-IDs
    for index, received in enumerate(smtp.received):
        message = received.message
        assert message["X-Leadsync-Trigger"] == "new", message["Subject"]
        arrivals.setdefault(message["Message-ID"], []).append(index)
        for recipient in received.rcpt_tos:
            key = (recipient, message["X-Leadsync-Lead-Id"])
            inbox.setdefault(key, set()).add(message["Message-ID"])
    expected = {(ADDRESSES[name], lead_id) for lead_id, name in owner_of.items()}
    assert set(inbox) == expected, "an alert missing, or sent to another owner"
    assert all(len(ids) == 1 for ids in inbox.values()), "two different alerts of one lead"
    for message_id, indexes in arrivals.items():
        for first, again in itertools.pairwise(indexes):
            # Sent before a kill's window closed, and again after it opened.
            assert any(first < k.stop and again >= k.start for k in kills), f"{message_id} resent"
