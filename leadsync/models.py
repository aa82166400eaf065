"""Plain, typed data that crosses module boundaries.

Sources produce `Notification`s and `Lead`s, the scoring engine produces a
`Score`, the outbox hands `ScoredLead`s to connectors and gets
`DeliveryResult`s back. Everything here is a frozen dataclass with no I/O, so
any module may import it without pulling in a database, an SDK or HTTP.
All datetimes are timezone-aware (UTC when they come from us).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from leadsync.constants import GRAPH_ID_MAX_DIGITS

Source = Literal["webhook", "poll", "backfill"]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def parse_time(value: str | int | float | datetime | None) -> datetime | None:
    """Reads a Graph API time: unix seconds, or ISO 8601 such as 2026-11-20T10:00:00+0000."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or str(value).isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_graph_id(value: object) -> bool:
    """A Graph id as text: 1 to GRAPH_ID_MAX_DIGITS ASCII digits.

    `str.isdigit()` alone takes "²³" and "١٢٣٤"; those are not ids.
    """
    return (
        isinstance(value, str)
        and 0 < len(value) <= GRAPH_ID_MAX_DIGITS
        and value.isascii()
        and value.isdigit()
    )


@dataclass(frozen=True, slots=True)
class Notification:
    """A lead id we know exists, before its answers are fetched."""

    lead_id: str
    page_id: str
    form_id: str = ""
    ad_id: str = ""
    created_time: datetime | None = None
    source: Source = "webhook"
    received_at: datetime | None = None  # when we were told; None: now, as it is stored


@dataclass(frozen=True, slots=True)
class Lead:
    """One submitted lead form with everything Graph tells about it.

    `answers` maps each question's name to all its values, in form order
    (multi-value answers keep every value). `consents` maps each custom
    disclaimer checkbox key to whether it was checked.
    """

    id: str
    created_time: datetime
    page_id: str
    form_id: str
    form_name: str = ""
    ad_id: str = ""
    ad_name: str = ""
    adset_id: str = ""
    adset_name: str = ""
    campaign_id: str = ""
    campaign_name: str = ""
    platform: str = ""
    is_organic: bool = False
    answers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    consents: Mapping[str, bool] = field(default_factory=dict)

    def answer(self, name: str) -> str:
        """The answer to question `name`, several values joined by ", "; "" when absent."""
        return ", ".join(self.answers.get(name, ()))

    @property
    def email(self) -> str:
        """The lead's email, from the standard questions, lower-cased; "" when absent."""
        for name in ("email", "work_email"):
            if value := self.answer(name).strip():
                return value.lower()
        return ""

    def to_json(self) -> str:
        data = {
            name: getattr(self, name)
            for name in self.__slots__  # type: ignore[attr-defined]
            if name not in ("created_time", "answers", "consents")
        }
        data["created_time"] = self.created_time.isoformat()
        data["answers"] = {k: list(v) for k, v in self.answers.items()}
        data["consents"] = dict(self.consents)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Lead:
        data: dict[str, Any] = json.loads(text)
        data["created_time"] = parse_time(data["created_time"])
        data["answers"] = {k: tuple(v) for k, v in data.get("answers", {}).items()}
        return cls(**data)


