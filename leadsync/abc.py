"""Every interface of leadsync, in one place.

`Store` is what the daemon keeps on disk (SQLite by default, PostgreSQL for
several replicas), made of one interface per role (ingest, scoring, delivery,
coordination, outcomes) so a stage can depend on only what it uses; one SQL
implementation in `leadsync/store/` serves both backends and passes one
contract suite (`tests/test_store.py`). `Connector` is a
destination (`connectors/`): it receives batches of scored leads and upserts
them by lead id. Batching, retries, backoff and the dead letter live in the
delivery runner, never in a connector.

Store methods are synchronous and thread-safe; the daemon calls them from
worker threads. A method that writes has committed durably when it returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from leadsync.models import (
    Checkpoint,
    Contact,
    DeadLetter,
    DeliveryResult,
    DestinationStats,
    Event,
    Form,
    Lead,
    LeadStage,
    Notification,
    NotificationBacklog,
    OutboxItem,
    OutboxState,
    Owner,
    ReportLead,
    RouteRequest,
    Score,
    ScoredLead,
    ServiceStatus,
)
from leadsync.sla import SlaAlert, WaitingMql


@dataclass(frozen=True, slots=True)
class ScoreUpdate:
    """A freshly computed score and the destinations that must hear about it.

    `read_revision` is the lead's revision the score was computed from (0: it
    had none); the score is saved only while that is still the lead's revision,
    so a replica that read older events cannot overwrite a newer score. None
    saves whatever the current revision is.
    """

    lead_id: str
    score: Score
    destinations: tuple[str, ...] = ()
    read_revision: int | None = None


class SavedScores(dict[str, int]):
    """What `save_scores` did: the new revision of each lead that changed, by id.

    `stale` names the leads skipped because their revision moved on since the
    score was computed (see `ScoreUpdate.read_revision`): score them again.
    """

    def __init__(
        self,
        revisions: Mapping[str, int] | Iterable[tuple[str, int]] = (),
        stale: Iterable[str] = (),
    ):
        super().__init__(revisions)
        self.stale = frozenset(stale)


@dataclass(frozen=True, slots=True)
class ExpiredStage:
    """A lead's stage a destination would not send: too old, or dated before the lead."""

    lead_id: str
    destination: str
    stage: str


@dataclass(frozen=True, slots=True)
class LeadOverview:
    """One line of the status page: a lead's id, score and state per destination."""

    lead_id: str
    created_time: datetime
    form_id: str
    points: int | None
    mql: bool | None
    destinations: Mapping[str, OutboxState] = field(default_factory=dict)


