"""The Graph emulator answers like Graph: shapes, paging, filters, batch, tokens, faults, webhooks.

Requests go through the real facebook-business SDK (or plain requests where a
test looks at raw HTTP) over real HTTP to an emulator on a free port.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from leadsync.emulators.graph import GraphEmulator

SECRET = "emulator-app-secret"
TOKEN = "emulator-token"


@pytest.fixture
def emu() -> Iterator[GraphEmulator]:
    with GraphEmulator(app_id="1000", app_secret=SECRET, access_token=TOKEN) as emulator:
        emulator.add_page("111", name="Acme")
        yield emulator


def sdk(emu: GraphEmulator, token: str = TOKEN) -> FacebookAdsApi:
    """An SDK api object of its own, pointed at the emulator, sending appsecret_proof."""
    session = FacebookSession(app_secret=SECRET, access_token=token)
    session.GRAPH = emu.url
    return FacebookAdsApi(session, api_version="v24.0")


def graph_error(call) -> FacebookRequestError:
    with pytest.raises(FacebookRequestError) as info:
        call()
    return info.value


# -- objects -------------------------------------------------------------------------


def test_page_node_returns_id_and_name(emu):
    assert sdk(emu).call("GET", ("111",)).json() == {"id": "111", "name": "Acme"}


def test_form_node_shows_page_questions_and_status(emu):
    form_id = emu.add_form("111", "Demo request", ["full_name", "email", "budget"])
    fields = "id,name,status,questions,page,leads_count"
    body = sdk(emu).call("GET", (form_id,), params={"fields": fields}).json()
    assert body["name"] == "Demo request" and body["status"] == "ACTIVE"
    assert body["page"] == {"id": "111", "name": "Acme"}
    assert [(q["key"], q["type"]) for q in body["questions"]] == [
        ("full_name", "FULL_NAME"),
        ("email", "EMAIL"),
        ("budget", "CUSTOM"),
    ]
    assert body["leads_count"] == 0


def test_lead_node_has_every_value_and_only_requested_fields(emu):
    form_id = emu.add_form("111", "Demo", ["email", "job_title"])
    lead_id = emu.create_lead(
        form_id,
        {"email": "a@b.c", "job_title": ["VP", "Sales"]},
        created_time=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        ad_id="555",
        platform="ig",
        consents={"marketing": True, "terms": False},
    )
    fields = "created_time,field_data,ad_id,campaign_name,platform,custom_disclaimer_responses"
    body = sdk(emu).call("GET", (lead_id,), params={"fields": fields}).json()
    assert body == {
        "id": lead_id,
        "created_time": "2026-11-20T10:00:00+0000",
        "field_data": [
            {"name": "email", "values": ["a@b.c"]},
            {"name": "job_title", "values": ["VP", "Sales"]},
        ],
        "ad_id": "555",
        "campaign_name": "Campaign 555",
        "platform": "ig",
        "custom_disclaimer_responses": [
            {"checkbox_key": "marketing", "is_checked": "1"},
            {"checkbox_key": "terms", "is_checked": ""},
        ],
    }


def test_test_lead_without_ad_has_no_ad_fields(emu):
    lead_id = emu.create_lead(emu.add_form("111", "Demo"), {"email": "a@b.c"})
    fields = "ad_id,ad_name,adset_id,campaign_id,is_organic,form_id"
    body = sdk(emu).call("GET", (lead_id,), params={"fields": fields}).json()
    assert set(body) == {"id", "is_organic", "form_id"}


def test_unknown_object_is_error_100_subcode_33(emu):
    error = graph_error(lambda: sdk(emu).call("GET", ("424242",)))
    assert (error.http_status(), error.api_error_code(), error.api_error_subcode()) == (
        400,
        100,
        33,
    )
    assert "does not exist" in error.api_error_message()


def test_unknown_field_is_error_100(emu):
    lead_id = emu.create_lead(emu.add_form("111", "Demo"), {"email": "a@b.c"})
    error = graph_error(lambda: sdk(emu).call("GET", (lead_id,), params={"fields": "shoe_size"}))
    assert error.api_error_code() == 100 and "shoe_size" in error.api_error_message()


# -- paging and filtering ----------------------------------------------------------------


def follow(emu: GraphEmulator, first: dict) -> list[dict]:
    """Every page, following paging.next as a full URL."""
    pages = [first]
    while "next" in pages[-1].get("paging", {}):
        pages.append(requests.get(pages[-1]["paging"]["next"], timeout=5).json())
    return pages


def test_leadgen_forms_pages_with_cursors_and_full_next_url(emu):
    form_ids = [emu.add_form("111", f"Form {i}") for i in range(23)]
    emu.archive_form(form_ids[0])
    first = sdk(emu).call("GET", ("111", "leadgen_forms"), params={"limit": 10}).json()
    assert set(first["paging"]["cursors"]) == {"before", "after"}
    assert first["paging"]["next"].startswith(f"{emu.url}/v24.0/111/leadgen_forms?")
    assert f"access_token={TOKEN}" in first["paging"]["next"]
    pages = follow(emu, first)
    assert [len(p["data"]) for p in pages] == [10, 10, 3]
    assert "next" not in pages[-1]["paging"]
    seen = {form["id"]: form["status"] for page in pages for form in page["data"]}
    assert sorted(seen) == sorted(form_ids)
    assert seen[form_ids[0]] == "ARCHIVED"


def test_form_leads_are_newest_first_25_per_page_by_default(emu):
    form_id = emu.add_form("111", "Demo")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [
        emu.create_lead(form_id, {"email": f"{i}@x.y"}, created_time=start + timedelta(minutes=i))
        for i in range(60)
    ]
    pages = follow(emu, sdk(emu).call("GET", (form_id, "leads")).json())
    assert [len(p["data"]) for p in pages] == [25, 25, 10]
    assert [lead["id"] for p in pages for lead in p["data"]] == ids[::-1]


def test_leads_filtering_on_time_created(emu):
    form_id = emu.add_form("111", "Demo")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [
        emu.create_lead(form_id, {"email": "a@b.c"}, created_time=start + timedelta(hours=i))
        for i in range(5)
    ]
    cut = int((start + timedelta(hours=2)).timestamp())

    def lead_ids(operator: str) -> list[str]:
        rule = [{"field": "time_created", "operator": operator, "value": cut}]
        body = sdk(emu).call("GET", (form_id, "leads"), params={"filtering": rule}).json()
        return [lead["id"] for lead in body["data"]]

    assert lead_ids("GREATER_THAN") == [ids[4], ids[3]]
    assert lead_ids("GREATER_THAN_OR_EQUAL") == [ids[4], ids[3], ids[2]]
    assert lead_ids("LESS_THAN") == [ids[1], ids[0]]
    error = graph_error(lambda: lead_ids("SOUNDS_LIKE"))
    assert error.api_error_code() == 100


def test_new_leads_do_not_shift_cursor_pages(emu):
    """A cursor marks a position in time, so a lead arriving mid-paging is neither repeated nor
    does it push an older lead off the next page."""
    form_id = emu.add_form("111", "Demo")
    old = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(4)]
    first = sdk(emu).call("GET", (form_id, "leads"), params={"limit": 2}).json()
    emu.create_lead(form_id, {"email": "new@x.y"})
    second = requests.get(first["paging"]["next"], timeout=5).json()
    assert [lead["id"] for lead in first["data"] + second["data"]] == old[::-1]


# -- batch -------------------------------------------------------------------------------


def test_batch_answers_each_item_as_the_sdk_expects(emu):
    form_id = emu.add_form("111", "Demo")
    lead_ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(3)]
    batch, ok, failed = sdk(emu).new_batch(), [], []
    for lead_id in [*lead_ids, "424242"]:
        batch.add(
            "GET",
            f"v24.0/{lead_id}",
            params={"fields": "id,field_data"},
            success=lambda r: ok.append(r.json()["id"]),
            failure=lambda r: failed.append(r.error().api_error_subcode()),
        )
    assert batch.execute() is None
    assert ok == lead_ids and failed == [33]
    assert emu.call_count("/") == 1


def test_batch_items_carry_headers_as_name_value_pairs(emu):
    lead_id = emu.create_lead(emu.add_form("111", "Demo"), {"email": "a@b.c"})
    batch = json.dumps([{"method": "GET", "relative_url": f"{lead_id}?fields=id"}])
    answer = requests.post(
        f"{emu.url}/v24.0/", data={"batch": batch, "access_token": TOKEN}, timeout=5
    ).json()
    assert answer[0]["code"] == 200
    assert json.loads(answer[0]["body"]) == {"id": lead_id}
    names = {header["name"] for header in answer[0]["headers"]}
    assert {"Content-Type", "X-App-Usage"} <= names


def test_batch_of_more_than_50_is_refused(emu):
    batch = json.dumps([{"method": "GET", "relative_url": "111"}] * 51)
    response = requests.post(
        f"{emu.url}/v24.0/", data={"batch": batch, "access_token": TOKEN}, timeout=5
    )
    assert response.status_code == 400
    assert "Maximum batch size is 50" in response.json()["error"]["message"]


def test_null_batch_item_comes_back_as_a_batch_to_retry(emu):
    form_id = emu.add_form("111", "Demo")
    lead_ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(3)]
    emu.inject_fault("batch_null", path=f"/{lead_ids[1]}")
    batch, ok = sdk(emu).new_batch(), []
    for lead_id in lead_ids:
        batch.add("GET", lead_id, success=lambda r: ok.append(r.json()["id"]))
    retry = batch.execute()
    assert ok == [lead_ids[0], lead_ids[2]] and len(retry) == 1
    assert retry.execute() is None and ok[-1] == lead_ids[1]


def test_lead_reads_count_each_lead_served_alone_or_in_a_batch(emu):
    form_id = emu.add_form("111", "Demo")
    lead_ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(3)]
    emu.inject_fault("batch_null", path=f"/{lead_ids[1]}")
    batch = sdk(emu).new_batch()
    for lead_id in lead_ids[:2]:
        batch.add("GET", lead_id)
    assert batch.execute().execute() is None  # the null item, asked again
    reply = requests.get(
        f"{emu.url}/v24.0/{lead_ids[0]}", params={"access_token": TOKEN}, timeout=5
    )
    assert reply.status_code == 200
    assert emu.lead_reads() == {lead_ids[0]: 2, lead_ids[1]: 1}  # a null answer served nothing


# -- tokens, subscriptions ---------------------------------------------------------------


def test_expired_token_gets_190_463_until_a_new_one_is_issued(emu):
    emu.expire_token()
    error = graph_error(lambda: sdk(emu).call("GET", ("111",)))
    assert (error.http_status(), error.api_error_code(), error.api_error_subcode()) == (
        400,
        190,
        463,
    )
    assert error.api_error_type() == "OAuthException"
    emu.issue_token("fresh-token")
    assert sdk(emu, "fresh-token").call("GET", ("111",)).json()["id"] == "111"


def test_wrong_appsecret_proof_and_missing_token_are_refused(emu):
    params = {"access_token": TOKEN, "appsecret_proof": "0" * 64}
    bad_proof = requests.get(f"{emu.url}/v24.0/111", params=params, timeout=5)
    assert bad_proof.status_code == 400 and bad_proof.json()["error"]["code"] == 100
    no_token = requests.get(f"{emu.url}/v24.0/111", timeout=5)
    assert no_token.json()["error"]["code"] == 104


def test_debug_token_reports_validity_expiry_and_scopes(emu):
    api = sdk(emu, f"1000|{SECRET}")
    valid = api.call("GET", ("debug_token",), params={"input_token": TOKEN}).json()["data"]
    assert valid["is_valid"] and valid["type"] == "SYSTEM_USER" and valid["expires_at"] == 0
    assert "leads_retrieval" in valid["scopes"] and valid["app_id"] == "1000"
    emu.expire_token()
    expired = api.call("GET", ("debug_token",), params={"input_token": TOKEN}).json()["data"]
    assert not expired["is_valid"] and expired["error"]["code"] == 190
    assert expired["expires_at"] > 0


def test_me_names_the_token_owner(emu):
    assert "id" in sdk(emu).call("GET", ("me",)).json()


def test_subscribed_apps_shows_our_app_while_subscribed(emu):
    api = sdk(emu, emu.page_token("111"))
    assert api.call("GET", ("111", "subscribed_apps")).json() == {"data": []}
    emu.subscribe_app("111", fields=["leadgen"])
    [app] = api.call("GET", ("111", "subscribed_apps")).json()["data"]
    assert app["id"] == "1000" and app["subscribed_fields"] == ["leadgen"]
    emu.unsubscribe_app("111")
    assert api.call("GET", ("111", "subscribed_apps")).json() == {"data": []}
    api.call("POST", ("111", "subscribed_apps"), params={"subscribed_fields": "leadgen"})
    assert api.call("GET", ("111", "subscribed_apps")).json()["data"][0]["id"] == "1000"


def test_me_accounts_lists_managed_pages_with_their_page_tokens(emu):
    emu.add_page("222", name="Beta")
    body = sdk(emu).call("GET", ("me", "accounts"), params={"fields": "id,name,access_token"})
    pages = {p["id"]: p for p in body.json()["data"]}
    assert pages["111"] == {"id": "111", "name": "Acme", "access_token": emu.page_token("111")}
    assert pages["222"]["access_token"] == emu.page_token("222")
    page = sdk(emu).call("GET", ("111",), params={"fields": "access_token"}).json()
    assert page["access_token"] == emu.page_token("111")
    assert sdk(emu, emu.page_token("111")).call("GET", ("me",)).json()["id"] == "111"


def test_subscribed_apps_refuses_any_token_but_the_page_token_with_210(emu):
    """The system-user token, or another page's token, gets (#210), as Graph answers."""
    emu.add_page("222")
    fields = {"subscribed_fields": "leadgen"}
    for token in (TOKEN, emu.page_token("222")):
        api = sdk(emu, token)
        read = graph_error(lambda api=api: api.call("GET", ("111", "subscribed_apps")))
        write = graph_error(
            lambda api=api: api.call("POST", ("111", "subscribed_apps"), params=fields)
        )
        assert read.api_error_code() == 210 and write.api_error_code() == 210
    assert emu.subscribed_fields("111") == []
    page_api = sdk(emu, emu.page_token("111"))
    error = graph_error(lambda: page_api.call("POST", ("111", "subscribed_apps")))
    assert error.api_error_code() == 100 and "subscribed_fields" in error.api_error_message()