# A lead's plain attributes besides its id and created_time, in the order people read them.
LEAD_ATTRIBUTES = (
    "page_id", "form_id", "form_name", "ad_id", "ad_name", "adset_id", "adset_name",
    "campaign_id", "campaign_name", "platform", "is_organic",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Form:
    """A lead form on a page, as discovered through /{page}/leadgen_forms."""

    id: str
    page_id: str
    name: str = ""
    status: str = "ACTIVE"
    questions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far the poller has safely read one form."""

    form_id: str
    last_created_time: datetime | None = None
    polled_at: datetime | None = None
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """An engagement event posted to /events (webinar attended, email opened, ...)."""

    id: str
    type: str
    at: datetime
    lead_id: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that contributed points to a score."""

    rule: str
    points: float
    group: str = ""

    def __str__(self) -> str:
        points = round(self.points)
        return f"{self.rule} {'+' if points >= 0 else '-'}{abs(points)}"


@dataclass(frozen=True, slots=True)
class Score:
    """A lead's score, its MQL flag and the reasons that add up to it."""

    points: int
    mql: bool
    reasons: tuple[Reason, ...] = ()
    fit: int = 0
    engagement: int = 0
    rules_version: str = ""

    @property
    def reasons_text(self) -> str:
        """The reasons as people read them: "VP title +20; demo request +35"."""
        return "; ".join(str(r) for r in self.reasons)

    def same_outcome(self, other: Score | None) -> bool:
        """True when a destination would show nothing new (score, flag, reasons)."""
        return other is not None and (self.points, self.mql, self.reasons_text) == (
            other.points,
            other.mql,
            other.reasons_text,
        )


# A lead's way through the funnel, in order: submitted, marketing-qualified (its score),
# then what sales records: contacted, sales-qualified (accepted), and closed won or lost.
Stage = Literal["lead", "mql", "contacted", "sql", "won", "lost"]
STAGES: tuple[Stage, ...] = get_args(Stage)
# The stages sales records (a sheet's status, a CRM's lifecycle stage, POST /events).
OUTCOMES: tuple[Stage, ...] = STAGES[2:]
# A destination's receipt marks a stage it gave up as too old to send: "sql!expired".
EXPIRED_MARK = "!expired"


@dataclass(frozen=True, slots=True)
class LeadStage:
    """A stage a lead reached, when, and the deal value that came with it (won, usually).

    Stored once per lead and stage: the first time it was reached. `source` says
    who told us ("scoring", "events", "google_sheets:<destination>", ...).
    """

    lead_id: str
    stage: Stage
    reached_at: datetime
    value: Decimal | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; one of {', '.join(STAGES)}")
        if self.value is not None and not (self.value.is_finite() and self.value >= 0):
            raise ValueError(f"a deal value is a number of 0 or more, not {self.value}")

    @property
    def order(self) -> int:
        """The stage's place in the funnel (`STAGES` order)."""
        return STAGES.index(self.stage)


@dataclass(frozen=True, slots=True)
class ReportLead:
    """One lead as the closed-loop report sees it: origin, owner, MQL flag, sales stages.

    `stages` maps a stage name (contacted, sql, won, lost) to when the lead reached it
    and the deal value recorded with it (None when none was).
    """

    lead_id: str
    created_time: datetime
    form_id: str
    form_name: str
    campaign_name: str
    ad_name: str
    owner: str | None
    mql: bool
    stages: Mapping[str, tuple[datetime, Decimal | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Owner:
    """The person a lead is routed to, as configured in `[[routing.owners]]` when assigned.

    `hours` is the owner's working hours as configured ("mon-fri 09:00-17:00
    Europe/Paris"), "" for always; `is_working` reads it.
    """

    name: str
    email: str = ""
    slack_id: str = ""
    hubspot_owner_id: str = ""
    hours: str = ""

    def is_working(self, at: datetime) -> bool:
        """Whether `at` falls in the owner's working hours (always True without hours)."""
        from leadsync.hours import WorkingHours  # a parser kept out of this plain-data module

        return WorkingHours.parse(self.hours).covers(at) if self.hours else True


@dataclass(frozen=True, slots=True)
class Contact:
    """A lead's contact details as matched and delivered (`leadsync/contacts.py`).

    `phone_e164` is the normalised phone ("" when there is none or it could not
    be read); `phone_valid` is False when the lead typed a number that could
    not be read, kept as typed in `phone_typed`. `person_key` recognises the
    same person across forms; `repeat_of` is the id of that person's first
    lead when this lead is a repeat submission, "" otherwise.
    """

    lead_id: str
    person_key: str = ""
    phone_e164: str = ""
    phone_valid: bool = True
    phone_typed: str = ""
    repeat_of: str = ""


@dataclass(frozen=True, slots=True)
class Pool:
    """Owners who take turns at leads, with their weights; `key` names the pool's turns."""

    key: str
    rule: str
    owners: tuple[Owner, ...]
    weights: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """A lead to give an owner: its person's owner if they have one, else a turn in `pool`."""

    lead_id: str
    person_key: str = ""
    pool: Pool | None = None


@dataclass(frozen=True, slots=True)
class ScoredLead:
    """What a connector receives: the lead, its current score, its revision and stages.

    `external_id` is what this destination answered the last time it took this
    lead (its last `DeliveryResult.external_id`), "" when it never did: a
    connector that must act once per lead (an MQL alert) reads it back here.
    `stages` are the stages the lead has reached so far, in `STAGES` order.

    `owner` is who the lead is routed to (None: no routing rule gave it one);
    `contact` its normalised phone and whether it repeats an earlier lead of
    the same person (None: routing and contacts not recorded, an older lead).
    """

    lead: Lead
    score: Score
    revision: int = 1
    external_id: str = ""
    stages: tuple[LeadStage, ...] = ()
    owner: Owner | None = None
    contact: Contact | None = None

    @property
    def phone_e164(self) -> str:
        """The phone to deliver: E.164 when it could be read, else as typed ("" for none)."""
        if self.contact is None:
            return ""
        return self.contact.phone_e164 or self.contact.phone_typed

    @property
    def repeat_of(self) -> str:
        """The person's first lead id when this lead repeats it, else ""."""
        return self.contact.repeat_of if self.contact else ""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a connector did with one lead of a batch.

    `error` is None on success. `external_id` names what the destination made
    (a sheet row's lead id, a CRM record id) when it tells us.
    """

    lead_id: str
    error: Exception | None = None
    external_id: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


OutboxState = Literal["pending", "delivered", "dead"]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One (lead, destination, revision) that must reach the destination."""

    id: int
    lead_id: str
    destination: str
    revision: int
    attempts: int = 0
    created_at: datetime | None = None
    last_error: str = ""
    state: OutboxState = "pending"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An outbox item that kept failing past its maximum age; replayable."""

    item: OutboxItem
    dead_at: datetime
    last_error: str


@dataclass(frozen=True, slots=True)
class DestinationStats:
    """Queue figures of one destination, for `status`, /healthz and /metrics."""

    destination: str
    pending: int
    oldest_pending: datetime | None
    dead: int
    delivered: int


@dataclass(frozen=True, slots=True)
class NotificationBacklog:
    """Notifications not yet fetched (stored or dropped), for /healthz and /metrics.

    `oldest_received_at` is when the oldest of them was received (None when none wait).
    """

    waiting: int
    oldest_received_at: datetime | None

    def plus(self, waiting: int, oldest_received_at: datetime | None) -> NotificationBacklog:
        """This backlog and another's (the store's and the HTTP process's journal's)."""
        times = [t for t in (self.oldest_received_at, oldest_received_at) if t is not None]
        return NotificationBacklog(self.waiting + waiting, min(times, default=None))


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """The last known health of one outside service or job ("facebook", "sheets:sales")."""

    service: str
    ok: bool
    message: str = ""
    at: datetime | None = None
