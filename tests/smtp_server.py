"""A real SMTP server in the test process (aiosmtpd), with TLS, login and faults by name.

`SmtpServer` listens on 127.0.0.1 on a free port with a self-signed certificate made
here with `cryptography` (its PEM file is the connectors' `ca_file`), requires STARTTLS
(or speaks TLS from the first byte with `security="tls"`) and a login, keeps every
message it accepted (`received`), and can be told to misbehave on a stage of the next
transactions: refuse with a reply (550, 451, ...), drop the connection, or stall.
A revoked password makes the login fail with 535. Nothing here is mocked: the
connector speaks SMTP over a real socket to a real server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
import tempfile
import threading
import warnings
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# aiosmtpd logs every command and address at INFO on "mail.log": a relay's log, not ours,
# and it would fill the captured logs that the no-personal-data tests read.
logging.getLogger("mail.log").setLevel(logging.WARNING)

USERNAME = "relay-user"
PASSWORD = "s3cret-relay-password-42"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key, as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leadsync test relay")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "relay-cert.pem", directory / "relay-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass(frozen=True)
class Received:
    """One message the server accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes


@dataclass
class Fault:
    stage: str  # "MAIL", "RCPT" or "DATA"
    action: str  # an SMTP reply ("550 5.1.1 ..."), "drop" or "stall"
    times: int
    address: str = ""  # RCPT only: the recipient it applies to ("" = any)
    seconds: float = 0.0
    after: int = 0  # matching commands that pass before the fault applies


class _Session(Session):
    """aiosmtpd 1.4 sets its own deprecated `login_data` on every login, which warns, and
    pytest turns warnings into errors (in the server's thread): the same attribute, quiet."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _Smtp(SMTP):
    def _create_session(self) -> Session:
        return _Session(self.loop)


class _FreePortController(Controller):
    """aiosmtpd's controller on port 0: reads back the port the OS chose."""

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # "AUTH while not requiring TLS": with implicit TLS every byte is encrypted.
            warnings.simplefilter("ignore", UserWarning)
            return _Smtp(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """A relay that requires TLS and a login; see the module docstring."""

    def __init__(self, *, security: str = "starttls", login: bool = True):
        self.security = security
        self.username, self.password = USERNAME, PASSWORD
        self._dir = tempfile.TemporaryDirectory(prefix="leadsync-smtp-")
        self.ca_file, key_file = self_signed(Path(self._dir.name))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, key_file)
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": 0}
        if security == "tls":
            # aiosmtpd only knows STARTTLS as TLS; on a TLS-from-the-first-byte port it must
            # be told that AUTH needs no more of it (see _FreePortController.factory).
            kwargs.update(ssl_context=context, auth_require_tls=False)
        elif security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if login:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self._controller = _FreePortController(_Handler(self), **kwargs)
        self.received: list[Received] = []
        self.logins = 0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
        self._dir.cleanup()

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._controller.port

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The `[[destinations]]` keys of an email destination on this server."""
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "security": self.security,
            "username": self.username,
            "password": self.password,
            "from": "Leads <leads@example.com>",
            "to": ["sales@example.com"],
            "ca_file": str(self.ca_file),
        }
        return {**values, **overrides}

    # -- faults -----------------------------------------------------------------------
    def refuse(self, stage: str, reply: str, *, times: int = 1, address: str = "") -> None:
        """The next `times` commands of `stage` (to `address`) get `reply`."""
        with self._lock:
            self._faults.append(Fault(stage, reply, times, address))

    def drop(self, stage: str, *, times: int = 1, address: str = "", after: int = 0) -> None:
        """The next `times` commands of `stage` (after `after` that pass) close the connection."""
        with self._lock:
            self._faults.append(Fault(stage, "drop", times, address, after=after))

    def stall(self, stage: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` commands of `stage` wait `seconds` before their usual reply."""
        with self._lock:
            self._faults.append(Fault(stage, "stall", times, seconds=seconds))

    def revoke_password(self) -> None:
        """Every later login fails with 535, as when the account's password is changed."""
        self.password = "revoked-" + self.password

    def take(self, stage: str, address: str = "") -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.stage == stage and fault.address in ("", address):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- reading back -------------------------------------------------------------------
    def messages_to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if address in r.rcpt_tos]

    def messages_about(self, lead_id: str) -> list[EmailMessage]:
        """Messages whose X-Leadsync-Lead-Id or Message-ID names the lead."""
        return [
            r.message
            for r in self.received
            if r.message["X-Leadsync-Lead-Id"] == lead_id
            or f".{lead_id}." in (r.message["Message-ID"] or "")
        ]

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        if ok:
            with self._lock:
                self.logins += 1
        return AuthResult(success=ok, handled=False)


class _Handler:
    """aiosmtpd hooks: apply a pending fault, else accept and keep the message."""

    def __init__(self, owner: SmtpServer):
        self.owner = owner

    async def _fault(self, server, stage: str, address: str = "") -> str | None:
        fault = self.owner.take(stage, address)
        if fault is None:
            return None
        if fault.action == "drop":
            server.transport.abort()
            return "421 4.3.0 dropped"  # never reaches the client: the socket is gone
        if fault.action == "stall":
            await asyncio.sleep(fault.seconds)
            return None
        return fault.action

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if reply := await self._fault(server, "MAIL"):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if reply := await self._fault(server, "RCPT", address):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if reply := await self._fault(server, "DATA"):
            return reply
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), message, raw)  # type: ignore[arg-type]
        self.owner.received.append(received)
        return "250 2.0.0 Message accepted for delivery"
