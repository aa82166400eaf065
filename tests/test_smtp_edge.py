"""SMTP failures of the email destination, each mapped to the error kind the runner acts on,
against a real SMTP server that refuses (550, 451, 553, 554, 535), drops the connection or
stalls; STARTTLS is never skipped and an untrusted certificate is refused."""

from __future__ import annotations

import socket
import threading

import pytest

from connectors import email
from leadsync.errors import AuthError, PermanentError, TransientError
from leadsync.testing import Courier, make_lead, scored
from tests.email_fixtures import OWNER, alerts
from tests.smtp_server import PASSWORD, SmtpServer


# -- SMTP failures -------------------------------------------------------------------------
def test_a_recipient_refused_for_good_fails_only_its_lead(smtp, email_connect):
    leads = [make_lead(n) for n in (10, 11, 12)]
    smtp.refuse("RCPT", "550 5.1.1 <sales@example.com>: no such user", address=OWNER)

    results = email_connect().deliver([scored(lead, 80) for lead in leads])

    assert isinstance(results[0].error, PermanentError)
    assert "550 5.1.1" in str(results[0].error)
    assert "sales@example.com" not in str(results[0].error)  # the smtp's text is not echoed
    assert [r.ok for r in results[1:]] == [True, True]
    assert [len(alerts(smtp, lead.id)) for lead in leads] == [0, 1, 1]


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
def test_a_4xx_reply_is_transient_and_the_retry_sends_once(smtp, email_connect, stage):
    lead = make_lead(13)
    smtp.refuse(stage, "451 4.3.0 try again later")
    courier = Courier(email_connect())

    with pytest.raises(TransientError, match="451 4.3.0"):
        courier.deliver([scored(lead, 80)])
    assert courier.deliver([scored(lead, 80)])[0].ok

    assert len(alerts(smtp, lead.id)) == 1


def test_a_message_refused_at_data_is_permanent(smtp, email_connect):
    smtp.refuse("DATA", "554 5.6.0 message content rejected")
    results = email_connect().deliver([scored(make_lead(14), 80)])
    assert isinstance(results[0].error, PermanentError) and "554 5.6.0" in str(results[0].error)


def test_a_sender_the_account_may_not_use_is_an_auth_error_that_names_from(smtp, email_connect):
    smtp.refuse("MAIL", "553 5.7.1 sender not owned by user")
    with pytest.raises(AuthError, match="set `from` to an address"):
        email_connect().deliver([scored(make_lead(15), 80)])


def test_a_wrong_password_is_an_auth_error_without_the_password(smtp, email_connect):
    connector = email_connect()
    smtp.revoke_password()

    with pytest.raises(AuthError) as caught:
        connector.deliver([scored(make_lead(16), 80)])
    with pytest.raises(AuthError):
        connector.check_ready()  # `leadsync check` logs in too

    assert "535" in str(caught.value) and "check username and password" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert smtp.received == []


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
def test_a_dropped_connection_is_transient_and_the_retry_sends_once(smtp, email_connect, stage):
    lead = make_lead(17)
    smtp.drop(stage)
    courier = Courier(email_connect())

    with pytest.raises(TransientError):
        courier.deliver([scored(lead, 80)])
    assert courier.deliver([scored(lead, 80)])[0].ok

    assert len(alerts(smtp, lead.id)) == 1


def test_a_drop_mid_batch_fails_only_the_unsent_and_the_retry_sends_only_them(smtp, email_connect):
    leads = [make_lead(n) for n in (20, 21, 22)]
    smtp.drop("RCPT", address=OWNER, after=1)  # the second alert's connection is cut
    courier = Courier(email_connect())
    batch = [scored(lead, 80) for lead in leads]

    first = courier.deliver(batch)
    assert [type(r.error) for r in first] == [type(None), TransientError, TransientError]
    assert all(r.ok for r in courier.deliver(batch))

    assert [len(alerts(smtp, lead.id)) for lead in leads] == [1, 1, 1]


def test_a_closed_port_is_transient(smtp, email_connect):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="refused the connection"):
        email_connect(port=port).deliver([scored(make_lead(23), 80)])


def test_a_server_that_stalls_past_the_timeout_is_transient(smtp, email_connect):
    smtp.stall("MAIL", 2.0)
    with pytest.raises(TransientError, match="did not answer within 0.5 s"):
        email_connect(timeout=0.5).deliver([scored(make_lead(24), 80)])


def test_starttls_is_required_never_skipped():
    with SmtpServer(security="none", login=False) as plain:
        values = plain.settings(username="", password="", security="starttls")
        connector = email.build("owners", email.Settings(**values))
        with pytest.raises(AuthError, match="does not offer STARTTLS"):
            connector.deliver([scored(make_lead(25), 80)])
        assert plain.received == []


def test_an_untrusted_certificate_is_an_auth_error(smtp, email_connect):
    with pytest.raises(AuthError, match="certificate we do not trust"):
        email_connect(ca_file="").deliver([scored(make_lead(26), 80)])


def test_implicit_tls_on_its_own_port():
    with SmtpServer(security="tls") as relay:
        connector = email.build("owners", email.Settings(**relay.settings()))
        assert connector.deliver([scored(make_lead(27), 80)])[0].ok
        connector.close()
        assert len(relay.messages_to(OWNER)) == 1 and relay.logins == 1


def test_one_login_per_batch_and_a_new_connection_every_100_messages(smtp, email_connect):
    email_connect().deliver([scored(make_lead(n), 80) for n in range(30, 40)])
    assert smtp.logins == 1 and len(smtp.messages_to(OWNER)) == 10

    email_connect().deliver([scored(make_lead(n), 80) for n in range(100, 350)])
    assert smtp.logins == 1 + 3 and len(smtp.messages_to(OWNER)) == 260


def test_a_server_that_refuses_us_at_the_greeting_stops_the_destination_not_the_lead():
    """554 before any lead (a blocked client address): an AuthError, not a dead letter."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def greet_and_refuse() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"554 5.7.1 client host blocked\r\n")
                conn.recv(1024)

        threading.Thread(target=greet_and_refuse, daemon=True).start()
        values = {"host": "127.0.0.1", "port": listener.getsockname()[1], "from": OWNER}
        connector = email.build("owners", email.Settings(**values, to=[OWNER]))

        with pytest.raises(AuthError, match="554 5.7.1.*accepts this machine's address"):
            connector.deliver([scored(make_lead(60), 80)])
