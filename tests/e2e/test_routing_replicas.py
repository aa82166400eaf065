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
"""

from __future__ import annotations

import itertools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from tests.daemon_harness import sheet_rows, wait_until
from tests.e2e.process import LeadsyncProcess, free_port, sheets_destination_toml, write_config
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
weight = 1
[[routing.owners]]
name = "Cy"
weight = 1
"""
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
    return next((r for r in replicas if r.proc and r.proc.pid in pids), replicas[0])


def in_sheet(sheets, store_url: str, lead_ids: set[str]) -> bool:
    if run_sql(store_url, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'")[0][0]:
        return False
    return {row["lead_id"] for row in sheet_rows(sheets)} >= lead_ids


def start_replicas(tmp_path: Path, graph, sheets, store_url: str) -> list[LeadsyncProcess]:
    destination = sheets_destination_toml(sheets, tmp_path, name="sheet")
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


def first_wave_with_a_kill(graph, store_url, forms, replicas) -> dict[int, str]:
    """Every person's first submission; once half are routed, the delivering replica is
    SIGKILLed (routing, scoring and delivery in flight) and restarted."""
    firsts = {person: submit(graph, forms[person % 3], person) for person in range(PEOPLE)}
    ports = [replica.port for replica in replicas]
    with ThreadPoolExecutor(1) as sender:
        sending = sender.submit(post_webhooks, graph, ports, list(firsts.values()))
        wait_until(lambda: len(owners(store_url)) >= PEOPLE // 2, 60, "half the wave routed")
        victim = lease_holder(store_url, replicas)
        victim.kill()
        victim.start()
        sending.result()
    wait_until(lambda: len(owners(store_url)) >= PEOPLE, 60, "every first submission assigned")
    return firsts


@pytest.mark.timeout(180)
def test_two_replicas_route_every_lead_to_one_owner_through_sigkills(
    graph, sheets, store_url_factory, tmp_path
):
    store_url = store_url_factory("postgres")
    forms = [graph.add_form(PAGE, f"Form {n}", QUESTIONS) for n in range(3)]
    replicas = start_replicas(tmp_path, graph, sheets, store_url)
    try:
        firsts = first_wave_with_a_kill(graph, store_url, forms, replicas)
        repeats = {p: submit(graph, forms[(p + 1) % 3], p) for p in range(0, PEOPLE, 4)}
        assert len(repeats) == REPEATS
        post_webhooks(graph, [r.port for r in replicas], list(repeats.values()))
        everyone = set(firsts.values()) | set(repeats.values())
        wait_until(lambda: in_sheet(sheets, store_url, everyone), 90, "all 400 leads in the sheet")
        before = owners(store_url)

        replicas[1].kill()
        replicas[1].start()  # re-scores every lead at start
        wait_until(lambda: '"leads.rescored"' in replicas[1].output(), 60, "the start re-score")
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
