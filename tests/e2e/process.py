"""Starts `leadsync run` as a real subprocess for process-level tests.

Also writes the TOML such a process reads (`write_config`, plus a Google
Sheets destination block from `sheets_destination_toml`) and runs one-shot
commands such as `leadsync status` against the same config (`run_cli`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from tests.daemon_harness import sheets_destination, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
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
        # The server answers before the store opens (503, store_unavailable) and then serves.
        return not wait_for_store or "store_unavailable" not in reply.text

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

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
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
