"""Calibration against outcomes (calibration/calibrate.py, threshold.py, report.py, cli.py): win
rate by band, lift per rule, MQL share against 15-30%, MQL-to-won, a suggested threshold with
reasons, and a self-contained HTML report."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from leadsync.calibration.calibrate import (
    Outcome,
    calibrate,
    read_outcomes,
    render_html,
    render_tables,
)
from leadsync.cli import app
from leadsync.errors import BadLead
from leadsync.models import Event, Lead
from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings
from leadsync.store import open_store

NOW = datetime(2026, 6, 1, tzinfo=UTC)

# Three kinds of lead and how many of each were won, lost or still open.
HOT = {"job_title": "VP of Sales", "company_size": "1,000+", "interest": "Book a demo"}  # 70
WARM = {"job_title": "Director", "company_size": "500-1000"}  # 25
COLD = {"job_title": "Student", "email": "s@gmail.com"}  # -30
MIX = [("hot", HOT, 30, 10, 10), ("warm", WARM, 5, 35, 10), ("cold", COLD, 1, 79, 20)]


def population() -> tuple[dict[str, tuple[Lead, list[Event]]], list[Outcome]]:
    """200 leads with their outcomes: hot ones mostly won, cold ones mostly lost."""
    leads, outcomes = {}, []
    for kind, answers, won, lost, still_open in MIX:
        kinds = ["won"] * won + ["lost"] * lost + ["open"] * still_open
        for n, outcome in enumerate(kinds):
            lead_id = f"{kind}-{n}"
            answered = {name: (value,) for name, value in answers.items()}
            leads[lead_id] = (Lead(lead_id, NOW, "p", "f", answers=answered), [])
            outcomes.append(Outcome(lead_id, outcome, 10_000.0 if outcome == "won" else None))
    return leads, outcomes


def scorer(threshold: float = 60) -> Scorer:
    return Scorer(ScoringSettings.model_validate({"threshold": threshold}))


def test_bands_share_and_mql_to_won_follow_the_outcomes():
    leads, outcomes = population()
    report = calibrate(scorer(), leads, [*outcomes, Outcome("nobody", "won")], NOW)
    assert (report.leads, report.won, report.lost, report.open, report.missing) == (
        200,
        36,
        124,
        40,
        1,
    )
    assert report.mql_share == pytest.approx(50 / 200)
    assert report.mql_to_won == pytest.approx(30 / 40)
    assert report.non_mql_win_rate == pytest.approx(6 / 120)
    assert report.base_win_rate == pytest.approx(36 / 160)
    by_label = {band.label: band for band in report.bands}
    assert sum(band.leads for band in report.bands) == 200
    assert by_label["below 0"].win_rate == pytest.approx(1 / 80)
    top = next(band for band in report.bands if band.low <= 70 <= band.high)
    assert (top.won, top.lost, top.won_value) == (30, 10, 300_000.0)


def test_lift_per_rule_compares_the_leads_a_rule_fired_on_with_all_closed_leads():
    leads, outcomes = population()
    lifts = {lift.rule: lift for lift in calibrate(scorer(), leads, outcomes, NOW).lifts}
    assert lifts["VP title"].lift == pytest.approx((30 / 40) / (36 / 160))
    assert lifts["Student"].lift == pytest.approx((1 / 80) / (36 / 160))
    assert (lifts["Student"].leads, lifts["Student"].closed, lifts["Student"].won) == (100, 80, 1)
    assert lifts["Webinar attended"].lift is None and lifts["Webinar attended"].leads == 0
    ordered = [lift.lift for lift in calibrate(scorer(), leads, outcomes, NOW).lifts if lift.lift]
    assert ordered == sorted(ordered, reverse=True)


def test_a_threshold_already_in_the_band_is_kept():
    leads, outcomes = population()
    report = calibrate(scorer(60), leads, outcomes, NOW)
    assert report.suggested_threshold == 60
    assert "keep it" in " ".join(report.reasoning)


def test_a_threshold_that_makes_too_many_mqls_gets_a_better_one_with_reasons():
    leads, outcomes = population()
    report = calibrate(scorer(20), leads, outcomes, NOW)
    assert report.mql_share == pytest.approx(0.5)
    assert report.suggested_threshold == 70
    text = " ".join(report.reasoning)
    assert "At 70, 25% of leads are MQLs, inside the usual 15%–30%" in text
    assert "closed at 75%, the other leads at 5%" in text
    assert "include 83% of won deals" in text
    assert "The current threshold 20 makes 50% of leads MQLs (above the usual 15%–30%)" in text


def test_scores_from_the_store_can_be_calibrated_without_rescoring():
    leads, outcomes = population()
    scoring = scorer()
    scored = {
        lead_id: scoring.score(lead, events, NOW) for lead_id, (lead, events) in leads.items()
    }
    assert calibrate(scoring, scored, outcomes, NOW) == calibrate(scoring, leads, outcomes, NOW)


def test_few_closed_leads_make_the_suggestion_a_hint():
    leads, outcomes = population()
    report = calibrate(scorer(), leads, outcomes[:12] + outcomes[-20:], NOW)
    assert "Only 12 leads have closed" in report.reasoning[-1]


def test_no_outcomes_keep_the_current_threshold():
    report = calibrate(scorer(55.5), {}, [], NOW)
    assert (report.leads, report.suggested_threshold, report.bands) == (0, 56, ())
    assert "Suggested threshold: 56" in render_html(report)
    console = Console(record=True, width=120)
    console.print(*render_tables(report))
    assert "No lead had an outcome" in console.export_text()


def test_tables_render_for_a_terminal():
    leads, outcomes = population()
    console = Console(record=True, width=120)
    console.print(*render_tables(calibrate(scorer(20), leads, outcomes, NOW)))
    text = console.export_text()
    for expected in ("Conversion by score band", "Lift per rule", "Suggested threshold: 70"):
        assert expected in text


def test_html_report_is_self_contained_with_inline_svg_charts():
    leads, outcomes = population()
    settings = ScoringSettings.model_validate(
        {"rules": [{"name": "<b>VP</b> & co", "field": "job_title", "matches": "VP", "points": 70}]}
    )
    html = render_html(calibrate(Scorer(settings), leads, outcomes, NOW))
    assert html.count("<svg") == 3
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|img|iframe|object)\b", html, re.I)
    assert "&lt;b&gt;VP&lt;/b&gt; &amp; co" in html and "<b>VP</b>" not in html


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_outcomes_accepts_crm_spellings_and_deal_sizes(tmp_path):
    path = write(
        tmp_path / "o.csv",
        'lead_id,outcome,deal_size\n1,Closed Won,"$12,000"\n2,closed-lost,\n3,,\n4,open,10k\n',
    )
    assert read_outcomes(path) == [
        Outcome("1", "won", 12_000.0),
        Outcome("2", "lost", None),
        Outcome("3", "open", None),
        Outcome("4", "open", 10_000.0),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "lead_id,outcome\n1,maybe\n",
            "row 2: needs a lead_id and an outcome of won, lost or open",
        ),
        ("lead_id,outcome,deal_size\n1,won,lots\n", "row 2: deal_size 'lots' is not an amount"),
        ("id,result\n1,won\n", "no lead_id, outcome column"),
    ],
)
def test_bad_outcome_files_say_which_row_and_what_to_write(tmp_path, text, says):
    with pytest.raises(BadLead, match=says):
        read_outcomes(write(tmp_path / "o.csv", text))


def test_calibrate_command_reads_answers_from_the_outcomes_file_and_writes_html(tmp_path):
    leads, outcomes = population()
    lines = ["lead_id,outcome,deal_size,job_title,company_size,interest,email"]
    for outcome in outcomes:
        answers = leads[outcome.lead_id][0].answers
        cells = [
            answers.get(q, ("",))[0] for q in ("job_title", "company_size", "interest", "email")
        ]
        lines.append(",".join([outcome.lead_id, outcome.outcome, "", *(f'"{c}"' for c in cells)]))
    source = write(tmp_path / "outcomes.csv", "\n".join(lines) + "\n")
    html = tmp_path / "report.html"
    args = ["calibrate", str(source), "--html", str(html), "-c", str(tmp_path / "none.toml")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Suggested threshold" in result.output
    assert "<svg" in html.read_text(encoding="utf-8")


def test_calibrate_command_reads_leads_and_events_from_the_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'leadsync.db'}"
    store = open_store(url)
    store.migrate()
    vp = Lead(
        "vp", NOW, "p", "f", answers={"job_title": ("VP of Sales",), "company_size": ("1000+",)}
    )
    student = Lead("st", NOW, "p", "f", answers={"job_title": ("Student",)})
    store.save_leads([vp, student])
    store.add_events([Event("e1", "demo_requested", datetime.now(UTC), lead_id="vp")])
    store.close()
    config = write(tmp_path / "leadsync.toml", f'[store]\nurl = "{url}"\n')
    outcomes = write(tmp_path / "o.csv", "lead_id,outcome\nvp,won\nst,lost\nghost,lost\n")
    result = CliRunner().invoke(app, ["calibrate", str(outcomes), "-c", str(config)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "2 leads with outcomes: 1 won, 1 lost, 0 open" in text
    assert "1 outcomes name leads that were not found" in text
    assert re.search(r"Demo request │ engagement │ 1 │ 1 │ 1 │ 100%", text), text


def test_calibrate_command_without_answers_or_store_says_what_to_do(tmp_path):
    outcomes = write(tmp_path / "o.csv", "lead_id,outcome\n1,won\n")
    config = write(tmp_path / "leadsync.toml", f'[store]\nurl = "sqlite:///{tmp_path / "no.db"}"\n')
    result = CliRunner().invoke(app, ["calibrate", str(outcomes), "-c", str(config)])
    assert result.exit_code == 1
    assert "add the leads' answers as columns" in " ".join(result.output.split())
