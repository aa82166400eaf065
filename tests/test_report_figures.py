"""The closed-loop report engine on hand-made leads, figures worked out by hand in the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from leadsync.report.figures import ReportLead, build_report

NOW = datetime.now(UTC)
SINCE = NOW - timedelta(days=90)
H = timedelta(hours=1)


def lead(n, form, mql, owner=None, ago=10, **stages):
    """Lead `n` created `ago` days before now; stages given as hours after creation (, value)."""
    created = NOW - timedelta(days=ago)
    reached = {}
    for stage, at in stages.items():
        hours, value = at if isinstance(at, tuple) else (at, None)
        reached[stage] = (created + hours * H, None if value is None else Decimal(value))
    return ReportLead(
        lead_id=f"L{n}",
        created_time=created,
        form_id=f"F-{form}",
        form_name=f"{form} form",
        campaign_name=f"{form} campaign",
        ad_name=f"{form} ad",
        owner=owner,
        mql=mql,
        stages=reached,
    )


# Form "demo": 10 leads, 3 MQLs. Form "ebook": 5 leads, 0 MQLs. One old lead outside --since.
LEADS = [
    lead(1, "demo", True, "Ana", contacted=2, sql=24, won=(240, "1200.50")),
    lead(2, "demo", True, "Ana", contacted=4, lost=48),
    lead(3, "demo", True, "Bo", contacted=1),
    lead(4, "demo", False, "Bo", contacted=6, won=(480, "300")),
    lead(5, "demo", False, None, contacted=3, lost=72),
    lead(6, "demo", False, None, lost=10),
    lead(7, "demo", False, None),
    lead(8, "demo", False, None),
    lead(9, "demo", False, None),
    lead(10, "demo", False, None),
    lead(11, "ebook", False, None, contacted=8),
    lead(12, "ebook", False, None),
    lead(13, "ebook", False, None),
    lead(14, "ebook", False, None),
    lead(15, "ebook", False, None),
    lead(99, "demo", True, "Ana", ago=120, contacted=1, sql=2, won=(3, "999999")),
]


def test_figures_per_form_match_the_hand_count():
    report = build_report(LEADS, SINCE, "form")
    demo, ebook = report.groups  # largest group first
    assert (demo.name, demo.leads, demo.mqls, demo.sqls, demo.won) == ("demo form", 10, 3, 1, 2)
    assert demo.mql_share == pytest.approx(3 / 10)
    assert demo.mql_to_sql == pytest.approx(1 / 3)
    assert demo.mql_to_won == pytest.approx(1 / 3)
    assert demo.mql_win_rate == pytest.approx(1 / 2)  # MQLs closed: L1 won, L2 lost
    assert demo.other_win_rate == pytest.approx(1 / 3)  # others closed: L4 won, L5 L6 lost
    assert demo.lift == pytest.approx((1 / 2) / (1 / 3))
    # First contact after 2, 4, 1, 6, 3 hours (L6 was lost unreached): median 3 h.
    assert demo.to_contact == 3 * H
    assert demo.to_won == (240 * H + 480 * H) / 2
    assert demo.deal_value == Decimal("1500.50")
    assert [n.figure for n in demo.notes] == ["mql_to_sql"]  # 33%: above 27%, under 40%

    assert (ebook.name, ebook.leads, ebook.mqls, ebook.deal_value) == ("ebook form", 5, 0, 0)
    assert ebook.mql_share == 0
    assert ebook.to_contact == 8 * H


def test_total_row_covers_every_lead_in_the_window_only():
    total = build_report(LEADS, SINCE, "form").total
    assert (total.leads, total.mqls, total.won) == (15, 3, 2)  # L99 is older than --since
    assert total.mql_share == pytest.approx(3 / 15)
    assert total.deal_value == Decimal("1500.50")
    assert [n.figure for n in total.notes] == ["mql_to_sql"]  # 1 of 3 MQLs: 33%


def test_groups_by_owner_name_unassigned_leads():
    report = build_report(LEADS, SINCE, "owner")
    by_name = {g.name: g.leads for g in report.groups}
    assert by_name == {"(unassigned)": 11, "Ana": 2, "Bo": 2}


def test_no_mqls_gives_no_rate_instead_of_dividing_by_zero():
    report = build_report([lead(1, "x", False), lead(2, "x", False)], SINCE, "campaign")
    group = report.groups[0]
    assert (group.mql_to_sql, group.mql_to_won, group.mql_win_rate, group.lift) == (None,) * 4
    assert group.to_contact is None and group.to_won is None
    empty = build_report([], SINCE, "ad")
    assert empty.groups == () and empty.total.mql_share is None


@pytest.mark.parametrize(
    ("mqls", "sqls", "figure", "words"),
    [
        (20, 1, "mql_to_sql", "too loose"),  # 5%
        (20, 9, "mql_to_sql", "too strict"),  # 45%
        (20, 4, None, None),  # 20%: in band
    ],
)
def test_mql_to_sql_outside_the_band_says_what_it_suggests(mqls, sqls, figure, words):
    leads = [lead(n, "f", True, sql=5) if n < sqls else lead(n, "f", True) for n in range(mqls)]
    leads += [lead(100 + n, "f", False) for n in range(mqls * 4)]  # MQL share 20%: in band
    notes = build_report(leads, SINCE, "form").total.notes
    assert [n.figure for n in notes] == ([figure] if figure else [])
    assert all(words in n.text for n in notes)


def test_mql_share_outside_the_band_and_no_lift_are_noted():
    leads = [lead(1, "f", True, sql=1, lost=5), lead(2, "f", False, won=(9, "10"))]
    notes = {n.figure: n.text for n in build_report(leads, SINCE, "form").total.notes}
    assert "too low" in notes["mql_share"]  # 50% of leads are MQLs
    assert "does not predict" in notes["lift"]  # MQL win rate 0% vs 100%


def test_without_any_sales_stage_the_stage_rates_are_unknown_not_zero():
    """Before outcomes are wired, "0% of MQLs became SQLs" would be a false alarm."""
    report = build_report([lead(1, "f", True), lead(2, "f", False)], SINCE, "form")
    assert not report.outcomes
    assert (report.total.mql_to_sql, report.total.mql_to_won) == (None, None)
    assert [n.figure for n in report.total.notes] == ["mql_share"]  # 50%: still judged
    with_one = build_report([lead(1, "f", True), lead(2, "f", False, contacted=1)], SINCE, "form")
    assert with_one.outcomes and with_one.total.mql_to_sql == 0
