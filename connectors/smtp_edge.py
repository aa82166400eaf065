"""The SMTP edge of the email connector: one session to the relay, errors mapped once.

`SmtpSession` opens a connection the way the destination is configured (STARTTLS on
587, implicit TLS on 465, or plain), verifies the server's certificate (the system's
CAs, or `ca_file` for a relay with its own CA), logs in when a username is set, and
sends prepared messages. Everything smtplib, ssl and the socket layer raise becomes
one of leadsync's kinds, here and nowhere else: a 4xx reply, a refused or dropped
connection, a timeout -> TransientError (retry); a 5xx for a recipient or for the
message -> PermanentError (that lead to the dead letter); a failed login (530/534/535),
a server that offers no STARTTLS or AUTH, an untrusted certificate or a `from` the
account may not send as -> AuthError (alert, stop retrying the destination until fixed).
SMTP has no Retry-After, so a provider's "slow down" (421/451 4.7.x) is a 4xx like any
other and the runner's backoff paces it. Messages name the server, the SMTP code and the
enhanced status code, never the server's free text (it often echoes an address), an
address or the password.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Literal

from leadsync.errors import AuthError, LeadsyncError, PermanentError, TransientError

Security = Literal["starttls", "tls", "none"]
# The ports each kind of security listens on by convention (RFC 8314 submission ports).
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
# Messages per connection before we reconnect: relays may cap what one session carries and
# answer 421 past it; reconnecting every 100 keeps a burst (a batch is up to 500 leads, each
# an alert and maybe an acknowledgement) under such caps for one login per 100 messages.
MESSAGES_PER_CONNECTION = 100
# Replies that mean the login or the account, whatever command they answer: 530 auth
# required / must issue STARTTLS, 534 mechanism too weak, 535 credentials invalid,
# 538 encryption required for the mechanism (RFC 4954).
AUTH_CODES = (530, 534, 535, 538)
# What smtplib and the layers under it raise: its own errors, ssl and socket errors (both
# OSError), and ValueError/UnicodeError for a message or an address it cannot encode.
SMTP_ERRORS = (smtplib.SMTPException, OSError, ValueError)
_ENHANCED = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


def status_of(code: int, text: bytes | str = b"") -> str:
    """`550 5.1.1`: the reply code and the enhanced status code, never the free text."""
    raw = text.encode(errors="replace") if isinstance(text, str) else text
    match = _ENHANCED.match(raw or b"")
    return f"{code} {match[1].decode()}" if match else str(code)


class SmtpSession:
    """One SMTP connection to the destination's server; use it as a context manager."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security,
        timeout: float,
        username: str = "",
        password: str = "",
        ca_file: str = "",
        destination: str = "",
    ):
        self.host, self.port, self.security = host, port, security
        self.timeout = timeout
        self._username, self._password = username, password
        self._ca_file = ca_file
        self.destination = destination
        self._smtp: smtplib.SMTP | None = None
        self._sent_here = 0  # messages sent on the current connection

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        """Connects, secures and logs in; mapped errors when any step fails."""
        if self._smtp is not None:
            return
        try:
            self._smtp = self._connect()
            if self._username:
                self._smtp.login(self._username, self._password)
        except SMTP_ERRORS as exc:
            self.close()
            mapped = self.error_for(exc)
            if isinstance(mapped, PermanentError):  # refused before any lead: no lead's fault
                fix = "check host and port, and that the relay accepts this machine's address"
                mapped = AuthError(f"{mapped}; {fix}", service="SMTP")
            raise mapped from None

    def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> int:
        """Sends one message; returns how many recipients the server refused (some took it)."""
        if self._sent_here >= MESSAGES_PER_CONNECTION:
            self.close()
        self.open()
        assert self._smtp is not None
        try:
            refused = self._smtp.send_message(message, from_addr=sender, to_addrs=list(recipients))
        except SMTP_ERRORS as exc:
            mapped = self.error_for(exc)
            if not isinstance(mapped, PermanentError):
                self.close()  # the session is in an unknown state: the next send reconnects
            raise mapped from None
        self._sent_here += 1
        return len(refused)

    def close(self) -> None:
        """Says QUIT when it can; a server that is already gone is simply let go."""
        smtp, self._smtp = self._smtp, None
        self._sent_here = 0
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # QUIT is a courtesy: every message was already answered

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context(cafile=self._ca_file or None)
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                # smtplib raises SMTPNotSupportedError when STARTTLS is not offered: we never
                # fall back to sending the password and the leads in clear.
                smtp.starttls(context=context)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    # -- error mapping ---------------------------------------------------------------
    def error_for(self, exc: Exception) -> LeadsyncError:
        """The leadsync error kind of anything smtplib, ssl or the socket raised."""
        if isinstance(exc, LeadsyncError):
            return exc
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return self._recipients_refused(exc)
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return self._sender_refused(exc)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            needed = "STARTTLS" if self.security == "starttls" else "AUTH"
            fix = "check host, port and security (587: starttls, 465: tls) with your provider"
            return self._auth(f"the server does not offer {needed}", fix)
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._reply(exc.smtp_code, exc.smtp_error)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            if isinstance(exc.__context__, TimeoutError):  # smtplib wraps a read timeout so
                return TransientError(self._about(f"did not answer within {self.timeout:g} s"))
            return TransientError(self._about("closed the connection"))
        if isinstance(exc, ssl.SSLCertVerificationError):
            fix = "point host at the name on the certificate, or set ca_file to your relay's CA"
            return self._auth("presented a certificate we do not trust", fix)
        if isinstance(exc, TimeoutError | socket.timeout):
            return TransientError(self._about(f"did not answer within {self.timeout:g} s"))
        if isinstance(exc, ConnectionRefusedError):
            return TransientError(self._about("refused the connection"))
        if isinstance(exc, socket.gaierror):
            return TransientError(self._about("cannot be resolved (DNS)"))
        if isinstance(exc, OSError | smtplib.SMTPException):
            return TransientError(self._about(f"cannot be reached ({type(exc).__name__})"))
        return TransientError(self._about(f"failed ({type(exc).__name__})"))

    def _reply(self, code: int, text: bytes | str, what: str = "") -> LeadsyncError:
        said = f"answered {status_of(code, text)}" + (f" to {what}" if what else "")
        if code in AUTH_CODES:
            return self._auth(said, "check username and password (an app password if 2FA is on)")
        if 400 <= code < 500:
            return TransientError(self._about(said))
        if code >= 500:
            return PermanentError(self._about(said))
        return TransientError(self._about(f"{said}, which we did not expect"))

    def _recipients_refused(self, exc: smtplib.SMTPRecipientsRefused) -> LeadsyncError:
        replies = list(exc.recipients.values())
        # One recipient that may take it later makes the whole message worth retrying.
        code, text = next(((c, t) for c, t in replies if 400 <= c < 500), replies[0])
        return self._reply(code, text, "every recipient")

    def _sender_refused(self, exc: smtplib.SMTPSenderRefused) -> LeadsyncError:
        if 400 <= exc.smtp_code < 500 or exc.smtp_code == 552:  # 552: this message too big
            return self._reply(exc.smtp_code, exc.smtp_error, "the sender")
        said = f"refused the sender ({status_of(exc.smtp_code, exc.smtp_error)})"
        return self._auth(said, "set `from` to an address this account may send as")

    def _auth(self, said: str, fix: str) -> AuthError:
        return AuthError(f"{self._about(said)}; {fix}", service="SMTP")

    def _about(self, message: str) -> str:
        return f"SMTP server {self.host}:{self.port} {message} (destination {self.destination})"
