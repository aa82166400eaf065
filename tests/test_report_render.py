"""The closed-loop report as people read it: a terminal table and an HTML page in chromium."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from rich.console import Console

from leadsync.report.figures import build_report
from leadsync.report.render import duration, render_html, render_tables
from tests.browser import ARTIFACTS, chromium_page, png_size, require_chromium
from tests.test_report_figures import LEADS, SINCE, H, lead

SCREENSHOT = ARTIFACTS / "closed-loop-report.png"
# Campaign names are typed by whoever runs the ads: the report shows them, never runs them.
HOSTILE = "Q3 <script>document.title='owned'</script> & <img src=x onerror=alert(1)>"


def hostile_leads():
    return [
        replace(item, campaign_name=HOSTILE) if item.form_id == "F-ebook" else item
        for item in LEADS
    ]


def terminal(report) -> str:
    console = Console(record=True, width=220)
    console.print(*render_tables(report))
    return console.export_text()


def test_terminal_table_has_groups_total_marks_and_what_they_suggest():
    text = terminal(build_report(LEADS, SINCE, "form"))
    demo = next(line for line in text.splitlines() if "demo form" in line and "│" in line)
    assert re.search(r"│\s+10 │\s+3 │\s+30% │\s+33% ! │\s+33% │\s+50% │\s+33% │\s+1\.50× │", demo)
    assert "1,500.50" in demo and "3 h" in demo and "15 d" in demo
    ebook = next(line for line in text.splitlines() if "ebook form" in line and "│" in line)
    assert "0% !" in ebook and ebook.count("—") == 7  # no MQLs, nothing closed: dashes
    total = next(line for line in text.splitlines() if "Total" in line)
    assert re.search(r"│\s+15 │\s+3 │\s+20% │", total)
    assert "- ebook form: Few leads become MQLs: the threshold may be too high." in text
    assert "- demo form: More MQLs become SQLs than usual" in text


def test_an_empty_window_renders_dashes_in_both_forms():
    report = build_report(LEADS, SINCE + 200 * H * 24, "owner")  # since is in the future
    assert "0 leads, 0 MQLs, 0 won" in terminal(report)
    html = render_html(report)
    assert "no leads in this window" in html and html.count("<svg") == 3


@pytest.mark.parametrize(
    ("hours", "text"), [(None, "—"), (0.25, "15 min"), (3, "3 h"), (3.5, "3.5 h"), (240, "10 d")]
)
def test_durations_read_in_a_unit_people_use(hours, text):
    assert duration(None if hours is None else hours * H) == text


def test_html_escapes_names_and_holds_no_url_no_script():
    html = render_html(build_report(hostile_leads(), SINCE, "campaign"))
    assert "<script>" not in html and "<img" not in html
    assert "Q3 &lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt; &amp; &lt;img" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.I)
    assert " style=" not in html  # the admin CSP allows the one stylesheet, no inline styles


@pytest.mark.browser
def test_html_report_renders_in_chromium_with_its_charts_and_fetches_nothing(tmp_path):
    executable = require_chromium()
    source = tmp_path / "report.html"
    source.write_text(render_html(build_report(hostile_leads(), SINCE, "campaign")), "utf-8")
    with chromium_page(executable) as page:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(source.as_uri())
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert page.title() == "leadsync report by campaign"  # the hostile name did not run
        rows = page.locator("#figures tbody tr")
        assert rows.count() == 2
        cells = [c.strip() for c in rows.nth(1).locator("td").all_inner_texts()]
        assert cells[0] == HOSTILE and cells[1:4] == ["5", "0", "0% !"]
        assert page.locator("#figures tfoot td").first.inner_text() == "Total"
        assert "Few leads become MQLs" in page.locator("#notes").inner_text()
        charts = page.locator("svg[role=img]")
        assert charts.count() == 3
        for index in range(3):
            box = charts.nth(index).bounding_box()
            assert box and box["width"] > 300 and box["height"] > 60  # drawn, not collapsed
        assert page.locator("svg rect").count() > 10  # funnel and band bars
        assert page.locator("img, script, link, iframe").count() == 0
    assert requested == [source.as_uri()]  # the page itself, nothing else
    width, _ = png_size(SCREENSHOT)
    assert width == 1280 and SCREENSHOT.stat().st_size > 20_000


def test_charts_keep_to_the_largest_groups_and_say_so_while_the_table_has_all():
    leads = [lead(n, f"form{n:02}", n % 3 == 0) for n in range(20)]
    html = render_html(build_report(leads, SINCE, "form"))
    assert html.count("(largest 12 of 20)") == 9  # each chart: heading, <title>, aria-label
    assert all(f"<td>form{n:02} form</td>" in html for n in range(20))