class IngestStore(ABC):
    """Notifications, leads, forms and poll checkpoints (`leadsync/store/ingest.py`)."""

    @abstractmethod
    def add_notifications(
        self, notes: Sequence[Notification], progress: tuple[str, str] | None = None
    ) -> int:
        """Stores lead ids to fetch, durably, in one transaction; returns how many were new.

        A lead id already known (as a notification or a stored lead) is ignored.
        `progress`, a meta key and value, is saved in the same transaction (how far a
        copy from the HTTP process's journal got).
        """

    @abstractmethod
    def pending_notifications(self, limit: int) -> list[Notification]:
        """Notifications not yet resolved into leads whose retry time has come, oldest first.

        A read that claims nothing (tests and tools ask it); the fetcher claims its work
        with `claim_notifications`.
        """

    @abstractmethod
    def claim_notifications(self, owner: str, limit: int, lease: timedelta) -> list[Notification]:
        """Claims up to `limit` notifications to fetch for `owner` until now + `lease`.

        Takes pending notifications whose retry time has come and that no live claim
        holds, oldest first, in one statement: two claimers never get the same one.
        Storing, dropping or deferring a notification ends its claim; a claim that
        expired (its owner died mid-round) may be taken by anyone.
        """

    @abstractmethod
    def notification_backlog(self) -> NotificationBacklog:
        """How many notifications wait to be fetched, and since when the oldest.

        Every pending notification counts: due, deferred to later, or claimed.
        """

    @abstractmethod
    def defer_notifications(self, lead_ids: Sequence[str], error: str, retry_at: datetime) -> None:
        """A fetch failed for a reason that may pass: try these again at `retry_at` (unclaimed)."""

    @abstractmethod
    def drop_notification(self, lead_id: str, error: str) -> None:
        """The lead cannot be fetched ever (deleted, no permission on it); keep why, stop trying."""

    @abstractmethod
    def save_leads(self, leads: Sequence[Lead]) -> list[str]:
        """Stores leads not stored yet and settles their notifications; returns the new ids.

        Leads are deduplicated by id whatever path they came by: a lead already
        stored is left as it is and not returned.
        """

    @abstractmethod
    def get_leads(self, lead_ids: Sequence[str]) -> dict[str, Lead]:
        """The stored leads among `lead_ids`, by id."""

    @abstractmethod
    def lead_ids_by_email(self, email: str) -> list[str]:
        """Ids of stored leads whose email (case-insensitive) is `email`."""

    @abstractmethod
    def lead_ids(self, after: str = "", limit: int = 1000) -> list[str]:
        """Stored lead ids in id order, after `after`; for re-scoring everything in pages."""

    @abstractmethod
    def unscored_lead_ids(self, limit: int) -> list[str]:
        """Stored leads that have no score yet (new ones, or a crash before scoring)."""

    @abstractmethod
    def count_leads(self) -> int:
        """How many leads are stored."""

    @abstractmethod
    def save_forms(self, forms: Sequence[Form]) -> None:
        """Inserts or updates forms (name, status, questions)."""

    @abstractmethod
    def forms(self, page_id: str = "") -> list[Form]:
        """Known forms, of one page or of all."""

    @abstractmethod
    def checkpoint(self, form_id: str) -> Checkpoint:
        """The poll checkpoint of a form (empty when never polled)."""

    @abstractmethod
    def checkpoints(self) -> list[Checkpoint]:
        """Every form's checkpoint."""

    @abstractmethod
    def advance_checkpoint(self, form_id: str, last_created_time: datetime) -> None:
        """Moves a form's checkpoint forward to `last_created_time`; never backwards."""

    @abstractmethod
    def record_poll(self, form_id: str, error: str = "") -> None:
        """Notes that a form was polled now, and the error if the poll failed."""


