"""The messages of the email destination: the owner's alert and the lead's acknowledgement.

An alert has a one-line subject ("MQL: <form> - <name> - score 85"), a plain-text
body (answers, score, reasons, the sheet link) and an HTML alternative, both from the
templates in `connectors/templates/` rendered by Jinja2 with autoescape on for HTML.
An acknowledgement is rendered from the subject and body templates the config gives,
in Jinja2's sandbox (a template may read the lead, never Python internals). Whatever a
lead typed can break neither a header nor a line: headers take one line of text (CR, LF
and every other control character become a space) and addresses are checked before
they reach a header. Each message has a stable Message-ID per lead, trigger and
destination, so a mail client or filter sees a resend as the same message, and
`Auto-Submitted: auto-generated` so autoresponders do not answer it (RFC 3834).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from importlib.resources import files
from urllib.parse import quote

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from leadsync.models import ScoredLead

# Subjects longer than this are cut: mail clients show ~80 characters, RFC 5322 asks for
# lines under 998, and a lead's 10 KB "name" must not make a 10 KB header.
MAX_SUBJECT_CHARS = 200
# One answer as the alert shows it; a longer one is cut (the sheet or CRM has all of it).
MAX_ANSWER_CHARS = 1000
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_TEMPLATES = files("connectors") / "templates"


def one_line(text: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """`text` on one line: runs of whitespace and control characters become one space."""
    text = "".join(" " if (ord(c) < 32 or 127 <= ord(c) < 160) else c for c in str(text))
    flat = " ".join(text.split())  # also splits on U+2028/U+2029, the Unicode line breaks
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def plain_address(text: str) -> str:
    """The address in `text` when it is exactly one plain ASCII address, else ""."""
    text = text.strip()
    if not text or not text.isascii() or any(c in text for c in '\r\n<>,;" '):
        return ""
    try:
        address = Address(addr_spec=text)
    except (ValueError, IndexError, TypeError):
        return ""
    if not address.username or "." not in address.domain:
        return ""
    return address.addr_spec


def sender_address(text: str) -> str:
    """The envelope address of a `from` that may carry a name ("Leads <leads@x.com>")."""
    if "\r" in text or "\n" in text:
        return ""
    pairs = getaddresses([text])
    if len(pairs) != 1:
        return ""
    return plain_address(pairs[0][1])


def lead_name(scored: ScoredLead) -> str:
    lead = scored.lead
    full = lead.answer("full_name").strip()
    parts = (lead.answer("first_name").strip(), lead.answer("last_name").strip())
    return one_line(full or " ".join(p for p in parts if p) or f"Lead {lead.id}", 120)


def owner_of(scored: ScoredLead) -> tuple[str, str]:
    """The owner's (name, address) from routing; ("", "") when the lead has none."""
    owner = scored.owner
    if owner is None:
        return "", ""
    return one_line(owner.name, 120), plain_address(owner.email)


def sheet_link(sheet_url: str, lead_id: str) -> str:
    return sheet_url.replace("{lead_id}", quote(lead_id, safe="")) if sheet_url else ""


