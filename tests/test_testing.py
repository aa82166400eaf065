"""The shipped connector test kit (`leadsync.testing`) works for a third-party connector: a tiny
in-memory destination registered through the entry point passes it, and a connector that breaks
the contract fails it, on exactly the broken promises (run by pytest in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import connectors
from leadsync.abc import Connector
from leadsync.errors import ConfigError
from leadsync.testing import ConnectorContract
from tests import memory_connector
from tests.memory_connector import MemoryHarness

ROOT = Path(__file__).resolve().parent.parent


class TestMemoryConnector(ConnectorContract):
    """A third-party connector proves itself with one import and one class."""

    harness_class = MemoryHarness


FORGETFUL = """
from leadsync.testing import ConnectorContract
from tests.memory_connector import MemoryConnector, MemoryHarness, Settings


class ForgetfulConnector(MemoryConnector):
    '''Appends a record on every delivery instead of upserting by lead id.'''

    def store(self, scored):
        record = {"score": scored.score.points, "mql": scored.score.mql}
        self.service.records.setdefault(scored.lead.id, []).append(record)


class ForgetfulHarness(MemoryHarness):
    def build(self, **overrides):
        return ForgetfulConnector("forgetful", Settings(destination=self.key, **overrides))


class TestForgetful(ConnectorContract):
    harness_class = ForgetfulHarness
"""


def run_pytest(directory: Path, source: str) -> dict[str, str]:
    """Runs pytest on `source` in a fresh process; the outcome of each test, by test name."""
    (directory / "test_plugin.py").write_text(textwrap.dedent(source), encoding="utf-8")
    report = directory / "report.xml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    subprocess.run(
        [*command, f"--junitxml={report}", "test_plugin.py"],
        cwd=directory,
        env=env,
        capture_output=True,
        timeout=90,
        check=False,
    )
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name", "")] = kinds[0] if kinds else "passed"
    return outcomes


def test_a_connector_that_appends_instead_of_upserting_fails_the_shipped_suite(tmp_path):
    outcomes = run_pytest(tmp_path, FORGETFUL)

    failed = {name for name, kind in outcomes.items() if kind != "passed"}
    assert failed == {
        "test_redelivering_the_same_revision_makes_no_duplicate",
        "test_a_new_revision_updates_the_lead_in_place",
    }
    assert len(outcomes) > 10  # the rest of the suite ran, and passed


def test_an_entry_point_connector_is_built_through_the_registry(tmp_path, monkeypatch):
    memory_connector.register(tmp_path, monkeypatch)

    built = connectors.build("memory", "crm", memory_connector.Settings())

    assert "memory" in connectors.available_types()
    assert isinstance(built, Connector) and built.ready_in() == 0.0
    built.close()


def test_a_connector_missing_a_member_is_refused_with_the_fix(tmp_path, monkeypatch):
    """An old plugin without check_ready, ready_in and close fails at start, not later."""
    (tmp_path / "legacy_destination.py").write_text(
        "from pydantic import BaseModel\n"
        "class Settings(BaseModel):\n    pass\n"
        "class Legacy:\n"
        "    name = 'legacy'\n"
        "    def ensure_ready(self): pass\n"
        "    def deliver(self, batch): return []\n"
        "def build(name, settings):\n    return Legacy()\n",
        encoding="utf-8",
    )
    monkeypatch.setitem(connectors.BUILTIN, "legacy", "legacy_destination")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(ConfigError) as caught:
        connectors.build("legacy", "old", None, path="destinations[0].type")

    [problem] = caught.value.problems
    assert problem.path == "destinations[0].type"
    assert "without check_ready, ready_in, close" in problem.message
    assert "ConnectorBase" in problem.fix
