"""`leadsync check` against the emulators: each problem named with its fix, and nothing changed.

The real CLI (typer's runner), the real SDKs over HTTP to the Graph, Sheets and
HubSpot emulators. The Graph emulator refuses lead reads the way Graph does
(no leads_retrieval scope; a page whose Leads Access Manager leaves our app
out); check must say which, and must not create HubSpot properties, write a
sheet header or store a lead.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from leadsync.check import REQUIRED_SCOPES
from leadsync.cli import app
from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.hubspot import HubSpotEmulator
from tests.cli_config import write_cli_config

runner = CliRunner()
HUBSPOT_TOKEN = "pat-na1-00000000-1111-2222-3333-444444444444"


@pytest.fixture
def graph():
    with GraphEmulator() as emu:
        emu.add_page("111", "Acme")
        emu.subscribe_app("111")
        form_id = emu.add_form("111", "Demo", ["email"])
        emu.create_lead(form_id, {"email": "ana@acme.com"})
        yield emu


@pytest.fixture
def hubspot():
    with HubSpotEmulator(token=HUBSPOT_TOKEN) as emu:
        yield emu


def write_config(tmp_path, graph, *, token: str = "", destinations: str = "") -> str:
    return write_cli_config(tmp_path, graph, token=token, extra=destinations)


def failures(output: str) -> list[str]:
    """The FAIL findings, each on one line again (rich wraps long lines)."""
    text = " ".join(output.split()).replace(" FAIL ", "\nFAIL ").replace(" ok ", "\nok ")
    return [line for line in text.splitlines() if line.startswith("FAIL")]


def test_check_reads_one_lead_per_form_and_stores_nothing(graph, tmp_path):
    result = runner.invoke(app, ["check", "-c", write_config(tmp_path, graph)])
    assert result.exit_code == 0, result.output
    assert "page 111: leads of 1 forms readable" in result.output
    assert "facebook token: has leads_retrieval" in result.output
    [read] = [p for m, path, p in graph.requests if path.endswith("/leads")]
    assert read["limit"] == "1"
    assert not (tmp_path / "l.db").exists()  # check never opens the store


def test_check_names_a_missing_leads_retrieval_scope_with_its_fix(graph, tmp_path):
    scopes = [scope for scope in REQUIRED_SCOPES if scope != "leads_retrieval"]
    token = graph.issue_token("token-without-leads", scopes=scopes)
    result = runner.invoke(app, ["check", "-c", write_config(tmp_path, graph, token=token)])
    assert result.exit_code == 1
    lines = failures(result.output)
    assert any(
        "lacks the leads_retrieval permission" in line and "Generate new token" in line
        for line in lines
    )
    assert any(
        "refused to give the app the leads" in line and "leads_retrieval" in line for line in lines
    )
    assert token not in result.output


def test_check_names_leads_access_manager_when_the_page_blocks_the_app(graph, tmp_path):
    graph.set_lead_access("111", False)
    result = runner.invoke(app, ["check", "-c", write_config(tmp_path, graph)])
    assert result.exit_code == 1
    [line] = failures(result.output)
    assert line.startswith("FAIL page 111: Facebook refused to give the app the leads of form")
    assert "(Graph error 200) - Leads Access Manager" in line
    assert "add the app under CRMs" in line


def test_check_reports_hubspot_properties_it_would_create_but_creates_none(
    graph, hubspot, tmp_path
):
    before = hubspot.properties()
    destination = f"""
[[destinations]]
name = "crm"
type = "hubspot"
token = "{HUBSPOT_TOKEN}"
api_url = "{hubspot.url}"
"""
    config = write_config(tmp_path, graph, destinations=destination)
    result = runner.invoke(app, ["check", "-c", config])
    assert result.exit_code == 0, result.output
    assert "destination crm: ready; the daemon will create the contact properties" in result.output
    assert "leadsync_lead_id" in result.output
    assert hubspot.properties() == before
    assert not [k for k, n in hubspot.request_counts.items() if n and not k.startswith("GET")]


def test_check_reports_a_hubspot_mapping_to_a_missing_property(graph, hubspot, tmp_path):
    destination = f"""
[[destinations]]
name = "crm"
type = "hubspot"
token = "{HUBSPOT_TOKEN}"
api_url = "{hubspot.url}"
properties = {{ budget = "no_such_property" }}
"""
    config = write_config(tmp_path, graph, destinations=destination)
    result = runner.invoke(app, ["check", "-c", config])
    assert result.exit_code == 1
    assert any("no_such_property" in line for line in failures(result.output))


@pytest.mark.parametrize("worksheets", [["Leads"], ["Other"]], ids=["empty", "missing"])
def test_check_leaves_the_sheet_unchanged(graph, sheets, tmp_path, worksheets):
    key = sheets.service_account()
    (tmp_path / "key.json").write_text(json.dumps(key))
    book = sheets.create_spreadsheet("book", "Sales", worksheets, [key["client_email"]])
    destination = f"""
[[destinations]]
name = "sheet"
type = "google_sheets"
spreadsheet = "{book}"
credentials = "{tmp_path / "key.json"}"
api_url = "{sheets.url}"
"""
    config = write_config(tmp_path, graph, destinations=destination)
    result = runner.invoke(app, ["check", "-c", config])
    assert result.exit_code == 0, result.output
    assert "destination sheet: ready; the daemon will" in result.output
    assert sheets.worksheet_titles(book) == worksheets
    assert sheets.values(book, worksheets[0]) == []
    assert sheets.writes == 0
