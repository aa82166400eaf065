"""The replicas benchmark's load generator spreads its connections and loses no ack.

No performance number is asserted here (see tests/test_benchmarks.py): two
one-commit baseline processes stand in for replicas, and the round-robin load
must reach both, with every acknowledged lead id in one of their stores.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from benchmarks import processes
from benchmarks.bench_replicas import drive, stored_lead_ids
from benchmarks.webhook_load import SignedPost
from leadsync.emulators.graph import sign

SECRET = "bench-secret"


def posts(count: int) -> list[SignedPost]:
    made = []
    for number in range(count):
        value = {"leadgen_id": str(10**9 + number), "page_id": "111", "form_id": "222"}
        value["created_time"] = 1_790_000_000
        body = {"object": "page", "entry": [{"id": "111", "time": 1, "changes": [
            {"field": "leadgen", "value": value}]}]}  # fmt: skip
        raw = json.dumps(body).encode()
        made.append(SignedPost(value["leadgen_id"], raw, sign(raw, SECRET)))
    return made


@pytest.mark.e2e
def test_round_robin_load_reaches_every_replica_and_each_ack_is_stored(tmp_path):
    servers = [
        processes.baseline(
            "one-commit", processes.free_port(), tmp_path / f"log{n}", SECRET, db=str(db)
        )
        for n, db in enumerate((tmp_path / "a.db", tmp_path / "b.db"))
    ]
    with servers[0], servers[1]:
        urls = [f"{server.url}/webhook" for server in servers]
        result = asyncio.run(drive(urls, posts(2_000), 0.5))
    stored = [stored_lead_ids(f"sqlite:///{tmp_path / name}") for name in ("a.db", "b.db")]
    assert result.acked > 0 and result.errors == 0
    assert all(stored), "both replicas got load"
    assert set(result.acked_ids or ()) <= stored[0] | stored[1]
