"""What an email alert says: subject, answers, score, reasons, the sheet link, plain text and
HTML; and that what a lead typed can neither add a header or a recipient nor run as HTML."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.email_message import one_line, plain_address
from leadsync.testing import make_lead, scored
from tests.email_fixtures import OWNER, alerts, body, with_answer


# -- the message --------------------------------------------------------------------------
def test_the_alert_has_answers_score_reasons_and_the_sheet_row(smtp, email_connect):
    lead = make_lead(1)
    email_connect(sheet_url="https://sheets.test/leads?lead={lead_id}").deliver([scored(lead, 40)])

    (alert,) = alerts(smtp, lead.id)
    assert alert["Subject"] == "New lead: Demo request - Zelda Quartermain1 - score 40"
    assert alert["From"] == "Leads <leads@example.com>"
    assert alert["Reply-To"] == "zelda.quartermain1@example-leads.test"
    assert alert["Auto-Submitted"] == "auto-generated"
    assert alert["Message-ID"] == f"<leadsync.{lead.id}.new.owners@example.com>"
    text = body(alert, "plain")
    assert "Score 40 (fit 20, engagement 20)" in text
    assert "  job_title: VP Sales\n" in text and "  company_name: Quartermain Widgets\n" in text
    assert "  - VP title +20\n  - Demo request +20\n" in text
    assert f"Open in the sheet: https://sheets.test/leads?lead={lead.id}" in text
    html = body(alert, "html")
    assert f'<a href="https://sheets.test/leads?lead={lead.id}">Open in the sheet</a>' in html
    assert "<li>Demo request +20</li>" in html
    assert smtp.received[0].mail_from == "leads@example.com"


def test_lead_typed_newlines_cannot_add_headers_or_recipients(smtp, email_connect):
    evil = "Eve\r\nBcc: thief@evil.test\r\nX-Injected: yes\nSubject: free money"
    lead = with_answer(scored(make_lead(4), 40), "full_name", evil)
    lead = replace(lead, lead=replace(lead.lead, form_name="Demo\nX-Form-Injected: 1"))

    email_connect().deliver([lead])

    (received,) = [r for r in smtp.received if OWNER in r.rcpt_tos]
    assert received.rcpt_tos == (OWNER,)
    head = received.raw.split(b"\r\n\r\n", 1)[0].decode()
    names = [line.split(":")[0] for line in head.split("\r\n") if not line[:1].isspace()]
    assert sorted(names) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "Reply-To"]
        + ["X-Leadsync-Lead-Id", "X-Leadsync-Trigger", "MIME-Version", "Content-Type"]
    )
    assert received.message.get_all("Subject") == [
        "New lead: Demo X-Form-Injected: 1 - Eve Bcc: thief@evil.test X-Injected: yes "
        "Subject: free money - score 40"
    ]


def test_lead_typed_html_is_escaped_in_the_html_part(smtp, email_connect):
    lead = with_answer(scored(make_lead(5), 40), "company_name", '<img src=x onerror="alert(1)">')

    email_connect().deliver([lead])

    html = body(alerts(smtp, lead.lead.id)[0], "html")
    assert "<img" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


@pytest.mark.parametrize(
    ("typed", "address"),
    [
        ("o'brien@example.com", "o'brien@example.com"),
        ("  ana+leads@example.co.uk ", "ana+leads@example.co.uk"),
        ("ana@localhost", ""),
        ("ana@example.com\r\nBcc: x@evil.test", ""),
        ("ana@example.com, bob@example.com", ""),
        ("Ana <ana@example.com>", ""),
        ("ana smith@example.com", ""),
        ("ünï@example.com", ""),
        ("", ""),
    ],
)
def test_only_one_plain_address_reaches_a_header(typed, address):
    assert plain_address(typed) == address


def test_one_line_flattens_every_line_break_and_control_character():
    assert one_line("a\r\nb\tc\x00d\u2028e\x85f   g") == "a b c d e f g"
    assert one_line("x" * 500) == "x" * 199 + "…"
