"""GraphClient on the real facebook-business SDK, over real HTTP, against the Graph emulator.

Covers batch fetching (calls counted on the emulator), lead parsing, paging
past empty pages, `since` filtering, form discovery, token checks and rotation,
usage headers, and the mapping of every Graph failure into one leadsync error
kind whose text never carries the token.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from facebook_business.exceptions import FacebookRequestError
from hypothesis import given
from hypothesis import strategies as st

from leadsync.emulators.graph import GraphEmulator
from leadsync.errors import (
    AuthError,
    BadLead,
    LeadsyncError,
    PermanentError,
    RateLimited,
    TransientError,
)
from leadsync.facebook import pages
from leadsync.facebook.errors import graph_error
from leadsync.facebook.graph import GraphClient
from leadsync.facebook.objects import lead_from_graph
from leadsync.models import Notification

SECRET = "emulator-app-secret"
# Shaped like a real token, so a leak would also be caught by shape, not only by value.
TOKEN = "EAAGtest" + "x" * 40
PAGE = "111"


@pytest.fixture
def emu() -> Iterator[GraphEmulator]:
    with GraphEmulator(app_id="1000", app_secret=SECRET, access_token=TOKEN) as emulator:
        emulator.add_page(PAGE, name="Acme")
        yield emulator


@pytest.fixture
def form_id(emu: GraphEmulator) -> str:
    return emu.add_form(PAGE, "Demo request", ["full_name", "email", "job_title"])


def client_for(emu: GraphEmulator, token: str = TOKEN, **options) -> GraphClient:
    options = {"timeout": 5} | options
    return GraphClient(access_token=token, app_secret=SECRET, graph_url=emu.url, **options)


@pytest.fixture
def client(emu: GraphEmulator) -> GraphClient:
    return client_for(emu)


def notes_for(lead_ids: list[str]) -> list[Notification]:
    return [Notification(lead_id=lead_id, page_id=PAGE) for lead_id in lead_ids]


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    text = "".join(traceback.format_exception(error)) + repr(error)
    for secret in (TOKEN, SECRET, *secrets):
        assert secret not in text


# -- fetching leads by id ------------------------------------------------------------------


def test_fetch_120_leads_takes_3_batch_calls(emu, client, form_id):
    ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}, ad_id="7") for i in range(120)]
    outcome = client.fetch_leads(notes_for(ids))
    assert sorted(lead.id for lead in outcome.leads) == sorted(ids) and outcome.failed == {}
    assert [(m, p) for m, p, _ in emu.requests] == [("POST", "/")] * 3
    assert client.calls == 3


def test_fetched_lead_keeps_every_answer_value_ad_and_consents(emu, client, form_id):
    created = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    lead_id = emu.create_lead(
        form_id,
        {"full_name": "Ann Lee", "email": "Ann@B.C", "job_title": ["VP", "Sales"]},
        created_time=created,
        ad_id="555",
        platform="ig",
        consents={"marketing": True, "terms": False},
    )
    [lead] = client.fetch_leads(notes_for([lead_id])).leads
    assert lead.answers == {
        "full_name": ("Ann Lee",),
        "email": ("Ann@B.C",),
        "job_title": ("VP", "Sales"),
    }
    assert lead.created_time == created and lead.created_time.tzinfo is not None
    assert (lead.page_id, lead.form_id, lead.form_name) == (PAGE, form_id, "")
    assert (lead.ad_id, lead.ad_name, lead.campaign_name) == ("555", "Ad 555", "Campaign 555")
    assert (lead.platform, lead.is_organic) == ("ig", False)
    assert lead.consents == {"marketing": True, "terms": False}
    assert lead.email == "ann@b.c"


def test_test_lead_without_an_ad_has_empty_ad_fields(emu, client, form_id):
    lead_id = emu.create_lead(form_id, {"email": "a@b.c"})
    [lead] = client.fetch_leads(notes_for([lead_id])).leads
    assert (lead.ad_id, lead.ad_name, lead.adset_id, lead.campaign_id) == ("", "", "", "")


def test_a_lead_that_does_not_exist_fails_alone_as_bad_lead(emu, client, form_id):
    good = emu.create_lead(form_id, {"email": "a@b.c"})
    outcome = client.fetch_leads(notes_for([good, "424242"]))
    assert [lead.id for lead in outcome.leads] == [good]
    assert list(outcome.failed) == ["424242"] and isinstance(outcome.failed["424242"], BadLead)
    assert "424242" in str(outcome.failed["424242"])


def test_null_batch_items_are_sent_again(emu, client, form_id):
    ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(3)]
    emu.inject_fault("batch_null", times=2, path=f"/{ids[1]}")
    outcome = client.fetch_leads(notes_for(ids))
    assert sorted(lead.id for lead in outcome.leads) == sorted(ids)
    assert client.calls == 3  # the first call, then the null item twice more


def test_items_left_null_after_retries_fail_as_transient(emu, client, form_id):
    ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(2)]
    emu.inject_fault("batch_null", times=100, path=f"/{ids[0]}")
    outcome = client.fetch_leads(notes_for(ids))
    assert [lead.id for lead in outcome.leads] == [ids[1]]
    assert isinstance(outcome.failed[ids[0]], TransientError)


def test_a_throttled_batch_item_fails_alone_as_rate_limited(emu, client, form_id):
    ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(2)]
    emu.inject_fault(80005, path=f"/{ids[0]}", regain_minutes=4)
    outcome = client.fetch_leads(notes_for(ids))
    error = outcome.failed[ids[0]]
    assert isinstance(error, RateLimited) and error.retry_after == 240
    assert [lead.id for lead in outcome.leads] == [ids[1]]


def test_a_failed_batch_call_raises(emu, client, form_id):
    lead_id = emu.create_lead(form_id, {"email": "a@b.c"})
    emu.inject_fault("http500")
    with pytest.raises(TransientError) as info:
        client.fetch_leads(notes_for([lead_id]))
    assert_no_secret(info.value)


# -- every failure kind, mapped once --------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("4", RateLimited),
        ("17", RateLimited),
        ("32", RateLimited),
        ("613", RateLimited),
        ("80001", RateLimited),
        ("80005", RateLimited),
        ("http500", TransientError),
        ("html502", TransientError),
        ("disconnect", TransientError),
        ("permission", AuthError),
    ],
)
def test_each_fault_maps_to_its_error_kind(emu, client, fault, kind):
    emu.inject_fault(fault)
    with pytest.raises(kind) as info:
        client.page_name(PAGE)
    assert PAGE in str(info.value)
    assert_no_secret(info.value, client_proof(emu))
    assert client.page_name(PAGE) == "Acme"  # the fault was served once


def client_proof(emu: GraphEmulator) -> str:
    return emu.world.proof_for(TOKEN)


def test_throttling_waits_as_the_usage_header_says_or_the_default(emu, client):
    emu.inject_fault(4)
    with pytest.raises(RateLimited) as default:
        client.list_forms(PAGE)
    emu.inject_fault(80005, regain_minutes=3)
    with pytest.raises(RateLimited) as told:
        client.list_forms(PAGE)
    assert (default.value.retry_after, told.value.retry_after) == (60, 180)


def test_a_slow_answer_past_the_timeout_is_transient(emu):
    client = client_for(emu, timeout=0.2)
    emu.inject_fault("slow", seconds=1)
    with pytest.raises(TransientError) as info:
        client.page_name(PAGE)
    assert_no_secret(info.value, client_proof(emu))


def test_expired_token_is_an_auth_error_until_a_new_token_is_set(emu, client, form_id):
    lead_id = emu.create_lead(form_id, {"email": "a@b.c"})
    emu.expire_token()
    with pytest.raises(AuthError) as info:
        client.fetch_leads(notes_for([lead_id]))
    assert info.value.service == "facebook"
    assert "expired or revoked" in str(info.value) and "leadsync check" in str(info.value)
    assert_no_secret(info.value, client_proof(emu))
    client.set_access_token(emu.issue_token("EAAGfresh" + "y" * 40))
    assert [lead.id for lead in client.fetch_leads(notes_for([lead_id])).leads] == [lead_id]


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, {"code": 190}, AuthError),
        (400, {"code": 102}, AuthError),
        (400, {"code": 100, "error_subcode": 467}, AuthError),
        (403, {"code": 10}, AuthError),
        (403, {"code": 299}, AuthError),
        (400, {"code": 80000}, RateLimited),
        (400, {"code": 80014}, RateLimited),
        (400, {"code": 100, "error_subcode": 33}, BadLead),
        (500, {"code": 1}, TransientError),
        (400, {"code": 2}, TransientError),
        (400, {"code": 100}, PermanentError),
        (400, {"code": 80015}, PermanentError),
    ],
)
def test_graph_error_codes_map_to_kinds(status, error, kind):
    body = json.dumps({"error": {"message": "m", "type": "OAuthException", **error}})
    sdk_error = FacebookRequestError("Call was not successful", {}, status, {}, body)
    assert type(graph_error(sdk_error, "lead 1")) is kind


def test_a_token_in_graphs_own_message_is_redacted():
    """Graph echoes malformed tokens ("Malformed access token EAA..."); we never repeat them."""
    body = json.dumps({"error": {"message": f"Malformed access token {TOKEN}", "code": 190}})
    sdk_error = FacebookRequestError("Call was not successful", {}, 400, {}, body)
    assert TOKEN not in str(graph_error(sdk_error, "page 1"))


# -- reading a form's leads ---------------------------------------------------------------------


def test_2500_leads_are_all_read_past_an_empty_page_midway(emu, client, form_id):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = {
        emu.create_lead(form_id, {"email": f"{i}@x.y"}, created_time=start + timedelta(seconds=i))
        for i in range(2500)
    }
    pages = client.iter_form_leads(form_id, PAGE, since=None)
    seen = [lead.id for _ in range(5) for lead in next(pages)]
    emu.inject_fault("empty_page")
    seen += [lead.id for page in pages for lead in page]
    assert len(seen) == 2500 and set(seen) == ids
    assert emu.call_count(f"/{form_id}/leads") == 25 + 1  # 100 per page, plus the empty one


def test_since_keeps_only_leads_created_at_or_after_it(emu, client, form_id):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [
        emu.create_lead(form_id, {"email": "a@b.c"}, created_time=start + timedelta(hours=i))
        for i in range(5)
    ]
    pages = list(client.iter_form_leads(form_id, PAGE, since=start + timedelta(hours=2)))
    assert [lead.id for page in pages for lead in page] == [ids[4], ids[3], ids[2]]
    assert all(lead.page_id == PAGE and lead.form_id == form_id for page in pages for lead in page)


def test_paging_continues_with_a_token_replaced_midway(emu, client, form_id):
    for i in range(150):
        emu.create_lead(form_id, {"email": f"{i}@x.y"})
    pages = client.iter_form_leads(form_id, PAGE, since=None)
    first = next(pages)
    emu.expire_token()
    client.set_access_token(emu.issue_token("EAAGnext" + "z" * 40))
    assert len(first) + sum(len(page) for page in pages) == 150


def test_a_page_failure_while_paging_raises_the_mapped_error(emu, client, form_id):
    for i in range(150):
        emu.create_lead(form_id, {"email": f"{i}@x.y"})
    pages = client.iter_form_leads(form_id, PAGE, since=None)
    next(pages)
    emu.inject_fault("html502")
    with pytest.raises(TransientError):
        next(pages)


# -- forms, pages, token -----------------------------------------------------------------------


def test_form_discovery_sees_new_forms_and_archived_status(emu, client, form_id):
    assert [(f.id, f.status) for f in client.list_forms(PAGE)] == [(form_id, "ACTIVE")]
    more = [emu.add_form(PAGE, f"Form {i}") for i in range(104)]
    emu.archive_form(form_id)
    forms = {form.id: form for form in client.list_forms(PAGE)}
    assert set(forms) == {form_id, *more}
    assert forms[form_id].status == "ARCHIVED" and forms[more[0]].status == "ACTIVE"
    assert forms[form_id].questions == ("full_name", "email", "job_title")
    assert forms[form_id].page_id == PAGE and forms[form_id].name == "Demo request"


def test_get_form_names_the_form_and_its_page(client, form_id):
    form = client.get_form(form_id)
    assert (form.id, form.page_id, form.name, form.status) == (
        form_id,
        PAGE,
        "Demo request",
        "ACTIVE",
    )


def test_usage_percent_follows_the_last_response(emu, client):
    client.page_name(PAGE)
    assert client.usage_percent == 0
    emu.set_usage(85)
    client.page_name(PAGE)
    assert client.usage_percent == 85
    emu.inject_fault(80005)
    with pytest.raises(RateLimited):
        client.page_name(PAGE)
    assert client.usage_percent == 100


def test_token_info_of_a_valid_system_user_token(client):
    info = client.token_info()
    assert info.valid and info.expires_at is None and info.type == "SYSTEM_USER"
    assert "leads_retrieval" in info.scopes and info.app_id == "1000" and info.error == ""


def test_token_info_of_an_expired_token(emu):
    emu.expire_token()
    for client in (client_for(emu), client_for(emu, app_id="1000")):
        info = client.token_info()
        assert not info.valid and info.error
        assert TOKEN not in info.error


def test_token_info_with_the_app_token_tells_when_it_expired(emu):
    emu.expire_token()
    info = client_for(emu, app_id="1000").token_info()
    assert info.expires_at is not None and info.expires_at <= datetime.now(UTC)


def test_page_name_and_leadgen_subscription(emu, client):
    assert client.page_name(PAGE) == "Acme"
    assert pages.subscribed_fields(client, PAGE) == set()
    emu.subscribe_app(PAGE, fields=["leadgen", "feed"])
    assert pages.subscribed_fields(client, PAGE) == {"leadgen", "feed"}


def test_missing_page_is_a_bad_lead_error_naming_the_page(client):
    with pytest.raises(BadLead, match="page 999"):
        client.page_name("999")


# -- parsing -----------------------------------------------------------------------------------


answers = st.dictionaries(
    st.text(min_size=1, max_size=12), st.lists(st.text(max_size=20), max_size=4), max_size=6
)


@given(answers=answers, organic=st.booleans())
def test_lead_parsing_keeps_every_answer_value(answers, organic):
    data = {
        "id": "1",
        "created_time": "2026-11-20T10:00:00+0000",
        "field_data": [{"name": k, "values": v} for k, v in answers.items()],
        "is_organic": organic,
    }
    lead = lead_from_graph(data, page_id=PAGE, form_id="9")
    assert lead.answers == {k: tuple(v) for k, v in answers.items()}
    assert (lead.is_organic, lead.form_id, lead.ad_id) == (organic, "9", "")


def test_a_graph_answer_that_is_not_a_lead_is_a_bad_lead():
    with pytest.raises(BadLead):
        lead_from_graph({"id": "1"}, page_id=PAGE)
    assert issubclass(BadLead, LeadsyncError)
