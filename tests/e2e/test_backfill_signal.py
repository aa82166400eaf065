"""`leadsync backfill` as a real process: SIGTERM during a throttle wait stops it cleanly.

The Graph emulator throttles the second list call with a one-minute
`estimated_time_to_regain_access`; the process announces the wait, gets SIGTERM,
exits 130 at once (the wait is on the stop event, not a sleep) with the first
page stored and its cursor saved; the next run goes on from that cursor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

from typer.testing import CliRunner

from leadsync.cli import app
from leadsync.emulators.graph import GraphEmulator
from leadsync.models import utcnow
from leadsync.store import open_store
from tests.cli_config import write_cli_config
from tests.daemon_harness import wait_until


def test_sigterm_during_a_throttle_wait_exits_and_the_next_run_resumes(tmp_path):
    with GraphEmulator() as graph:
        graph.add_page("111", "Acme")
        form_id = graph.add_form("111", "Big", ["email"])
        start = utcnow() - timedelta(days=5)
        for n in range(250):
            graph.create_lead(
                form_id, {"email": f"{n}@a.co"}, created_time=start + timedelta(minutes=n)
            )
        path = f"/{form_id}/leads"
        graph.inject_fault("slow", path=path, seconds=0)  # the first read passes untouched
        graph.inject_fault(80005, path=path, regain_minutes=1)  # the second is throttled
        config = write_cli_config(tmp_path, graph)
        log = tmp_path / "backfill.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
        cmd = [sys.executable, "-m", "leadsync", "backfill", "-c", str(config)]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
            try:
                wait_until(lambda: "waiting 60s" in log.read_text(), 30, "the throttle wait")
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=20) == 130, log.read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
        assert "run `leadsync backfill` again" in log.read_text()
        store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
        assert store.count_leads() == 100
        store.close()

        again = CliRunner().invoke(app, ["backfill", "-c", str(config)])
        assert again.exit_code == 0, again.output
        assert "resuming after 100" in again.output
        assert "150 leads read, 150 new" in again.output
