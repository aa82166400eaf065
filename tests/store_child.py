"""A second process on a SQLite store, for tests/test_store_sqlite.py.

`python tests/store_child.py write URL BATCHES` adds batches of 32 notifications
and prints each batch's lead ids on one line ("acked 0-0 0-1 ...") only after
`add_notifications` returned, so every printed id is one the store acknowledged; the test kills it
with SIGKILL mid-flight. `read URL` prints what it sees as JSON; `add URL ID`
adds one notification.
"""

from __future__ import annotations

import json
import sys

from leadsync.models import Notification
from leadsync.store import open_store


def write(url: str, batches: int) -> None:
    store = open_store(url)
    store.migrate()
    for number in range(batches):  # bounded, in case the test that should kill us died
        ids = [f"{number}-{i}" for i in range(32)]
        store.add_notifications([Notification(lead_id, "p1") for lead_id in ids])
        print("acked", *ids, flush=True)


def read(url: str) -> None:
    store = open_store(url)
    pending = [note.lead_id for note in store.pending_notifications(1000)]
    print(json.dumps({"leads": store.count_leads(), "pending": pending}), flush=True)
    store.close()


def add(url: str, lead_id: str) -> None:
    store = open_store(url)
    print(store.add_notifications([Notification(lead_id, "p1")]), flush=True)
    store.close()


if __name__ == "__main__":
    command, url, *rest = sys.argv[1:]
    if command == "write":
        write(url, int(rest[0]))
    elif command == "read":
        read(url)
    else:
        add(url, rest[0])
