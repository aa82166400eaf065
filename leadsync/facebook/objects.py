"""Graph JSON objects turned into leadsync's models: leads and lead forms.

A Graph lead carries its answers as `field_data` (`[{"name", "values": [...]}]`,
every value kept, in form order), its consent checkboxes as
`custom_disclaimer_responses` (`is_checked` "1" or ""), and ad fields only when
it came through an ad. Which page a lead belongs to is not a lead field: the
caller knows it from the webhook or the form being polled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadsync.errors import BadLead
from leadsync.models import Form, Lead, parse_time

# Every lead field leadsync keeps; Graph returns only what is asked for.
LEAD_FIELDS = (
    "id",
    "created_time",
    "field_data",
    "form_id",
    "ad_id",
    "ad_name",
    "adset_id",
    "adset_name",
    "campaign_id",
    "campaign_name",
    "is_organic",
    "platform",
    "custom_disclaimer_responses",
)
FORM_FIELDS = ("id", "name", "status", "questions", "page")

CHECKED = frozenset({"1", "true", "True", 1})  # 1 == True


def lead_from_graph(data: Mapping[str, Any], *, page_id: str, form_id: str = "") -> Lead:
    """A Lead from Graph's JSON; BadLead when Graph's answer is not a lead."""
    try:
        lead_id = str(data["id"])
        created = parse_time(data["created_time"])
        answers = {
            str(item["name"]): tuple(str(v) for v in item.get("values") or ())
            for item in data.get("field_data") or ()
        }
        consents = {
            str(item["checkbox_key"]): item.get("is_checked") in CHECKED
            for item in data.get("custom_disclaimer_responses") or ()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise BadLead(
            f"lead {data.get('id', '?')}: Graph's answer is not a lead ({exc!r})"
        ) from None
    if created is None:
        raise BadLead(f"lead {lead_id}: Graph's answer has no created_time")

    def text(name: str) -> str:
        value = data.get(name)
        return "" if value is None else str(value)

    return Lead(
        id=lead_id,
        created_time=created,
        page_id=page_id,
        form_id=text("form_id") or form_id,
        ad_id=text("ad_id"),
        ad_name=text("ad_name"),
        adset_id=text("adset_id"),
        adset_name=text("adset_name"),
        campaign_id=text("campaign_id"),
        campaign_name=text("campaign_name"),
        platform=text("platform"),
        is_organic=data.get("is_organic") in CHECKED,
        answers=answers,
        consents=consents,
    )


def form_from_graph(data: Mapping[str, Any], *, page_id: str = "") -> Form:
    """A Form from Graph's JSON; the page comes from the `page` field when asked for."""
    page = data.get("page") or {}
    return Form(
        id=str(data["id"]),
        page_id=str(page.get("id") or data.get("page_id") or page_id),
        name=str(data.get("name", "")),
        status=str(data.get("status", "ACTIVE")),
        questions=tuple(str(q["key"]) for q in data.get("questions") or () if "key" in q),
    )
