"""`leadsync healthcheck` asks the running daemon's /healthz on the port its config names."""

from __future__ import annotations

from typer.testing import CliRunner

from leadsync.cli import app
from leadsync.config import ServerSettings
from leadsync.healthcheck import healthz_url
from tests.daemon_harness import DaemonThread, daemon_settings
from tests.e2e.process import free_port, write_config

runner = CliRunner()


def test_healthcheck_follows_the_configured_port(graph, tmp_path):
    port = free_port()
    store_url = f"sqlite:///{tmp_path / 'leadsync.db'}"
    config = write_config(tmp_path / "leadsync.toml", graph, store_url, port, [])
    settings = daemon_settings(graph, store_url, pages=[], server={"port": port})
    with DaemonThread(settings) as running:
        assert running.daemon is not None and running.daemon.port == port != 8080
        done = runner.invoke(app, ["healthcheck", "-c", str(config)])
        assert done.exit_code == 0, done.output
        assert f"127.0.0.1:{port}/healthz: healthy" in done.output


def test_healthcheck_fails_with_the_reason_when_nothing_answers(graph, tmp_path):
    port = free_port()
    config = write_config(tmp_path / "leadsync.toml", graph, "sqlite:///x.db", port, [])
    done = runner.invoke(app, ["healthcheck", "-c", str(config)])
    assert done.exit_code == 1
    assert f"127.0.0.1:{port}/healthz: no answer" in done.output


def test_a_daemon_on_every_interface_is_asked_on_loopback():
    assert healthz_url(ServerSettings(host="0.0.0.0", port=9000)) == "http://127.0.0.1:9000/healthz"
    assert healthz_url(ServerSettings(host="::", port=9000)) == "http://[::1]:9000/healthz"
    assert healthz_url(ServerSettings(host="10.0.0.5", port=81)) == "http://10.0.0.5:81/healthz"
