"""The email destination's memory and rules: one alert per lead and trigger (new, MQL) to
the routed owner or `to`, the acknowledgement to the lead (once per person, from sandboxed
templates, retried alone when it fails after the alert), logs by id only, its config keys
(`to` unless routing owners exist, no password in clear) and `leadsync check`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors import email
from leadsync.check import check_destination
from leadsync.config import parse_config
from leadsync.errors import ConfigError, PermanentError, TransientError
from leadsync.models import Contact, Owner, utcnow
from leadsync.testing import Courier, make_lead, personal_data, scored
from tests.email_fixtures import (
    ACK,
    OWNER,
    alerts,
    body,
    with_answer,
)
from tests.smtp_server import PASSWORD, SmtpServer


# -- once per lead and trigger ---------------------------------------------------------
def test_a_new_lead_and_its_mql_flip_make_one_alert_each_and_nothing_more(smtp, email_connect):
    lead = make_lead(2)
    courier = Courier(email_connect())

    for revision, points in ((1, 40), (1, 40), (2, 70), (2, 70), (3, 90), (4, 20), (5, 95)):
        assert courier.deliver([scored(lead, points, revision=revision)])[0].ok

    subjects = [m["Subject"] for m in alerts(smtp, lead.id)]
    assert subjects == [
        "New lead: Demo request - Zelda Quartermain2 - score 40",
        "MQL: Demo request - Zelda Quartermain2 - score 70",
    ]
    assert courier.receipts[lead.id] == "email:new,mql"


def test_a_lead_that_is_an_mql_at_once_gets_one_mql_alert(smtp, email_connect):
    lead = make_lead(3)
    courier = Courier(email_connect())

    courier.deliver([scored(lead, 85)])
    courier.deliver([scored(lead, 90, revision=2)])

    assert [m["Subject"][:4] for m in alerts(smtp, lead.id)] == ["MQL:"]
    assert courier.receipts[lead.id] == "email:new,mql"


def test_the_owner_from_routing_gets_the_alert_instead_of_to(smtp, email_connect):
    lead = replace(scored(make_lead(6), 80), owner=Owner("Ana", "ana@example.com"))

    email_connect().deliver([lead])

    (alert,) = alerts(smtp, lead.lead.id, to="ana@example.com")
    assert "Owner: Ana" in body(alert, "plain")
    assert alerts(smtp, lead.lead.id) == []


def test_a_lead_without_owner_and_without_to_is_dead_lettered_with_the_fix(smtp, email_connect):
    results = email_connect(to=[]).deliver([scored(make_lead(7), 80)])

    assert isinstance(results[0].error, PermanentError)
    assert "has no owner" in str(results[0].error) and "to = [...]" in str(results[0].error)
    assert smtp.received == []


# -- the acknowledgement to the lead -------------------------------------------------------
def test_the_lead_gets_one_acknowledgement_from_the_config_templates(smtp, email_connect):
    lead = make_lead(40)
    courier = Courier(email_connect(acknowledge={**ACK, "reply_to": "team@example.com"}))

    courier.deliver([scored(lead, 40)])
    courier.deliver([scored(lead, 80, revision=2)])

    (ack,) = smtp.messages_to(lead.email)
    assert ack["Subject"] == "Thanks, Zelda"
    assert ack["Reply-To"] == "team@example.com"
    assert body(ack, "plain") == "Hi Zelda Quartermain40, we got your Demo request.\n"
    assert courier.receipts[lead.id] == "email:new,mql,ack"


def test_the_html_acknowledgement_escapes_what_the_lead_typed(smtp, email_connect):
    lead = with_answer(scored(make_lead(41), 40), "full_name", "<b>Bob</b>")
    html = "<p>Hi {{ name }}</p>"
    email_connect(acknowledge={**ACK, "html": html}).deliver([lead])

    (ack,) = smtp.messages_to(lead.lead.email)
    assert body(ack, "html").strip() == "<p>Hi &lt;b&gt;Bob&lt;/b&gt;</p>"


def test_one_acknowledgement_per_person_and_none_without_an_email(smtp, email_connect):
    same = make_lead(42)
    other = make_lead(43)
    again = replace(
        other, answers={**other.answers, "email": (" ZELDA.Quartermain42@Example-Leads.test ",)}
    )
    silent = make_lead(44, email=False)
    courier = Courier(email_connect(acknowledge=ACK))

    results = courier.deliver([scored(same, 40), scored(again, 40), scored(silent, 40)])

    assert len(smtp.messages_to(same.email)) == 1
    assert [r.external_id for r in results] == [
        "email:new,ack",
        "email:new,noack",
        "email:new,noack",
    ]
    assert len(smtp.messages_to(OWNER)) == 3  # every lead still alerts its owner


def test_a_repeat_lead_and_an_old_lead_get_no_acknowledgement(smtp, email_connect):
    old = replace(make_lead(46), created_time=utcnow() - timedelta(days=30))
    repeat = make_lead(47)
    connector = email_connect(acknowledge=ACK)

    repeated = replace(scored(repeat, 40), contact=Contact(repeat.id, repeat_of="900000001"))
    results = Courier(connector).deliver([scored(old, 40), repeated])

    assert [r.external_id for r in results] == ["email:new,noack", "email:new,noack"]
    assert smtp.messages_to(old.email) == [] and smtp.messages_to(repeat.email) == []
    assert "Repeat of lead 900000001" in body(alerts(smtp, repeat.id)[0], "plain")


def test_a_refused_lead_address_keeps_the_alert_and_is_not_retried(smtp, email_connect):
    lead = make_lead(48)
    smtp.refuse("RCPT", "550 5.1.1 no such user", address=lead.email)

    results = Courier(email_connect(acknowledge=ACK)).deliver([scored(lead, 40)])

    assert results[0].ok and results[0].external_id == "email:new,noack"
    assert len(alerts(smtp, lead.id)) == 1 and smtp.messages_to(lead.email) == []


def test_an_acknowledgement_cut_off_after_the_alert_is_retried_alone(smtp, email_connect):
    lead = make_lead(49)
    smtp.drop("RCPT", address=lead.email)
    courier = Courier(email_connect(acknowledge=ACK))

    with pytest.raises(TransientError):
        courier.deliver([scored(lead, 40)])
    assert courier.deliver([scored(lead, 40)])[0].external_id == "email:new,ack"

    assert len(alerts(smtp, lead.id)) == 1
    assert len(smtp.messages_to(lead.email)) == 1


def test_the_template_sandbox_keeps_python_out(smtp, email_connect):
    nosy = {**ACK, "body": "{{ name.__class__.__mro__[1].__subclasses__() }}"}
    with capture_logs() as events:
        results = Courier(email_connect(acknowledge=nosy)).deliver([scored(make_lead(50), 40)])

    assert results[0].external_id == "email:new,noack"
    assert any(e["event"] == "email.acknowledgement_failed" for e in events)
    assert smtp.messages_to(make_lead(50).email) == []


def test_logs_name_leads_by_id_only(smtp, email_connect):
    leads = [make_lead(n) for n in (51, 52)]
    smtp.refuse("RCPT", "550 5.1.1 no such user", address=leads[1].email)
    with capture_logs() as events:
        Courier(email_connect(acknowledge=ACK)).deliver([scored(lead, 80) for lead in leads])

    written = repr(events)
    assert "email.alert_sent" in written and leads[0].id in written
    for forbidden in [*personal_data(leads), OWNER, PASSWORD]:
        assert forbidden not in written


# -- configuration ---------------------------------------------------------------------------
def config_with(destination: dict[str, Any], **sections: Any) -> dict[str, Any]:
    facebook = {"app_secret": "s", "verify_token": "v", "access_token": "t"}
    return {"facebook": facebook, "destinations": [destination], **sections}


def email_destination(**keys: Any) -> dict[str, Any]:
    values = {
        "name": "owners",
        "type": "email",
        "host": "smtp.example.com",
        "from": "l@example.com",
    }
    return {**values, **keys}


def problems(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, {})
    return str(caught.value)


def test_to_is_required_unless_routing_has_owners():
    said = problems(config_with(email_destination()))
    assert "destinations[0].to: is empty and there are no [[routing.owners]]" in said

    owners = {"owners": [{"name": "Ana", "email": "ana@example.com"}]}
    try:
        parse_config(config_with(email_destination(), routing=owners), {})
    except ConfigError as exc:  # until routing lands, [routing] itself is an unknown section
        assert "destinations[0].to" not in str(exc)


def test_config_errors_name_the_key_and_never_echo_the_password():
    said = problems(
        config_with(
            email_destination(
                to=["not an address"],
                security="none",
                username="u",
                password="hunter2-secret",
                **{"from": "nobody"},
                acknowledge={"subject": "{{ oops", "body": "ok"},
            )
        )
    )
    assert "destinations[0].to: " in said and "destinations[0].from: " in said
    assert 'destinations[0].password: security = "none" would send it unencrypted' in said
    assert "destinations[0].acknowledge.subject: not a valid Jinja2 template" in said
    assert "hunter2-secret" not in said


def test_the_port_follows_security_unless_given():
    base = {"host": "smtp.example.com", "from": "l@example.com", "to": [OWNER]}
    assert email.Settings(**base).effective_port == 587
    assert email.Settings(**base, security="tls").effective_port == 465
    assert email.Settings(**base, port=2525).effective_port == 2525


def test_leadsync_check_logs_in_and_sends_nothing(smtp: SmtpServer):
    raw = config_with(email_destination(**smtp.settings()))
    destination = parse_config(raw, {}).destinations[0]

    assert check_destination(destination).ok
    smtp.revoke_password()
    finding = check_destination(destination)

    assert not finding.ok and "535" in finding.message
    assert smtp.logins == 1 and smtp.received == []
