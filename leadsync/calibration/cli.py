"""The `leadsync score` and `leadsync calibrate` commands: files in, tables and files out.

Both work offline. They read only the `[scoring]` table of the config (and, for
calibrate, `[store] url`), so they run on a laptop without the daemon's tokens;
with no config file at all they use the default rules and say so. `calibrate`
takes the leads' answers from the outcomes CSV itself when it has answer
columns, else from the daemon's store; without a CSV, the outcomes too come from the
store (the stages sales recorded). Problems are printed with their key path
or row number, and the exit code says what went wrong: 0 done, 1 bad input
file, 2 bad config.
"""

from __future__ import annotations

import csv
import os
import tomllib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from leadsync.abc import Store
from leadsync.calibration.calibrate import (
    Outcome,
    calibrate,
    read_outcomes,
    render_html,
    render_tables,
)
from leadsync.calibration.offline import ATTRIBUTE_COLUMNS, read_leads_csv, score_csv
from leadsync.calibration.stored import CALIBRATED_AT, leads_with_events, stored_leads
from leadsync.config import problems_from
from leadsync.errors import BadLead, ConfigError, LeadsyncError, Problem
from leadsync.models import Event, Lead, utcnow
from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings

_OUTCOME_COLUMNS = frozenset({"lead_id", "outcome", "deal_size"})


def read_config_tables(config: Path) -> dict[str, Any]:
    """The config file's TOML tables; {} when the file does not exist."""
    try:
        return tomllib.loads(Path(config).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [Problem(str(config), f"not valid TOML: {exc}", "fix the syntax")]
        ) from None


def scoring_settings(tables: dict[str, Any]) -> ScoringSettings:
    """Validates `[scoring]`; every problem is reported with its key path (scoring.rules[3]...)."""
    try:
        return ScoringSettings.model_validate(tables.get("scoring", {}))
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, prefix="scoring")) from None


def score_command(console: Console, file: Path, output: Path | None, config: Path) -> int:
    """`leadsync score FILE.csv [-o OUT]`; returns the exit code."""
    target = output or file.with_name(f"{file.stem}.scored.csv")
    try:
        scorer = _scorer(console, config)
        summary = score_csv(scorer, file, target, utcnow())
    except ConfigError as exc:
        return _config_problems(console, config, exc)
    except (LeadsyncError, OSError, ValueError) as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        return 1
    console.print(f"Scored {summary.rows} leads, {summary.mqls} MQLs: {target}")
    return 0


def calibrate_command(console: Console, file: Path | None, html: Path | None, config: Path) -> int:
    """`leadsync calibrate [OUTCOMES.csv] [--html report.html]`; returns the exit code.

    Without a file, the outcomes are the stages stored by the daemon (`stored.py`).
    A report made from the store is recorded there (`calibration.last_run`), for the
    status page.
    """
    try:
        tables = read_config_tables(config)
        scorer = _scorer(console, config, tables)
        now = utcnow()
        leads, outcomes, url = _inputs(console, file, tables, now)
        report = calibrate(scorer, leads, outcomes, now)
        if html is not None:
            html.write_text(render_html(report), encoding="utf-8")
        if url:
            _record(url, now)
    except ConfigError as exc:
        return _config_problems(console, config, exc)
    except (LeadsyncError, OSError, ValueError) as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        return 1
    console.print(*render_tables(report))
    if html is not None:
        console.print(f"HTML report: {html}")
    return 0


def _inputs(
    console: Console, file: Path | None, tables: dict[str, Any], now: datetime
) -> tuple[dict[str, tuple[Lead, Sequence[Event]]], list[Outcome], str]:
    """Leads, outcomes and the store URL they came from ("" for a CSV with answers)."""
    url = _store_url(tables)
    if file is None:
        store = _open_store(url, "pass an outcomes CSV, or point -c at the daemon's config")
        try:
            leads, outcomes, note = stored_leads(store, now)
        finally:
            store.close()
        console.print(note, markup=False, highlight=False)
        return leads, outcomes, url
    outcomes = read_outcomes(file)
    with open(file, newline="", encoding="utf-8-sig") as source:
        header = {name.strip() for name in next(csv.reader(source), [])}
    if header - _OUTCOME_COLUMNS - set(ATTRIBUTE_COLUMNS):
        return dict(read_leads_csv(file, now)), outcomes, ""
    return _leads_from_store(url, [outcome.lead_id for outcome in outcomes]), outcomes, url


def _scorer(console: Console, config: Path, tables: dict[str, Any] | None = None) -> Scorer:
    tables = read_config_tables(config) if tables is None else tables
    if not tables.get("scoring", {}).get("rules"):
        note = f"Using the default scoring rules ({config} has no [[scoring.rules]])."
        console.print(note, markup=False, highlight=False)
    return Scorer(scoring_settings(tables))


def _config_problems(console: Console, config: Path, exc: ConfigError) -> int:
    heading = f"{config}: {len(exc.problems)} problem(s) in the configuration:"
    console.print(heading, style="red", markup=False, highlight=False)
    for problem in exc.problems:
        console.print(f"  {problem}", markup=False, highlight=False)
    return 2


def _store_url(tables: dict[str, Any]) -> str:
    return os.path.expandvars(tables.get("store", {}).get("url", "sqlite:///leadsync.db"))


def _open_store(url: str, fix: str) -> Store:
    from leadsync.store import open_store, sqlite_path  # the store only when it is needed

    if url.startswith("sqlite:") and not Path(sqlite_path(url)).exists():
        raise BadLead(f"there is no store at {url}; {fix}")
    store = open_store(url)
    store.migrate()
    return store


def _record(url: str, now: datetime) -> None:
    store = _open_store(url, "point -c at the daemon's config")
    try:
        store.set_meta(CALIBRATED_AT, now.isoformat())
    finally:
        store.close()


def _leads_from_store(url: str, lead_ids: Sequence[str]) -> dict[str, tuple[Lead, Sequence[Event]]]:
    fix = (
        "the outcomes file has no answer columns: "
        "add the leads' answers as columns, or point -c at the daemon's config"
    )
    store = _open_store(url, fix)
    try:
        return leads_with_events(store, lead_ids)
    finally:
        store.close()