class ScoringStore(ABC):
    """Scores with their revisions, and engagement events (`leadsync/store/scoring.py`)."""

    @abstractmethod
    def save_scores(self, updates: Sequence[ScoreUpdate]) -> SavedScores:
        """Stores new scores and enqueues their deliveries, in one transaction.

        When a lead's score, MQL flag and reasons are the same as its current
        ones, nothing changes for it. Otherwise its revision goes up by one
        (the first is 1) and one outbox item per destination is enqueued for
        that revision. An update whose `read_revision` is no longer the lead's
        revision is skipped and named in `stale`. A lead whose score is an MQL
        for the first time reaches the `mql` stage then (at the time it is
        saved), in the same transaction. Returns the new revision of each lead
        that changed.
        """

    @abstractmethod
    def current_scores(self, lead_ids: Sequence[str]) -> dict[str, tuple[Score, int]]:
        """The current score and revision of each scored lead among `lead_ids`."""

    @abstractmethod
    def routed_destinations(self, lead_ids: Sequence[str]) -> dict[str, set[str]]:
        """Destinations that already have an outbox item for each lead."""

    @abstractmethod
    def external_ids(self, destination: str, lead_ids: Sequence[str]) -> dict[str, str]:
        """What `destination` last answered for each lead (`DeliveryResult.external_id`)."""

    @abstractmethod
    def add_events(self, events: Sequence[Event]) -> list[Event]:
        """Stores engagement events, idempotent by event id; returns the new ones.

        Each event's `lead_id` is required (resolve emails first); ValueError otherwise.
        """

    @abstractmethod
    def events_for(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        """Every stored event of each lead, oldest first."""


class RoutingStore(ABC):
    """Contacts, persons and owners of leads (`leadsync/store/routing.py`)."""

    @abstractmethod
    def record_contacts(self, contacts: Sequence[Contact]) -> dict[str, Contact]:
        """Stores each lead's contact once (serialised); returns every lead's contact.

        A lead whose person key was seen before repeats that person's first lead
        (`repeat_of`) and gets a `repeat_submission` event at its created time.
        """

    @abstractmethod
    def contacts(self, lead_ids: Sequence[str]) -> dict[str, Contact]:
        """The recorded contact of each lead among `lead_ids`."""

    @abstractmethod
    def assign_owners(
        self, requests: Sequence[RouteRequest], known: Mapping[str, Owner]
    ) -> dict[str, Owner]:
        """Gives each unassigned lead an owner, once (serialised); returns the new ones.

        The person's owner when they have one in `known`; else the pool's owner
        with the fewest leads for their weight (ties: first listed), whom the
        person keeps. Neither: the lead stays unassigned.
        """

    @abstractmethod
    def assignments(self, lead_ids: Sequence[str]) -> dict[str, Owner]:
        """The owner of each assigned lead among `lead_ids`."""


class DeliveryStore(ABC):
    """The outbox, its claims and the dead letter (`leadsync/store/delivery.py`)."""

    @abstractmethod
    def claim(self, destination: str, limit: int, owner: str, lease: timedelta) -> list[OutboxItem]:
        """Claims up to `limit` due pending items of a destination for `owner`, oldest first.

        Only the newest revision per lead is claimed, and never a lead that has
        another item claimed at that destination. An item stays claimed until
        `lease` has passed, so a crashed owner's items are claimed again by
        someone else. Two owners never hold the same item at once.
        """

    @abstractmethod
    def complete(self, items: Sequence[OutboxItem], results: Sequence[DeliveryResult] = ()) -> None:
        """Marks items delivered, with older revisions of that lead and destination (any state).

        Keeps each ok result's `external_id` for `external_ids`.
        """

    @abstractmethod
    def retry(self, item_ids: Sequence[int], error: str, retry_at: datetime) -> None:
        """Counts a failed attempt, keeps the error and makes the items due again at `retry_at`."""

    @abstractmethod
    def release(self, item_ids: Sequence[int]) -> None:
        """Gives claimed items back without counting an attempt (shutdown)."""

    @abstractmethod
    def bury(self, item_ids: Sequence[int], error: str) -> None:
        """Moves items to the dead letter with their last error (and older pending revisions)."""

    @abstractmethod
    def dead_letters(self, destination: str = "", lead_id: str = "") -> list[DeadLetter]:
        """Dead items, optionally of one destination or one lead."""

    @abstractmethod
    def replay(self, destination: str = "", lead_id: str = "") -> int:
        """Makes dead items pending and due now again; returns how many."""

    @abstractmethod
    def destination_stats(self) -> list[DestinationStats]:
        """Queue depth, oldest pending item, dead and delivered counts per destination."""

    @abstractmethod
    def recent_leads(self, limit: int = 50) -> list[LeadOverview]:
        """The newest stored leads with their score and per-destination state."""


class CoordinationStore(ABC):
    """Leases, owners of claims, service health and meta values (`store/coordination.py`)."""

    @abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Takes or renews the named lease for `owner`; False while another owner holds it."""

    @abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Gives up a lease held by `owner` (no-op otherwise)."""

    @abstractmethod
    def owners(self) -> set[str]:
        """Owners holding an unexpired lease or a live claim (outbox item, notification) now."""

    @abstractmethod
    def release_owner(self, owner: str) -> None:
        """Gives back every lease and claim of `owner` (a process known to be dead)."""

    @abstractmethod
    def set_status(self, status: ServiceStatus) -> None:
        """Records the health of a service or job (replacing the previous record)."""

    @abstractmethod
    def statuses(self) -> list[ServiceStatus]:
        """Every recorded service status."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A small named value (the rules version, ...)."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Sets a small named value."""


class OutcomeStore(ABC):
    """A lead's stages through the funnel, once each (`leadsync/store/outcomes.py`).

    Outcomes are read from where sales records them (a sheet's status column,
    a CRM's lifecycle stage, `POST /events`); `mql` is recorded by `save_scores`.
    """

    @abstractmethod
    def record_stages(
        self, stages: Sequence[LeadStage], destinations: Sequence[str] = ()
    ) -> list[LeadStage]:
        """Stores the stages not stored yet, in one transaction; returns those only.

        `destinations`: those that take stages (`Connector.takes_stages`). A lead with a
        new stage gets, in the same transaction, the next revision of its unchanged score
        and an outbox item for each of them it was routed to; other destinations none.

        A lead keeps the first time it reached a stage: a stage read again later
        (a status typed once more, a lead going back and forth) is not stored
        twice. A stage stored without a value gets one from a later reading that
        brings it (not returned: it is no new stage). Stages of leads not stored
        are ignored.
        """

    @abstractmethod
    def stages_for(self, lead_ids: Sequence[str]) -> dict[str, list[LeadStage]]:
        """The stored stages of each lead among `lead_ids`, in `STAGES` order."""

    @abstractmethod
    def leads_by_external_id(self, destination: str, external_ids: Sequence[str]) -> dict[str, str]:
        """The lead each of `destination`'s records stands for (`DeliveryResult.external_id`).

        A record made for several leads (one HubSpot contact for two leads with one
        email) stands for the newest of them: one deal is one lead's outcome.
        """

    @abstractmethod
    def stages_since(self, since: datetime, limit: int = 10_000) -> list[LeadStage]:
        """Stages reached at or after `since`, oldest first (then by lead and stage order)."""

    @abstractmethod
    def expired_stages(self) -> list[ExpiredStage]:
        """Stages a destination gave up as too old to send, by its newest delivered receipt."""


class ReportingStore(ABC):
    """What the closed-loop report reads (`leadsync/store/reporting.py`); a `ReportSource`."""

    @abstractmethod
    def report_leads(self, since: datetime) -> list[ReportLead]:
        """Every lead created at or after `since`, oldest first, as the report takes it.

        With its form, campaign and ad names, its current MQL flag (False when not
        scored yet), its owner's name (None when unassigned) and its sales stages
        (contacted, sql, won, lost) with when each was reached and its deal value.
        """

    @abstractmethod
    def lead_counts_by_owner(self, since: datetime) -> dict[str, tuple[int, int]]:
        """(leads, MQLs) created at or after `since` per owner name ("" for unassigned)."""


class SlaStore(ABC):
    """Speed to lead: MQLs waiting for first contact, and their alerts sent once each.

    An alert is claimed before it is sent (one row per lead and kind), so replicas
    and restarts never send it twice; a claim that expired unsent is claimed again.
    """

    @abstractmethod
    def waiting_mqls(self, since: datetime, limit: int = 1000) -> list[WaitingMql]:
        """MQLs reached at or after `since` with no contacted/sql/won/lost stage, oldest first."""

    @abstractmethod
    def claim_sla_alerts(
        self, alerts: Sequence[SlaAlert], owner: str, lease: timedelta
    ) -> list[SlaAlert]:
        """Claims alerts never claimed, or claimed and unsent past their lease; returns those."""

    @abstractmethod
    def settle_sla_alerts(
        self,
        sent: Sequence[SlaAlert],
        failed: Sequence[SlaAlert] = (),
        error: str = "",
        give_up: bool = False,
    ) -> None:
        """Marks `sent` sent; gives `failed` back for a later round, or up (state "failed")."""

    @abstractmethod
    def sla_alerts(self, lead_ids: Sequence[str]) -> list[SlaAlert]:
        """The stored alerts of these leads, by lead and kind."""


class Store(
    IngestStore,
    ScoringStore,
    RoutingStore,
    DeliveryStore,
    CoordinationStore,
    OutcomeStore,
    ReportingStore,
    SlaStore,
):
    """Durable state of the daemon, every role in one. Every write is one transaction."""

    @abstractmethod
    def migrate(self) -> None:
        """Applies pending schema migrations; safe when several processes start together."""

    @abstractmethod
    def close(self) -> None:
        """Releases connections; the store is unusable afterwards."""

    @abstractmethod
    def ping(self) -> None:
        """Proves the store is writable (writes a heartbeat); raises when it is not."""


class OutcomeReader(Protocol):
    """Reads outcomes from where sales records them (`leadsync/outcomes/`), never writes there.

    `read` is one round: it reads its source, records the stages it found through
    the store and returns those new to the store. Failures are raised as leadsync
    errors (`AuthError`, `RateLimited`, `TransientError`); the next round tries again.
    """

    name: str  # the destination it reads

    def read(self) -> list[LeadStage]: ...

    def close(self) -> None: ...


@runtime_checkable
class Connector(Protocol):
    """A destination. One module in `connectors/` plus one registry line.

    `deliver` upserts by lead id: a lead the destination has already seen is
    updated in place (score, mql, score_reasons), never added twice. Per-lead
    failures come back as `DeliveryResult.error`; failures of the whole call
    are raised as `AuthError`, `RateLimited` or `TransientError`. This is all
    the runner, the daemon and `leadsync check` call; `ConnectorBase` gives
    the defaults of `check_ready`, `ready_in` and `close` to a connector that
    prepares, paces and holds nothing.
    `leadsync.testing` ships the contract suite a connector proves itself with.
    An optional `takes_stages = True` (default False, from `ConnectorBase`; not a
    member, so older connectors keep the protocol) asks for a delivery whenever a
    lead reaches a new stage, not only when its score changes. An optional
    `max_batch` caps the leads one `deliver` call gets (default: `[delivery]
    batch_size`): a batch is settled when `deliver` returns, so after a crash it is
    sent again whole; a destination whose sends cannot be taken back (an email, a
    chat message) keeps it small.
    """

    name: str

    def ensure_ready(self) -> None:
        """Checks access and prepares the destination (header row, properties)."""
        ...

    def check_ready(self) -> list[str]:
        """Checks access like `ensure_ready` but changes nothing (`leadsync check`).

        Raises what would stop delivery; returns notes on what `ensure_ready` would
        still create (an empty list: nothing).
        """
        ...

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        """Upserts every lead of the batch; returns one result per lead."""
        ...

    def ready_in(self) -> float:
        """Seconds until it could deliver without waiting on its own request budget (0: now).

        The runner waits that out *before* it claims a batch, so the batch holds every
        lead that arrived meanwhile.
        """
        ...

    def close(self) -> None:
        """Releases sessions and connections; the daemon calls it once when it stops."""
        ...


class ConnectorBase:
    """Defaults for a connector that prepares nothing, paces nothing and holds nothing.

    Subclass it and write `ensure_ready` and `deliver` (and set `name`); override
    `check_ready` when `ensure_ready` creates something, `ready_in` when the destination
    has a request budget to wait for, `close` when the connector keeps a session.
    """

    name: str
    # True for a destination that sends lead stages (Meta's Conversions API): a newly
    # recorded stage then queues a delivery to it at once (`Store.record_stages`).
    takes_stages: bool = False
    # At most this many leads per `deliver` call (None: the `[delivery] batch_size`).
    max_batch: int | None = None

    def check_ready(self) -> list[str]:
        """Nothing to prepare, so nothing to report."""
        return []

    def ready_in(self) -> float:
        return 0.0

    def close(self) -> None:
        """Nothing to release."""
