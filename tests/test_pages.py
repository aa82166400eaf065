"""`leadsync pages` and `leadsync subscribe` through the real CLI against the Graph emulator.

The emulator answers `/{page}/subscribed_apps` only to the page's own token
(error 210 otherwise), as Graph does, so these tests prove the commands fetch
and use page tokens from `/me/accounts`.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from leadsync.cli import app
from leadsync.emulators.graph import GraphEmulator
from leadsync.errors import AuthError
from leadsync.facebook import pages
from leadsync.facebook.graph import GraphClient
from tests.cli_config import write_cli_config

runner = CliRunner()


@pytest.fixture
def graph():
    with GraphEmulator() as emu:
        emu.add_page("111", "Acme")
        emu.add_page("222", "Beta")
        emu.subscribe_app("111")
        yield emu


def write_config(tmp_path, emu: GraphEmulator, token: str = "") -> str:
    return write_cli_config(tmp_path, emu, pages=["111", "222"], token=token)


def row(output: str, page_id: str) -> str:
    return next(line for line in output.splitlines() if page_id in line)


def test_pages_lists_managed_pages_with_their_subscription(graph, tmp_path):
    result = runner.invoke(app, ["pages", "-c", write_config(tmp_path, graph)])
    assert result.exit_code == 0, result.output
    assert "Acme" in row(result.output, "111") and "not subscribed" not in row(result.output, "111")
    assert "not subscribed" in row(result.output, "222")
    assert graph.page_token("111") not in result.output


def test_subscribe_one_page_with_its_page_token(graph, tmp_path):
    result = runner.invoke(app, ["subscribe", "222", "-c", write_config(tmp_path, graph)])
    assert result.exit_code == 0, result.output
    assert "page 222 (Beta): subscribed to leadgen" in result.output
    assert graph.subscribed_fields("222") == ["leadgen"]
    posts = [p for m, path, p in graph.requests if m == "POST" and path == "/222/subscribed_apps"]
    assert [p["access_token"] for p in posts] == [graph.page_token("222")]


def test_subscribe_all_keeps_fields_already_subscribed(graph, tmp_path):
    graph.subscribe_app("111", ["feed"])
    result = runner.invoke(app, ["subscribe", "--all", "-c", write_config(tmp_path, graph)])
    assert result.exit_code == 0, result.output
    assert sorted(graph.subscribed_fields("111")) == ["feed", "leadgen"]
    assert graph.subscribed_fields("222") == ["leadgen"]


def test_subscribe_a_page_the_token_does_not_manage_says_so(graph, tmp_path):
    result = runner.invoke(app, ["subscribe", "999", "-c", write_config(tmp_path, graph)])
    assert result.exit_code == 1
    assert "page 999: the token does not manage this page" in result.output


def test_subscribe_with_a_page_token_in_the_config_works_for_that_page(graph, tmp_path):
    config = write_config(tmp_path, graph, token=graph.page_token("222"))
    result = runner.invoke(app, ["subscribe", "--all", "-c", config])
    assert result.exit_code == 0, result.output
    assert graph.subscribed_fields("222") == ["leadgen"]


def test_subscribing_with_the_system_user_token_is_refused_by_graph(graph):
    """Why the commands fetch page tokens: Graph answers 210 to any other token."""
    client = GraphClient(
        access_token=graph.access_token, app_secret=graph.app_secret, graph_url=graph.url
    )
    with pytest.raises(AuthError, match="210"):
        client.request(
            "POST", ("222", "subscribed_apps"), "subscription", subscribed_fields="leadgen"
        )
    assert pages.subscribe(client, "222") == {"leadgen"}