def test_lead_reads_need_leads_retrieval_and_leads_access_manager(emu):
    form_id = emu.add_form("111", "Demo", ["email"])
    lead_id = emu.create_lead(form_id, {"email": "a@b.c"})
    assert sdk(emu).call("GET", (form_id, "leads")).json()["data"]
    emu.set_lead_access("111", False)
    for path in ((form_id, "leads"), (lead_id,)):
        error = graph_error(lambda path=path: sdk(emu).call("GET", path))
        assert error.api_error_code() == 200 and "Leads Access" in error.api_error_message()
    emu.set_lead_access("111", True)
    scoped = emu.issue_token("no-leads-token", scopes=["pages_show_list"])
    error = graph_error(lambda: sdk(emu, scoped).call("GET", (form_id, "leads")))
    assert error.api_error_code() == 200 and "leads_retrieval" in error.api_error_message()
    debug = sdk(emu).call("GET", ("debug_token",), params={"input_token": scoped}).json()
    assert debug["data"]["scopes"] == ["pages_show_list"]


# -- faults and usage ----------------------------------------------------------------------


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80001, 80005])
def test_throttling_is_http_400_with_usage_headers_and_no_retry_after(emu, code):
    emu.inject_fault(code, regain_minutes=7)
    error = graph_error(lambda: sdk(emu).call("GET", ("111",)))
    headers = error.http_headers()
    assert (error.http_status(), error.api_error_code()) == (400, code)
    assert "Retry-After" not in headers
    assert json.loads(headers["X-App-Usage"])["call_count"] == 100
    [usage] = json.loads(headers["X-Business-Use-Case-Usage"])["111"]
    assert usage["estimated_time_to_regain_access"] == 7
    assert sdk(emu).call("GET", ("111",)).json()["id"] == "111"  # used up after one


