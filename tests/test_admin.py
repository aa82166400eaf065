"""The status page and /metrics behind `[server] admin_token`, and the security headers on
every response (server/admin.py, server/app.py)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from tests.daemon_harness import DaemonThread, daemon_settings
from tests.e2e.process import LeadsyncProcess, free_port, write_config

ADMIN = "admin-secret-4242"


@pytest.fixture(scope="module")
def graph():
    with GraphEmulator() as emu:
        yield emu


@pytest.fixture(scope="module", params=["in-process", "leadsync run"])
def guarded(request, graph, tmp_path_factory):
    """One daemon with an admin token: in this process, and as `leadsync run` (two processes,
    where the HTTP process passes the pages on to its worker and adds its own figures)."""
    folder = tmp_path_factory.mktemp("admin")
    store_url = f"sqlite:///{folder / 'l.db'}"
    if request.param == "in-process":
        settings = daemon_settings(graph, store_url, pages=[], server={"admin_token": ADMIN})
        with DaemonThread(settings) as daemon:
            yield daemon
        return
    port = free_port()
    server = f'admin_token = "{ADMIN}"'
    config = write_config(folder / "l.toml", graph, store_url, port, [], server=server)
    daemon = LeadsyncProcess(config, port, folder / "l.log").start()
    try:
        yield daemon
    finally:
        daemon.ensure_stopped()


def get(running, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{running.url}{path}", timeout=10, allow_redirects=False, **kwargs)


def test_status_page_and_metrics_need_the_admin_token(guarded):
    page, metrics = get(guarded, "/"), get(guarded, "/metrics")
    assert page.status_code == 401 and 'action="/login"' in page.text
    assert "leadsync_" not in page.text  # the form only, nothing of the status
    assert metrics.status_code == 401 and "leadsync_" not in metrics.text
    wrong = {"Authorization": "Bearer not-it"}
    assert get(guarded, "/", headers=wrong).status_code == 401
    assert get(guarded, "/metrics", headers={"Authorization": ADMIN}).status_code == 401


def test_a_bearer_token_opens_both_for_scrapers_and_scripts(guarded):
    auth = {"Authorization": f"Bearer {ADMIN}"}
    metrics = get(guarded, "/metrics", headers=auth)
    assert metrics.status_code == 200 and "leadsync_webhook_notifications" in metrics.text
    page = get(guarded, "/", headers=auth)
    assert page.status_code == 200 and 'id="summary"' in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_the_browser_signs_in_once_with_a_cookie_that_is_not_the_token(guarded):
    wrong = requests.post(f"{guarded.url}/login", data={"token": "guess"}, timeout=10)
    assert wrong.status_code == 401 and "not the admin token" in wrong.text
    session = requests.Session()
    signed_in = session.post(
        f"{guarded.url}/login", data={"token": ADMIN}, timeout=10, allow_redirects=False
    )
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/"
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ADMIN not in cookie
    assert session.get(f"{guarded.url}/", timeout=10).status_code == 200
    assert session.get(f"{guarded.url}/metrics", timeout=10).status_code == 200


def test_healthz_stays_open_for_load_balancers(guarded):
    reply = get(guarded, "/healthz")
    assert reply.status_code in (200, 503) and reply.json()["status"] in ("ok", "unhealthy")
    assert all(":" not in reason for reason in reply.json()["reasons"])  # codes only


def test_leadsync_run_shows_both_processes_in_metrics_health_and_the_page(graph, tmp_path):
    """The HTTP process answers /metrics and /healthz for itself and its worker: each figure
    once, the worker's state from the supervisor, and the page from the worker."""
    port = free_port()
    config = write_config(tmp_path / "l.toml", graph, f"sqlite:///{tmp_path / 'l.db'}", port, [])
    daemon = LeadsyncProcess(config, port, tmp_path / "l.log").start()
    try:
        metrics = get(daemon, "/metrics").text
        for name in ("leadsync_webhook_notifications", "leadsync_leads_ingested"):
            helps = re.findall(rf"^# HELP {name}(?:_total)? ", metrics, flags=re.M)
            assert len(helps) == 1, name  # one of the two processes counts each
        assert "leadsync_worker_up 1.0" in metrics
        assert "leadsync_worker_restarts_total 0.0" in metrics
        health = get(daemon, "/healthz").json()
        assert health["worker"] == {"alive": True, "restarts": 0}
        page = get(daemon, "/")
        assert page.status_code == 200
        assert f"Worker process {daemon.worker_pid}" in " ".join(page.text.split())
    finally:
        daemon.ensure_stopped()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/healthz"), ("GET", "/webhook"), ("POST", "/events"),
     ("GET", "/nowhere"), ("POST", "/login")],
)  # fmt: skip
def test_every_response_carries_security_headers_and_no_versions(guarded, method, path):
    reply = requests.request(method, f"{guarded.url}{path}", timeout=10)
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert not re.search(r"aiohttp|Python", reply.headers.get("Server", ""))


