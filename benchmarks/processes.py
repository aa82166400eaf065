"""The processes benchmarks measure: `leadsync run` and the baselines, each its own process.

A server under measurement runs in its own interpreter, as in production, so
the load generator and the emulators never share its GIL. `ServerProcess`
starts one, waits until it accepts connections, reads its resident memory
from /proc, and stops it with SIGTERM. `leadsync run` may start children (the
worker of issue 16, `python -m leadsync worker ...`), so a daemon is measured
as a process tree: `read_tree` lists the started process and its descendants
(from /proc/PID/task/*/children) and reads each one's RSS, PSS, open
descriptors and CPU seconds. `leadsync_config` writes the TOML a benchmark's
daemon runs with, pointed at the emulators.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leadsync.ingest.poller import FIRST_POLL_LOOKBACK

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class ServerProcess:
    """One server subprocess listening on 127.0.0.1:`port`, its output kept in `log_path`."""

    def __init__(self, command: list[str], port: int, log_path: Path, ready_line: str = ""):
        self.command, self.port, self.log_path = command, port, log_path
        # leadsync listens before its store opens (webhooks get 503 until then): wait for
        # the line that says the pipeline runs, not only for the port.
        self.ready_line = ready_line
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not accepts(self.port) or self.ready_line not in self.output():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command[2:4]} exited: {self.output()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.command[2:4]} did not listen in {START_TIMEOUT}s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def rss_mb(self) -> float:
        """Resident memory now (VmRSS), in MB (10^6 bytes)."""
        assert self.proc is not None
        return rss_mb(self.proc.pid)

    def tree(self) -> list[ProcessReading]:
        """This server and every process it started, each read once now."""
        assert self.proc is not None
        return read_tree(self.proc.pid)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6  # the kernel's "kB" are KiB
    raise RuntimeError(f"no {field} for process {pid}")


# Roles in a leadsync process tree: the process `leadsync run` starts as answers HTTP; the
# worker (issue 16) is the child whose command line is `python -m leadsync worker ...`.
HTTP, WORKER, OTHER = "http", "worker", "other"
_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of utime and stime in /proc/PID/stat


@dataclass(frozen=True)
class ProcessReading:
    """One process of a tree, read from /proc at one moment."""

    pid: int
    role: str  # HTTP (the root), WORKER, or OTHER (any other descendant)
    rss_mb: float  # VmRSS: pages shared with other processes count in each of them
    pss_mb: float  # proportional set size: a page shared by n processes counts 1/n in each
    fds: int  # open descriptors
    cpu_seconds: float  # user + system since the process started


def descendants(pid: int) -> list[int]:
    """`pid` and every process under it, parents first (children of every thread)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue += [int(child) for child in children.read_text().split()]
            except OSError:  # the thread or process ended while we looked
                continue
    return found


def role(pid: int, root: int) -> str:
    if pid == root:
        return HTTP
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return WORKER if b"worker" in arguments else OTHER


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no Pss for process {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime from /proc/PID/stat (fields 14 and 15, counted after the command name)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def read_process(pid: int, root: int) -> ProcessReading | None:
    """The process's figures now; None when it has exited meanwhile."""
    try:
        return ProcessReading(
            pid=pid,
            role=role(pid, root),
            rss_mb=rss_mb(pid),
            pss_mb=pss_mb(pid),
            fds=len(os.listdir(f"/proc/{pid}/fd")),
            cpu_seconds=cpu_seconds(pid),
        )
    except (FileNotFoundError, ProcessLookupError, RuntimeError):
        return None  # a zombie has no VmRSS, a reaped process no /proc entry


def read_tree(pid: int) -> list[ProcessReading]:
    """Every live process of the tree rooted at `pid`, read once."""
    readings = (read_process(each, pid) for each in descendants(pid))
    return [reading for reading in readings if reading is not None]


def total(readings: Iterable[ProcessReading], figure: str, role: str | None = None) -> float:
    """The sum of one figure (`rss_mb`, `fds`, ...) over the tree, or over one role of it."""
    return sum(getattr(r, figure) for r in readings if role is None or r.role == role)


def leadsync_run(config: Path, port: int, log_path: Path) -> ServerProcess:
    command = [sys.executable, "-m", "leadsync", "run", "-c", str(config)]
    return ServerProcess(command, port, log_path, ready_line='"daemon.started"')


def baseline(kind: str, port: int, log_path: Path, secret: str, **options: str) -> ServerProcess:
    command = [sys.executable, "-m", "benchmarks.baselines", kind, "--port", str(port)]
    command += ["--secret", secret]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", value]
    return ServerProcess(command, port, log_path)


# The page the benchmarks' forms are on. It must be configured: leadsync acknowledges and
# drops webhooks of pages it does not serve.
BENCH_PAGE = "111"


def before_first_poll() -> datetime:
    """A creation time for benchmark leads older than the first poll's one-day look-back:
    the poll a daemon runs at start reads none of them, so each lead counted came by webhook."""
    return datetime.now(UTC) - FIRST_POLL_LOOKBACK - timedelta(hours=1)


def leadsync_config(
    path: Path,
    graph: Any,
    store_url: str,
    port: int,
    *,
    pages: Sequence[str] = (BENCH_PAGE,),
    sheet: dict[str, str] | None = None,
) -> Path:
    """leadsync.toml for a daemon on the Graph emulator `graph`, optionally with one sheet."""
    quote = json.dumps  # a TOML basic string is a JSON string for these values
    lines = [
        "[facebook]",
        f"app_id = {quote(graph.app_id)}",
        f"app_secret = {quote(graph.app_secret)}",
        'verify_token = "verify-me"',
        f"access_token = {quote(graph.access_token)}",
        f"graph_url = {quote(graph.url)}",
        'poll_interval = "5m"',
        *[f"[[facebook.pages]]\nid = {quote(page)}" for page in pages],
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        'events_token = "events-secret"',
        "[store]",
        f"url = {quote(store_url)}",
        "[logging]",
        'format = "json"',
    ]
    if sheet is not None:
        lines += ["[[destinations]]", *[f"{key} = {quote(value)}" for key, value in sheet.items()]]
    path.write_text("\n".join(lines) + "\n")
    return path


def sheets_destination(sheets: Any, folder: Path, spreadsheet: str) -> dict[str, str]:
    """A google_sheets destination on the Sheets emulator, its key file written in `folder`."""
    key = sheets.service_account(f"leadsync-{spreadsheet}@bench-project.iam.gserviceaccount.com")
    key_file = folder / f"key-{spreadsheet}.json"
    key_file.write_text(json.dumps(key))
    sheets.create_spreadsheet(spreadsheet, "Sales", ["Leads"], shared_with=[key["client_email"]])
    return {
        "name": "sales-sheet",
        "type": "google_sheets",
        "spreadsheet": spreadsheet,
        "worksheet": "Leads",
        "credentials": str(key_file),
        "api_url": sheets.url,
    }
