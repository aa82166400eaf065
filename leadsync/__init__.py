"""leadsync: every Facebook lead, once, fast, explained.

The daemon takes leads from Facebook Lead Ads (signed webhooks, with a poller as
safety net), stores them durably, scores them, and delivers them exactly once to
Google Sheets or a CRM through an outbox. See docs/architecture.md for the map.
"""

__version__ = "0.1.0"
