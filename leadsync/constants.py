"""Numbers with a reason, in one place; each says where it comes from."""

from datetime import UTC, datetime, timedelta

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

# The HTTP port faces the internet. Meta sends a webhook as one small request at once, so a
# client that has not sent its whole request headers this long after connecting (or after
# its previous response: this is also the keep-alive idle time) is slow on purpose, and is
# closed. A reverse proxy in front should keep idle upstream connections for less than
# this (deploy/Caddyfile: 10s), or it may send a request on a connection we are closing.
HTTP_HEADER_TIMEOUT = timedelta(seconds=15)

# A body (at most WEBHOOK_MAX_BODY_BYTES) that has not fully arrived this long after its
# headers gets 408 and the connection is closed: even a slow mobile link sends 1 MiB in 15 s.
HTTP_BODY_TIMEOUT = timedelta(seconds=15)

# After answering a request whose body we did not read (a 408 for a crawling body, a 405),
# aiohttp drains the rest so the client can read the answer; by default for 10 s, which a
# client trickling bytes turns into 10 s more. Enough for an honest client to see it.
HTTP_LINGER = timedelta(seconds=2)

# At shutdown, requests in hand get this long before their connections are closed (aiohttp
# waits 60 s by default, past our SIGTERM grace). Webhooks are already refused with 503 by
# then and a commit takes milliseconds; a request cut off is retried by its sender.
HTTP_SHUTDOWN_TIMEOUT = timedelta(seconds=3)

# Open connections at once; past this a new one gets 503 (Meta retries) and is closed.
# Well under the usual 1024 file descriptors, which the store and the destinations need
# too, and far above real traffic: Meta opens a few connections at a time.
HTTP_MAX_CONNECTIONS = 512

# Graph ids are decimal 64-bit integers (at most 20 digits); a little room, and no further:
# a 5,000-digit "id" is not Meta's.
GRAPH_ID_MAX_DIGITS = 32

# Lead Ads launched in 2015: a lead created earlier is not a lead but a bad timestamp.
LEAD_ADS_LAUNCH = datetime(2015, 1, 1, tzinfo=UTC)

# How far ahead of our clock a webhook's created_time or an event's time may be, and how far
# before its lead's created_time an event may be: NTP keeps clocks within seconds; minutes
# allow for a badly kept clock, not for a date in the future.
CLOCK_SKEW = timedelta(minutes=5)

# Sheets API default quota: 60 write requests per minute per user (Sheets API "Usage limits").
SHEETS_WRITES_PER_MINUTE = 60

# Leads handed to a connector in one deliver() call.
DELIVERY_BATCH_SIZE = 500

# How long a claimed outbox item stays ours before another worker may take it over: how long
# a dead replica's batch waits. A longer round is safe: the daemon renews its destination
# lease while a round runs, so no other replica claims for that destination meanwhile.
OUTBOX_CLAIM_LEASE = timedelta(seconds=15)

# How long a fetch round's claim keeps other replicas off its notifications (a round takes up
# to 200: four Graph batch calls). A round takes a second or two; this also covers one whose
# call waits out the Graph client's 30 s timeout. A round that outlasts its claim costs only a
# second Graph read of its leads (the store keeps each lead once); the notifications of a
# replica that died mid-round wait this long (a restart on the same host takes them back at
# once, as it does outbox claims). A minute of delay after a crash is small next to speed to
# lead's minutes, and far longer than a healthy round, so replicas do not fetch twice.
NOTIFICATION_CLAIM_LEASE = timedelta(seconds=60)

# Default time an outbox item may keep failing before it goes to the dead letter.
DEFAULT_DEAD_LETTER_AFTER = timedelta(hours=24)

# SIGTERM grace: stop, release or finish the batch in hand, commit, exit.
SHUTDOWN_GRACE_SECONDS = 10

# A store that cannot be opened at start is tried again after 1 s, then twice as long each
# time up to 30 s: a PostgreSQL that boots beside us is caught within seconds, and one that is
# down for long costs two attempts (and at most one log line each) a minute.
STORE_RETRY_FIRST_SECONDS = 1.0
STORE_RETRY_MAX_SECONDS = 30.0
