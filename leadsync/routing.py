"""Routing to an owner: the `[contacts]` and `[routing]` config keys and the rule that picks a pool.

`[[routing.owners]]` names the people leads go to, each with a weight;
`[[routing.rules]]` are tried in order and the first that matches a lead picks
its pool of owners (no rules at all: every owner is one pool). A rule matches
by form, by page, by an answer (`field` with the scoring rules' conditions:
`equals`, `any_of`, `matches`, ...) and, with `only_mql`, only once the lead is
an MQL. Which owner of the pool gets the lead (weighted round-robin) and that
it keeps them is the store's job (`leadsync/store/routing.py`), in one
transaction across replicas. Pure: no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Self

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadsync.hours import WorkingHours
from leadsync.models import Lead, Owner, Pool, Score
from leadsync.scoring.conditions import compile_check, read_answer
from leadsync.scoring.settings import Equals, RuleSettings

SLACK_MEMBER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text_id(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ContactsSettings(_Section):
    """`[contacts]`: how phone numbers are read."""

    default_region: str = "US"  # the region of a number written without +country code

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a region code; write two letters such as US or GB")
        return region.upper()


class OwnerSettings(_Section):
    """One `[[routing.owners]]` entry."""

    name: str = Field(min_length=1)
    email: str = ""
    slack_id: str = ""  # a Slack member id (U012AB3CD), mentioned in alerts
    hubspot_owner_id: str = ""
    weight: int = Field(1, ge=1, le=1000)
    hours: str = ""  # working hours, "mon-fri 09:00-17:00 Europe/Paris"; "" = always

    _ids = field_validator("hubspot_owner_id", mode="before")(_text_id)

    @field_validator("slack_id")
    @classmethod
    def _member_id(cls, slack_id: str) -> str:
        if slack_id and not SLACK_MEMBER_ID.fullmatch(slack_id):
            raise ValueError(
                "is not a Slack member id (like U012AB3CD): in Slack open the person's"
                " profile, then More > Copy member ID"
            )
        return slack_id

    @field_validator("hours")
    @classmethod
    def _hours_read(cls, hours: str) -> str:
        if hours.strip():
            WorkingHours.parse(hours)  # ValueError says how to write them
        return hours.strip()

    def owner(self) -> Owner:
        return Owner(self.name, self.email, self.slack_id, self.hubspot_owner_id, self.hours)


class RoutingRuleSettings(_Section):
    """One `[[routing.rules]]` entry: which leads, and the owners whose pool takes them."""

    name: str = ""
    forms: list[str] = ["*"]
    pages: list[str] = ["*"]
    field: str | None = None
    matches: str | None = None
    equals: Equals | None = None
    any_of: list[str] | None = None
    at_least: float | None = None
    at_most: float | None = None
    present: bool | None = None
    only_mql: bool = False
    owners: list[str] = Field(min_length=1)
    speed_to_lead: timedelta | None = None  # first contact due within it (leadsync/sla.py)
    escalate_to: str = ""  # a slack destination, an owner's name or an email; "" = no escalation

    _ids = field_validator("forms", "pages", mode="before")(
        lambda value: [_text_id(v) for v in value] if isinstance(value, list) else value
    )

    @field_validator("speed_to_lead", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        from leadsync.config import parse_duration  # config imports this module

        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _condition_with_field(self) -> Self:
        self.condition()  # a field rule's mistakes, as the scoring rules report them
        return self

    def condition(self) -> RuleSettings | None:
        """The answer condition as a scoring rule (same syntax and checks), None without one."""
        keys = ("matches", "equals", "any_of", "at_least", "at_most", "present")
        given = {key: getattr(self, key) for key in keys if getattr(self, key) is not None}
        if self.field is None and not given:
            return None
        if self.field is None:
            raise ValueError(f"`{next(iter(given))}` needs `field`: the question it tests")
        return RuleSettings(name=self.name or "routing", field=self.field, points=1, **given)


class RoutingSettings(_Section):
    """`[routing]`: owners and ordered rules."""

    owners: list[OwnerSettings] = []
    rules: list[RoutingRuleSettings] = []

    @model_validator(mode="after")
    def _owners_known(self) -> Self:
        names = [owner.name for owner in self.owners]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"owner {twice[0]!r} is listed twice: give each owner one entry")
        for index, rule in enumerate(self.rules):
            if unknown := [name for name in rule.owners if name not in names]:
                raise ValueError(
                    f"rules[{index}] names owner {unknown[0]!r}, who is not in"
                    " [[routing.owners]]: add them or fix the name"
                )
        return self


class Router:
    """The pool a lead goes to under the configured rules (first match wins)."""

    def __init__(self, settings: RoutingSettings):
        self.owners: Mapping[str, Owner] = {o.name: o.owner() for o in settings.owners}
        self._weights = {o.name: o.weight for o in settings.owners}
        rules = settings.rules or [RoutingRuleSettings(owners=list(self.owners) or ["-"])]
        self._rules = [(index, rule, _check(rule)) for index, rule in enumerate(rules)]

    @property
    def enabled(self) -> bool:
        return bool(self.owners)

    def pool_for(self, lead: Lead, score: Score) -> Pool | None:
        """The pool of the first rule that matches the lead with this score; None when none does."""
        if not self.enabled:
            return None
        for index, rule, check in self._rules:
            if rule.only_mql and not score.mql:
                continue
            if not (_listed(lead.form_id, rule.forms) and _listed(lead.page_id, rule.pages)):
                continue
            if check is not None and not check(read_answer(lead, rule.field or "")):
                continue
            return self.pool(rule.owners, rule.name or f"rules[{index}]")
        return None

    def pool(self, names: list[str], rule: str) -> Pool:
        """The pool of these owners; its key names them, so rules sharing owners share turns."""
        chosen = tuple(self.owners[name] for name in names)
        weights = tuple(self._weights[name] for name in names)
        return Pool(",".join(sorted(names)), rule, chosen, weights)


def _listed(value: str, allowed: list[str]) -> bool:
    return "*" in allowed or value in allowed


def _check(rule: RoutingRuleSettings):  # noqa: ANN202 - the scoring engine's Check
    condition = rule.condition()
    return compile_check(condition) if condition is not None else None
