"""Offline scoring of a CSV (calibration/offline.py) and the `leadsync score` command: rows keep
their columns and order, gain score, mql and score_reasons; bad rows are named by line."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadsync.calibration.offline import lead_from_row, read_leads_csv, score_csv
from leadsync.cli import app
from leadsync.errors import BadLead
from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DEFAULTS = Scorer(ScoringSettings())


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


HEADER = [
    "lead_id",
    "created_time",
    "form_id",
    "job_title",
    "email",
    "company_size",
    "interest",
    "events",
]
ROWS = [
    [
        "vp",
        "2026-05-31T10:00:00+00:00",
        "f1",
        "VP of Sales",
        "vera@globex.com",
        "1,000+",
        "Book a demo",
        "",
    ],
    [
        "student",
        "2026-05-31T10:00:00+00:00",
        "f1",
        "Student",
        "sam@gmail.com",
        "",
        "",
        "email_opened",
    ],
    [
        "quit",
        "2026-05-31T10:00:00+00:00",
        "f1",
        "VP of Sales",
        "q@acme.com",
        "1,000+",
        "Book a demo",
        "unsubscribed",
    ],
]


def test_score_csv_adds_score_mql_and_reasons_and_keeps_every_column(tmp_path):
    source = write_csv(tmp_path / "leads.csv", HEADER, ROWS)
    summary = score_csv(DEFAULTS, source, tmp_path / "out.csv", NOW)
    rows = read_csv(tmp_path / "out.csv")
    assert (summary.rows, summary.mqls) == (3, 1)
    assert list(rows[0]) == [*HEADER, "score", "mql", "score_reasons"]
    assert [r["lead_id"] for r in rows] == ["vp", "student", "quit"]
    assert [r["mql"] for r in rows] == ["TRUE", "FALSE", "FALSE"]
    assert rows[0]["score"] == "70"
    assert rows[0]["score_reasons"] == (
        "VP title +20; 500+ employees +10; 1,000+ employees +5; Demo request on form +35"
    )
    assert rows[1]["score_reasons"] == "Student -20; Free email address -10; Email opened +2"
    assert rows[0]["company_size"] == "1,000+" and rows[1]["events"] == "email_opened"


def test_a_scored_export_can_be_scored_again_with_its_old_columns_replaced(tmp_path):
    source = write_csv(tmp_path / "leads.csv", HEADER, ROWS)
    score_csv(DEFAULTS, source, tmp_path / "once.csv", NOW)
    score_csv(DEFAULTS, tmp_path / "once.csv", tmp_path / "twice.csv", NOW)
    assert read_csv(tmp_path / "once.csv") == read_csv(tmp_path / "twice.csv")


def test_columns_map_to_attributes_answers_and_events():
    row = {
        "lead_id": "42",
        "created_time": "1767225600",
        "campaign_name": "Spring",
        "is_organic": "TRUE",
        "job_title": " CEO ",
        "phone_number": "",
        "events": "webinar_attended@2026-05-01T10:00:00+00:00; email_opened",
    }
    lead, events = lead_from_row(row, 2, NOW)
    assert (lead.id, lead.campaign_name, lead.is_organic) == ("42", "Spring", True)
    assert lead.created_time == datetime(2026, 1, 1, tzinfo=UTC)
    assert dict(lead.answers) == {"job_title": ("CEO",)}
    assert [(e.type, e.at) for e in events] == [
        ("webinar_attended", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("email_opened", NOW),
    ]


def test_missing_id_and_time_default_to_the_row_and_now():
    lead, events = lead_from_row({"job_title": "CEO"}, 7, NOW)
    assert (lead.id, lead.created_time, events) == ("row-7", NOW, [])


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ({"created_time": "yesterday"}, "row 5: created_time 'yesterday' is not a time"),
        ({"events": "demo@soon"}, "row 5: event 'demo' has time 'soon'"),
    ],
)
def test_bad_cells_name_the_row_and_the_fix(row, says):
    with pytest.raises(BadLead, match=says):
        lead_from_row(row, 5, NOW)


def test_blank_rows_are_skipped_and_short_rows_are_read(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("lead_id,job_title,email\n1,CEO\n,,\n2,Student,s@gmail.com\n", encoding="utf-8")
    leads = read_leads_csv(path, NOW)
    assert list(leads) == ["1", "2"]
    assert DEFAULTS.score(*leads["1"], NOW).reasons_text == "C-suite title +25"


def test_writing_over_the_input_file_is_refused(tmp_path):
    source = write_csv(tmp_path / "leads.csv", HEADER, ROWS)
    with pytest.raises(ValueError, match="is the input file"):
        score_csv(DEFAULTS, source, source, NOW)
    assert len(read_csv(source)) == 3


def test_score_command_uses_the_config_rules_and_writes_next_to_the_input(tmp_path):
    source = write_csv(tmp_path / "leads.csv", HEADER, ROWS)
    config = tmp_path / "leadsync.toml"
    config.write_text(
        '[scoring]\nthreshold = 10\n[[scoring.rules]]\nname = "Student"\n'
        'field = "job_title"\nmatches = "Student"\npoints = 12\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["score", str(source), "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "Scored 3 leads, 1 MQLs" in result.output
    rows = read_csv(tmp_path / "leads.scored.csv")
    assert [r["score_reasons"] for r in rows] == ["", "Student +12", ""]


def test_score_command_reports_rule_problems_with_key_paths(tmp_path):
    source = write_csv(tmp_path / "leads.csv", HEADER, ROWS)
    config = tmp_path / "leadsync.toml"
    config.write_text(
        '[[scoring.rules]]\nname = "x"\nfield = "job_title"\nmatches = "(vp"\npoints = 5\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["score", str(source), "-c", str(config), "-o", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2
    assert "scoring.rules[0].matches: unbalanced parenthesis" in " ".join(result.output.split())
    assert not (tmp_path / "o.csv").exists()


def test_score_command_without_a_config_uses_the_default_rules(tmp_path):
    source = write_csv(tmp_path / "leads.csv", HEADER, ROWS)
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(
        app, ["score", str(source), "-c", str(tmp_path / "none.toml"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "default scoring rules" in result.output
    assert read_csv(out)[1]["score_reasons"].startswith("Student -20")
