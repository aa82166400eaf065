"""Group commit: many concurrent webhook requests share one durable store write.

Each request hands its notifications to `GroupCommitter.commit` and waits.
While one store transaction (with its fsync) is in flight, the requests that
arrive queue up; when it finishes, all of them are written together in the
next transaction. So durability costs one fsync per *group*, not per request,
and a request is answered only after its own notifications are on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from leadsync.models import Notification

log = structlog.get_logger(__name__)


class NotificationSink(Protocol):
    """Where webhooks are made durable: the store, or the HTTP process's journal."""

    def add_notifications(self, notes: Sequence[Notification]) -> int: ...


class GroupCommitter:
    """Batches `store.add_notifications` calls from concurrent coroutines."""

    def __init__(
        self,
        store: NotificationSink,
        on_committed: Callable[[int], None] | None = None,
        *,
        inline: bool = False,
    ):
        self._store = store
        self._on_committed = on_committed
        # A local file only this process writes (the HTTP process's journal) is committed on
        # the event loop itself: no thread handoff per group, and a commit that blocks the
        # loop for its fsync lets the requests meanwhile pile up for the next, bigger group.
        # A database across the network is committed from a thread, so the loop keeps going.
        self._inline = inline
        self._waiting: list[tuple[Sequence[Notification], asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.commits = 0
        self.last_group = 0  # how many requests shared the last commit

    async def commit(self, notes: Sequence[Notification]) -> None:
        """Returns once `notes` are durably stored; raises when the store write failed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((notes, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_while_waiting())
        await future

    async def _flush_while_waiting(self) -> None:
        while self._waiting:
            # One turn of the event loop first: the requests read in the same round (their
            # handlers queued behind this task) join this group instead of paying for the next
            # fsync (measured: 6,260-6,368/s against 5,257-5,847/s with 32 connections).
            await asyncio.sleep(0)
            group, self._waiting = self._waiting, []
            notes = [note for batch, _ in group for note in batch]
            try:
                if self._inline:
                    added = self._store.add_notifications(notes)
                else:
                    added = await asyncio.to_thread(self._store.add_notifications, notes)
            except Exception as exc:  # noqa: BLE001 - every waiter must hear of the failure
                log.error("notifications.commit_failed", count=len(notes), error=str(exc))
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.commits += 1
            self.last_group = len(group)
            for _, future in group:
                if not future.done():
                    future.set_result(added)
            if added and self._on_committed:
                self._on_committed(added)
