"""Starts `leadsync run` as a real subprocess for process-level tests.

`leadsync run` is two processes: the HTTP process it starts as, and the worker
that process starts and supervises (`leadsync worker`). `kill` SIGKILLs both
(the whole daemon, as a crashed machine or an OOM kill of the container would),
`kill_worker` and `kill_http` one of them.

Also writes the TOML such a process reads (`write_config`, plus a Google
Sheets destination block from `sheets_destination_toml`) and runs one-shot
commands such as `leadsync status` against the same config (`run_cli`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from benchmarks.processes import descendants
from benchmarks.processes import free_port as free_port  # the e2e tests take it from here
from tests.daemon_harness import sheets_destination, wait_until


def write_config(
    path: Path,
    graph,
    store_url: str,
    port: int,
    pages: list[str],
    extra: str = "",
    *,
    poll_interval: str = "2s",
    verify_token: str = "verify-me",
    events_token: str = "events-secret",
    server: str = "",
) -> Path:
    """The config of a daemon on the Graph emulator; `access_token` is its current token."""
    path.write_text(
        f"""
[facebook]
app_id = "{graph.app_id}"
app_secret = "{graph.app_secret}"
verify_token = "{verify_token}"
access_token = "{graph.access_token}"
graph_url = "{graph.url}"
poll_interval = "{poll_interval}"
{"".join(f'[[facebook.pages]]{chr(10)}id = "{p}"{chr(10)}' for p in pages)}
[server]
host = "127.0.0.1"
port = {port}
events_token = "{events_token}"
{server}

[store]
url = "{store_url}"

[logging]
format = "json"
{extra}
"""
    )
    return path


def sheets_destination_toml(sheets, key_dir: Path, **keys: object) -> str:
    """A `[[destinations]]` block for a Google Sheets destination on the Sheets emulator.

    The key file and the shared spreadsheet are made as `daemon_harness.sheets_destination`
    makes them; `keys` are its arguments (spreadsheet, name, worksheet, ...).
    """
    dest = sheets_destination(sheets, key_dir, **keys)
    lines = [f"{key} = {json.dumps(value)}" for key, value in dest.items()]
    return "\n[[destinations]]\n" + "\n".join(lines) + "\n"


def run_cli(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`leadsync ARGS -c CONFIG` to completion, output captured (wide, so tables do not wrap)."""
    env = {**os.environ, "COLUMNS": "250", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "leadsync", *args, "-c", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


class LeadsyncProcess:
    """`leadsync run -c CONFIG` in a subprocess, its output captured to a file."""

    def __init__(self, config: Path, port: int, log_path: Path, extra_args: Sequence[str] = ()):
        self.config, self.port, self.log_path = config, port, log_path
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_for_store: bool = True) -> LeadsyncProcess:
        """Starts the daemon; returns once it serves HTTP and (unless told not to) its store."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "leadsync", "run", "-c", str(self.config), *self.extra_args]
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            # A session of its own: `kill` reaches the worker too, and nothing else of ours.
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        wait_until(lambda: self._serving(wait_for_store), 30, "leadsync run to listen")
        return self

    def _serving(self, wait_for_store: bool) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"leadsync exited with {self.proc.returncode}: {self.output()[-2000:]}"
            )
        try:
            reply = requests.get(f"{self.url}/healthz", timeout=1)
        except requests.ConnectionError:
            return False
        # The server answers before the store opens (503, store_unavailable) and before its
        # worker listens (worker_starting), and then serves.
        waiting = ("store_unavailable", "worker_starting", "worker_down")
        return not wait_for_store or not any(reason in reply.text for reason in waiting)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pids(self) -> list[int]:
        """The HTTP process and its children (the worker), while they run."""
        assert self.proc is not None
        return [self.proc.pid, *children(self.proc.pid)]

    @property
    def worker_pid(self) -> int:
        """The worker's pid (waiting while the HTTP process restarts it)."""
        assert self.proc is not None
        wait_until(lambda: children(self.proc.pid), 30, "the worker process")
        return children(self.proc.pid)[0]

    def wait_for_worker(self, replacing: int | None = None, timeout: float = 60) -> int:
        """Waits until a worker other than `replacing` runs and answers; returns its pid.

        `/healthz` says `worker_down` during the supervisor's pause before a restart (1 s,
        doubling while workers keep dying) and `worker_starting` until the new one listens.
        """
        assert self.proc is not None
        proc = self.proc

        def ready() -> int | None:
            fresh = [pid for pid in children(proc.pid) if pid != replacing]
            return fresh[0] if fresh and self._serving(wait_for_store=True) else None

        return wait_until(ready, timeout, "the worker to run and answer")

    def kill(self) -> None:
        """SIGKILL to the HTTP process and its worker at once: the whole daemon dies."""
        assert self.proc is not None
        group = self.proc.pid  # the session's leader: its group id is its pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.proc.wait(timeout=10)
        wait_until(lambda: not group_alive(group), 10, "the worker to die with it")

    def kill_worker(self) -> int:
        """SIGKILL to the worker alone; the HTTP process restarts it. Returns its pid."""
        pid = self.worker_pid
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_http(self) -> None:
        """SIGKILL to the HTTP process alone: its worker sees the pipe close and stops."""
        assert self.proc is not None
        group = self.proc.pid
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        wait_until(lambda: not group_alive(group), 30, "the orphaned worker to stop")

    def reload(self) -> None:
        """SIGHUP: the daemon re-reads its config (a rotated token)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def terminate(self, timeout: float = 15) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ensure_stopped(self) -> None:
        if self.proc is not None and (self.proc.poll() is None or group_alive(self.proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def children(pid: int) -> list[int]:
    """The live processes under `pid` (its worker)."""
    return descendants(pid)[1:]


def group_alive(group: int) -> bool:
    """True while any process of the process group `group` runs (zombies count as gone)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False
