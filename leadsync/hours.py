"""An owner's working hours, written as people say them: "mon-fri 09:00-17:00 Europe/Paris".

Days are a range ("mon-fri") or a comma list ("mon,wed,fri"); the times are
the start and end of the working day on the wall clock of the IANA time zone
(UTC when left out). An end at or before the start crosses midnight
("22:00-06:00"). Pure parsing and arithmetic; the config checks the text once
(`WorkingHours.parse` raises ValueError with the fix), the SLA clock reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TEXT = re.compile(
    r"^\s*(?P<days>[a-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
    r"(?:\s+(?P<zone>\S+))?\s*$",
    re.IGNORECASE,
)
EXAMPLE = '"mon-fri 09:00-17:00 Europe/Paris"'


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Working days (0 = Monday), the day's start and end, and the zone they are read in."""

    days: frozenset[int]
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        match = _TEXT.match(text)
        if not match:
            raise ValueError(f"{text!r} is not working hours; write them like {EXAMPLE}")
        try:
            zone = ZoneInfo(match["zone"] or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {match['zone']!r}; use an IANA name") from None
        return cls(_days(match["days"]), _time(match["start"]), _time(match["end"]), zone)

    def covers(self, at: datetime) -> bool:
        """Whether the instant `at` (timezone-aware) is inside working hours."""
        local = at.astimezone(self.zone)
        now = local.time()
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        # Crosses midnight: the early hours belong to the day before.
        if now >= self.start:
            return local.weekday() in self.days
        yesterday = (local - timedelta(days=1)).weekday()
        return now < self.end and yesterday in self.days


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{text!r}: days are mon, tue, wed, thu, fri, sat, sun ({EXAMPLE})")
        low, high = DAYS.index(first), DAYS.index(last or first)
        days.update(range(low, high + 1) if low <= high else [*range(low, 7), *range(high + 1)])
    return frozenset(days)


def _time(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} is not a time of day; write 09:00 or 17:30")
    return time(hours, minutes)