def message_id(lead_id: str, trigger: str, destination: str, sender: str) -> str:
    """The same Message-ID for every send of one trigger of one lead to one destination."""
    safe = lead_id if _SAFE_ID.match(lead_id) else hashlib.sha256(lead_id.encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "leadsync.invalid"
    return f"<leadsync.{safe}.{trigger}.{destination}@{domain}>"


def text_environment(*, sandboxed: bool) -> jinja2.Environment:
    env_class = SandboxedEnvironment if sandboxed else jinja2.Environment
    return env_class(autoescape=False, keep_trailing_newline=True)


def html_environment(*, sandboxed: bool) -> jinja2.Environment:
    env_class = SandboxedEnvironment if sandboxed else jinja2.Environment
    return env_class(autoescape=True, keep_trailing_newline=True)


def check_template(source: str, *, html: bool = False) -> str:
    """ValueError with the line when `source` is no valid Jinja2 template."""
    env = html_environment(sandboxed=True) if html else text_environment(sandboxed=True)
    try:
        env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(
            f"not a valid Jinja2 template (line {exc.lineno}: {exc.message})"
        ) from None
    return source


@dataclass(frozen=True)
class AckTemplates:
    """An acknowledgement's templates as the config gives them; the Composer compiles them."""

    subject: str
    body: str
    html: str = ""
    reply_to: str = ""


class Composer:
    """Builds the messages of one email destination."""

    def __init__(self, destination: str, sender: str, sheet_url: str, ack: AckTemplates | None):
        self.destination = destination
        self.sender = sender
        self.envelope_from = sender_address(sender)
        self.sheet_url = sheet_url
        self._text = text_environment(sandboxed=False).from_string(
            (_TEMPLATES / "email_alert.txt").read_text(encoding="utf-8")
        )
        self._html = html_environment(sandboxed=False).from_string(
            (_TEMPLATES / "email_alert.html").read_text(encoding="utf-8")
        )
        self.ack = ack
        if ack is not None:
            self._ack_subject = text_environment(sandboxed=True).from_string(ack.subject)
            self._ack_body = text_environment(sandboxed=True).from_string(ack.body)
            html = html_environment(sandboxed=True)
            self._ack_html = html.from_string(ack.html) if ack.html else None

    def alert(
        self, scored: ScoredLead, trigger: str, recipients: list[str], now: datetime
    ) -> EmailMessage:
        """The owner's alert of a new lead ("new") or of a lead that became an MQL ("mql")."""
        lead, score = scored.lead, scored.score
        heading = "MQL" if score.mql else "New lead"
        owner_name, _ = owner_of(scored)
        context = {
            "heading": heading,
            "name": lead_name(scored),
            "company": one_line(lead.answer("company_name"), 120),
            "lead": lead,
            "score": score,
            "reasons": [str(reason) for reason in score.reasons],
            "answers": [
                (one_line(q, 120), one_line(lead.answer(q), MAX_ANSWER_CHARS)) for q in lead.answers
            ],
            "link": sheet_link(self.sheet_url, lead.id),
            "owner": owner_name,
            "phone_e164": one_line(scored.phone_e164, 40),
            "repeat_of": one_line(scored.repeat_of, 40),
            "destination": self.destination,
        }
        form = lead.form_name or f"form {lead.form_id}"
        subject = f"{heading}: {form} - {context['name']} - score {score.points}"
        message = self._message(subject, recipients, lead.id, trigger, now)
        if reply_to := plain_address(lead.email):
            message["Reply-To"] = reply_to  # the owner answers the lead with one click
        message["X-Leadsync-Lead-Id"] = one_line(lead.id, 100)
        message["X-Leadsync-Trigger"] = trigger
        message.set_content(self._text.render(context))
        message.add_alternative(self._html.render(context), subtype="html")
        return message

    def acknowledgement(self, scored: ScoredLead, address: str, now: datetime) -> EmailMessage:
        """The lead's own acknowledgement, from the config's templates (jinja2 errors raise)."""
        assert self.ack is not None
        lead = scored.lead
        context = {
            "answers": {q: lead.answer(q) for q in lead.answers},
            "name": lead_name(scored),
            "first_name": lead.answer("first_name") or lead_name(scored).split(" ")[0],
            "form_name": lead.form_name,
            "lead_id": lead.id,
            "email": address,
        }
        subject = self._ack_subject.render(context)
        message = self._message(subject, [address], lead.id, "ack", now)
        if self.ack.reply_to:
            message["Reply-To"] = self.ack.reply_to
        message.set_content(self._ack_body.render(context))
        if self._ack_html is not None:
            message.add_alternative(self._ack_html.render(context), subtype="html")
        return message

    def _message(
        self, subject: str, recipients: list[str], lead_id: str, trigger: str, now: datetime
    ) -> EmailMessage:
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = one_line(subject)
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id(lead_id, trigger, self.destination, self.envelope_from)
        message["Auto-Submitted"] = "auto-generated"
        return message
