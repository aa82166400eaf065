"""Where the closed-loop report gets its leads: the `ReportSource` interface.

The CLI and `/report` depend only on `ReportSource.report_leads(since)`. The store
answers it itself (`ReportingStore` in `leadsync/abc.py`, one SQL read in
`leadsync/store/reporting.py`), so a store is a source; tests may pass any list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from leadsync.models import ReportLead


class ReportSource(Protocol):
    """Anything that can list the leads created since a moment, with their stages."""

    def report_leads(self, since: datetime) -> list[ReportLead]: ...
