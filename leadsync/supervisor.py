"""Starts the worker process of `leadsync run`, wakes it, restarts it when it dies.

The HTTP process runs `python -m leadsync worker` as its child, with a pipe
as the worker's stdin. The pipe does two jobs: a byte written to it says
"notifications were committed, fetch now" (the worker's timer would find
them anyway, a few seconds later), and its end of file says "the HTTP
process is gone", on which the worker stops by itself, so no orphan keeps
running after a SIGKILL of its parent. A worker that exits while we are not
stopping is restarted after a pause that doubles from 1 s to 30 s while it
keeps dying and starts over once a worker has run for a minute; `restarts`,
`alive` and the last exit code are read by `/healthz` and `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 30.0
# A worker that ran this long was healthy: the next death starts the pauses over.
HEALTHY_AFTER_SECONDS = 60.0
# Under a webhook flood the HTTP process commits hundreds of times a second; the worker's fetch
# job lingers 50 ms (daemon.JOB_LINGER_SECONDS) once woken, so one wake-up per 20 ms loses none.
WAKE_EVERY_SECONDS = 0.02
# The bytes of the worker's stdin: new notifications are committed; the same, while webhooks
# queue for their commits (the worker then makes way for them, see `jobs.Job.make_way`).
WAKE, WAKE_FLOODED = b"\x01", b"\x02"
# Tells a worker how often one was restarted before it, for its status page.
RESTARTS_ENV = "LEADSYNC_WORKER_RESTARTS"


@dataclass
class WorkerState:
    """What the HTTP process knows of its worker, for /healthz, /metrics and the status page."""

    alive: bool = False
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None  # the return code (negative: killed by that signal)


class WorkerSupervisor:
    """One worker process: started, woken, restarted, stopped."""

    def __init__(self, config_path: Path, sockets: Path, extra_args: list[str] | None = None):
        self._command = [
            sys.executable, "-m", "leadsync", "worker", "-c", str(config_path),
            "--sockets", str(sockets), *(extra_args or []),
        ]  # fmt: skip
        self.state = WorkerState()
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._woken_at = float("-inf")

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.create_task(self._watch(), name="worker-supervisor")

    def wake(self, *, flooded: bool = False) -> None:
        """Tells the worker new notifications are committed (from the event loop's thread), and
        whether webhooks are queueing for their commits.

        At most one wake-up per WAKE_EVERY_SECONDS: a woken fetch job waits longer than that
        for more work before its round, so the commits in between are in that round anyway.
        """
        now = time.monotonic()
        if now - self._woken_at < WAKE_EVERY_SECONDS:
            return
        self._woken_at = now
        process = self._process
        if process is None or process.stdin is None or process.stdin.is_closing():
            return
        if process.stdin.transport.get_write_buffer_size():  # a wake-up is on its way already
            return
        with contextlib.suppress(ConnectionError, RuntimeError):  # dying: it restarts anyway
            # Buffered by the transport: never blocks the loop.
            process.stdin.write(WAKE_FLOODED if flooded else WAKE)

    async def stop(self, timeout: float) -> None:
        """SIGTERM to the worker, which stops within its grace period; SIGKILL after `timeout`."""
        self._stopping.set()
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                log.error("worker.stop_timed_out", pid=process.pid, timeout_s=timeout)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._task is not None:
            await self._task

    def reload(self) -> None:
        """Passes SIGHUP on: the worker re-reads the config too."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGHUP)

    async def _spawn(self) -> None:
        env = {**os.environ, RESTARTS_ENV: str(self.state.restarts)}
        self._process = await asyncio.create_subprocess_exec(
            *self._command, stdin=asyncio.subprocess.PIPE, env=env
        )
        self.state.alive, self.state.pid = True, self._process.pid
        log.info("worker.started", pid=self._process.pid, restarts=self.state.restarts)

    async def _watch(self) -> None:
        pause = FIRST_PAUSE_SECONDS
        while True:
            assert self._process is not None
            began = time.monotonic()
            code = await self._process.wait()
            self.state.alive, self.state.last_exit = False, code
            if self._stopping.is_set():
                log.info("worker.stopped", pid=self._process.pid, code=code)
                return
            if time.monotonic() - began >= HEALTHY_AFTER_SECONDS:
                pause = FIRST_PAUSE_SECONDS
            log.error("worker.died", pid=self._process.pid, code=code, restart_in_s=pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            if self._stopping.is_set():
                return
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
            self.state.restarts += 1
            await self._spawn()
