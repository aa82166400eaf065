"""structlog set-up: console in a terminal, JSON otherwise, with redaction.

Logs are read by people and shipped to third parties, so they carry lead ids
and never a lead's personal data or a secret. Code logs ids only; the
`redact` processor is the guard behind that habit: it drops keys that name
personal data or secrets, masks anything shaped like an email address or a
phone number, and masks the configured secrets (app secret, tokens) wherever
they appear. Standard-library logs (SDKs, aiohttp) go through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

MASK = "[redacted]"

# Keys whose values are personal data or secrets, whatever the value looks like.
SENSITIVE_KEYS = frozenset(
    {
        "email", "work_email", "phone", "phone_number", "name", "full_name", "first_name",
        "last_name", "answers", "field_data", "values", "token", "access_token", "app_secret",
        "secret", "password", "authorization", "verify_token", "events_token", "credentials",
    }
)  # fmt: skip
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# Phone-shaped: Facebook returns phone_number in E.164 (+ and digits); also (555) 123-4567.
# Lead ids and dates are digit runs too, so digits without a + or that shape are kept.
_PHONE = re.compile(r"\+\d[\d\s().-]{6,}\d|\(\d{3}\)\s?\d{3}-\d{4}")
_SECRET_PARAM = re.compile(r"(access_token|appsecret_proof|input_token|client_secret)=[^&\s\"']+")


class Redactor:
    """A structlog processor that removes personal data and known secrets from an event."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: set[str] = set()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Registers secret values (tokens may be rotated at run time)."""
        self._secrets.update(s for s in secrets if s and len(s) >= 6)

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        return {key: self._clean(key, value) for key, value in event.items()}

    def _clean(self, key: str, value: Any) -> Any:
        if key.lower() in SENSITIVE_KEYS:
            return MASK
        if key == "timestamp":
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set):
            return [self._clean("", v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _SECRET_PARAM.sub(lambda m: f"{m[1]}={MASK}", text)
        text = _EMAIL.sub(MASK, text)
        return _PHONE.sub(MASK, text)


REDACTOR = Redactor()


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        """StreamHandler sets its stream at construction; ours is always the current one."""


def configure(fmt: str = "auto", level: str = "info", secrets: Iterable[str] = ()) -> None:
    """Sets up structlog and stdlib logging for the process (idempotent)."""
    REDACTOR.add_secrets(secrets)
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        REDACTOR,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    logging.getLogger().handlers[:] = [handler]
    set_level(level)


def set_level(level: str) -> None:
    """Sets the level of every log (at start, and again when SIGHUP brings a new one)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    # Request URLs carry tokens; these libraries log them at debug level.
    for noisy in ("urllib3", "aiohttp.access", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
