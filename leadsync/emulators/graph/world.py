"""What the Graph emulator knows: pages, forms, leads, tokens, faults and the request log.

Plain records behind one lock, so the test thread (adding leads, expiring a
token) and the emulator's event loop (answering requests) can share them. No
HTTP here: `api.py` turns requests into reads of this world, `control.py` and
`GraphEmulator` turn test instructions into writes.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Questions Facebook offers ready-made, by the key leads carry in field_data.
STANDARD_QUESTIONS = {
    "full_name": "FULL_NAME",
    "first_name": "FIRST_NAME",
    "last_name": "LAST_NAME",
    "email": "EMAIL",
    "work_email": "WORK_EMAIL",
    "phone_number": "PHONE",
    "job_title": "JOB_TITLE",
    "company_name": "COMPANY_NAME",
    "city": "CITY",
    "country": "COUNTRY",
    "zip_code": "ZIP",
}

# Scopes of a system-user token that can read leads and manage page subscriptions.
DEFAULT_SCOPES = (
    "ads_management",
    "business_management",
    "leads_retrieval",
    "pages_manage_ads",
    "pages_manage_metadata",
    "pages_read_engagement",
    "pages_show_list",
)

# Facebook lead ids have 15 or 16 digits; Conversion Leads refuses shorter ones.
LEAD_ID_BASE = 900_000_000_000_000

FAULT_KINDS = (
    "http500", "html502", "empty_page", "slow", "batch_null", "disconnect", "permission",
    "hidden",  # the object exists but this token may not see it: Graph's code 100, subcode 33
)  # fmt: skip


@dataclass
class Page:
    id: str
    name: str


@dataclass
class FormRecord:
    id: str
    page_id: str
    name: str
    status: str
    questions: list[dict[str, Any]]
    created_time: datetime
    seq: int
    locale: str = "en_US"


@dataclass
class LeadRecord:
    id: str
    form_id: str
    page_id: str
    created_time: datetime
    answers: dict[str, list[str]]
    seq: int
    ad: dict[str, str] = field(default_factory=dict)
    is_organic: bool = False
    platform: str = "fb"
    consents: dict[str, bool] = field(default_factory=dict)


@dataclass
class TokenRecord:
    token: str
    type: str = "SYSTEM_USER"  # or "USER", or "PAGE" (then page_id says which page)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    expires_at: int = 0  # 0 = never, as system-user tokens
    expired_at: datetime | None = None
    page_id: str = ""


@dataclass
class Dataset:
    """One Events Manager dataset (Conversions API) and what it has received."""

    id: str
    crm: bool = True  # a CRM dataset, for Conversion Leads
    accepted: list[dict[str, Any]] = field(default_factory=list)  # first copies, in order
    duplicates: int = 0  # events dropped as already received (same event_name and event_id)
    received: int = 0  # events in requests that were accepted, duplicates included
    seen: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Fault:
    """One failure to serve instead of a normal answer, `times` times."""

    kind: str  # a throttle code as text ("4", "80005") or one of FAULT_KINDS
    times: int = 1
    path: str | None = None  # Graph path prefix without version, e.g. "/111/leads"
    seconds: float = 0.0  # for "slow"
    regain_minutes: int = 0  # estimated_time_to_regain_access in the usage header

    def matches(self, path: str, in_batch: bool) -> bool:
        if self.kind == "batch_null" and not in_batch:
            return False
        if self.kind == "empty_page" and not path.endswith("/leads"):
            return False
        if self.path is None:
            return self.kind == "batch_null" or not in_batch
        return path.startswith(self.path)


def normalize_fault_kind(kind: str | int) -> str:
    """Accepts a throttle code (4, "80005") or a named kind; raises ValueError otherwise."""
    text = str(kind)
    if text.isdigit() and (int(text) in (4, 17, 32, 613) or 80000 <= int(text) <= 80014):
        return text
    if text in FAULT_KINDS:
        return text
    raise ValueError(f"unknown fault kind {kind!r}")


def question(spec: str | Mapping[str, Any], number: int) -> dict[str, Any]:
    """A form question as Graph shows it, from a key or a {key, type, label, options} dict."""
    data = {"key": spec} if isinstance(spec, str) else dict(spec)
    key = data["key"]
    data.setdefault("type", STANDARD_QUESTIONS.get(key, "CUSTOM"))
    data.setdefault("label", key.replace("_", " ").capitalize())
    data.setdefault("id", str(7_000_000_000_000 + number))
    return data


class World:
    """Every object and switch of one emulated Graph API; all methods are thread-safe."""

    def __init__(self, *, app_id: str, app_secret: str, access_token: str):
        self.app_id = app_id
        self.app_secret = app_secret
        self.app_name = "leadsync emulator app"
        self.lock = threading.RLock()
        self.pages: dict[str, Page] = {}
        self.forms: dict[str, FormRecord] = {}
        self.leads: dict[str, LeadRecord] = {}
        self.leads_by_form: dict[str, list[LeadRecord]] = {}
        self.subscriptions: dict[str, list[str]] = {}
        # Pages whose Leads Access Manager does not list our app: lead reads get error 200.
        self.lead_access_blocked: set[str] = set()
        self.tokens: dict[str, TokenRecord] = {}
        self.current_token = access_token
        self.faults: list[Fault] = []
        self.usage_percent = 0.0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        # Leads served by id (GET /{lead}, top level or in a batch), how often each.
        self.lead_reads: Counter[str] = Counter()
        self.datasets: dict[str, Dataset] = {}  # Conversions API datasets by id
        self._seq = itertools.count(1)
        self.issue_token(access_token)

    # -- objects -----------------------------------------------------------
    def add_page(self, page_id: str, name: str = "") -> Page:
        with self.lock:
            page = self.pages[page_id] = Page(page_id, name or f"Page {page_id}")
            # The page access token a manager of the page gets from /me/accounts.
            token = page_token_of(page_id)
            self.tokens.setdefault(token, TokenRecord(token, type="PAGE", page_id=page_id))
            return page

    def add_form(
        self,
        page_id: str,
        name: str,
        questions: Sequence[str | Mapping[str, Any]] = ("full_name", "email"),
        status: str = "ACTIVE",
        form_id: str | None = None,
    ) -> str:
        with self.lock:
            if page_id not in self.pages:
                self.add_page(page_id)
            seq = next(self._seq)
            form_id = form_id or str(5_000_000_000_000 + seq)
            made = [question(q, seq * 100 + i) for i, q in enumerate(questions)]
            created = datetime.now(UTC).replace(microsecond=0)
            self.forms[form_id] = FormRecord(form_id, page_id, name, status, made, created, seq)
            self.leads_by_form.setdefault(form_id, [])
            return form_id

    def set_form_status(self, form_id: str, status: str) -> None:
        with self.lock:
            self.forms[form_id].status = status

    def create_lead(
        self,
        form_id: str,
        answers: Mapping[str, str | Iterable[str]],
        *,
        created_time: datetime | None = None,
        ad_id: str | None = None,
        is_organic: bool = False,
        platform: str = "fb",
        consents: Mapping[str, bool] | None = None,
        ad_names: Mapping[str, str] | None = None,
    ) -> str:
        with self.lock:
            form = self.forms[form_id]
            seq = next(self._seq)
            lead = LeadRecord(
                id=str(LEAD_ID_BASE + seq),
                form_id=form_id,
                page_id=form.page_id,
                created_time=(created_time or datetime.now(UTC)).astimezone(UTC),
                answers={k: [v] if isinstance(v, str) else list(v) for k, v in answers.items()},
                seq=seq,
                ad=ad_details(ad_id, ad_names or {}) if ad_id and not is_organic else {},
                is_organic=is_organic,
                platform=platform,
                consents=dict(consents or {}),
            )
            self.leads[lead.id] = lead
            self.leads_by_form[form_id].append(lead)
            return lead.id

    def delete_lead(self, lead_id: str) -> None:
        """Facebook deletes leads after 90 days or on request; later reads say 'does not exist'."""
        with self.lock:
            lead = self.leads.pop(lead_id)
            self.leads_by_form[lead.form_id].remove(lead)

    def add_dataset(self, dataset_id: str, *, crm: bool = True) -> Dataset:
        """An Events Manager dataset that takes Conversions API events (a CRM one by default)."""
        with self.lock:
            dataset = self.datasets[dataset_id] = Dataset(dataset_id, crm=crm)
            return dataset

    def subscribe_app(self, page_id: str, fields: Sequence[str] = ("leadgen",)) -> None:
        with self.lock:
            self.subscriptions[page_id] = list(fields)

    def unsubscribe_app(self, page_id: str) -> None:
        with self.lock:
            self.subscriptions.pop(page_id, None)

    # -- tokens ------------------------------------------------------------
    def issue_token(self, token: str, *, scopes: Sequence[str] = DEFAULT_SCOPES) -> str:
        """A new system-user token with these scopes; it becomes the current one."""
        with self.lock:
            self.tokens[token] = TokenRecord(token, scopes=tuple(scopes))
            self.current_token = token
            return token

    def set_lead_access(self, page_id: str, allowed: bool) -> None:
        """Leads Access Manager of the page: whether our app may read its leads."""
        with self.lock:
            (self.lead_access_blocked.discard if allowed else self.lead_access_blocked.add)(page_id)

    def expire_token(self, token: str | None = None) -> None:
        with self.lock:
            record = self.tokens[token or self.current_token]
            record.expired_at = datetime.now(UTC).replace(microsecond=0)
            record.expires_at = int(record.expired_at.timestamp())

    def is_app_token(self, token: str) -> bool:
        return token == f"{self.app_id}|{self.app_secret}"

    def proof_for(self, token: str) -> str:
        key = self.app_secret.encode()
        return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()

    # -- faults, usage, request log -----------------------------------------
    def inject_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path: str, *, in_batch: bool = False) -> Fault | None:
        """The first injected fault that applies to this request, counted as used once."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(path, in_batch):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def log_request(self, method: str, path: str, params: Mapping[str, str]) -> None:
        with self.lock:
            self.requests.append((method, path, dict(params)))

    def call_count(self, path_prefix: str = "/") -> int:
        with self.lock:
            return sum(1 for _, path, _ in self.requests if path.startswith(path_prefix))

    # -- reads ---------------------------------------------------------------
    def page_of(self, object_id: str) -> str:
        """The page an id belongs to (page, form or lead), or "" when unknown."""
        with self.lock:
            if object_id in self.pages:
                return object_id
            if form := self.forms.get(object_id):
                return form.page_id
            if lead := self.leads.get(object_id):
                return lead.page_id
            return ""

    def leads_newest_first(self, form_id: str) -> list[LeadRecord]:
        with self.lock:
            leads = list(self.leads_by_form.get(form_id, ()))
        return sorted(leads, key=lead_order_key, reverse=True)

    def forms_newest_first(self, page_id: str) -> list[FormRecord]:
        with self.lock:
            forms = [f for f in self.forms.values() if f.page_id == page_id]
        return sorted(forms, key=lambda f: (f.seq,), reverse=True)


def page_token_of(page_id: str) -> str:
    return f"emulator-page-token-{page_id}"


def lead_order_key(lead: LeadRecord) -> tuple[int, int]:
    """Graph lists leads newest first; leads of the same second by arrival."""
    return (int(lead.created_time.timestamp()), lead.seq)


def ad_details(ad_id: str, names: Mapping[str, str]) -> dict[str, str]:
    """The ad, ad set and campaign a paid lead came through, with made-up names."""
    return {
        "ad_id": ad_id,
        "ad_name": names.get("ad_name", f"Ad {ad_id}"),
        "adset_id": names.get("adset_id", f"{ad_id}1"),
        "adset_name": names.get("adset_name", f"Ad set {ad_id}"),
        "campaign_id": names.get("campaign_id", f"{ad_id}2"),
        "campaign_name": names.get("campaign_name", f"Campaign {ad_id}"),
    }
