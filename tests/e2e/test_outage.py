"""Outages around a running `leadsync run`: Google Sheets down, the Facebook token expired.

Both run the daemon as a subprocess on the Graph and Sheets emulators and read
what an operator reads: `GET /healthz`, and `leadsync status` run as a command
on the same config. Leads keep arriving during each outage; afterwards every
one of them is in the sheet exactly once.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.sheets import SheetsEmulator
from leadsync.store import open_store
from tests.daemon_harness import sheet_rows, wait_until
from tests.e2e.process import (
    LeadsyncProcess,
    free_port,
    run_cli,
    sheets_destination_toml,
    write_config,
)

pytestmark = pytest.mark.e2e

PAGE = "111"
QUESTIONS = ["full_name", "email", "job_title", "company_size"]
# The outage lasts until the daemon has put its whole backlog off by at least this long.
LONG_WAIT_SECONDS = 16
# Rows must be back well inside that wait: the first write that succeeds after the outage
# sends everything it put off.
RECOVERY_SECONDS = 8


class Setup:
    """Emulators, a config and a started daemon for one test."""

    def __init__(self, tmp_path, graph: GraphEmulator, sheets: SheetsEmulator, poll: str):
        self.graph, self.sheets = graph, sheets
        self.form_id = graph.add_form(PAGE, "Outage", QUESTIONS)
        self.store_url = f"sqlite:///{tmp_path / 'leadsync.db'}"
        self.port = free_port()
        self.dest = sheets_destination_toml(sheets, tmp_path)
        self.config = tmp_path / "leadsync.toml"
        self.poll = poll
        self.write_config()
        self.proc = LeadsyncProcess(self.config, self.port, tmp_path / "leadsync.log").start()
        graph.set_webhook_target(f"{self.proc.url}/webhook")

    def write_config(self) -> None:
        """(Re)writes the config with the Graph emulator's current token."""
        write_config(
            self.config, self.graph, self.store_url, self.port, [PAGE], self.dest,
            poll_interval=self.poll,
        )  # fmt: skip

    def leads(self, numbers: range) -> list[str]:
        return [
            self.graph.create_lead(
                self.form_id,
                {"full_name": f"Out Age {n}", "email": f"o{n}@outage.example", "job_title": "VP"},
            )
            for n in numbers
        ]

    def send(self, lead_ids: list[str]) -> None:
        posts = self.graph.send_webhook(lead_ids, copies=2, per_post=4).result(timeout=60)
        assert all(post.delivered for post in posts)

    def healthz(self) -> tuple[int, dict]:
        reply = requests.get(f"{self.proc.url}/healthz", timeout=5)
        return reply.status_code, reply.json()

    def status(self) -> str:
        done = run_cli(self.config, "status")
        assert done.returncode == 0, done.stderr
        return done.stdout

    def longest_put_off(self, items: int) -> float:
        """The longest wait the daemon logged for a refused batch of `items` leads."""
        waits = [0.0]
        for line in self.proc.output().splitlines():
            if line.startswith("{") and '"delivery.failed"' in line:
                event = json.loads(line)
                if event["items"] == items:
                    waits.append(event["retry_in_s"])
        return max(waits)

    def pending(self) -> int:
        store = open_store(self.store_url)
        try:
            return sum(s.pending for s in store.destination_stats())
        finally:
            store.close()


def landed_once(sheets: SheetsEmulator, lead_ids: list[str]) -> bool:
    return set(lead_ids) <= {r["lead_id"] for r in sheet_rows(sheets)}


