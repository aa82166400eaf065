"""Holds named leases in the store while the work they guard runs.

Replicas sharing one database decide who polls a page (`poll:{page}`) and who
writes to a destination (`deliver:{destination}`) with store leases that
expire, so a dead replica's work passes to a live one after one lease time.
A lease is taken before a round of work and renewed in the background while
the round runs, every third of its time: a round may last longer than the
lease (a Sheets quota wait, a slow Graph page) without another replica taking
over in the middle, and the lease time can stay short, so takeover is quick.
A lease is kept between rounds (the next round renews it) and given back on a
graceful stop. Taking over, losing and failing to renew are logged.

An owner is "host:pid:token". A daemon restarted after a crash would otherwise
wait out the leases and claims of the process it replaces; at start it gives
back those of owners on its own host whose process is gone (or whose pid is its
own: one pid is never two live processes, as with a container's pid 1). This
relies on replicas having distinct host names, as containers and pods do.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import structlog

from leadsync.abc import Store
from leadsync.errors import LeadsyncError

log = structlog.get_logger(__name__)


def new_owner() -> str:
    """A name for this process as an owner of leases and claims: host, pid and a token."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_predecessor(owner: str, me: str) -> bool:
    """True when `owner` was a process on this host that is gone."""
    host, _, rest = owner.partition(":")
    my_host, _, my_rest = me.partition(":")
    pid, my_pid = rest.partition(":")[0], my_rest.partition(":")[0]
    if owner == me or host != my_host or not pid.isdigit():
        return False
    if pid == my_pid:
        return True  # our pid under another token: the process we replace (a container's pid 1)
    try:
        os.kill(int(pid), 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


class LeaseKeeper:
    """Takes and renews the leases of one owner (one running daemon)."""

    def __init__(self, store: Store, owner: str):
        self._store = store
        self.owner = owner
        self._held: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, name: str, ttl: timedelta) -> Iterator[bool]:
        """Yields whether the lease is ours; while the block runs, keeps renewing it."""
        if not self._acquire(name, ttl):
            yield False
            return
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(name, ttl, stop), name=f"lease:{name}", daemon=True
        )
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join()

    def release_dead_predecessors(self) -> list[str]:
        """Gives back the leases and claims of dead processes of this host; returns them."""
        dead = sorted(o for o in self._store.owners() if is_dead_predecessor(o, self.owner))
        for owner in dead:
            self._store.release_owner(owner)
            log.info("lease.predecessor_released", owner=owner)
        return dead

    def release(self, name: str) -> None:
        """Gives the lease back at once (a graceful stop), so another replica need not wait."""
        with self._lock:
            self._held.discard(name)
        self._store.release_lease(name, self.owner)

    def _acquire(self, name: str, ttl: timedelta) -> bool:
        ours = self._store.acquire_lease(name, self.owner, ttl)
        with self._lock:
            was_ours = name in self._held
            if ours:
                self._held.add(name)
            else:
                self._held.discard(name)
        if ours and not was_ours:
            log.info("lease.taken", lease=name, owner=self.owner)
        elif was_ours and not ours:
            log.warning("lease.lost", lease=name, owner=self.owner)
        return ours

    def _renew(self, name: str, ttl: timedelta, stop: threading.Event) -> None:
        while not stop.wait(ttl.total_seconds() / 3):
            try:
                if not self._acquire(name, ttl):
                    return  # another replica holds it now; the round in hand still finishes
            except LeadsyncError as exc:
                # The store may be back before the lease runs out; keep trying until then.
                log.warning("lease.renew_failed", lease=name, error=str(exc))
