"""The benchmark suite keeps working: its one command, its verdicts, its load and loss checks.

No performance number is asserted here; performance is measured by
`python -m benchmarks.run`, not by timed tests. These tests check that the
suite runs, judges targets correctly, counts lost notifications correctly,
reads a process tree with a worker child, and computes CPU spans and soak
growth as documented (the soak itself takes a minute even with `--quick`).
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import processes, report
from benchmarks.baselines import signed
from benchmarks.bench_ingest import missing, stored_ids
from benchmarks.bench_soak import max_over_min, trend
from benchmarks.cpu_cost import CpuMeter, store_counts, wait_fetched
from benchmarks.run import selected
from benchmarks.webhook_load import LoadResult, SignedPost, percentile, with_aiohttp, with_wrk
from leadsync.emulators.graph import sign
from leadsync.models import Notification, utcnow
from tests.daemon_harness import wait_until

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"


@pytest.mark.parametrize(
    ("row", "verdict"),
    [
        ({"leadsync": 50, "target": ">= 40"}, report.MET),
        ({"leadsync": 39.9, "target": ">= 40"}, report.MISSED),
        ({"leadsync": 59.9, "target": "< 60"}, report.MET),
        ({"leadsync": 0, "target": "0"}, report.MET),
        ({"leadsync": 2, "target": "0"}, report.MISSED),
        ({"leadsync": 120_000, "target": ">= 100,000 leads/s"}, report.MET),
        ({"leadsync": 30, "baseline": 10, "target": ">= 5x baseline"}, report.MISSED),
        ({"leadsync": 60, "baseline": 10, "target": ">= 5x baseline"}, report.MET),
        ({"leadsync": 60, "baseline": None, "target": ">= 5x baseline"}, report.UNJUDGED),
        ({"leadsync": 1, "target": "as fast as it gets"}, report.UNJUDGED),
        ({"leadsync": 1, "target": ""}, report.UNJUDGED),
        ({"leadsync": 800, "baseline": 1000, "min_ratio": 0.7, "target": "x"}, report.MET),
        ({"leadsync": 600, "baseline": 1000, "min_ratio": 0.7, "target": "x"}, report.MISSED),
        ({"leadsync": 25.0, "below": 25.0, "target": "< 25 ms"}, report.MISSED),
        ({"leadsync": 25.0, "max": 25.0, "target": ">= 99"}, report.MET),  # numbers win over text
        ({"leadsync": 3, "check": lambda row: row["leadsync"] > 2, "min": 9}, report.MET),
        ({"leadsync": None, "error": True, "target": "0"}, report.FAILED),
    ],
)
def test_verdict_from_numbers_check_or_target_text(row, verdict):
    assert report.judge(row) == verdict


def test_summary_counts_each_kind_of_verdict():
    rows = [{"verdict": v} for v in (report.MET, report.MET, report.MISSED, report.UNJUDGED)]
    assert report.summary(rows) == "2 of 3 targets met, 1 NOT met, 1 without a verdict"


def test_json_rows_drop_callables_and_nan_and_carry_the_ratio():
    row = {"leadsync": 10, "baseline": 4, "check": lambda r: True, "p99": math.nan}
    assert report.serializable(row) == {"leadsync": 10, "baseline": 4, "p99": None, "ratio": 2.5}


def test_only_accepts_short_names_module_names_and_lists():
    assert selected(["bench_idle", "scoring,idle"]) == ["idle", "scoring"]
    with pytest.raises(SystemExit, match="no benchmark named nope"):
        selected(["nope"])


def test_percentile_is_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert math.isnan(percentile([], 99))


def test_lost_notifications_are_counted_by_id_or_by_acknowledgements():
    by_id = LoadResult("aiohttp", 1.0, 3, 3, 1.0, 2.0, acked_ids=["a", "b", "c"])
    assert missing([None, by_id], {"a", "c", "x"}) == 1
    counted = LoadResult("wrk", 1.0, 10, 9, 1.0, 2.0)
    assert missing([counted, counted], set(map(str, range(17)))) == 1
    assert missing([counted], set(map(str, range(12)))) == 0


def test_baseline_signature_check_is_metas():
    body = b'{"object":"page","entry":[]}'
    assert signed(body, sign(body, SECRET), SECRET.encode())
    assert not signed(body + b" ", sign(body, SECRET), SECRET.encode())
    assert not signed(body, None, SECRET.encode())


def posts(count: int) -> list[SignedPost]:
    made = []
    for number in range(count):
        change = {"leadgen_id": f"L{number}", "page_id": "111", "form_id": "222"}
        change["created_time"] = 1_790_000_000
        body = {"object": "page", "entry": [{"id": "111", "time": 0, "changes": []}]}
        body["entry"][0]["changes"].append({"field": "leadgen", "value": change})
        raw = json.dumps(body).encode()
        made.append(SignedPost(f"L{number}", raw, sign(raw, SECRET)))
    return made


@pytest.mark.e2e
def test_python_load_client_acks_are_all_in_the_one_commit_store(tmp_path):
    """The fallback client drives a baseline process, and every id it saw acked is stored."""
    port, db = processes.free_port(), tmp_path / "one.db"
    with processes.baseline("one-commit", port, tmp_path / "log", SECRET, db=str(db)) as server:
        result = asyncio.run(with_aiohttp(server.url + "/webhook", posts(400), 8, 0.5))
    assert result.acked > 0 and result.errors == 0
    assert len(set(result.acked_ids or ())) == result.acked
    assert missing([result], stored_ids(db, "notifications", "lead_id")) == 0


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_script_posts_signed_bodies_the_bare_handler_accepts(tmp_path):
    port = processes.free_port()
    with processes.baseline("bare", port, tmp_path / "log", SECRET) as server:
        result = with_wrk(server.url + "/webhook", posts(30_000), 4, 1)
    assert result.tool == "wrk" and result.completed > 0
    assert result.acked == result.completed and result.errors == 0


@pytest.mark.e2e
def test_benchmark_command_prints_one_table_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--only", "scoring,idle"]
    done = subprocess.run(
        [*command, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for heading in ("figure", "leadsync", "baseline", "ratio", "target", "verdict"):
        assert heading in done.stdout
    assert "targets met" in done.stdout.splitlines()[-1]
    document = json.loads(out.read_text())
    assert {row["module"] for row in document["rows"]} == {"scoring", "idle"}
    for row in document["rows"]:
        assert {"figure", "leadsync", "baseline", "unit", "target", "ratio"} <= row.keys()
        # A row with a target is judged; one without (idle PSS) is shown for context.
        assert row["verdict"] in (report.MET, report.MISSED) or not row["target"], row


def test_outcome_round_benchmark_runs_and_is_judged():
    from benchmarks import bench_outcomes

    rows = bench_outcomes.run(quick=True)
    assert len(rows) == 3
    for row in rows:
        assert {"figure", "leadsync", "baseline", "unit", "target"} <= row.keys()
        assert report.judge(row) in (report.MET, report.MISSED), row


@pytest.mark.e2e
def test_burst_benchmark_runs_and_is_judged():
    from benchmarks import bench_burst

    rows = bench_burst.run(quick=True)
    assert len(rows) == 3
    for row in rows:
        assert {"figure", "leadsync", "baseline", "unit", "target"} <= row.keys()
        assert report.judge(row) in (report.MET, report.MISSED), row


# A stand-in for `leadsync run` after issue 16: it starts one child whose command line says
# `worker`, and both wait on their stdin.
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "worker"],
                         stdin=subprocess.PIPE)
print("ready", flush=True)
sys.stdin.read()
child.communicate()
"""


