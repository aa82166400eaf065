"""The data behind the HubSpot emulator: contact properties and contacts, with HubSpot's rules.

No HTTP here: `Portal` validates and applies what the routes hand it and
raises `Rejected` (status, message, category) the way HubSpot answers. Rules
kept from HubSpot's reference: property names are lower-case snake case;
`type`/`fieldType` pairs; enumeration and bool properties need options; only
`email` and `hasUniqueValue` properties may key an upsert; property values are
validated per type (emails, numbers, booleans, enumeration options) and one
bad value rejects the whole batch with "Property values were not valid";
emails are stored lower-case; lifecycle stages only move forward through the
API (a backward value is ignored).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}
FIELD_TYPES = {"text", "textarea", "number", "booleancheckbox", "select", "radio", "checkbox",
               "date", "phonenumber", "file", "html", "calculation_equation"}  # fmt: skip
GROUPS = {"contactinformation"}
LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                    "opportunity", "customer", "evangelist", "other")  # fmt: skip
READ_ONLY = {"hs_object_id", "createdate", "lastmodifieddate"}


class Rejected(Exception):
    """What HubSpot answers to a request it refuses."""

    def __init__(self, status: int, message: str, category: str, **extra: Any):
        self.status = status
        self.message = message
        self.category = category
        self.extra = extra
        super().__init__(message)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _property(name: str, label: str, type_: str, field_type: str, **more: Any) -> dict[str, Any]:
    now = _now()
    return {
        "name": name, "label": label, "type": type_, "fieldType": field_type,
        "groupName": "contactinformation", "description": "", "options": [],
        "hasUniqueValue": False, "hidden": False, "formField": True, "calculated": False,
        "externalOptions": False, "displayOrder": -1, "archived": False,
        "createdAt": now, "updatedAt": now, **more,
    }  # fmt: skip


def default_properties() -> dict[str, dict[str, Any]]:
    """The built-in contact properties the connector and tests touch."""
    stages = [{"label": s, "value": s, "displayOrder": i, "hidden": False}
              for i, s in enumerate(LIFECYCLE_STAGES)]  # fmt: skip
    props = [
        _property("email", "Email", "string", "text"),
        _property("firstname", "First Name", "string", "text"),
        _property("lastname", "Last Name", "string", "text"),
        _property("phone", "Phone Number", "string", "phonenumber"),
        _property("company", "Company Name", "string", "text"),
        _property("jobtitle", "Job Title", "string", "text"),
        _property("website", "Website URL", "string", "text"),
        _property("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", options=stages),
        # The contact owner: an enumeration of the portal's users (`Portal.add_owner`).
        _property("hubspot_owner_id", "Contact owner", "enumeration", "select", options=[]),
        _property("hs_object_id", "Record ID", "number", "number", formField=False),
        _property("createdate", "Create Date", "datetime", "date", formField=False),
        _property("lastmodifieddate", "Last Modified Date", "datetime", "date", formField=False),
    ]
    return {p["name"]: p for p in props}


class Portal:
    """One HubSpot account's contact properties and contacts. Not thread-safe by itself."""

    def __init__(self) -> None:
        self.properties = default_properties()
        self.contacts: dict[str, dict[str, Any]] = {}
        self._index: dict[tuple[str, str], str] = {}  # (unique property, value) -> contact id
        self._next_id = 1001
        self._last_change: datetime | None = None

    # -- properties -------------------------------------------------------------
    def create_property(self, body: dict[str, Any]) -> dict[str, Any]:
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise Rejected(400, f"Missing required fields: {missing}", "VALIDATION_ERROR")
        name = str(body["name"])
        if not _NAME.match(name):
            raise Rejected(400, f"Property name {name!r} is not valid", "VALIDATION_ERROR")
        if name in self.properties:
            raise Rejected(409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
        if body["type"] not in TYPES or body["fieldType"] not in FIELD_TYPES:
            raise Rejected(400, "Invalid type or fieldType", "VALIDATION_ERROR")
        if body["groupName"] not in GROUPS:
            raise Rejected(
                400, f"Property group {body['groupName']} does not exist", "VALIDATION_ERROR"
            )
        if body["type"] in ("enumeration", "bool") and not body.get("options"):
            raise Rejected(400, f"Options are required for type {body['type']}", "VALIDATION_ERROR")
        optional = ("description", "options", "hasUniqueValue", "formField", "hidden")
        known = {k: body[k] for k in optional if k in body}
        created = _property(name, str(body["label"]), body["type"], body["fieldType"], **known)
        created["groupName"] = body["groupName"]
        self.properties[name] = created
        return dict(created)

    def _unique(self, name: str) -> bool:
        return name == "email" or bool(self.properties.get(name, {}).get("hasUniqueValue"))

    def add_owner(self, owner_id: str, name: str = "") -> None:
        """A user of the account; contacts can then have hubspot_owner_id = owner_id."""
        options = self.properties["hubspot_owner_id"]["options"]
        label = name or f"Owner {owner_id}"
        order = len(options)
        options.append({"label": label, "value": owner_id, "displayOrder": order, "hidden": False})

    def set_property(self, contact_id: str, name: str, value: str) -> dict[str, Any]:
        """What a salesperson does in HubSpot's UI: one property of one contact, any stage.

        Unlike the API (`_moves_back`), a person may move the lifecycle stage back.
        """
        if contact_id not in self.contacts:
            raise Rejected(404, f"Contact {contact_id} does not exist", "OBJECT_NOT_FOUND")
        result = self._apply(contact_id, self._validated({name: value}, contact_id), by_person=True)
        result.pop("new")
        return result

    # -- contacts -----------------------------------------------------------------
    def all_contacts(self) -> list[dict[str, Any]]:
        return [{**c, "properties": dict(c["properties"])} for c in self.contacts.values()]

    def upsert(self, inputs: list[Any]) -> list[dict[str, Any]]:
        """Validates every input, then creates or updates each contact; all or nothing."""
        keyed = [self._key(item) for item in inputs]
        duplicates = sorted(value for (_, value), n in Counter(keyed).items() if n > 1)
        if duplicates:
            message = f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique"
            raise Rejected(400, message, "VALIDATION_ERROR")
        planned = []
        for (id_property, value), item in zip(keyed, inputs, strict=True):
            properties = {**item.get("properties", {}), id_property: value}
            existing = self._index.get((id_property, value))
            planned.append((existing, self._validated(properties, existing)))
        return [self._apply(existing, properties) for existing, properties in planned]

    def create(self, properties: dict[str, Any]) -> dict[str, Any]:
        """One new contact (POST /crm/v3/objects/contacts); 409 when its email exists."""
        existing = self._index.get(("email", str(properties.get("email", "")).lower()))
        if existing is not None:
            raise Rejected(409, f"Contact already exists. Existing ID: {existing}", "CONFLICT")
        result = self._apply(None, self._validated(properties, None))
        result.pop("new")
        return result

    def _key(self, item: Any) -> tuple[str, str]:
        if not isinstance(item, dict) or not item.get("id") or not item.get("idProperty"):
            raise Rejected(
                400, "Invalid input JSON: each input needs id and idProperty", "VALIDATION_ERROR"
            )
        id_property = str(item["idProperty"])
        if not self._unique(id_property):
            message = f"Unable to perform update/upsert by non-unique 0-1 property {id_property}"
            raise Rejected(400, message, "VALIDATION_ERROR")
        if not isinstance(item.get("properties", {}), dict):
            raise Rejected(400, "Invalid input JSON: properties", "VALIDATION_ERROR")
        value = str(item["id"])
        return id_property, value.lower() if id_property == "email" else value

    def _validated(self, properties: dict[str, Any], contact_id: str | None) -> dict[str, str]:
        problems, clean = [], {}
        for name, raw in properties.items():
            value = "" if raw is None else str(raw)
            error = self._value_error(name, value, contact_id)
            if error:
                problems.append(
                    {"isValid": False, "message": error[1], "error": error[0], "name": name}
                )
            else:
                clean[name] = value.lower() if name == "email" else value
        if problems:
            raise Rejected(
                400,
                f"Property values were not valid: {json.dumps(problems)}",
                "VALIDATION_ERROR",
                errors=[
                    {
                        "message": p["message"],
                        "code": p["error"],
                        "context": {"propertyName": [p["name"]]},
                    }
                    for p in problems
                ],  # fmt: skip
            )
        return clean

    def _value_error(self, name: str, value: str, contact_id: str | None) -> tuple[str, str] | None:
        spec = self.properties.get(name)
        if spec is None:
            return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
        if name in READ_ONLY:
            return "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
        if value == "":
            return None  # an empty string clears a value
        if name == "email" and not _EMAIL.match(value):
            return "INVALID_EMAIL", f"Email address {value} is invalid"
        if spec["type"] == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
            return "INVALID_INTEGER", f"{value} was not a valid number."
        if spec["type"] == "bool" and value not in ("true", "false"):
            return "INVALID_OPTION", f"{value} was not one of the allowed options: [true, false]"
        options = [o["value"] for o in spec.get("options", [])]
        if spec["type"] == "enumeration" and value not in options:
            return "INVALID_OPTION", f"{value} was not one of the allowed options: {options}"
        holder = self._index.get((name, value.lower() if name == "email" else value))
        if self._unique(name) and holder is not None and holder != contact_id:
            # HubSpot refuses a duplicate unique value; the reference does not name the code.
            return "CONFLICTING_UNIQUE_VALUE", f"Another contact already has this {name}"
        return None

    @staticmethod
    def _moves_back(current: str, wanted: str) -> bool:
        """True when `wanted` is an earlier lifecycle stage than `current`.

        HubSpot's knowledge base: through imports and the API a stage only moves
        forward unless it is cleared first; the request still succeeds.
        """
        if current not in LIFECYCLE_STAGES or wanted not in LIFECYCLE_STAGES:
            return False
        return LIFECYCLE_STAGES.index(wanted) < LIFECYCLE_STAGES.index(current)

    def _modified_now(self) -> str:
        """Now, later than any change before: one change per millisecond at most (HubSpot
        changes by people and syncs are further apart; tests make several per millisecond)."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_change is not None and now <= self._last_change:
            now = self._last_change + timedelta(milliseconds=1)
        self._last_change = now
        return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _apply(
        self, contact_id: str | None, properties: dict[str, str], *, by_person: bool = False
    ) -> dict[str, Any]:
        now = self._modified_now()
        if contact_id is None:
            contact_id = str(self._next_id)
            self._next_id += 1
            first = {"hs_object_id": contact_id, "createdate": now}
            contact = {"id": contact_id, "properties": first, "createdAt": now,
                       "updatedAt": now, "archived": False}  # fmt: skip
            self.contacts[contact_id] = contact
            new = True
        else:
            contact, new = self.contacts[contact_id], False
        props = contact["properties"]
        wanted = properties.get("lifecyclestage", "")
        if not by_person and self._moves_back(props.get("lifecyclestage", ""), wanted):
            properties = {k: v for k, v in properties.items() if k != "lifecyclestage"}
        for name, value in properties.items():
            if self._unique(name) and props.get(name):
                self._index.pop((name, props[name]), None)
            props[name] = value
            if self._unique(name) and value:
                self._index[name, value] = contact_id
        props["lastmodifieddate"] = contact["updatedAt"] = now
        return {**contact, "properties": dict(props), "new": new}
