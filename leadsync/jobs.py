"""Background jobs: a blocking step run in a worker thread, again and again.

Each stage of the pipeline (fetch, score, deliver per destination) is a
`Job`: it runs its step in a thread, runs again at once while the step finds
work, and otherwise sleeps until it is woken (new work committed upstream) or
its idle interval passes. While webhooks flood in (`make_way`), a job rests
after each round for a multiple of the time the round took, so that
acknowledging them keeps most of the CPU and the pipeline catches up after. A
step that raises is logged and retried after a pause; a job never dies of one
bad round, and `alive` tells /healthz if it did.
`ScheduledRuns` does the same for the scheduler's coroutines: a stop waits for
the poll or re-score in hand instead of letting APScheduler cancel it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import structlog

log = structlog.get_logger(__name__)

# After a step crashed, wait this long before the next round (a crash loop must not spin).
CRASH_PAUSE_SECONDS = 5.0
# While making way, a round of N seconds is followed by a rest of N * this (the pipeline takes
# at most a tenth of what it could), and never more than MAX_REST_SECONDS. A quarter (3.0)
# left the HTTP process 5-8% fewer webhooks a second than a tenth did (on 2 cores, alternating
# rounds: mean 9,918 against 10,476/s, best 10,309 against 11,149/s).
REST_PER_ROUND = 9.0
MAX_REST_SECONDS = 2.0


class Job:
    def __init__(
        self,
        name: str,
        step: Callable[[], int],
        idle_seconds: float = 1.0,
        linger_seconds: float = 0.0,
    ):
        self.name = name
        self._step = step
        self._idle = idle_seconds
        # After a wake-up, wait this long for more work to arrive: under load, one round of 200
        # leads costs far less than 200 rounds of one, and a few milliseconds cost no lead.
        self._linger = linger_seconds
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._make_way_until = float("-inf")  # time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=f"job:{self.name}")

    def wake(self) -> None:
        """Asks for a round soon; safe to call from any thread."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._wake.set)

    def make_way(self, seconds: float) -> None:
        """Rest after each round for the next `seconds`; safe to call from any thread."""
        if seconds > 0 and not self.making_way:  # one line per flood, not per wake-up
            log.info("job.making_way", job=self.name, reason="webhooks queue for their commits")
        self._make_way_until = time.monotonic() + seconds

    @property
    def making_way(self) -> bool:
        return time.monotonic() < self._make_way_until

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, timeout: float) -> None:
        """Lets the round in hand finish (up to `timeout` seconds), then stops."""
        self._stopped.set()
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                log.warning("job.stop_timed_out", job=self.name)
                self._task.cancel()

    async def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            began = time.monotonic()
            try:
                worked = await asyncio.to_thread(self._step)
            except Exception:  # noqa: BLE001 - log and go on; the work stays in the store
                log.exception("job.step_failed", job=self.name)
                await self._sleep(CRASH_PAUSE_SECONDS)
                continue
            if worked and self.making_way:
                rest = min((time.monotonic() - began) * REST_PER_ROUND, MAX_REST_SECONDS)
                with contextlib.suppress(TimeoutError):  # rested: the next round
                    await asyncio.wait_for(self._stopped.wait(), timeout=rest)
            if not worked:
                woken = await self._sleep(self._idle)
                if woken and self._linger and not self._stopped.is_set():
                    await asyncio.sleep(self._linger)

    async def _sleep(self, seconds: float) -> bool:
        """Waits for a wake-up or `seconds`; True when woken."""
        # A timeout is not an error: the idle interval passed, time for a round anyway.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
            return True
        return False


class ScheduledRuns:
    """The scheduler's coroutine runs in hand, so that a stop lets them finish first.

    APScheduler's shutdown cancels a coroutine job still running and logs that as the
    job's error, a `CancelledError` traceback on every routine stop. One still running
    after the grace period is cancelled all the same; that is the stop we asked for, so
    it is a warning, not an error.
    """

    def __init__(self) -> None:
        self.stopping = False
        self._in_hand: set[asyncio.Task[object]] = set()

    @contextlib.contextmanager
    def run(self, name: str) -> Iterator[None]:
        """Wraps the body of a scheduled coroutine."""
        task = asyncio.current_task()
        assert task is not None
        self._in_hand.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            log.warning("scheduled.abandoned_at_stop", job=name)
        finally:
            self._in_hand.discard(task)

    async def finish(self, timeout: float) -> None:
        """Stops taking note of new runs' cancellation as errors; waits for those in hand."""
        self.stopping = True
        if self._in_hand:
            await asyncio.wait(set(self._in_hand), timeout=timeout)
