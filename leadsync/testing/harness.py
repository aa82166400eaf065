"""What the connector contract suite needs from a destination: the `Harness` to subclass.

A harness starts the destination (an emulator, a sandbox account or an in-memory
fake: `start`/`stop`), builds the connector pointed at it (`build`, which takes
`timeout=` for the "timeout" fault), reads back what the destination holds for a
lead id (`held`), counts its write requests and injects faults by name (`inject`,
one of `FAULTS`; list the ones it can give in `faults`, the others are skipped).
Connectors it built are closed when it stops.

`Courier` stands in for the delivery runner where the suite needs its memory:
it hands each connector back, as `ScoredLead.external_id`, what the connector
answered last time for a lead (the runner reads it from the store). `make_lead`
and `scored` make leads with recognisable personal data, so the log test can
look for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from leadsync.abc import Connector
from leadsync.models import DeliveryResult, Lead, Reason, Score, ScoredLead

# Faults a harness can inject, by name; the contract says which error kind each becomes.
FAULTS = ("auth", "rate_limit", "server_error", "timeout", "rejected")
# A connector built for the "timeout" fault gives up after this; the destination stalls longer.
SHORT_TIMEOUT = 0.5
STALL_SECONDS = 2.0


@dataclass
class Courier:
    """The delivery runner's memory for one destination: the last external_id per lead."""

    connector: Connector
    receipts: dict[str, str] = field(default_factory=dict)

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        routed = [replace(s, external_id=self.receipts.get(s.lead.id, "")) for s in batch]
        results = self.connector.deliver(routed)
        for result in results:
            if result.ok:
                self.receipts[result.lead_id] = result.external_id
        return results


@dataclass(frozen=True)
class Held:
    """What a destination keeps for one lead, as the people using it see it."""

    copies: int  # records, rows or messages for the lead (after the receiver's own dedup)
    score: int | None = None
    mql: bool | None = None


def make_lead(number: int, *, email: bool = True, tag: str = "") -> Lead:
    """A lead with recognisable personal data, so log tests can look for it."""
    answers = {
        "full_name": (f"Zelda Quartermain{number}",),
        "phone_number": (f"+1555010{number:04d}",),
        "company_name": ("Quartermain Widgets",),
        "job_title": ("VP Sales",),
    }
    if email:
        answers["email"] = (f"zelda.quartermain{number}{tag}@example-leads.test",)
    today = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    return Lead(
        id=f"{tag}9000000000{number:05d}",  # 15 digits, as Facebook lead ids have
        created_time=today - timedelta(days=1) + timedelta(seconds=number % 60),
        page_id="1111",
        form_id="2222",
        form_name="Demo request",
        campaign_name="Autumn launch",
        answers=answers,
    )


def scored(lead: Lead, points: int, *, revision: int = 1, threshold: int = 60) -> ScoredLead:
    """`lead` with a score of `points` (an MQL from `threshold`) at `revision`."""
    reasons = (Reason("VP title", 20, "demographic"), Reason("Demo request", points - 20, "intent"))
    score = Score(points, points >= threshold, reasons, fit=20, engagement=points - 20)
    return ScoredLead(lead, score, revision)


def personal_data(leads: Sequence[Lead]) -> list[str]:
    """Every answer value of `leads` (names, emails, phones, companies)."""
    return [v for lead in leads for values in lead.answers.values() for v in values]


class Harness:
    """One connector type in front of its destination; subclasses fill in the details."""

    id: ClassVar[str]
    updates_in_place: ClassVar[bool] = True  # False: it announces once and never edits
    only_mql: ClassVar[bool] = False  # True: it holds nothing for a lead that is no MQL
    expected_wait: ClassVar[float]  # the retry_after the "rate_limit" fault must produce
    faults: ClassVar[tuple[str, ...]] = FAULTS  # the faults it can inject

    def __init__(self) -> None:
        self._connectors: list[Connector] = []

    def __enter__(self) -> Harness:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            for connector in self._connectors:
                connector.close()
        finally:
            self.stop()

    def connector(self, **overrides: Any) -> Connector:
        """A connector built against the destination; closed when the harness stops."""
        built = self.build(**overrides)
        self._connectors.append(built)
        return built

    # -- per destination ------------------------------------------------------------
    def start(self) -> None:
        """Starts the destination (an emulator, a fake); nothing by default."""

    def stop(self) -> None:
        """Stops what `start` started."""

    def build(self, **overrides: Any) -> Connector:
        raise NotImplementedError

    def held(self, lead_id: str) -> Held:
        raise NotImplementedError

    def delivery_requests(self) -> int:
        raise NotImplementedError

    def expected_requests(self, leads: int) -> int:
        raise NotImplementedError

    def inject(self, fault: str) -> None:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        raise NotImplementedError
