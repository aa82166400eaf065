"""Speed to lead: when an MQL's reminder and escalation fall due, in the owner's working time.

A routing rule's `speed_to_lead` is the time an owner has to make first contact
with an MQL. The clock starts when the lead became an MQL (its `mql` stage) and
runs only inside the owner's working hours (`leadsync/hours.py`; no hours:
always): an MQL that arrives on Friday evening is due on Monday morning. The
reminder is due one period after the start, the escalation one more period
after the reminder. A lead counts as contacted from the earliest of its
`contacted`, `sql`, `won` or `lost` stages; a contacted lead is due nothing.
Pure arithmetic on timezone-aware datetimes; the job (`leadsync/sla_job.py`)
reads the store and sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from leadsync.hours import WorkingHours
from leadsync.models import OUTCOMES, LeadStage, Owner

Kind = Literal["reminder", "escalation"]
KINDS: tuple[Kind, ...] = ("reminder", "escalation")
# Working hours repeat weekly; a year of days without one working minute cannot happen with
# a parsed WorkingHours (it always has a day), so this bound only guards against a bug.
MAX_DAYS = 400


@dataclass(frozen=True, slots=True)
class WaitingMql:
    """An MQL no one has contacted yet: when it became one, its owner, and its rule.

    `rule` is the routing rule that assigned the owner ("same person" for a
    repeat); `alerted` the kinds already sent or given up for it, `given_up` those
    given up (never sent).
    """

    lead_id: str
    mql_at: datetime
    owner: Owner | None = None
    rule: str = ""
    alerted: frozenset[str] = frozenset()
    given_up: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SlaAlert:
    """One reminder or escalation of one lead, as claimed, sent or given up in the store."""

    lead_id: str
    kind: Kind
    due_at: datetime
    target: str = ""  # whom it goes to, as people read it ("ana@example.com", "#sales-alerts")
    state: Literal["claimed", "sent", "failed"] = "claimed"
    attempts: int = 0
    last_error: str = ""
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Deadlines:
    """When an MQL's reminder and escalation fall due (UTC)."""

    reminder: datetime
    escalation: datetime

    def of(self, kind: Kind) -> datetime:
        return self.reminder if kind == "reminder" else self.escalation


def deadlines(mql_at: datetime, speed_to_lead: timedelta, hours: str = "") -> Deadlines:
    """The due times for an MQL reached at `mql_at`, with the owner's working hours text."""
    parsed = WorkingHours.parse(hours) if hours.strip() else None
    reminder = add_working_time(mql_at, speed_to_lead, parsed)
    return Deadlines(reminder, add_working_time(reminder, speed_to_lead, parsed))


def add_working_time(start: datetime, span: timedelta, hours: WorkingHours | None) -> datetime:
    """`start` plus `span` of time counted only inside `hours` (all of it when None), in UTC."""
    start = start.astimezone(UTC)
    if hours is None:
        return start + span
    left = span
    for opens, closes in _shifts(start, hours):
        begin = max(start, opens)
        if begin >= closes:
            continue
        if begin + left <= closes:
            return begin + left
        left -= closes - begin
    raise RuntimeError(f"no working time within {MAX_DAYS} days of {start.isoformat()}")


def _shifts(start: datetime, hours: WorkingHours) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals (UTC) in time order, from the one that may hold `start` onwards."""
    first = start.astimezone(hours.zone).date() - timedelta(days=1)  # a night shift from before
    for offset in range(MAX_DAYS):
        day = first + timedelta(days=offset)
        if day.weekday() in hours.days:
            yield _shift(day, hours)


def _shift(day: date, hours: WorkingHours) -> tuple[datetime, datetime]:
    # Wall-clock times in the zone, compared in UTC: aware datetimes sharing a tzinfo subtract
    # by wall clock, which would be an hour off across a DST change.
    end_day = day if hours.start < hours.end else day + timedelta(days=1)
    opens = datetime.combine(day, hours.start, tzinfo=hours.zone).astimezone(UTC)
    closes = datetime.combine(end_day, hours.end, tzinfo=hours.zone).astimezone(UTC)
    return opens, closes


def contacted_at(stages: Iterable[LeadStage]) -> datetime | None:
    """The earliest time sales touched the lead (contacted, sql, won or lost), None if never."""
    times = [stage.reached_at for stage in stages if stage.stage in OUTCOMES]
    return min(times) if times else None


def due(
    times: Deadlines, contacted: datetime | None, now: datetime, sent: Iterable[str] = ()
) -> list[Kind]:
    """The alerts to send now: due, not sent before, and the lead not contacted (ever so far)."""
    if contacted is not None:
        return []
    done = set(sent)
    return [kind for kind in KINDS if kind not in done and times.of(kind) <= now]