def test_80005_is_the_leadgen_business_use_case(emu):
    emu.inject_fault(80005)
    error = graph_error(lambda: sdk(emu).call("GET", ("111",)))
    assert json.loads(error.http_headers()["X-Business-Use-Case-Usage"])["111"][0]["type"] == (
        "leadgen"
    )


def test_http500_has_an_empty_data_body(emu):
    emu.inject_fault("http500")
    response = requests.get(f"{emu.url}/v24.0/111", params={"access_token": TOKEN}, timeout=5)
    assert (response.status_code, response.json()) == (500, {"data": []})


def test_html502_is_an_html_page(emu):
    emu.inject_fault("html502", times=2)
    for _ in range(2):
        response = requests.get(f"{emu.url}/v24.0/111", params={"access_token": TOKEN}, timeout=5)
        assert response.status_code == 502
        assert response.headers["Content-Type"].startswith("text/html")
    assert requests.get(f"{emu.url}/v24.0/111", params={"access_token": TOKEN}, timeout=5).ok


def test_empty_page_still_has_next_and_next_has_the_leads(emu):
    form_id = emu.add_form("111", "Demo")
    ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(3)]
    emu.inject_fault("empty_page")
    first = sdk(emu).call("GET", (form_id, "leads")).json()
    assert first["data"] == [] and "next" in first["paging"]
    pages = follow(emu, first)
    assert [lead["id"] for page in pages for lead in page["data"]] == ids[::-1]


