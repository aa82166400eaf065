"""`leadsync run` stops cleanly on SIGTERM: exit code 0 and not one error in its log.

An operator (or an alert rule) reads ERROR lines and tracebacks as something
broken; a routine stop — a deploy, `docker stop` — must leave none.
"""

from __future__ import annotations

import json

import pytest

from leadsync.emulators.graph import GraphEmulator
from tests.daemon_harness import wait_until
from tests.e2e.process import LeadsyncProcess, free_port, write_config

pytestmark = pytest.mark.e2e

PAGE = "111"


def error_lines(output: str) -> list[str]:
    """Lines an operator reads as a failure: ERROR-level events and tracebacks."""
    bad = []
    for line in output.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("level") in ("error", "critical") or "exception" in event:
                bad.append(line)
        elif "Traceback" in line or "ERROR" in line:
            bad.append(line)
    return bad


def test_sigterm_while_a_poll_is_in_hand_exits_0_and_logs_no_error(tmp_path):
    """The scheduler's poll coroutine is running at SIGTERM: it ends, it is not an error."""
    with GraphEmulator() as graph:
        graph.add_form(PAGE, "Stop", ["full_name", "email"])
        port = free_port()
        config = write_config(
            tmp_path / "leadsync.toml", graph, f"sqlite:///{tmp_path / 'leadsync.db'}", port,
            [PAGE], poll_interval="1s",
        )  # fmt: skip
        daemon = LeadsyncProcess(config, port, tmp_path / "leadsync.log").start()
        try:
            wait_until(lambda: '"page.polled"' in daemon.output(), 30, "a first poll")
            forms_path = f"/{PAGE}/leadgen_forms"
            asked = graph.call_count(forms_path)
            graph.inject_fault("slow", path=forms_path, seconds=3)
            wait_until(lambda: graph.call_count(forms_path) > asked, 30, "a slow poll in hand")
            assert daemon.terminate() == 0, daemon.output()[-3000:]
        finally:
            daemon.ensure_stopped()
        assert error_lines(daemon.output()) == []
        assert '"daemon.stopped"' in daemon.output()
