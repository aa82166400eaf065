"""The reporting part of the `Store` contract (`report_leads`), run against every backend.

Uses the `store` fixture (tests/store_fixtures.py): a migrated, empty store on a SQLite
file or in a PostgreSQL schema of its own. Times are relative to now. The last test
builds the report from what the real store answers and checks its figures against the
same figures counted here from the data the test stored.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from leadsync.abc import ScoreUpdate
from leadsync.models import Lead, LeadStage, Owner, Pool, RouteRequest, Score, utcnow
from leadsync.report.figures import UNASSIGNED, build_report

NOW = utcnow()
ANA, BO = Owner("Ana"), Owner("Bo")


def lead(lead_id: str, days_ago: float, form: str = "F1", campaign: str = "Q4") -> Lead:
    return Lead(
        lead_id,
        NOW - timedelta(days=days_ago),
        "p1",
        form,
        form_name=f"Form {form}",
        campaign_name=campaign,
        ad_name=f"ad {lead_id}",
    )


def at(lead_: Lead, hours: float) -> object:
    return lead_.created_time + timedelta(hours=hours)


def assign(store, owner: Owner, lead_ids: list[str]) -> None:
    pool = Pool(owner.name, owner.name, (owner,), (1,))
    store.assign_owners([RouteRequest(i, "", pool) for i in lead_ids], {owner.name: owner})


def test_only_leads_created_since_come_with_origin_mql_owner_and_stages(store):
    new, old, unscored = lead("n", 2), lead("o", 40), lead("u", 1, form="F2", campaign="")
    store.save_leads([new, old, unscored])
    store.save_scores([ScoreUpdate("n", Score(80, True)), ScoreUpdate("o", Score(10, False))])
    assign(store, ANA, ["n"])
    won = LeadStage("n", "won", at(new, 30), Decimal("1200.50"), "test")
    store.record_stages([LeadStage("n", "contacted", at(new, 2), None, "test"), won])
    store.record_stages([LeadStage("o", "lost", at(old, 5), None, "test")])

    got = {r.lead_id: r for r in store.report_leads(NOW - timedelta(days=30))}

    assert list(got) == ["n", "u"]  # oldest first; the 40-day-old lead is outside
    n, u = got["n"], got["u"]
    assert (n.form_id, n.form_name, n.campaign_name, n.ad_name) == ("F1", "Form F1", "Q4", "ad n")
    assert (n.mql, n.owner, n.created_time) == (True, "Ana", new.created_time)
    # mql is the flag, not a stage; the value is exact
    assert n.stages == {"contacted": (at(new, 2), None), "won": (at(new, 30), Decimal("1200.50"))}
    assert (u.mql, u.owner, u.stages, u.campaign_name) == (False, None, {}, "")


def test_an_empty_window_is_an_empty_list(store):
    store.save_leads([lead("o", 40)])
    assert store.report_leads(NOW - timedelta(days=1)) == []


def test_report_by_owner_equals_the_figures_counted_from_the_stored_data(store):
    # Per lead: (days ago, owner, mql, {stage: (hours after created, value)})
    plan = {
        "a1": (3, ANA, True, {"contacted": (1, None), "sql": (5, None), "won": (48, "500")}),
        "a2": (4, ANA, True, {"contacted": (3, None), "lost": (30, None)}),
        "a3": (5, ANA, False, {"won": (72, "250.25")}),
        "a4": (6, ANA, False, {}),
        "b1": (2, BO, True, {"sql": (9, None)}),
        "b2": (7, BO, False, {"lost": (10, None)}),
        "c1": (1, None, True, {"won": (20, None)}),
        "x1": (60, ANA, True, {"won": (2, "9999")}),  # outside the 30-day window
    }
    leads = {i: lead(i, days) for i, (days, *_rest) in plan.items()}
    store.save_leads(list(leads.values()))
    store.save_scores([ScoreUpdate(i, Score(70 if p[2] else 20, p[2])) for i, p in plan.items()])
    for owner in (ANA, BO):
        assign(store, owner, [i for i, p in plan.items() if p[1] is owner])
    store.record_stages(
        [
            LeadStage(i, s, at(leads[i], h), None if v is None else Decimal(v), "test")  # type: ignore[arg-type]
            for i, p in plan.items()
            for s, (h, v) in p[3].items()
        ]
    )
    since = NOW - timedelta(days=30)

    report = build_report(store.report_leads(since), since, "owner")

    window = {i: p for i, p in plan.items() if p[0] <= 30}
    for group in (*report.groups, report.total):
        members = [
            p
            for p in window.values()
            if group.name == "Total" or (p[1].name if p[1] else UNASSIGNED) == group.name
        ]
        mqls = [p for p in members if p[2]]
        assert group.leads == len(members)
        assert group.mqls == len(mqls)
        assert group.mql_share == len(mqls) / len(members)
        assert group.sqls == sum(1 for p in mqls if "sql" in p[3] or "won" in p[3])
        assert group.won == sum(1 for p in members if "won" in p[3])
        assert group.mqls_won == sum(1 for p in mqls if "won" in p[3])
        values = [Decimal(p[3]["won"][1] or 0) for p in members if "won" in p[3]]
        assert group.deal_value == sum(values, Decimal(0))
    assert [g.name for g in report.groups] == ["Ana", "Bo", UNASSIGNED]
    assert (report.total.leads, report.total.mqls, report.total.won) == (7, 4, 3)
    assert report.total.deal_value == Decimal("750.25")
    ana = report.groups[0]
    # first contact 1 h, 3 h and a3's win at 72 h (a win means someone talked to the lead)
    assert ana.to_contact == timedelta(hours=3)


def test_lead_counts_by_owner_count_the_window_in_sql(store):
    store.save_leads([lead(i, 2) for i in ("a", "b", "c", "d")] + [lead("old", 40)])
    store.save_scores(
        [ScoreUpdate(i, Score(80, True)) for i in ("a", "c", "old")]
        + [ScoreUpdate("b", Score(10, False))]
    )
    assign(store, ANA, ["a", "b", "old"])
    assert store.lead_counts_by_owner(NOW - timedelta(days=30)) == {"Ana": (2, 1), "": (2, 1)}
    assert store.lead_counts_by_owner(NOW) == {}
