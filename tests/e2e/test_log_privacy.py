"""Nothing a lead typed and no secret appears in leadsync's output, in JSON or console format.

`leadsync run` runs as a subprocess through a whole flow: Meta's subscription
handshake, a malformed and a forged webhook, leads by webhook to sheet rows,
engagement events by lead id and by email (one for nobody, one invalid), an
expired Graph token that is replaced, and a 403 from Google Sheets. Everything
it prints (stdout and stderr), plus what `leadsync status` prints afterwards,
is searched for every lead's name, email and phone number, both Graph tokens,
the app secret, the verify token, the events token and the service-account
private key. The lead ids and the flow's own events must be there, so an empty
or truncated output cannot pass.
"""

from __future__ import annotations

import json
import secrets
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.graph.webhooks import sign
from leadsync.emulators.sheets import SheetsEmulator
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
QUESTIONS = ["full_name", "email", "phone_number", "job_title"]
PEOPLE = [
    ("Zelda Quixote-Marchetti", "zelda.quixote@privacy-test.example", "+447700900123"),
    ("Bartholomew Okonkwo-Lindqvist", "bart.ol@privacy-test.example", "+14155550199"),
    ("Ingrid Vasquez-Thornbury", "ingrid.vt@privacy-test.example", "+4915112345678"),
    ("Ptolemy Haverford-Nakamura", "ptolemy.hn@privacy-test.example", "+33612345678"),
    ("Ottoline Brisbane-Achebe", "ottoline.ba@privacy-test.example", "+61412345678"),
    ("Casimir Wolstenholme-Oduya", "casimir.wo@privacy-test.example", "+27821234567"),
]
NOBODY = "no.such.lead@privacy-test.example"
# Events the flow must have logged; their absence means the flow or the capture broke.
FLOW_EVENTS = ["facebook.status", "token.replaced", "delivery.failed"]


class Secrets:
    """Distinctive secret values, fresh per test, so a hit cannot be a coincidence."""

    def __init__(self) -> None:
        self.graph_token = "EAAB" + secrets.token_hex(40)
        self.new_graph_token = "EAAB" + secrets.token_hex(40)
        self.app_secret = secrets.token_hex(16)
        self.verify_token = "verify-" + secrets.token_hex(12)
        self.events_token = "events-" + secrets.token_urlsafe(24)


@pytest.mark.parametrize(
    ("log_format", "level"),
    [pytest.param("json", "info", id="json-info"), pytest.param("console", "debug", id="console")],
)
def test_output_holds_lead_ids_but_no_personal_data_or_secret(tmp_path, log_format, level):
    keys = Secrets()
    graph_options = {"app_secret": keys.app_secret, "access_token": keys.graph_token}
    with GraphEmulator(**graph_options) as graph, SheetsEmulator() as sheets:
        dest = sheets_destination_toml(sheets, tmp_path)
        flow = Flow(tmp_path, graph, sheets, keys, f'level = "{level}"\n{dest}', log_format)
        try:
            flow.run()
        finally:
            flow.proc.ensure_stopped()
        output = flow.proc.output() + flow.status_output
    key_file = tomllib.loads(flow.config.read_text())["destinations"][0]["credentials"]
    private_key = json.loads(Path(key_file).read_text())
    for lead_id in flow.lead_ids:
        assert lead_id in output, f"lead {lead_id} is not in the output: the capture is broken"
    for event in FLOW_EVENTS:
        assert event in output, f"{event} is not in the output"
    leaks = [what for what, value in forbidden(keys, private_key) if value in output]
    assert not leaks, f"the output of leadsync holds {leaks}"


def forbidden(keys: Secrets, private_key: dict[str, str]) -> list[tuple[str, str]]:
    """(what, value) pairs that must never be printed."""
    pairs = []
    for name, email, phone in PEOPLE:
        pairs += [("a name", name), ("a surname", name.split()[1]), ("an email", email)]
        pairs += [("a phone number", phone), ("a phone number", phone.lstrip("+"))]
    pairs.append(("an email", NOBODY))
    pairs += [
        ("the Graph token", keys.graph_token),
        ("the replacement Graph token", keys.new_graph_token),
        ("the app secret", keys.app_secret),
        ("the verify token", keys.verify_token),
        ("the events token", keys.events_token),
        ("the private key id", private_key["private_key_id"]),
        ("a private key", "PRIVATE KEY"),
    ]
    body = [line for line in private_key["private_key"].splitlines() if "PRIVATE" not in line]
    pairs += [("a line of the private key", line) for line in body if len(line) >= 16]
    return pairs