def test_process_tree_reads_the_parent_and_its_worker_child():
    """A daemon is read whole: the started process as http, its worker child by its cmdline."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"

        def both() -> list[processes.ProcessReading] | None:
            tree = processes.read_tree(parent.pid)  # a forked child shows its cmdline once exec'd
            return tree if [r.role for r in tree] == [processes.HTTP, processes.WORKER] else None

        tree = wait_until(both, what="the worker child")
        assert tree[0].pid == parent.pid
        for reading in tree:
            assert reading.rss_mb > 0 and 0 < reading.pss_mb <= reading.rss_mb
            assert reading.fds >= 3 and reading.cpu_seconds >= 0
        assert processes.total(tree, "rss_mb") == sum(r.rss_mb for r in tree)
        assert processes.total(tree, "fds", processes.WORKER) == tree[1].fds
    finally:
        parent.communicate(timeout=10)
    assert processes.read_tree(parent.pid) == []


def test_cpu_meter_spans_roles_and_counts_a_new_process_from_zero():
    meter = CpuMeter([1])
    meter.readings = {
        "start": {1: (1, "http", 10.0), 2: (1, "worker", 5.0), 9: (1, "other", 1.0)},
        "load_done": {1: (1, "http", 11.0), 2: (1, "worker", 6.0)},
        # the worker was replaced after the load: the new one counts from 0, the old is gone
        "fetched": {1: (1, "http", 11.5), 3: (1, "worker", 2.0)},
    }
    assert meter.spent("load_done", "http") == pytest.approx(1.0)
    assert meter.spent("fetched", "worker") == pytest.approx(2.0)
    assert meter.spent("fetched", "other") is None
    assert meter.vanished() == 2
    figures = meter.per_thousand(500)
    assert figures == pytest.approx({"http": 2.0, "worker": 4.0, "all": 7.0})


def test_cpu_meter_says_none_for_a_role_no_process_has():
    meter = CpuMeter([1])
    meter.readings = {moment: {1: (1, "http", 1.0)} for moment in ("start", "load_done")}
    meter.readings["fetched"] = {1: (1, "http", 3.0)}
    assert meter.per_thousand(1000) == {"http": 0.0, "worker": None, "all": 2.0}


def test_store_counts_notifications_and_leads_behind_the_daemons_back(store, store_url):
    assert store_counts(store_url) == (0, 0)
    assert wait_fetched(store_url, timeout=0)
    now = utcnow()
    store.add_notifications([Notification(f"10{n}", "111", "222", "", now) for n in range(2)])
    assert store_counts(store_url) == (2, 0)
    assert not wait_fetched(store_url, timeout=0), "no lead was fetched yet"


def test_soak_growth_follows_the_trend_not_one_odd_sample():
    times = [float(n) for n in range(9)]
    flat_with_a_spike = [100, 101, 100, 140, 100, 101, 100, 100, 101]
    first, last = trend(times, flat_with_a_spike)
    assert last / first == pytest.approx(0.96, abs=0.01)
    assert max_over_min(flat_with_a_spike) == 1.4
    leaking = [100 + 3 * n for n in range(12)]  # 33 % over the samples, all of it seen
    assert trend([float(n) for n in range(12)], leaking) == pytest.approx((100, 133))
    with pytest.raises(ValueError, match="at least 3 samples"):
        trend([0.0, 1.0], [1.0, 2.0])
