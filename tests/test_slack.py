"""The Slack MQL alert connector against the Slack incoming-webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from connectors import slack
from leadsync.emulators.receivers import SlackReceiver
from leadsync.errors import AuthError, RateLimited
from tests.connector_harnesses import Courier, make_lead, scored


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    with SlackReceiver() as started:
        yield started


@pytest.fixture
def connect(receiver: SlackReceiver) -> Iterator[Any]:
    made: list[slack.SlackConnector] = []

    def build(**settings: Any) -> slack.SlackConnector:
        values = {"webhook_url": receiver.webhook_url, **settings}
        made.append(slack.build("sales-alerts", slack.Settings(**values)))
        return made[-1]

    yield build
    for connector in made:
        connector.close()


def test_the_alert_shows_name_company_score_reasons_and_the_sheet_row(receiver, connect):
    lead = make_lead(1)
    connect(sheet_url="https://sheets.test/leads?lead={lead_id}").deliver([scored(lead, 85)])

    (alert,) = receiver.alerts_for(lead.id)
    text = alert["text"]["text"]
    assert "*New MQL: Zelda Quartermain1* — Quartermain Widgets · VP Sales" in text
    assert "Score *85* (fit 20, engagement 65)" in text
    assert "• VP title +20\n• Demo request +65" in text
    assert f"<https://sheets.test/leads?lead={lead.id}|Open in the sheet>" in text
    assert receiver.messages[0]["text"] == "New MQL: Zelda Quartermain1 (85)"


def test_answers_cannot_mention_the_channel_or_smuggle_a_link(receiver, connect):
    lead = make_lead(2)
    name = ("<!channel> <https://evil.test|Click> & co",)
    lead = replace(lead, answers={**lead.answers, "full_name": name})

    connect().deliver([scored(lead, 85)])

    text = receiver.alerts_for(lead.id)[0]["text"]["text"]
    assert "&lt;!channel&gt; &lt;https://evil.test|Click&gt; &amp; co" in text
    assert "<!channel>" not in str(receiver.messages)


def test_a_nurture_lead_makes_no_message_and_an_mql_is_announced_once(receiver, connect):
    lead = make_lead(3)
    courier = Courier(connect())

    assert courier.deliver([scored(lead, 40)])[0].external_id == ""
    for revision, points in ((2, 70), (2, 70), (3, 90), (4, 20), (5, 95)):
        assert courier.deliver([scored(lead, points, revision=revision)])[0].ok

    assert len(receiver.alerts_for(lead.id)) == 1
    assert courier.receipts[lead.id] == "mql-alert:r2"


def test_a_burst_of_45_mqls_takes_three_messages(receiver, connect):
    leads = [make_lead(n) for n in range(45)]
    connect().deliver([scored(lead, 80) for lead in leads])

    assert [len(m["blocks"]) for m in receiver.messages] == [40, 40, 10]
    assert receiver.messages[0]["text"].startswith("20 new MQLs: Zelda Quartermain0 (80); ")
    assert all(len(receiver.alerts_for(lead.id)) == 1 for lead in leads)


def test_slacks_one_message_a_second_limit_fails_only_the_unsent(receiver, connect):
    receiver.per_second = 1
    results = connect().deliver([scored(make_lead(n), 80) for n in range(45)])

    sent = [r for r in results if r.ok]
    assert 20 <= len(sent) < 45 and len(sent) % 20 == 0  # the clock may tick between posts
    assert all(
        isinstance(r.error, RateLimited) and r.error.retry_after == 1 for r in results[len(sent) :]
    )


@pytest.mark.parametrize("code", ["no_service", "channel_is_archived"])
def test_a_dead_webhook_is_an_auth_error_that_says_what_to_do(receiver, connect, code):
    receiver.revoke(code)

    with pytest.raises(AuthError) as caught:
        connect().deliver([scored(make_lead(4), 80)])

    assert code in str(caught.value)
    assert "create a new incoming webhook" in str(caught.value)
    assert receiver.token not in str(caught.value)


def test_the_webhook_url_is_kept_secret_in_settings(receiver):
    settings = slack.Settings(webhook_url=receiver.webhook_url)
    assert receiver.token not in repr(settings)
    with pytest.raises(ValueError, match="hooks.slack.com"):
        slack.Settings(webhook_url="hooks.slack.com/services/x")
