"""The scoring benchmark (benchmarks/bench_scoring.py) runs, reports its row, and checks first that
the engine and the naive baseline agree on every lead they race on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scoring.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_scoring", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_reports_leads_per_second_against_the_baseline():
    bench = load_bench()
    (row,) = bench.run(quick=True)
    assert set(row) == {"figure", "leadsync", "baseline", "unit", "target"}
    assert row["unit"] == "leads/s" and "20 rules" in row["figure"]
    assert row["leadsync"] > 0 and row["baseline"] > 0


def test_the_benchmark_uses_exactly_twenty_rules_and_a_realistic_mix():
    bench = load_bench()
    assert len(bench.twenty_rules().rules) == 20
    leads = bench.make_leads(1_000)
    assert len({lead.answers["email"] for lead, _ in leads}) == 1_000
    assert 200 < sum(1 for _, events in leads if events) < 500
