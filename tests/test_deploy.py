"""The files in deploy/ agree with each other and with leadsync's config.

Docker is not available to the test suite, so the compose setup is never run
here; these tests check what can go wrong without running it: the replicas'
config loads with exactly the environment compose gives them, every variable
compose needs is in `.env.example`, Caddy balances over every replica with
`/healthz` as its health check, and the stop grace periods cover leadsync's.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from typer.main import get_command

from leadsync.cli import app
from leadsync.config import parse_config
from leadsync.constants import SHUTDOWN_GRACE_SECONDS
from leadsync.emulators.sheets import SheetsEmulator

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = (DEPLOY / "docker-compose.yml").read_text()
CADDYFILE = (DEPLOY / "Caddyfile").read_text()
DOCS = (ROOT / "docs" / "deployment.md").read_text()

# ${NAME}, ${NAME:?message} or ${NAME:-default}, as docker compose interpolates them.
COMPOSE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[?-][^}]*)?\}")


def env_example() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name: value or f"test-{name.lower()}" for name, value in pairs}


def replica_environment() -> dict[str, str]:
    """The `environment:` of the x-leadsync anchor, interpolated from .env.example."""
    block = COMPOSE.split("  environment:\n", 1)[1].split("\n  secrets:", 1)[0]
    values = dict(re.findall(r"^    ([A-Z_]+): (.+)$", block, flags=re.M))
    example = env_example()
    return {
        name: COMPOSE_VARIABLE.sub(lambda m: example[m[1]], value) for name, value in values.items()
    }


def replica_services() -> list[str]:
    return re.findall(r"^  (leadsync-\d+):\n    <<: \*leadsync$", COMPOSE, flags=re.M)


def test_the_replicas_config_loads_with_the_environment_compose_gives_them(tmp_path):
    environ = replica_environment()
    key_file = tmp_path / "google-service-account"  # compose mounts the secret at this name
    key_file.write_text(json.dumps(SheetsEmulator().service_account()))
    assert environ["GOOGLE_CREDENTIALS"] == "/run/secrets/google-service-account"
    environ["GOOGLE_CREDENTIALS"] = str(key_file)
    raw = tomllib.loads((DEPLOY / "leadsync.toml").read_text())
    settings = parse_config(raw, environ)
    assert settings.store.url.startswith("postgresql://leadsync:")
    assert settings.store.url.endswith("@postgres:5432/leadsync")
    assert [d.type for d in settings.destinations] == ["google_sheets"]
    assert environ["LEADSYNC_CONFIG"] == "/etc/leadsync/leadsync.toml"
    assert "./leadsync.toml:/etc/leadsync/leadsync.toml:ro" in COMPOSE


def test_every_variable_compose_needs_is_in_env_example():
    needed = set(COMPOSE_VARIABLE.findall(COMPOSE))
    assert needed and needed <= set(env_example()), needed - set(env_example())


def test_caddy_balances_over_every_replica_and_checks_healthz():
    services = replica_services()
    assert services == ["leadsync-1", "leadsync-2", "leadsync-3"]
    upstreams = re.search(r"reverse_proxy (.+) \{", CADDYFILE)
    assert upstreams is not None
    assert upstreams[1].split() == [f"{service}:8080" for service in services]
    assert re.search(r"^\s+health_uri /healthz$", CADDYFILE, flags=re.M)
    assert re.search(r"^\s+lb_retries [1-9]", CADDYFILE, flags=re.M)


def test_grace_periods_give_leadsync_its_shutdown_time():
    compose_grace = re.search(r"stop_grace_period: (\d+)s", COMPOSE)
    kubernetes_grace = re.search(r"terminationGracePeriodSeconds: (\d+)", DOCS)
    assert compose_grace is not None and kubernetes_grace is not None
    assert int(compose_grace[1]) >= SHUTDOWN_GRACE_SECONDS + 5
    assert int(kubernetes_grace[1]) >= SHUTDOWN_GRACE_SECONDS + 5


def test_the_docker_healthcheck_asks_the_configured_port():
    """The HEALTHCHECK runs `leadsync healthcheck`, which reads [server] port from the config."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    check = re.search(r"^HEALTHCHECK (.+?)\n(?=\S|\n)", dockerfile, flags=re.M | re.S)
    assert check is not None
    command = check[1].split("CMD", 1)[1]
    assert json.loads(command) == ["leadsync", "healthcheck"]
    assert not re.search(r"\b\d{4,5}\b", command), "no port written into the probe"
    assert "healthcheck" in [c.name for c in get_command(app).commands.values()]  # type: ignore[attr-defined]
    env = re.search(r"LEADSYNC_CONFIG=(\S+)", dockerfile)
    assert env is not None and env[1] == "/etc/leadsync/leadsync.toml"
