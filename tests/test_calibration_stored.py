"""`leadsync calibrate` without a CSV: outcomes from the stages stored by the daemon, on a real
SQLite store; won against lost, or sql against lost when there are too few wins."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from typer.testing import CliRunner

from leadsync.calibration.stored import CALIBRATED_AT, MIN_WINS
from leadsync.cli import app
from leadsync.models import Lead, LeadStage, utcnow
from leadsync.store import open_store

NOW = utcnow()
HOT = {"job_title": ("VP of Sales",), "company_size": ("1,000+",), "interest": ("Book a demo",)}
COLD = {"job_title": ("Student",), "email": ("s@gmail.com",)}


def seed(tmp_path, plan: list[tuple[str, dict, list[str]]]) -> str:
    """A store with one lead per plan entry (id, answers, stages reached); returns a config."""
    url = f"sqlite:///{tmp_path / 'leadsync.db'}"
    store = open_store(url)
    store.migrate()
    created = NOW - timedelta(days=20)
    store.save_leads([Lead(i, created, "p", "f", answers=answers) for i, answers, _ in plan])
    store.save_leads([Lead("ancient", NOW - timedelta(days=400), "p", "f", answers=HOT)])
    value = {"won": Decimal("1000")}
    stages = [
        LeadStage(i, s, created + timedelta(days=n + 1), value.get(s), "test")  # type: ignore[arg-type]
        for i, _, reached in plan
        for n, s in enumerate(reached)
    ]
    stages.append(LeadStage("ancient", "won", NOW - timedelta(days=390), None, "test"))
    store.record_stages(stages)
    store.close()
    config = tmp_path / "leadsync.toml"
    config.write_text(f'[store]\nurl = "{url}"\n', encoding="utf-8")
    return str(config)


def run(config: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["calibrate", *args, "-c", config])
    return result.exit_code, " ".join(result.output.split())


def test_without_a_csv_won_and_lost_come_from_the_store(tmp_path):
    plan = [(f"h{n}", HOT, ["contacted", "won"]) for n in range(MIN_WINS)]
    plan += [(f"c{n}", COLD, ["lost"]) for n in range(30)]
    plan += [(f"o{n}", COLD, ["contacted"]) for n in range(5)] + [("s", COLD, ["sql", "lost"])]
    code, text = run(seed(tmp_path, plan))
    assert code == 0, text
    assert f"Calibrating on the store's outcomes: {MIN_WINS} won leads against lost ones." in text
    # the sql-then-lost lead is lost here; the 400-day-old win is outside the year
    assert f"56 leads with outcomes: {MIN_WINS} won, 31 lost, 5 open" in text
    assert "Suggested threshold" in text


def test_too_few_wins_make_sql_the_positive_class_and_say_so(tmp_path):
    plan = [(f"w{n}", HOT, ["won"]) for n in range(3)]
    plan += [(f"q{n}", HOT, ["contacted", "sql"]) for n in range(9)]
    plan += [("ql", HOT, ["sql", "lost"])]  # qualified by sales, then lost: positive here
    plan += [(f"c{n}", COLD, ["lost"]) for n in range(12)] + [("o", COLD, [])]
    code, text = run(seed(tmp_path, plan))
    assert code == 0, text
    assert f"Only 3 won leads are stored (fewer than {MIN_WINS}): calibrating on" in text
    assert "sales-qualified leads (sql or won) against lost ones" in text
    assert "26 leads with outcomes: 13 won, 12 lost, 1 open" in text


def test_a_calibration_from_the_store_is_recorded_for_the_status_page(tmp_path):
    config = seed(tmp_path, [("w", HOT, ["won"]), ("l", COLD, ["lost"])])
    before = utcnow()
    code, text = run(config)
    assert code == 0, text
    store = open_store(f"sqlite:///{tmp_path / 'leadsync.db'}")
    try:
        recorded = datetime.fromisoformat(store.get_meta(CALIBRATED_AT) or "")
    finally:
        store.close()
    assert before <= recorded <= utcnow()


def test_with_a_csv_it_reads_the_file_as_before_not_the_stored_stages(tmp_path):
    config = seed(tmp_path, [("w", HOT, ["won"]), ("l", COLD, ["lost"])])
    outcomes = tmp_path / "o.csv"
    outcomes.write_text("lead_id,outcome\nw,lost\nl,lost\n", encoding="utf-8")
    code, text = run(config, str(outcomes))
    assert code == 0, text
    assert "2 leads with outcomes: 0 won, 2 lost, 0 open" in text
    assert "Calibrating on" not in text


def test_without_a_csv_or_a_store_it_says_what_to_do(tmp_path):
    config = tmp_path / "leadsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "no.db"}"\n', encoding="utf-8")
    code, text = run(str(config))
    assert code == 1
    assert "there is no store at" in text and "pass an outcomes CSV" in text
    assert not (tmp_path / "no.db").exists()
