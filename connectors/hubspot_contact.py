"""What a scored lead becomes in HubSpot: the contact properties and the key it is upserted by.

Pure functions, no HTTP. A lead with a usable email is keyed by `email`, so it
lands on the person's existing contact; a lead without one is keyed by our own
unique property `leadsync_lead_id`, so redelivering it finds the contact it
made. Form answers go to HubSpot properties through the configured mapping;
`full_name` is split into first and last name when those were not asked.
The phone goes in E.164 when leadsync could read it, and the lead's owner as
`hubspot_owner_id` (HubSpot's own contact owner property) when configured.
Several leads of one batch with the same email become one input (HubSpot
refuses duplicate ids in a batch), showing the newest lead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadsync.models import ScoredLead

# Our own contact properties, created on first use when the portal lacks them.
LEAD_ID = "leadsync_lead_id"
_YES_NO = [
    {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
    {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
]
CUSTOM_PROPERTIES: tuple[dict[str, Any], ...] = (
    {"name": LEAD_ID, "label": "leadsync lead id", "type": "string", "fieldType": "text",
     "hasUniqueValue": True, "description": "Facebook lead id; leadsync finds the contact by it"},
    {"name": "leadsync_score", "label": "leadsync score", "type": "number",
     "fieldType": "number", "description": "Lead score computed by leadsync"},
    {"name": "leadsync_mql", "label": "leadsync MQL", "type": "bool",
     "fieldType": "booleancheckbox", "options": _YES_NO,
     "description": "Marketing-qualified lead according to leadsync's threshold"},
    {"name": "leadsync_score_reasons", "label": "leadsync score reasons", "type": "string",
     "fieldType": "textarea", "description": "The rules that make up the score"},
    {"name": "leadsync_form", "label": "Lead form", "type": "string", "fieldType": "text",
     "description": "The Facebook lead form the lead came from"},
    {"name": "leadsync_campaign", "label": "Lead campaign", "type": "string",
     "fieldType": "text", "description": "The Facebook campaign the lead came from"},
)  # fmt: skip
CUSTOM_NAMES = frozenset(p["name"] for p in CUSTOM_PROPERTIES)

# Facebook's standard lead-form questions and the HubSpot contact properties they fill.
# The email is not in here: it is the key of every lead that has one.
DEFAULT_MAPPING: Mapping[str, str] = {
    "first_name": "firstname",
    "last_name": "lastname",
    "phone_number": "phone",
    "company_name": "company",
    "job_title": "jobtitle",
}
MQL_STAGE = "marketingqualifiedlead"
# HubSpot rejects the batch for a malformed email; such a lead is keyed by its lead id instead.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class ContactInput:
    """One input of a batch upsert and the leads it stands for."""

    id_property: str
    key: str
    properties: dict[str, str]
    lead_ids: list[str] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {"idProperty": self.id_property, "id": self.key, "properties": self.properties}


def contact_properties(
    scored: ScoredLead, mapping: Mapping[str, str], *, lifecycle_stage_for_mql: bool
) -> dict[str, str]:
    """The HubSpot properties of one lead; empty answers are left out (never cleared)."""
    lead, score = scored.lead, scored.score
    properties: dict[str, str] = {}
    for question, name in mapping.items():
        value = lead.answer(question).strip()
        if name and value:
            properties[name] = value
    full_name = lead.answer("full_name").strip()
    if full_name and not {"firstname", "lastname"} & properties.keys():
        first, _, last = full_name.partition(" ")
        properties["firstname"] = first
        if last.strip():
            properties["lastname"] = last.strip()
    phone = mapping.get("phone_number", "")
    if phone and scored.phone_e164:  # E.164 when it could be read; as typed when it could not
        properties[phone] = scored.phone_e164
    if scored.owner is not None and scored.owner.hubspot_owner_id:
        properties["hubspot_owner_id"] = scored.owner.hubspot_owner_id
    if _EMAIL.match(lead.email):
        properties["email"] = lead.email
    properties.update(
        {
            LEAD_ID: lead.id,
            "leadsync_score": str(score.points),
            "leadsync_mql": "true" if score.mql else "false",
            "leadsync_score_reasons": score.reasons_text,
            "leadsync_form": lead.form_name or lead.form_id,
            "leadsync_campaign": lead.campaign_name or lead.campaign_id,
        }
    )
    if lifecycle_stage_for_mql and score.mql:
        # Never the other way: a lead falling back to nurture keeps the stage sales sees.
        properties["lifecyclestage"] = MQL_STAGE
    return properties


def contact_inputs(
    batch: Sequence[ScoredLead], mapping: Mapping[str, str], *, lifecycle_stage_for_mql: bool
) -> list[ContactInput]:
    """One upsert input per person: by email when the lead has one, else by lead id."""
    inputs: dict[tuple[str, str], ContactInput] = {}
    newest: dict[tuple[str, str], ScoredLead] = {}
    for scored in batch:
        properties = contact_properties(
            scored, mapping, lifecycle_stage_for_mql=lifecycle_stage_for_mql
        )
        key = ("email", properties["email"]) if "email" in properties else (LEAD_ID, scored.lead.id)
        if key not in inputs:
            inputs[key] = ContactInput(key[0], key[1], properties)
        elif scored.lead.created_time >= newest[key].lead.created_time:
            inputs[key].properties = properties
        newest[key] = max(newest.get(key, scored), scored, key=lambda s: s.lead.created_time)
        inputs[key].lead_ids.append(scored.lead.id)
    return list(inputs.values())


def input_key(result: Mapping[str, Any], id_property: str) -> str:
    """The key a batch result answers for, read from its properties."""
    value = str(result.get("properties", {}).get(id_property) or "")
    return value.lower() if id_property == "email" else value
