"""Numbers with a reason, in one place; each says where it comes from."""

from datetime import timedelta

# Graph API batch requests take at most 50 requests per call (Graph API "Batch Requests").
GRAPH_BATCH_LIMIT = 50

# Page size asked of /{form}/leads; Graph's default is 25, which is where naive scripts stop.
GRAPH_PAGE_SIZE = 100

# Leads can become visible on /{form}/leads a little after their created_time, so each poll
# re-reads this much before the checkpoint; duplicates are dropped by lead id.
POLL_OVERLAP = timedelta(minutes=10)

# Graph usage headers (X-App-Usage, X-Business-Use-Case-Usage) are percentages; above this the
# poller slows down before Facebook throttles us.
GRAPH_USAGE_SLOWDOWN_PERCENT = 80

# Facebook's rate-limit errors come with no Retry-After; their docs say usage recovers within
# the hour, most throttles clear in minutes. We wait this long before the first retry.
GRAPH_THROTTLE_WAIT = timedelta(seconds=60)

# Meta sends webhook bodies of a few kilobytes; anything above this is not Meta.
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024

# Sheets API default quota: 60 write requests per minute per user (Sheets API "Usage limits").
SHEETS_WRITES_PER_MINUTE = 60

# Leads handed to a connector in one deliver() call.
DELIVERY_BATCH_SIZE = 500

# How long a claimed outbox item stays ours before another worker may take it over: how long
# a dead replica's batch waits. A longer round is safe: the daemon renews its destination
# lease while a round runs, so no other replica claims for that destination meanwhile.
OUTBOX_CLAIM_LEASE = timedelta(seconds=15)

# Default time an outbox item may keep failing before it goes to the dead letter.
DEFAULT_DEAD_LETTER_AFTER = timedelta(hours=24)

# SIGTERM grace: stop, release or finish the batch in hand, commit, exit.
SHUTDOWN_GRACE_SECONDS = 10

# A store that cannot be opened at start is tried again after 1 s, then twice as long each
# time up to 30 s: a PostgreSQL that boots beside us is caught within seconds, and one that is
# down for long costs two attempts (and at most one log line each) a minute.
STORE_RETRY_FIRST_SECONDS = 1.0
STORE_RETRY_MAX_SECONDS = 30.0
