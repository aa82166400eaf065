"""The `[scoring]` config keys, typed and checked before the daemon starts.

A rule either reads a lead's field (a form question's name, or a lead attribute
such as `campaign_name`) and tests it with `matches`, `equals`, `any_of`,
`at_least`, `at_most` or `present` (all given conditions must hold), or counts
an engagement `event` posted to /events. Every mistake is reported by pydantic
at its key path (`scoring.rules[3].matches: ...`) with a message that says what
is wrong and how to fix it; nothing here is checked again while scoring.

When `[scoring]` has no `rules`, the packaged default rule set
(`leadsync/scoring/defaults.toml`) applies: its rules, groups and inactivity
penalty, with any other `[scoring]` key of the config taking precedence. Once a
config writes its own rules it owns the whole rule set.
"""

from __future__ import annotations

import math
import re
import tomllib
from functools import lru_cache
from importlib.resources import files
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

Part = Literal["fit", "engagement"]

# Groups of the MQL definition guide and the part of the score they roll up into, as
# HubSpot, Pardot and Marketo keep fit and engagement apart. Other groups ("negative",
# your own) follow each rule's kind: a field rule is fit, an event rule is engagement.
KNOWN_PARTS: dict[str, Part] = {
    "demographic": "fit",
    "firmographic": "fit",
    "intent": "engagement",
    "high_intent": "engagement",
    "engagement": "engagement",
    "passive": "engagement",
}

Equals = bool | int | float | str


class RuleSettings(BaseModel):
    """One `[[scoring.rules]]` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    group: str = ""
    field: str | None = None
    event: str | None = None
    matches: str | None = None
    equals: Equals | None = None
    any_of: list[str] | None = None
    at_least: float | None = None
    at_most: float | None = None
    present: bool | None = None
    points: float
    decays: bool = False  # default: True for event rules, False for field rules
    count: Literal["once", "each"] = "once"

    @model_validator(mode="before")
    @classmethod
    def _events_decay_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and "decays" not in data and data.get("event") is not None:
            return {**data, "decays": True}
        return data

    @field_validator("matches")
    @classmethod
    def _regex_compiles(cls, pattern: str) -> str:
        if "\b" in pattern:
            raise _problem(
                "contains a backspace character: in a TOML double-quoted string write \\\\b "
                "for a word boundary, or use a single-quoted literal string '\\b'"
            )
        try:
            re.compile(pattern)
        except re.error as error:
            raise _problem(_regex_problem(error)) from None
        return pattern

    @field_validator("any_of")
    @classmethod
    def _choices_given(cls, choices: list[str]) -> list[str]:
        if not choices:
            raise _problem("is empty: list the answers that earn the points, or drop the key")
        return choices

    @field_validator("points", "at_least", "at_most")
    @classmethod
    def _finite(cls, number: float | None) -> float | None:
        if number is not None and not math.isfinite(number):
            raise _problem("must be a finite number")
        return number

    @field_validator("points")
    @classmethod
    def _worth_a_point(cls, points: float) -> float:
        if abs(points) < 0.5:
            raise _problem(
                f"{points:g} rounds to 0, and reasons show whole points: give at least 1 "
                "(or -1), or remove the rule"
            )
        return points

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.field is None) == (self.event is None):
            raise _problem(
                "a rule needs exactly one of `field` (a form question or lead attribute) "
                "or `event` (an event type posted to /events)"
            )
        if self.event is not None:
            return self._check_event_rule()
        return self._check_field_rule()

    def _check_event_rule(self) -> Self:
        if given := self.conditions():
            raise _problem(
                f"`{given[0]}` is a field condition, but this rule counts the event "
                f"{self.event!r}; put the condition in a rule with `field`"
            )
        return self

    def _check_field_rule(self) -> Self:
        given = self.conditions()
        if not given:
            raise _problem(
                f"the rule on field {self.field!r} has no condition: add matches, equals, "
                "any_of, at_least, at_most or present = true"
            )
        if self.present is False and len(given) > 1:
            raise _problem("`present = false` holds only for an empty answer; drop the others")
        low, high = self.at_least, self.at_most
        if low is not None and high is not None and low > high:
            raise _problem(
                f"at_least ({low:g}) is above at_most ({high:g}), so no answer can match; swap them"
            )
        if self.count != "once":
            raise _problem("`count` applies to event rules only; a field is answered once")
        return self

    def conditions(self) -> list[str]:
        """The names of the conditions this rule sets, in a fixed order."""
        names = ("matches", "equals", "any_of", "at_least", "at_most", "present")
        return [name for name in names if getattr(self, name) is not None]


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is exactly `message` (no "Value error, " prefix)."""
    return PydanticCustomError("scoring_config", "{message}", {"message": message})


def _regex_problem(error: re.error) -> str:
    """re's message, said the way a person fixing a TOML file needs it."""
    message = error.msg
    if message.startswith(("missing ), unterminated subpattern", "unbalanced parenthesis")):
        message = "unbalanced parenthesis"
    where = f" at position {error.pos}" if error.pos is not None else ""
    return (
        f"{message}{where} in the regular expression; escape a literal character "
        "with a backslash (\\\\( in a double-quoted TOML string)"
    )


class GroupSettings(BaseModel):
    """One `[scoring.groups.<name>]` table: a cap on the group's total, and its part."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cap: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    part: Part | None = None


class InactivitySettings(BaseModel):
    """`[scoring.inactivity]`: points taken off a lead with no activity for `days`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: float = Field(ge=0, allow_inf_nan=False)  # 0 = no inactivity penalty
    points: float = Field(lt=0, allow_inf_nan=False)
    name: str = ""
    group: str = "negative"

    @property
    def reason(self) -> str:
        """The text shown in score reasons."""
        return self.name or f"No activity for {self.days:g} days"


class ScoringSettings(BaseModel):
    """The `[scoring]` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(default=60, allow_inf_nan=False)
    half_life_days: float = Field(default=30, ge=0, allow_inf_nan=False)  # 0 = never fades
    rules: list[RuleSettings] = Field(default_factory=list)
    groups: dict[str, GroupSettings] = Field(default_factory=dict)
    inactivity: InactivitySettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_rule_set(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rules" not in data:
            return {**default_table(), **data}
        return data

    @field_validator("rules")
    @classmethod
    def _names_unique(cls, rules: list[RuleSettings]) -> list[RuleSettings]:
        first: dict[str, int] = {}
        for index, rule in enumerate(rules):
            if rule.name in first:
                raise _problem(
                    f"rules[{index}].name {rule.name!r} is also the name of "
                    f"rules[{first[rule.name]}]; reasons and calibration tell rules apart "
                    "by name, so give each rule its own"
                )
            first[rule.name] = index
        return rules


@lru_cache(maxsize=1)
def default_table() -> dict[str, Any]:
    """The `[scoring]` table of the packaged default rule set, as plain TOML data."""
    text = files("leadsync.scoring").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["scoring"]
