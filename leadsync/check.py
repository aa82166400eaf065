"""`leadsync check`: is this config going to work? One line per problem, each with its fix.

First offline (the config itself), then online: the token is valid, when it
expires and that it has the permissions leadsync needs (leads_retrieval
above all); each page is reachable, our app is subscribed to the page's
`leadgen` field (else no webhook ever arrives), forms are visible, and one
lead of each form can be read (a page's Leads Access Manager may refuse our
app even with the permission); each destination is ready (sheet shared,
header sane, HubSpot properties mapped). Check never changes anything: leads
read are not stored, and destinations are asked through their read-only
`check_ready()` (what the daemon would create is reported, not created).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import connectors
from leadsync.config import Settings
from leadsync.daemon import graph_client
from leadsync.errors import AuthError, LeadsyncError
from leadsync.facebook import pages
from leadsync.facebook.graph import GraphClient, TokenInfo
from leadsync.models import utcnow

# A token that expires sooner than this is worth a warning now, not an outage later.
EXPIRY_WARNING = timedelta(days=7)
# The permissions leadsync's token needs, and what each is for (Meta's Lead Ads guide).
REQUIRED_SCOPES = {
    "leads_retrieval": "read leads",
    "pages_show_list": "list the pages it manages",
    "pages_read_engagement": "read pages and their lead forms",
    "pages_manage_metadata": "subscribe the app to leadgen webhooks",
}
GRAPH_TAG = re.compile(r"Graph error \d+(/\d+)?")
LEADS_ACCESS_FIX = (
    "let the app read this page's leads: Business Settings > Integrations > Leads Access, "
    "choose the page, and add the app under CRMs and the system user under People"
)


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
    findings, scopes = check_token(graph)
    if not all(f.ok for f in findings):
        return findings  # with a bad token every page check would fail the same way
    findings += check_scopes(scopes)
    for page in settings.facebook.pages:
        findings += check_page(graph, page.id, page.forms, scopes)
    for dest in settings.destinations:
        findings.append(check_destination(dest))
    return findings


def check_token(graph: GraphClient) -> tuple[list[Finding], tuple[str, ...]]:
    """Findings about the token's validity and expiry, and the scopes Graph lists for it."""
    try:
        info = graph.token_info()
    except LeadsyncError as exc:
        return [Finding(False, "facebook token", str(exc), "check facebook.access_token")], ()
    return [token_finding(info)], info.scopes


def token_finding(info: TokenInfo) -> Finding:
    if not info.valid:
        fix = "create a system-user token in Business Settings and put it in facebook.access_token"
        return Finding(False, "facebook token", f"invalid: {info.error}", fix)
    if info.expires_at is None:
        return Finding(True, "facebook token", f"valid ({info.type}), never expires")
    if info.expires_at - utcnow() < EXPIRY_WARNING:
        fix = "replace it with a system-user token, which does not expire"
        message = f"expires at {info.expires_at:%Y-%m-%d %H:%M} UTC"
        return Finding(False, "facebook token", message, fix)
    return Finding(
        True, "facebook token", f"valid ({info.type}), expires {info.expires_at:%Y-%m-%d}"
    )


def check_scopes(scopes: tuple[str, ...]) -> list[Finding]:
    """One finding per permission the token lacks (none to tell when Graph lists no scopes)."""
    if not scopes:
        return []
    missing = [scope for scope in REQUIRED_SCOPES if scope not in scopes]
    return [
        Finding(
            False,
            "facebook token",
            f"lacks the {scope} permission, needed to {REQUIRED_SCOPES[scope]}",
            f"give the app's system user {scope} (Business Settings > System users > "
            "Generate new token), put the new token in facebook.access_token",
        )
        for scope in missing
    ] or [Finding(True, "facebook token", f"has {', '.join(REQUIRED_SCOPES)}")]


def check_page(
    graph: GraphClient,
    page_id: str,
    only: list[str] | None = None,
    scopes: tuple[str, ...] = (),
) -> list[Finding]:
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
        fix = f"run `leadsync subscribe {page_id}`"
        findings.append(Finding(False, subject, "app is not subscribed to leadgen webhooks", fix))
    active = [f for f in forms if f.status == "ACTIVE" and (only is None or f.id in only)]
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
        findings.append(check_lead_reading(graph, page_id, [f.id for f in active], scopes))
    return findings


def check_lead_reading(
    graph: GraphClient, page_id: str, form_ids: list[str], scopes: tuple[str, ...]
) -> Finding:
    """Reads one lead id of each form (nothing is stored): can the app really get leads?"""
    subject = f"page {page_id}"
    for form_id in form_ids:
        what = f"leads of form {form_id}"
        try:
            graph.request("GET", (form_id, "leads"), what, fields="id", limit=1)
        except AuthError as exc:
            tag = GRAPH_TAG.search(str(exc))
            refused = f"Facebook refused to give the app the leads of form {form_id}"
            refused += f" ({tag.group(0)})" if tag else ""
            if scopes and "leads_retrieval" not in scopes:
                return Finding(False, subject, refused, "give the token leads_retrieval (above)")
            return Finding(False, subject, refused + " - Leads Access Manager", LEADS_ACCESS_FIX)
        except LeadsyncError as exc:
            return Finding(False, subject, f"cannot read leads: {exc}", "run leadsync check again")
    return Finding(True, subject, f"leads of {len(form_ids)} forms readable")


def check_destination(dest) -> Finding:  # noqa: ANN001 - DestinationSettings
    """The destination's read-only `check_ready()`.

    `ensure_ready()` would create properties, worksheets and headers; check must
    change nothing, so it asks `check_ready()`, which says what would be created.
    """
    subject = f"destination {dest.name}"
    fix = "see the README's troubleshooting section"
    try:
        connector = connectors.build(dest.type, dest.name, dest.settings)
    except LeadsyncError as exc:
        return Finding(False, subject, str(exc), fix)
    try:
        notes = connector.check_ready()
    except LeadsyncError as exc:
        return Finding(False, subject, str(exc), fix)
    finally:
        connector.close()
    return Finding(True, subject, "; ".join(["ready", *notes]))
