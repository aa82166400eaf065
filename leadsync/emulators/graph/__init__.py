"""An emulator of the Facebook Graph API endpoints leadsync uses, over real HTTP.

Pages, lead forms and leads; `/{form}/leads` with `filtering` and cursor
paging; batch requests; `debug_token`; page subscriptions; signed leadgen
webhooks with Meta's retries; and Graph's failures on demand (expired tokens,
throttling codes with usage headers, HTTP 500 `{"data": []}`, HTML 502 pages,
empty pages that still have `paging.next`, null batch items, slow answers);
and the Conversions API's `/{dataset}/events` with the CRM (Conversion Leads)
rules and Meta's deduplication (`conversions.py`).
Tests drive the real facebook-business SDK against it; `leadsync demo` runs on
it. Standalone: `python -m leadsync.emulators.graph --port 8001`.
"""

from leadsync.emulators.graph.server import GraphEmulator
from leadsync.emulators.graph.webhooks import WebhookPost, sign

__all__ = ["GraphEmulator", "WebhookPost", "sign"]