class Flow:
    """The end-to-end flow whose output is searched."""

    def __init__(self, tmp_path, graph, sheets, keys: Secrets, extra: str, log_format: str):
        self.graph, self.sheets, self.keys = graph, sheets, keys
        self.form_id = graph.add_form(PAGE, "Privacy", QUESTIONS)
        self.config = tmp_path / "leadsync.toml"
        self.store_url = f"sqlite:///{tmp_path / 'leadsync.db'}"
        self.port = free_port()
        self.extra = extra
        self.write_config()
        log_path = tmp_path / "leadsync.log"
        self.proc = LeadsyncProcess(
            self.config, self.port, log_path, ["--log-format", log_format]
        ).start()
        graph.set_webhook_target(f"{self.proc.url}/webhook")
        self.lead_ids: list[str] = []
        self.status_output = ""

    def new_leads(self, count: int) -> list[str]:
        """The next people of PEOPLE fill in the form (the poller would find them too)."""
        for name, email, phone in PEOPLE[len(self.lead_ids) : len(self.lead_ids) + count]:
            answers = {"full_name": name, "email": email, "phone_number": phone, "job_title": "VP"}
            self.lead_ids.append(self.graph.create_lead(self.form_id, answers))
        return self.lead_ids[-count:]

    def write_config(self) -> None:
        write_config(
            self.config, self.graph, self.store_url, self.port, [PAGE], self.extra,
            verify_token=self.keys.verify_token, events_token=self.keys.events_token,
        )  # fmt: skip

    def run(self) -> None:
        url = f"{self.proc.url}/webhook"
        assert self.graph.verify_webhook(url, self.keys.verify_token)
        assert not self.graph.verify_webhook(url, "not-the-verify-token")
        self.send_garbage(url)
        self.deliver(self.new_leads(3))
        self.post_events()
        self.expire_and_replace_token(self.new_leads(2))
        self.sheets_refuses(self.new_leads(1)[0])
        status = run_cli(self.config, "status")
        assert status.returncode == 0, status.stderr
        self.status_output = status.stdout + status.stderr
        assert self.proc.terminate() == 0

    def send_garbage(self, url: str) -> None:
        """A signed body of the wrong shape and a forged one, both quoting a person's data."""
        name, email, _ = PEOPLE[3]
        body = json.dumps({"object": name, "entry": [{"id": email}]}).encode()
        signed = {"X-Hub-Signature-256": sign(body, self.keys.app_secret)}
        assert requests.post(url, data=body, headers=signed, timeout=10).status_code == 400
        forged = {"X-Hub-Signature-256": sign(body, "not-the-app-secret")}
        assert requests.post(url, data=body, headers=forged, timeout=10).status_code == 403

    def deliver(self, lead_ids: list[str]) -> None:
        posts = self.graph.send_webhook(lead_ids, copies=2).result(timeout=60)
        assert all(post.delivered for post in posts)
        wait_until(lambda: self.landed(lead_ids), 30, "rows")

    def landed(self, lead_ids: list[str]) -> bool:
        return set(lead_ids) <= {r["lead_id"] for r in sheet_rows(self.sheets)}

    def post_events(self) -> None:
        """Events by email and by lead id, one for nobody, one invalid: the email travels."""
        at = datetime.now(UTC).isoformat()
        events = [
            {"id": "e1", "email": PEOPLE[0][1], "type": "webinar_attended", "at": at},
            {"id": "e2", "lead_id": self.lead_ids[1], "type": "demo_requested", "at": at},
            {"id": "e3", "email": NOBODY, "type": "webinar_attended", "at": at},  # no such lead
        ]
        auth = {"Authorization": f"Bearer {self.keys.events_token}"}
        url = f"{self.proc.url}/events"
        reply = requests.post(url, json=events, headers=auth, timeout=10)
        assert reply.status_code == 200 and reply.json()["stored"] == 2, reply.text
        bad = [{"id": "e4", "email": PEOPLE[2][1], "type": "", "at": at}]
        assert requests.post(url, json=bad, headers=auth, timeout=10).status_code == 400
        wrong = {"Authorization": f"Bearer {PEOPLE[2][1]}"}
        assert requests.post(url, json=events, headers=wrong, timeout=10).status_code == 401

        def rescored() -> bool:
            row = next(r for r in sheet_rows(self.sheets) if r["lead_id"] == self.lead_ids[0])
            return "Webinar attended" in row.get("score_reasons", "")

        wait_until(rescored, 30, "the event's row update")

    def expire_and_replace_token(self, lead_ids: list[str]) -> None:
        self.graph.expire_token()
        posts = self.graph.send_webhook(lead_ids).result(timeout=60)
        assert all(post.delivered for post in posts)
        wait_until(lambda: self.healthz() == 503, 30, "the expired token on /healthz")
        self.graph.issue_token(self.keys.new_graph_token)
        self.write_config()
        self.proc.reload()
        wait_until(lambda: self.landed(lead_ids), 30, "rows after the new token")

    def sheets_refuses(self, lead_id: str) -> None:
        """A 403 from Sheets (the sheet unshared): logged, and the lead waits."""
        self.sheets.fail_next(1, 403)
        self.graph.send_webhook([lead_id]).result(timeout=60)
        wait_until(lambda: "delivery.failed" in self.proc.output(), 30, "the refusal logged")

    def healthz(self) -> int:
        return requests.get(f"{self.proc.url}/healthz", timeout=5).status_code
