"""Load for the webhook ingest benchmark: signed POSTs, one distinct lead each, at full speed.

`drive` keeps `connections` connections busy for `seconds`, each request a
pre-signed body for a lead not sent before, and reports completed and
acknowledged (200) requests, the rate, and the ack latency percentiles.

It uses `wrk` when it is installed (Debian package `wrk`): a C load generator
whose Lua script cycles through the pre-generated bodies, so it costs the
server little CPU on a 2-core machine. Without it, an aiohttp client in this
process does the same; it is slower and shares the CPU with the server, so
its rates are lower bounds (the result says which tool ran). The aiohttp
client also knows which lead ids were acknowledged and when the last one was;
`paced` sends at a steady rate instead of as fast as it can (the soak).
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

# Pre-formats every request in init(), so the Lua side only picks the next one.
# Past the last body it starts over; `drive` then reports the reuse.
WRK_SCRIPT = r"""
local requests, count, sent = {}, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    local headers = {
      ["Content-Type"] = "application/json",
      ["X-Hub-Signature-256"] = line:sub(1, tab - 1),
    }
    count = count + 1
    requests[count] = wrk.format("POST", "/webhook", headers, line:sub(tab + 1))
  end
end

function request()
  sent = sent % count + 1
  return requests[sent]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"duration_us": %d, "requests": %d, "status": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.duration, summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class SignedPost:
    lead_id: str
    body: bytes
    signature: str


@dataclass
class LoadResult:
    tool: str
    seconds: float
    completed: int
    acked: int
    p50_ms: float
    p99_ms: float
    errors: int = 0
    reused: int = 0  # requests that repeated a lead id (more requests than bodies)
    acked_ids: list[str] | None = field(default=None, repr=False)  # known with the aiohttp client
    last_ack_at: float | None = None  # time.perf_counter() of the last 200 (aiohttp client)

    @property
    def rate(self) -> float:
        """Acknowledged notifications per second."""
        return self.acked / self.seconds


def drive(url: str, posts: Sequence[SignedPost], connections: int, seconds: float) -> LoadResult:
    """Posts to `url` (…/webhook) from `connections` connections for `seconds`."""
    if shutil.which("wrk"):
        return with_wrk(url, posts, connections, seconds)
    return asyncio.run(with_aiohttp(url, posts, connections, seconds))


def with_wrk(url: str, posts: Sequence[SignedPost], connections: int, seconds: float) -> LoadResult:
    with tempfile.TemporaryDirectory() as folder:
        bodies = Path(folder) / "bodies.tsv"
        with bodies.open("wb") as out:
            for post in posts:
                out.write(post.signature.encode() + b"\t" + post.body + b"\n")
        script = Path(folder) / "webhook.lua"
        script.write_text(WRK_SCRIPT)
        # One wrk thread drives 32 connections at these rates and leaves the CPU to the server.
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s"]
        command += ["-s", str(script), url, "--", str(bodies)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]}{done.stderr}")
    raw = json.loads(line.removeprefix("WRK_RESULT "))
    acked = raw["requests"] - raw["status"]  # the receivers answer 200 or an error status
    return LoadResult(
        tool="wrk",
        seconds=raw["duration_us"] / 1e6,
        completed=raw["requests"],
        acked=acked,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=raw["status"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        reused=max(0, raw["requests"] - len(posts)),
    )


@dataclass
class Tally:
    """What the aiohttp client saw: each answer's latency, the acknowledged ids, errors."""

    latencies: list[float] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    errors: int = 0
    last_ack_at: float | None = None

    async def post(self, session: aiohttp.ClientSession, url: str, post: SignedPost) -> None:
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": post.signature}
        sent = time.perf_counter()
        async with session.post(url, data=post.body, headers=headers) as reply:
            await reply.read()
        answered = time.perf_counter()
        self.latencies.append(answered - sent)
        if reply.status == 200:
            self.acked.append(post.lead_id)
            self.last_ack_at = answered
        else:
            self.errors += 1

    def result(self, tool: str, seconds: float, bodies: int) -> LoadResult:
        return LoadResult(
            tool=tool,
            seconds=seconds,
            completed=len(self.latencies),
            acked=len(self.acked),
            p50_ms=percentile(self.latencies, 50) * 1000,
            p99_ms=percentile(self.latencies, 99) * 1000,
            errors=self.errors,
            reused=max(0, len(self.latencies) - bodies),
            acked_ids=self.acked,
            last_ack_at=self.last_ack_at,
        )


def one_connection() -> aiohttp.ClientSession:
    # One session per connection: keep-alive pins it to its server, as a TCP balancer does.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))


async def with_aiohttp(
    urls: str | Sequence[str],
    posts: Sequence[SignedPost],
    connections: int,
    seconds: float,
    tool: str = "aiohttp client (wrk not installed)",
) -> LoadResult:
    """Keeps `connections` connections busy for `seconds`, connection i on urls[i mod n]."""
    targets = [urls] if isinstance(urls, str) else list(urls)
    pending = iter(posts)
    tally = Tally()
    deadline = time.perf_counter() + seconds

    async def connection(url: str) -> None:
        async with one_connection() as session:
            for post in pending:
                await tally.post(session, url, post)
                if time.perf_counter() >= deadline:
                    return

    started = time.perf_counter()
    await asyncio.gather(*(connection(targets[i % len(targets)]) for i in range(connections)))
    return tally.result(tool, time.perf_counter() - started, len(posts))


async def paced(url: str, posts: Sequence[SignedPost], rate: float, connections: int = 8):
    """Sends posts[n] at n / `rate` seconds from the start, over up to `connections`
    connections (a slow answer does not delay the next send); a connection error counts
    as an error, not an acknowledgement, and the load goes on."""
    pending = iter(enumerate(posts))
    tally = Tally()
    started = time.perf_counter()

    async def connection() -> None:
        async with one_connection() as session:
            for number, post in pending:
                pause = started + number / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)  # pacing the load, not waiting for a result
                try:
                    await tally.post(session, url, post)
                except aiohttp.ClientError:
                    tally.errors += 1

    await asyncio.gather(*(connection() for _ in range(connections)))
    return tally.result(f"aiohttp client, {rate:g}/s", time.perf_counter() - started, len(posts))


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (what wrk reports); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