def test_the_policy_allows_exactly_the_page_stylesheet(guarded):
    """A browser applies the page's <style> only when its hash is in the CSP."""
    page = get(guarded, "/", headers={"Authorization": f"Bearer {ADMIN}"})
    (style,) = re.findall(r"<style>(.*?)</style>", page.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in page.headers["Content-Security-Policy"]
    assert "style=" not in page.text and "<script" not in page.text


def test_without_an_admin_token_both_stay_open(graph, tmp_path):
    settings = daemon_settings(graph, f"sqlite:///{tmp_path / 'l.db'}", pages=[])
    with DaemonThread(settings) as running:
        assert get(running, "/").status_code == 200
        assert get(running, "/metrics").status_code == 200


def test_leadsync_run_serves_the_page_and_metrics_on_its_admin_port_only(graph, tmp_path):
    port, admin_port = free_port(), free_port()
    server = f"admin_port = {admin_port}"
    config = write_config(
        tmp_path / "l.toml", graph, f"sqlite:///{tmp_path / 'l.db'}", port, [], server=server
    )
    daemon = LeadsyncProcess(config, port, tmp_path / "l.log").start()
    admin_url = f"http://127.0.0.1:{admin_port}"
    try:
        assert get(daemon, "/").status_code == 404
        assert get(daemon, "/metrics").status_code == 404
        page = requests.get(f"{admin_url}/", timeout=10)
        assert page.status_code == 200 and 'id="summary"' in page.text
        assert "leadsync_worker_up 1.0" in requests.get(f"{admin_url}/metrics", timeout=10).text
        assert requests.get(f"{admin_url}/healthz", timeout=10).status_code == 200
        assert requests.post(f"{admin_url}/webhook", timeout=10).status_code in (404, 405)
    finally:
        daemon.ensure_stopped()


def test_an_admin_port_serves_the_page_and_metrics_on_loopback_only(graph, tmp_path):
    """With `admin_port`, the public port no longer serves them; /healthz is on both."""
    settings = daemon_settings(
        graph, f"sqlite:///{tmp_path / 'l.db'}", pages=[], server={"admin_port": 0}
    )
    with DaemonThread(settings) as running:
        admin_url = f"http://127.0.0.1:{running.daemon.admin_port}"
        assert running.daemon.admin_port not in (None, running.daemon.port)
        assert get(running, "/").status_code == 404
        assert get(running, "/metrics").status_code == 404
        assert get(running, "/healthz").status_code in (200, 503)
        page = requests.get(f"{admin_url}/", timeout=10)
        assert page.status_code == 200 and 'id="summary"' in page.text
        assert "leadsync_" in requests.get(f"{admin_url}/metrics", timeout=10).text
        assert requests.get(f"{admin_url}/healthz", timeout=10).status_code in (200, 503)
        assert requests.post(f"{admin_url}/webhook", timeout=10).status_code in (404, 405)
