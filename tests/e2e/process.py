"""Starts `leadsync run` as a real subprocess for process-level tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.daemon_harness import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(
    path: Path, graph, store_url: str, port: int, pages: list[str], extra: str = ""
) -> Path:
    path.write_text(
        f"""
[facebook]
app_id = "{graph.app_id}"
app_secret = "{graph.app_secret}"
verify_token = "verify-me"
access_token = "{graph.access_token}"
graph_url = "{graph.url}"
poll_interval = "2s"
{"".join(f'[[facebook.pages]]{chr(10)}id = "{p}"{chr(10)}' for p in pages)}
[server]
host = "127.0.0.1"
port = {port}
events_token = "events-secret"

[store]
url = "{store_url}"

[logging]
format = "json"
{extra}
"""
    )
    return path


class LeadsyncProcess:
    """`leadsync run -c CONFIG` in a subprocess, its output captured to a file."""

    def __init__(self, config: Path, port: int, log_path: Path):
        self.config, self.port, self.log_path = config, port, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LeadsyncProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "leadsync", "run", "-c", str(self.config)]
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_until(self._serving, 30, "leadsync run to listen")
        return self

    def _serving(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"leadsync exited with {self.proc.returncode}: {self.output()[-2000:]}"
            )
        try:
            requests.get(f"{self.url}/healthz", timeout=1)
        except requests.ConnectionError:
            return False
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