def test_fault_with_a_path_hits_only_that_path(emu):
    form_id = emu.add_form("111", "Demo")
    emu.inject_fault("http500", path=f"/{form_id}/leads")
    api = sdk(emu)
    assert api.call("GET", ("111",)).status() == 200
    assert api.call("GET", (form_id, "leads")).status() == 500  # the SDK lets {"data": []} pass
    assert api.call("GET", (form_id, "leads")).status() == 200


def test_slow_answers_after_the_delay_and_disconnect_drops_the_connection(emu):
    emu.inject_fault("slow", seconds=0.3)
    started = time.monotonic()
    assert sdk(emu).call("GET", ("111",)).status() == 200
    assert time.monotonic() - started >= 0.3
    emu.inject_fault("disconnect")
    with pytest.raises(requests.ConnectionError):
        sdk(emu).call("GET", ("111",))


def test_set_usage_shows_in_every_response(emu):
    emu.set_usage(85)
    headers = sdk(emu).call("GET", ("111",)).headers()
    assert json.loads(headers["X-App-Usage"]) == {
        "call_count": 85,
        "total_cputime": 85,
        "total_time": 85,
    }
    assert json.loads(headers["X-Business-Use-Case-Usage"])["111"][0]["call_count"] == 85


def test_request_log_counts_calls_by_path(emu):
    form_id = emu.add_form("111", "Demo")
    api = sdk(emu)
    api.call("GET", ("111",))
    api.call("GET", (form_id, "leads"), params={"limit": 5})
    assert emu.call_count(f"/{form_id}") == 1 and emu.call_count("/") == 2
    method, path, params = emu.requests[-1]
    assert (method, path, params["limit"]) == ("GET", f"/{form_id}/leads", "5")


