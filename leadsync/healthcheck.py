"""`leadsync healthcheck`: asks the running daemon's `/healthz` on the port its config names.

The container's HEALTHCHECK runs it, so the probe follows `[server] port` (and
`host`) instead of a port written into the Dockerfile. A daemon listening on
every interface is asked on the loopback address. `/healthz` always stays on
the main server, whatever other listeners the daemon opens.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from leadsync.config import ServerSettings

# Docker's HEALTHCHECK kills the probe after --timeout=5s: answer before that, with a reason.
PROBE_TIMEOUT_SECONDS = 4.0
# Addresses that mean "every interface": a client reaches them on the loopback address.
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}  # noqa: S104 - compared against, not bound


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str


def healthz_url(server: ServerSettings) -> str:
    """Where the daemon with these server settings answers /healthz."""
    host = server.host
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1" if host != "::" else "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}/healthz"


def probe(server: ServerSettings, timeout: float = PROBE_TIMEOUT_SECONDS) -> ProbeResult:
    """Healthy when /healthz answers 200; otherwise what it said, or why it could not be asked."""
    url = healthz_url(server)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - http only
            return ProbeResult(reply.status == 200, f"{url}: healthy")
    except urllib.error.HTTPError as exc:  # 503 with the reasons
        return ProbeResult(False, f"{url}: unhealthy: {_reasons(exc.read()) or exc.code}")
    except (OSError, ValueError) as exc:  # refused, timed out, not HTTP
        return ProbeResult(False, f"{url}: no answer ({type(exc).__name__}: {exc})")


def _reasons(body: bytes) -> str:
    try:
        reasons = json.loads(body).get("reasons", [])
    except (ValueError, AttributeError):
        return ""
    return "; ".join(str(reason) for reason in reasons)
