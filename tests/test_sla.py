"""The SLA clock: reminder and escalation due times in working time, and what is due when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadsync.models import LeadStage
from leadsync.sla import contacted_at, deadlines, due

PARIS = "mon-fri 09:00-17:00 Europe/Paris"
FIVE = timedelta(minutes=5)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (case, mql reached at (UTC), speed_to_lead, hours, reminder due, escalation due)
CASES = [
    ("no hours: always working", "2026-03-04 10:00", FIVE, "",
     "2026-03-04 10:05", "2026-03-04 10:10"),
    ("inside hours", "2026-03-04 10:00", FIVE, "mon-fri 09:00-17:00",
     "2026-03-04 10:05", "2026-03-04 10:10"),
    ("before opening: the clock starts at opening", "2026-03-04 07:30", FIVE,
     "mon-fri 09:00-17:00", "2026-03-04 09:05", "2026-03-04 09:10"),
    ("near closing: the rest runs next morning", "2026-03-04 16:58", FIVE,
     "mon-fri 09:00-17:00", "2026-03-05 09:03", "2026-03-05 09:08"),
    ("friday evening waits the weekend", "2026-03-06 16:57", FIVE, "mon-fri 09:00-17:00",
     "2026-03-09 09:02", "2026-03-09 09:07"),
    ("saturday lead: monday morning", "2026-03-07 12:00", timedelta(hours=1),
     "mon-fri 09:00-17:00", "2026-03-09 10:00", "2026-03-09 11:00"),
    ("a time zone: Paris is UTC+1 in winter", "2026-03-04 07:30", FIVE, PARIS,
     "2026-03-04 08:05", "2026-03-04 08:10"),
    ("Paris, after its close (16:00 UTC)", "2026-03-04 15:58", FIVE, PARIS,
     "2026-03-05 08:03", "2026-03-05 08:08"),
    ("New York across the DST change (UTC-5 -> UTC-4)", "2026-03-06 21:58",
     FIVE, "mon-fri 09:00-17:00 America/New_York", "2026-03-09 13:03", "2026-03-09 13:08"),
    ("a night shift over midnight", "2026-03-04 23:58", FIVE, "mon-fri 22:00-06:00",
     "2026-03-05 00:03", "2026-03-05 00:08"),
    ("a night shift: the early hours of saturday belong to friday", "2026-03-07 05:58", FIVE,
     "mon-fri 22:00-06:00", "2026-03-09 22:03", "2026-03-09 22:08"),
    ("escalation across the close", "2026-03-04 16:52", FIVE, "mon-fri 09:00-17:00",
     "2026-03-04 16:57", "2026-03-05 09:02"),
    ("a period longer than a working day", "2026-03-04 09:00", timedelta(hours=10),
     "mon-fri 09:00-17:00", "2026-03-05 11:00", "2026-03-06 13:00"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mql_at", "speed", "hours", "reminder", "escalation"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_deadlines(mql_at, speed, hours, reminder, escalation) -> None:
    times = deadlines(utc(mql_at), speed, hours)
    assert (times.reminder, times.escalation) == (utc(reminder), utc(escalation))


def stage(name: str, at: datetime) -> LeadStage:
    return LeadStage("1", name, at)  # type: ignore[arg-type]


def test_contacted_is_the_earliest_sales_stage_and_mql_does_not_count() -> None:
    t = utc("2026-03-04 10:00")
    assert contacted_at([stage("mql", t)]) is None
    stages = [stage("mql", t), stage("won", t + FIVE * 3), stage("sql", t + FIVE)]
    assert contacted_at(stages) == t + FIVE


def test_due_in_order_once_each_and_never_once_contacted() -> None:
    times = deadlines(utc("2026-03-04 10:00"), FIVE)
    assert due(times, None, utc("2026-03-04 10:04")) == []
    assert due(times, None, utc("2026-03-04 10:05")) == ["reminder"]
    assert due(times, None, utc("2026-03-04 10:06"), sent=["reminder"]) == []
    assert due(times, None, utc("2026-03-04 10:10"), sent=["reminder"]) == ["escalation"]
    assert due(times, None, utc("2026-03-04 11:00")) == ["reminder", "escalation"]
    assert due(times, utc("2026-03-04 10:30"), utc("2026-03-04 11:00")) == []
