"""Our one exception hierarchy, split by what the caller does next.

Lower libraries (facebook-business, gspread, requests, psycopg) raise their own
errors; each edge module maps them once into these kinds, so the rest of the
daemon only decides between: fix the config, alert and stop retrying a service,
wait and retry, retry with backoff, dead-letter, or record and skip one lead.
"""

from __future__ import annotations

from dataclasses import dataclass


class LeadsyncError(Exception):
    """Root of every error leadsync raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One configuration problem: where it is, what is wrong, what to do."""

    path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text} ({self.fix})" if self.fix else text


class ConfigError(LeadsyncError):
    """The configuration is wrong; every problem is reported at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class AuthError(LeadsyncError):
    """A token or credential is expired, revoked or lacks a permission.

    Retrying will not help until a person replaces the credential, so the
    caller alerts (log, status, /healthz) and backs off that whole service.
    """

    def __init__(self, message: str, *, service: str = ""):
        self.service = service
        super().__init__(message)


class RateLimited(LeadsyncError):
    """The service asked us to slow down; retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float):
        self.retry_after = retry_after
        super().__init__(message)


class TransientError(LeadsyncError):
    """A failure that is likely to pass (5xx, timeouts, broken gateways): retry."""


class PermanentError(LeadsyncError):
    """A request that will never succeed as it is: dead-letter it."""


class BadLead(LeadsyncError):
    """One lead cannot be processed (deleted, malformed): record it and skip it."""
