"""Rules compiled for the hot path: plain slotted objects, no pydantic, no lookups by name.

`CompiledRule` holds what scoring needs of one rule (its check, its reason with
points already rounded, whether it fades, which part it adds to, whether its
group is capped). `FieldRules` holds the rules that read one field and runs
them all against an answer at once; because answers repeat (multiple-choice
questions have a handful of values, titles like "CEO" come back again and
again), it remembers the outcome of the last `REMEMBERED_ANSWERS` distinct
answers, which turns most leads' field rules into one dictionary lookup.
Unique answers (emails) cost one lookup more and never grow memory past it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from leadsync.models import Lead, Reason
from leadsync.scoring.conditions import (
    LEAD_ATTRIBUTES,
    Check,
    TextCheck,
    Values,
    compile_check,
    compile_text_check,
    read_answer,
)
from leadsync.scoring.settings import Part, RuleSettings

# How many distinct answers each field remembers the outcome of.
REMEMBERED_ANSWERS = 2048


def round_points(points: float) -> int:
    """Rounds half away from zero, the same way for every reason: 7.5 -> 8, -7.5 -> -8."""
    return math.floor(points + 0.5) if points >= 0 else -math.floor(-points + 0.5)


class CompiledRule:
    """One rule, ready to run."""

    __slots__ = (
        "name",
        "group",
        "points",
        "event",
        "check",
        "text_check",
        "reason",
        "reasons",
        "decays",
        "each",
        "fit",
        "capped",
    )

    def __init__(self, rule: RuleSettings, *, part: Part, decays: bool, capped: bool):
        self.name = rule.name
        self.group = rule.group
        self.points = rule.points
        self.event = rule.event
        # A field rule gets exactly one of the two: the fast text check when it can.
        is_field = rule.field is not None
        self.text_check: TextCheck | None = compile_text_check(rule) if is_field else None
        self.check: Check | None = (
            compile_check(rule) if is_field and self.text_check is None else None
        )
        self.reason = Reason(rule.name, round_points(rule.points), rule.group)
        self.reasons: dict[int, Reason] = {self.reason.points: self.reason}
        self.decays = decays
        self.each = rule.count == "each"
        self.fit = part == "fit"
        self.capped = capped

    def reason_for(self, points: float) -> Reason | None:
        """This rule's reason for `points` (faded, or counted several times); None at 0."""
        rounded = round_points(points)
        reason = self.reasons.get(rounded)
        if reason is None and rounded:
            reason = Reason(self.name, rounded, self.group)
            # Few distinct values occur (a faded 35 is one of 35 or so): keep them, within reason.
            if len(self.reasons) < REMEMBERED_ANSWERS:
                self.reasons[rounded] = reason
        return reason


# What the rules of one field make of one answer: the reasons of the rules that hold and
# do not fade, what those add to the fit part, whether any of them is in a capped group,
# and the rules that hold but fade with time (their points depend on `now`).
Outcome = tuple[tuple[Reason, ...], int, bool, tuple[CompiledRule, ...]]
NOTHING: Outcome = ((), 0, False, ())


class FieldRules:
    """The rules that read one field; each distinct answer is checked once, then recalled."""

    __slots__ = ("name", "attribute", "rules", "outcomes")

    def __init__(self, name: str, rules: Sequence[CompiledRule]):
        self.name = name
        self.attribute = LEAD_ATTRIBUTES.get(name)
        self.rules = tuple(rules)
        self.outcomes: dict[Values, Outcome] = {}

    def values(self, lead: Lead) -> Values:
        """The lead's answer to this field, else the lead attribute of that name."""
        return read_answer(lead, self.name)

    def check(self, values: Values) -> Outcome:
        """Runs every rule of the field against an answer, and remembers the outcome."""
        text = (values[0] if len(values) == 1 else ", ".join(values)) if values else None
        plain: list[Reason] = []
        fit = 0
        capped = False
        fading: tuple[CompiledRule, ...] = ()
        for rule in self.rules:
            if rule.text_check is not None:
                if text is None or not rule.text_check(text):
                    continue
            elif not rule.check(values):  # type: ignore[misc]
                continue
            capped = capped or rule.capped
            if rule.decays:
                fading += (rule,)
            else:
                plain.append(rule.reason)
                fit += int(rule.reason.points) if rule.fit else 0
        outcome = (tuple(plain), fit, capped, fading) if plain or fading else NOTHING
        if len(self.outcomes) >= REMEMBERED_ANSWERS:
            self.outcomes.clear()
        self.outcomes[values] = outcome
        return outcome
