"""`leadsync check`: is this config going to work? One line per problem, each with its fix.

First offline (the config itself), then online: the token is valid and when
it expires, each page is reachable, our app is subscribed to the page's
`leadgen` field (else no webhook ever arrives), forms are visible, and each
destination is ready (sheet shared, header writable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import connectors
from leadsync.config import Settings
from leadsync.daemon import graph_client
from leadsync.errors import LeadsyncError
from leadsync.facebook import pages
from leadsync.facebook.graph import GraphClient
from leadsync.models import utcnow

# A token that expires sooner than this is worth a warning now, not an outage later.
EXPIRY_WARNING = timedelta(days=7)


@dataclass(frozen=True)
class Finding:
    ok: bool
    subject: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.subject}: {self.message}" + (f" -> {self.fix}" if self.fix else "")


def run_checks(settings: Settings) -> list[Finding]:
    """Every online check, in order; the config itself was validated when it was loaded."""
    graph = graph_client(settings)
    findings = check_token(graph)
    if not all(f.ok for f in findings):
        return findings  # with a bad token every page check would fail the same way
    for page in settings.facebook.pages:
        findings += check_page(graph, page.id)
    for dest in settings.destinations:
        findings.append(check_destination(dest))
    return findings


def check_token(graph: GraphClient) -> list[Finding]:
    try:
        info = graph.token_info()
    except LeadsyncError as exc:
        return [Finding(False, "facebook token", str(exc), "check facebook.access_token")]
    if not info.valid:
        fix = "create a system-user token in Business Settings and put it in facebook.access_token"
        return [Finding(False, "facebook token", f"invalid: {info.error}", fix)]
    if info.expires_at is None:
        return [Finding(True, "facebook token", f"valid ({info.type}), never expires")]
    left = info.expires_at - utcnow()
    if left < EXPIRY_WARNING:
        fix = "replace it with a system-user token, which does not expire"
        return [
            Finding(
                False, "facebook token", f"expires at {info.expires_at:%Y-%m-%d %H:%M} UTC", fix
            )
        ]
    return [
        Finding(True, "facebook token", f"valid ({info.type}), expires {info.expires_at:%Y-%m-%d}")
    ]


def check_page(graph: GraphClient, page_id: str) -> list[Finding]:
    subject = f"page {page_id}"
    try:
        name = graph.page_name(page_id)
        fields = pages.subscribed_fields(graph, page_id)
        forms = graph.list_forms(page_id)
    except LeadsyncError as exc:
        fix = "give the token's user or system user access to the page with leads_retrieval"
        return [Finding(False, subject, str(exc), fix)]
    findings = [Finding(True, subject, f"reachable ({name})")]
    if "leadgen" not in fields:
        fix = f"subscribe the app: POST /{page_id}/subscribed_apps?subscribed_fields=leadgen"
        findings.append(Finding(False, subject, "app is not subscribed to leadgen webhooks", fix))
    active = [f for f in forms if f.status == "ACTIVE"]
    if not active:
        findings.append(
            Finding(
                False,
                subject,
                "no active lead forms visible",
                "create a lead form or check the token's page role",
            )
        )
    else:
        findings.append(Finding(True, subject, f"{len(active)} active forms"))
    return findings


def check_destination(dest) -> Finding:  # noqa: ANN001 - DestinationSettings
    subject = f"destination {dest.name}"
    try:
        connector = connectors.load(dest.type).build(dest.name, dest.settings)
        connector.ensure_ready()
    except LeadsyncError as exc:
        return Finding(False, subject, str(exc), "see the README's troubleshooting section")
    return Finding(True, subject, "ready")
