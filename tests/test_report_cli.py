"""`leadsync report` on a real SQLite store: the terminal table, the HTML file, usage errors."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from leadsync.cli import app
from tests.test_report_source import seed_store

runner = CliRunner()


@pytest.fixture
def config(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    seed_store(url)
    path = tmp_path / "leadsync.toml"
    path.write_text(
        '[facebook]\napp_secret = "s"\nverify_token = "v"\naccess_token = "t"\n'
        f'[store]\nurl = "{url}"\n'
    )
    return str(path)


def test_report_prints_figures_per_form_with_a_total(config):
    result = runner.invoke(app, ["report", "-c", config])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    demo = next(line for line in lines if line.startswith("│ Demo "))
    assert re.match(r"│ Demo\s+│\s+2 │\s+1 │\s+50% ! │\s+— │\s+— │", demo)  # 1 of 2: > 30%
    assert re.match(r"│ Ebook\s+│\s+1 │\s+0 │\s+0% ! │", next(ln for ln in lines if "Ebook" in ln))
    assert re.match(r"│ Total\s+│\s+3 │\s+1 │", next(ln for ln in lines if "Total" in ln))
    text = " ".join(result.output.split())
    assert "by form: 3 leads, 1 MQLs, 0 won" in text
    assert "No sales stages (contacted, sql, won, lost) are recorded for these leads yet" in text
    assert "Outside the usual bands (marked !):" in lines  # a line of its own


def test_report_by_campaign_over_a_longer_window_writes_html(config, tmp_path):
    html = tmp_path / "out" / "report.html"
    html.parent.mkdir()
    args = ["report", "--since", "500d", "--by", "campaign", "--html", str(html), "-c", config]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"│ Total\s+│\s+4 │", result.output)  # the 400-day-old lead too
    page = html.read_text(encoding="utf-8")
    assert "<title>leadsync report by campaign</title>" in page and page.count("<svg") == 3
    assert f"HTML report: {html}" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--by", "country"],
            "by 'country' is not a grouping; use one of form, campaign, ad, owner",
        ),
        (["--since", "lately"], "since: 'lately' is not a duration; write it like 90s"),
        (["--since", "0d"], "since '0d' must be a positive duration"),
    ],
)
def test_bad_options_say_what_to_write(config, args, says):
    result = runner.invoke(app, ["report", *args, "-c", config])
    assert result.exit_code == 2
    assert says in " ".join(result.output.split())


def test_an_unwritable_html_file_is_exit_1_with_the_path(config, tmp_path):
    target = tmp_path / "missing-dir" / "r.html"
    result = runner.invoke(app, ["report", "--html", str(target), "-c", config])
    assert result.exit_code == 1
    assert f"could not write {target}: No such file or directory" in " ".join(result.output.split())


def test_report_by_owner_shows_each_owner_and_the_unassigned(config):
    result = runner.invoke(app, ["report", "--by", "owner", "-c", config])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    unassigned = next(ln for ln in lines if "unassigned" in ln)
    assert re.match(r"│ \(unassigned\)\s+│\s+2 │\s+0 │", unassigned)
    assert re.match(r"│ Ana\s+│\s+1 │\s+1 │", next(ln for ln in lines if "│ Ana " in ln))
