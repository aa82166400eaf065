"""The status page's calibration block (calibration/freshness.py, templates/status_calibration.html)
on a real SQLite store: when the rules were last calibrated, whether a quarter has passed or the
last 30 days' MQL share left 15–30%, and the last week's MQLs by owner. The clock is passed in."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from leadsync.abc import ScoreUpdate
from leadsync.calibration.freshness import CALIBRATED_AT, calibration_status
from leadsync.health import HealthReport
from leadsync.models import Lead, Owner, Pool, RouteRequest, Score, utcnow
from leadsync.server.status_page import render
from leadsync.status import snapshot
from leadsync.store import open_store

NOW = utcnow()


@pytest.fixture
def store(tmp_path):
    opened = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    opened.migrate()
    yield opened
    opened.close()


def seed(store, mqls: int, others: int, owner: str = "Ana", days_ago: float = 2) -> None:
    """`mqls` + `others` leads created `days_ago`, the MQLs routed to `owner`."""
    tag = f"{owner}-{days_ago}"
    ids = [f"{tag}-m{n}" for n in range(mqls)] + [f"{tag}-o{n}" for n in range(others)]
    store.save_leads([Lead(i, NOW - timedelta(days=days_ago), "p", "f") for i in ids])
    store.save_scores([ScoreUpdate(i, Score(70 if "-m" in i else 10, "-m" in i)) for i in ids])
    who = Owner(owner)
    pool = Pool(owner, owner, (who,), (1,))
    store.assign_owners([RouteRequest(i, "", pool) for i in ids if "-m" in i], {owner: who})


def page(store, now=NOW) -> str:
    return render(
        snapshot(store), HealthReport(True), now, calibration=calibration_status(store, now)
    )


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_never_calibrated_and_a_share_out_of_band_say_to_calibrate(store):
    seed(store, mqls=10, others=15)  # 40%
    text = text_of(page(store))
    assert "Rules last calibrated from the stored outcomes: never" in text
    assert "MQL share over the last 30 days: 40% (10 of 25 leads)" in text
    assert "Never calibrated from the stored outcomes: run leadsync calibrate." in text
    assert "40% of the last 30 days' 25 leads are MQLs, outside 15%–30%" in text


def test_a_recent_calibration_and_a_share_in_band_need_nothing(store):
    seed(store, mqls=5, others=20)  # 20%
    seed(store, mqls=20, others=0, days_ago=45)  # outside the 30 days
    store.set_meta(CALIBRATED_AT, (NOW - timedelta(days=10)).isoformat())
    html = page(store)
    assert "calibration-note" not in html
    assert "20% (5 of 25 leads)" in text_of(html) and "10 d ago" in text_of(html)


def test_a_quarter_after_the_last_calibration_it_says_so(store):
    store.set_meta(CALIBRATED_AT, NOW.isoformat())
    assert "calibration-note" not in page(store, NOW + timedelta(days=89))
    later = text_of(page(store, NOW + timedelta(days=91)))
    assert "Last calibrated 91 days ago, over a quarter: run leadsync calibrate." in later
    assert "MQL share over the last 30 days: no leads" in later


def test_few_leads_show_their_share_without_a_warning(store):
    seed(store, mqls=3, others=2)  # 60% of 5 leads: too few to judge
    store.set_meta(CALIBRATED_AT, NOW.isoformat())
    html = page(store)
    assert "60% (3 of 5 leads)" in text_of(html) and "calibration-note" not in html


def test_the_last_week_mqls_by_owner_busiest_first(store):
    seed(store, mqls=1, others=4, owner="Bo")
    seed(store, mqls=3, others=0, owner="Ana")
    seed(store, mqls=9, others=0, owner="Cy", days_ago=12)  # outside the week
    table = page(store).split('id="owners"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(\d+)</td><td>(\d+)</td>\s*</tr>", table)
    assert rows == [("Ana", "3", "3"), ("Bo", "1", "1"), ("(unassigned)", "4", "0")]
