"""`GET /report` on a running daemon: behind the admin token, under the CSP, in chromium."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from tests.browser import chromium_page, require_chromium
from tests.daemon_harness import DaemonThread, daemon_settings
from tests.test_report_source import seed_store

ADMIN = "admin-secret-9191"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'l.db'}"
    seed_store(url)
    with GraphEmulator() as graph:
        settings = daemon_settings(graph, url, pages=[], server={"admin_token": ADMIN})
        with DaemonThread(settings) as running:
            yield running


def get(running, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{running.url}{path}", timeout=10, allow_redirects=False, **kwargs)


def test_the_report_needs_the_admin_token_and_offers_the_sign_in_form(daemon):
    page = get(daemon, "/report")
    assert page.status_code == 401 and 'action="/login"' in page.text
    assert "Demo" not in page.text and "Closed-loop" not in page.text


def test_the_report_shows_the_store_leads_by_the_grouping_asked(daemon):
    page = get(daemon, "/report", headers=AUTH)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "<title>leadsync report by form</title>" in page.text
    assert leads_per_group(page.text) == {"Demo": "2", "Ebook": "1", "Total": "3"}
    by_ad = get(daemon, "/report?by=ad&since=500d", headers=AUTH).text
    assert "<title>leadsync report by ad</title>" in by_ad
    assert leads_per_group(by_ad) == {"(none)": "3", "Blue": "1", "Total": "4"}  # 400 days old
    by_owner = get(daemon, "/report?by=owner", headers=AUTH).text
    assert leads_per_group(by_owner) == {"(unassigned)": "2", "Ana": "1", "Total": "3"}


def leads_per_group(html: str) -> dict[str, str]:
    """The first two cells (group, leads) of each row of the figures table."""
    table = html.split('<table id="figures">')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S) for row in rows]
    return {row[0]: row[1] for row in cells if row}


@pytest.mark.parametrize(
    ("query", "says"),
    [("by=country", "not a grouping; use one of form"), ("since=soon", "not a duration")],
)
def test_bad_parameters_are_a_400_that_says_what_to_write(daemon, query, says):
    reply = get(daemon, f"/report?{query}", headers=AUTH)
    assert reply.status_code == 400 and says in reply.text


def test_the_policy_allows_the_report_stylesheet_and_nothing_inline(daemon):
    page = get(daemon, "/report", headers=AUTH)
    (style,) = re.findall(r"<style>(.*?)</style>", page.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.headers["Content-Security-Policy"]
    assert " style=" not in page.text and "<script" not in page.text


@pytest.mark.browser
def test_chromium_applies_the_report_style_under_the_policy_and_draws_the_charts(daemon):
    executable = require_chromium()
    with chromium_page(executable) as page:
        page.set_extra_http_headers(AUTH)
        violations: list[str] = []
        page.on("console", lambda message: violations.append(message.text))
        page.goto(f"{daemon.url}/report")
        weight = page.locator("#figures tfoot td").first.evaluate(
            "cell => getComputedStyle(cell).fontWeight"
        )
        assert weight == "600"  # report.css applied: the CSP let the stylesheet through
        assert page.locator("svg[role=img]").count() == 3
        assert page.locator("#no-outcomes").is_visible()
    assert not [v for v in violations if "Content Security Policy" in v]


def test_signing_in_from_the_report_comes_back_to_it_and_never_elsewhere(daemon):
    form = get(daemon, "/report").text
    assert '<input type="hidden" name="next" value="/report">' in form
    for offered, back in [("/report", "/report"), ("https://evil.example/", "/"), ("", "/")]:
        reply = requests.post(
            f"{daemon.url}/login",
            data={"token": ADMIN, "next": offered},
            timeout=10,
            allow_redirects=False,
        )
        assert reply.status_code == 303 and reply.headers["Location"] == back
