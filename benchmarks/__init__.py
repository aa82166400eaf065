"""leadsync's benchmarks: each `bench_*.py` measures a DESIGN performance target.

Every module has `run(quick: bool = False) -> list[dict]`, one row per figure
({"figure", "leadsync", "baseline", "unit", "target"}, plus optional keys read by
`benchmarks.report`). `python -m benchmarks.run` runs them all into one table.
"""