# -- webhooks ----------------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint: records each POST and answers from a list of statuses (then 200)."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((body, dict(self.headers)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):  # noqa: N802
                challenge = self.path.split("hub.challenge=")[1].split("&")[0]
                self.send_response(200)
                self.send_header("Content-Length", str(len(challenge)))
                self.end_headers()
                self.wfile.write(challenge.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def expected_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_webhook_posts_are_meta_shaped_signed_and_hold_several_changes(emu):
    form_id = emu.add_form("111", "Demo")
    ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}, ad_id="9") for i in range(5)]
    with Receiver() as receiver:
        emu.set_webhook_target(receiver.url)
        posts = emu.send_webhook(ids, per_post=3).result(timeout=10)
    assert [p.lead_ids for p in posts] == [ids[:3], ids[3:]]
    # The two POSTs go out concurrently, as Meta's do: take the one that carries ids[0].
    (body, headers), *_ = [(b, h) for b, h in receiver.posts if ids[0].encode() in b]
    assert headers["X-Hub-Signature-256"] == expected_signature(body)
    payload = json.loads(body)
    assert payload["object"] == "page"
    [entry] = payload["entry"]
    assert entry["id"] == "111" and isinstance(entry["time"], int)
    value = entry["changes"][0]["value"]
    assert entry["changes"][0]["field"] == "leadgen"
    assert value["leadgen_id"] == ids[0] and value["form_id"] == form_id
    assert value["ad_id"] == value["adgroup_id"] == "9" and value["page_id"] == "111"


def test_webhook_is_retried_until_it_gets_a_200(emu):
    lead_id = emu.create_lead(emu.add_form("111", "Demo"), {"email": "a@b.c"})
    with Receiver(statuses=[500, 503]) as receiver:
        emu.set_webhook_target(receiver.url)
        [post] = emu.send_webhook([lead_id], backoff=0.01).result(timeout=10)
    assert post.attempts == [500, 503, 200] and post.delivered
    assert len({body for body, _ in receiver.posts}) == 1  # the same body each time


def test_webhook_retries_are_bounded(emu):
    lead_id = emu.create_lead(emu.add_form("111", "Demo"), {"email": "a@b.c"})
    with Receiver(statuses=[500] * 10) as receiver:
        emu.set_webhook_target(receiver.url)
        [post] = emu.send_webhook([lead_id], max_attempts=3, backoff=0.01).result(timeout=10)
    assert post.attempts == [500, 500, 500] and not post.delivered


