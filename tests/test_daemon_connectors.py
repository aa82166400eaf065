"""The daemon builds each destination's connector through the registry (an entry-point type
here, as a plugin is installed) and closes every one of them when it stops; `leadsync check`
closes what it opened too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadsync.check import check_destination
from tests import memory_connector
from tests.daemon_harness import DaemonThread, daemon_settings


@pytest.fixture
def memory_type(tmp_path, monkeypatch) -> Iterator[dict[str, memory_connector.MemoryService]]:
    """The `memory` destination type installed through the entry point; its services by key."""
    memory_connector.register(tmp_path / "site", monkeypatch)
    yield memory_connector.DESTINATIONS
    memory_connector.DESTINATIONS.clear()


def test_a_stopped_daemon_closes_each_connector(graph, tmp_path, memory_type):
    destinations = [
        {"name": "crm", "type": "memory", "destination": "stop-crm"},
        {"name": "archive", "type": "memory", "destination": "stop-archive"},
    ]
    settings = daemon_settings(
        graph, f"sqlite:///{tmp_path / 'l.db'}", pages=[], destinations=destinations
    )
    with DaemonThread(settings):
        services = [memory_type["stop-crm"], memory_type["stop-archive"]]
        assert [(s.sessions_opened, s.sessions_closed) for s in services] == [(1, 0), (1, 0)]

    assert [(s.sessions_opened, s.sessions_closed) for s in services] == [(1, 1), (1, 1)]


def test_check_closes_the_connector_it_opened(graph, tmp_path, memory_type):
    destinations = [{"name": "crm", "type": "memory", "destination": "check-crm"}]
    settings = daemon_settings(
        graph, f"sqlite:///{tmp_path / 'l.db'}", pages=[], destinations=destinations
    )

    finding = check_destination(settings.destinations[0])

    assert finding.ok
    service = memory_type["check-crm"]
    assert (service.sessions_opened, service.sessions_closed) == (1, 1)