def line_of(output: str, first_cell: str) -> list[str]:
    """The cells of the table row that starts with `first_cell` in `leadsync status` output."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


@pytest.fixture
def emulators():
    with GraphEmulator() as graph, SheetsEmulator() as sheets:
        yield graph, sheets


def test_sheets_outage_delays_rows_and_loses_none(tmp_path, emulators):
    """A Sheets outage of several minutes, emulated: rows wait, none is lost or doubled.

    What makes an outage long for the daemon is not the clock but how often its
    deliveries were refused: each refusal doubles the range of the next wait (full
    jitter) up to a one-minute cap, reached after about six refusals, a minute or two
    into an outage. From then on every further minute leaves the outbox as it was:
    items pending, waits of up to a minute, nothing dead-lettered before 24 hours. So
    the outage here lasts until the daemon logs that it put the whole backlog off by
    LONG_WAIT_SECONDS or more, the state a real outage is in from its first minute on.
    The rows must then be back within RECOVERY_SECONDS of the outage's end, shorter
    than that wait: only the first successful write after the outage, which sends
    everything it put off, brings them back in time.
    """
    graph, sheets = emulators
    run = Setup(tmp_path, graph, sheets, poll="2s")
    try:
        first = run.leads(range(5))
        run.send(first)
        wait_until(lambda: landed_once(sheets, first), 30, "rows before the outage")
        sheets.fail_next(10**6, 503)  # Google Sheets is down until clear_faults()
        during = run.leads(range(5, 45))
        run.send(during)
        wait_until(lambda: run.pending() == len(during), 30, "the outage's leads queued")
        wait_until(
            lambda: run.longest_put_off(len(during)) >= LONG_WAIT_SECONDS, 150, "a long wait"
        )
        check_outage_shows(run)
        assert not set(during) & {r["lead_id"] for r in sheet_rows(sheets)}
        sheets.clear_faults()
        after = run.leads(range(45, 50))
        run.send(after)  # leads keep coming: the first one written shows Sheets is back
        everyone = first + during + after
        wait_until(lambda: landed_once(sheets, everyone), RECOVERY_SECONDS, "rows after it")
        wait_until(lambda: run.pending() == 0, 30, "an empty outbox")
        assert Counter(r["lead_id"] for r in sheet_rows(sheets)) == Counter(everyone)
        assert line_of(run.status(), "destination:sheet")[1] == "ok"
        assert run.proc.terminate() == 0
    finally:
        run.proc.ensure_stopped()


def check_outage_shows(run: Setup) -> None:
    """During the outage `status` names the failing destination and its queue; /healthz
    stays 200, since the leads are safe on disk and restarting the daemon would not help."""
    status = run.status()
    service = line_of(status, "destination:sheet")
    assert service[1] == "failing" and "Sheets answered 503" in service[2], service
    queue = line_of(status, "sheet")
    assert (queue[1], queue[4]) == ("40", "0"), queue  # 40 pending, none dead-lettered
    code, health = run.healthz()
    assert code == 200 and health["status"] == "ok", health


@pytest.mark.parametrize(
    ("poll", "replace"),
    [
        # Polls hourly: only the SIGHUP can make the daemon read the new token.
        pytest.param("1h", "sighup", id="sighup"),
        # Polls every 2 s: while the token is bad each poll re-reads the config by itself.
        pytest.param("2s", "config_only", id="reread-on-poll"),
    ],
)
def test_expired_token_is_reported_then_everything_arrives_once_replaced(
    tmp_path, emulators, poll, replace
):
    graph, sheets = emulators
    run = Setup(tmp_path, graph, sheets, poll=poll)
    try:
        first = run.leads(range(3))
        run.send(first)
        wait_until(lambda: landed_once(sheets, first), 30, "rows before the expiry")
        graph.expire_token()
        later = run.leads(range(3, 15))
        run.send(later)  # Meta still delivers webhooks; reading the leads needs the token
        wait_until(lambda: run.healthz()[0] == 503, 30, "/healthz to fail")
        reasons = run.healthz()[1]["reasons"]
        assert any(r.startswith("facebook_token_invalid") for r in reasons), reasons
        facebook = line_of(run.status(), "facebook")
        assert facebook[1] == "failing" and "token" in facebook[2].lower(), facebook
        assert not set(later) & {r["lead_id"] for r in sheet_rows(sheets)}
        graph.issue_token("replacement-token-after-expiry")
        run.write_config()
        if replace == "sighup":
            run.proc.reload()
        wait_until(lambda: landed_once(sheets, first + later), 30, "rows after the new token")
        wait_until(lambda: run.healthz()[0] == 200, 30, "/healthz to recover")
        assert line_of(run.status(), "facebook")[1] == "ok"
        assert Counter(r["lead_id"] for r in sheet_rows(sheets)) == Counter(first + later)
        assert run.proc.terminate() == 0
    finally:
        run.proc.ensure_stopped()
