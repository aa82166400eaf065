"""The worker process of `leadsync run`: fetch, score, deliver and poll, beside the HTTP process.

`leadsync run` starts it as `python -m leadsync worker` (never a user's
command). It is the whole daemon (`leadsync/daemon.py`) less the public port:
its routes are served on Unix sockets for the HTTP process to pass requests
on, and the webhooks come from that process's inbox, drained into the store
by the fetch job. Its stdin is a pipe from the HTTP process: each byte wakes
the fetch job at once, and end of file means the HTTP process is gone
(killed, say), so the worker stops by itself rather than run on unsupervised.
When both processes want the CPU, acknowledging webhooks comes first and the
pipeline catches up after: the worker runs at a lower CPU priority
(`WORKER_NICENESS`), and while the HTTP process says webhooks queue for their
commits (`WAKE_FLOODED`), the fetch job rests after each round (`Job.make_way`),
so the fetching, scoring and delivering it drives take at most a tenth of
the CPU they would. On 2 cores the scheduler alone did not do it: the worker's
work (and the Graph calls it makes) still took half of what acknowledging had.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from pathlib import Path

import structlog

from leadsync.config import Settings
from leadsync.daemon import Daemon
from leadsync.supervisor import WAKE_FLOODED

log = structlog.get_logger(__name__)

# Added to the worker's nice value: the CPU scheduler then gives it about a tenth of a core's
# share while the HTTP process competes for it, and every idle cycle otherwise.
WORKER_NICENESS = 10
# How long the fetch job makes way after the HTTP process last said webhooks queue (it says so
# at most every 20 ms while they do).
MAKE_WAY_SECONDS = 0.5


async def run_worker(settings: Settings, config_path: Path, sockets: Path) -> None:
    """Runs the pipeline until SIGTERM, or until the HTTP process that started it is gone."""
    os.nice(WORKER_NICENESS)
    daemon = Daemon(settings, config_path=config_path, sockets=sockets)
    stop, parent_gone = asyncio.Event(), threading.Event()
    loop = asyncio.get_running_loop()
    listener = threading.Thread(
        target=_listen_to_parent, args=(daemon, loop, stop, parent_gone), name="parent-pipe",
        daemon=True,
    )  # fmt: skip
    listener.start()
    await daemon.run_until_signalled(stop)
    if parent_gone.is_set():  # it died without removing its sockets' folder: ours to remove
        shutil.rmtree(sockets, ignore_errors=True)


def _listen_to_parent(
    daemon: Daemon, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, gone: threading.Event
) -> None:
    """Wakes the fetch job for each write on stdin; stops the worker at end of file."""
    while True:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            log.warning("worker.parent_gone", fix="the HTTP process exited; run leadsync again")
            gone.set()
            loop.call_soon_threadsafe(stop.set)
            return
        if WAKE_FLOODED in data:
            daemon.fetch_job.make_way(MAKE_WAY_SECONDS)
        daemon.fetch_job.wake()
