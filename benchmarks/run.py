"""Runs the benchmarks and prints one table of every figure against its target.

    python -m benchmarks.run [--quick] [--only NAME ...] [--json PATH]
    python benchmarks/run.py ...

Each `benchmarks/bench_NAME.py` is imported and its `run(quick)` called; the
rows are judged against their targets (`benchmarks.report`) and shown together
with the machine's load average, which says how far to trust them on a shared
machine. A missed target is a finding, not a failure: the exit code is 0 unless
a benchmark itself could not run (then 1).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `leadsync` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402

from benchmarks import report  # noqa: E402

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Benchmark names, from the `bench_NAME.py` files beside this one."""
    return sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))


def selected(only: list[str] | None) -> list[str]:
    """The names asked for (`ingest`, `bench_ingest` or `a,b`), all when none were."""
    names = available()
    if not only:
        return names
    wanted = [part.strip().removeprefix("bench_").removesuffix(".py") for x in only
              for part in x.split(",") if part.strip()]  # fmt: skip
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise SystemExit(f"no benchmark named {', '.join(unknown)}; there are: {', '.join(names)}")
    return list(dict.fromkeys(wanted))


def run_one(name: str, quick: bool) -> list[dict[str, Any]]:
    """The module's rows, judged; one `error` row when it could not run."""
    started = time.perf_counter()
    print(f"running bench_{name}{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
    try:
        rows = importlib.import_module(f"benchmarks.bench_{name}").run(quick=quick)
    except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
        traceback.print_exc()
        rows = [
            {
                "figure": f"bench_{name} failed: {type(exc).__name__}: {exc}",
                "leadsync": None,
                "baseline": None,
                "unit": "",
                "target": "",
                "error": True,
            }
        ]
    seconds = time.perf_counter() - started
    print(f"bench_{name}: {len(rows)} figures in {seconds:.0f} s", file=sys.stderr, flush=True)
    for row in rows:
        row["module"] = name
        row["verdict"] = report.judge(row)
    return rows


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only these")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows here")
    args = parser.parse_args(argv)
    names = selected(args.only)
    # Connectors and emulators run in this process; their info events would drown the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    started, load_before = datetime.now(UTC), load_average()
    rows = [row for name in names for row in run_one(name, args.quick)]
    load_after = load_average()
    title = (
        f"leadsync benchmarks, {started:%Y-%m-%d %H:%M} UTC{', quick' if args.quick else ''}, "
        f"{os.cpu_count()} CPUs, load average {load_before} before, {load_after} after"
    )
    report.show(rows, title)
    if args.json:
        document = {
            "started": started.isoformat(),
            "quick": args.quick,
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "rows": [report.serializable(row) for row in rows],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(row["verdict"] == report.FAILED for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