def test_webhook_copies_shuffle_and_numeric_ids(emu):
    form_id = emu.add_form("111", "Demo")
    ids = [emu.create_lead(form_id, {"email": f"{i}@x.y"}) for i in range(4)]
    with Receiver() as receiver:
        emu.set_webhook_target(receiver.url)
        posts = emu.send_webhook(ids, per_post=2, copies=2, shuffle=7, numeric_ids=True).result(
            timeout=10
        )
    sent = sorted(lead for post in posts for lead in post.lead_ids)
    assert sent == sorted(ids * 2)
    value = json.loads(receiver.posts[0][0])["entry"][0]["changes"][0]["value"]
    assert isinstance(value["leadgen_id"], int) and isinstance(value["page_id"], int)


def test_webhook_body_for_crafted_requests_is_signed(emu):
    lead_id = emu.create_lead(emu.add_form("111", "Demo"), {"email": "a@b.c"})
    body, signature = emu.webhook_body([lead_id, {"leadgen_id": "1", "page_id": "222"}])
    assert signature == expected_signature(body)
    entries = json.loads(body)["entry"]
    assert [e["id"] for e in entries] == ["111", "222"]


def test_verify_webhook_performs_the_hub_challenge_handshake(emu):
    with Receiver() as receiver:
        assert emu.verify_webhook(receiver.url, "any-verify-token")


# -- control endpoints and standalone process -------------------------------------------------


def control(emu_url: str, method: str, path: str, **data):
    response = requests.request(method, f"{emu_url}/_emulator{path}", json=data, timeout=10)
    response.raise_for_status()
    return response.json()


def test_control_endpoints_drive_the_emulator_over_http(emu):
    control(emu.url, "POST", "/pages", id="222", name="Beta")
    form_id = control(emu.url, "POST", "/forms", page_id="222", name="Quote")["id"]
    lead_id = control(
        emu.url, "POST", "/leads", form_id=form_id, answers={"email": "a@b.c"}, ad_id="5"
    )["id"]
    assert sdk(emu).call("GET", (lead_id,)).json()["id"] == lead_id
    control(emu.url, "POST", "/faults", kind="80005")
    assert graph_error(lambda: sdk(emu).call("GET", ("222",))).api_error_code() == 80005
    control(emu.url, "POST", "/token/expire")
    assert graph_error(lambda: sdk(emu).call("GET", ("222",))).api_error_code() == 190
    control(emu.url, "POST", "/token/issue", token="t2")
    assert sdk(emu, "t2").call("GET", ("222",)).status() == 200
    assert control(emu.url, "GET", "/requests?prefix=/222")["count"] == 3
    with Receiver() as receiver:
        control(emu.url, "POST", "/webhooks/target", url=receiver.url)
        sent = control(emu.url, "POST", "/webhooks", lead_ids=[lead_id], per_post=1)
    assert sent["posts"] == [{"lead_ids": [lead_id], "attempts": [200], "delivered": True}]


def test_control_endpoints_set_token_scopes_and_leads_access(emu):
    form_id = emu.add_form("111", "Demo", ["email"])
    control(emu.url, "POST", "/pages/111/lead_access", allowed=False)
    assert graph_error(lambda: sdk(emu).call("GET", (form_id, "leads"))).api_error_code() == 200
    control(emu.url, "POST", "/pages/111/lead_access", allowed=True)
    assert sdk(emu).call("GET", (form_id, "leads")).json() == {"data": []}
    control(emu.url, "POST", "/token/issue", token="t3", scopes=["pages_show_list"])
    debug = sdk(emu).call("GET", ("debug_token",), params={"input_token": "t3"}).json()
    assert debug["data"]["scopes"] == ["pages_show_list"]


def test_control_endpoint_reports_a_bad_request(emu):
    response = requests.post(f"{emu.url}/_emulator/faults", json={"kind": "meteor"}, timeout=5)
    assert response.status_code == 400 and "meteor" in response.json()["error"]


def test_standalone_process_prints_its_url_and_serves_graph():
    command = [sys.executable, "-m", "leadsync.emulators.graph", "--port", "0", "--token", "tok"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            line = process.stdout.readline()
            url = line.strip().rsplit(" ", 1)[-1]
            assert line.startswith("graph emulator listening on http://127.0.0.1:")
            control(url, "POST", "/pages", id="333", name="Gamma")
            response = requests.get(f"{url}/v24.0/333", params={"access_token": "tok"}, timeout=5)
            assert response.json() == {"id": "333", "name": "Gamma"}
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
