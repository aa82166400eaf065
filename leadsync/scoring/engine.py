"""The scoring engine: (lead, engagement events, rules, now) -> score, MQL flag, reasons.

Pure and deterministic: no I/O, no clock (the caller passes `now`), no logging.
`Scorer` compiles the validated settings once (regexes, amount tests, rounded
points, caps; see compiled.py), so scoring a lead is mostly one dictionary
lookup per field; re-scoring every stored lead after a rule change takes seconds.
The outcomes of recent answers it remembers change its speed, never its
results, and one `Scorer` may be shared by threads.

How points are counted:
- Each rule that holds gives one reason. Points are rounded per reason (half
  away from zero), so the reasons shown always add up to the score; a reason
  that rounds to 0 (a faded event) is left out.
- An event rule counts the lead's events of its type: by default once, the
  latest one; with `count = "each"` every occurrence adds up. Decaying points
  halve every `half_life_days` of the event's age (`now - event.at`); a field
  rule with `decays = true` ages from the lead's created time. Events later
  than `now` count as fresh.
- A group whose total passes its cap gets one more reason, "<group> cap -N",
  that brings it back to the cap. Negative points are never capped.
- The inactivity penalty applies when the newest activity (the newest event,
  else the form itself) is at least `inactivity.days` old.
- Reasons list the field rules (fields in order of first use, each field's
  rules in config order), then event rules (config order), then caps, then
  inactivity: the same inputs always give the same reasons in the same order.
- `fit` sums the fit part (demographic, firmographic, and field rules of other
  groups), `engagement` the rest (intent, engagement, passive, event rules);
  a cap is charged to its group's part. fit + engagement = points.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import datetime

from leadsync.models import Event, Lead, Reason, Score
from leadsync.scoring.compiled import NOTHING, CompiledRule, FieldRules, round_points
from leadsync.scoring.settings import KNOWN_PARTS, Part, RuleSettings, ScoringSettings

__all__ = ["Scorer", "round_points", "rules_version"]

_SECONDS_PER_DAY = 86_400.0


class Scorer:
    """Scores leads with one validated rule set; build once, call `score` many times."""

    def __init__(self, settings: ScoringSettings):
        self.settings = settings
        self.threshold = settings.threshold
        self.version = rules_version(settings)
        self._half_life = settings.half_life_days * _SECONDS_PER_DAY
        self._parts = {rule.name: _part_of(rule, settings) for rule in settings.rules}
        self._caps = {
            name: (math.floor(group.cap), _cap_part(name, settings) == "fit")
            for name, group in settings.groups.items()
            if group.cap is not None
        }
        by_field: dict[str, list[CompiledRule]] = {}
        events: list[CompiledRule] = []
        for rule in settings.rules:
            compiled = CompiledRule(
                rule,
                part=self._parts[rule.name],
                decays=rule.decays and self._half_life > 0,
                capped=rule.group in self._caps,
            )
            if rule.field is not None:
                by_field.setdefault(rule.field, []).append(compiled)
            else:
                events.append(compiled)
        self._fields = tuple(FieldRules(name, rules) for name, rules in by_field.items())
        self._event_rules = tuple(events)
        idle = settings.inactivity
        self._idle_after = idle.days * _SECONDS_PER_DAY if idle else 0.0
        self._idle_reason = (
            Reason(idle.reason, round_points(idle.points), idle.group)
            if idle and idle.days > 0
            else None
        )

    @property
    def rule_names(self) -> tuple[str, ...]:
        """Every rule's name, in config order."""
        return tuple(rule.name for rule in self.settings.rules)

    def part_of(self, rule_name: str) -> Part:
        """The part ("fit" or "engagement") that rule `rule_name` adds to."""
        return self._parts[rule_name]

    @property
    def fields(self) -> frozenset[str]:
        """The fields (question names, lead attributes) the rules read."""
        return frozenset(field.name for field in self._fields)

    def score(self, lead: Lead, events: Sequence[Event], now: datetime) -> Score:
        """The score of `lead` at `now`, given all of this lead's engagement events."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
        reasons: list[Reason] = []
        fit = 0
        capped = False
        answers = lead.answers
        for field in self._fields:  # the hot loop: one dictionary lookup per field, mostly
            values = answers.get(field.name, ())
            if type(values) is not tuple or (not values and field.attribute is not None):
                values = field.values(lead)
            outcome = field.outcomes.get(values) or field.check(values)
            if outcome is NOTHING:
                continue
            plain, plain_fit, plain_capped, fading = outcome
            reasons += plain
            fit += plain_fit
            capped = capped or plain_capped
            for rule in fading:
                fit += self._add(reasons, rule, self._faded(rule, lead.created_time, now))
        last_active = lead.created_time
        if events:
            last_active, by_type = _events_by_type(events, last_active)
            fit += self._count_events(by_type, now, reasons)
            capped = True
        if capped and self._caps:
            fit += self._cap(reasons)
        idle = self._idle_reason
        if idle is not None and (now - last_active).total_seconds() >= self._idle_after:
            reasons.append(idle)
        points = int(sum([reason.points for reason in reasons]))
        mql = points >= self.threshold
        # Positional: Score's keyword parsing would cost more than the rest of a fast lead.
        return Score(points, mql, tuple(reasons), fit, points - fit, self.version)

    @staticmethod
    def _add(reasons: list[Reason], rule: CompiledRule, reason: Reason | None) -> int:
        """Appends `reason` when there is one; returns what it adds to the fit part."""
        if reason is None:
            return 0
        reasons.append(reason)
        return int(reason.points) if rule.fit else 0

    def _count_events(
        self, by_type: dict[str, list[datetime]], now: datetime, reasons: list[Reason]
    ) -> int:
        """Appends the reasons of event rules; returns what they add to the fit part."""
        fit = 0
        for rule in self._event_rules:
            times = by_type.get(rule.event)  # type: ignore[arg-type]
            if times is None:
                continue
            if not rule.each:
                reason = self._faded(rule, max(times), now) if rule.decays else rule.reason
            elif not rule.decays:
                reason = rule.reason_for(rule.points * len(times))
            else:
                reason = rule.reason_for(sum(self._fade(rule.points, at, now) for at in times))
            fit += self._add(reasons, rule, reason)
        return fit

    def _faded(self, rule: CompiledRule, at: datetime, now: datetime) -> Reason | None:
        """The rule's reason for something that happened `at`, halved every half-life since."""
        return rule.reason_for(self._fade(rule.points, at, now))

    def _fade(self, points: float, at: datetime, now: datetime) -> float:
        """`points` for something that happened `at`, halved every half-life since."""
        age = (now - at).total_seconds()
        return points if age <= 0 else points * math.exp2(-age / self._half_life)

    def _cap(self, reasons: list[Reason]) -> int:
        """Appends a cap reason for each group over its cap; returns what caps took from fit."""
        totals: dict[str, float] = {}
        for reason in reasons:
            if reason.group in self._caps:
                totals[reason.group] = totals.get(reason.group, 0) + reason.points
        taken_from_fit = 0
        for group, total in totals.items():
            cap, fit = self._caps[group]
            if total > cap:
                reasons.append(Reason(f"{group} cap", cap - int(total), group))
                taken_from_fit += (cap - int(total)) if fit else 0
        return taken_from_fit


def _events_by_type(
    events: Sequence[Event], last_active: datetime
) -> tuple[datetime, dict[str, list[datetime]]]:
    """The newest activity (the lead's form or an event), and each event type's times."""
    by_type: dict[str, list[datetime]] = {}
    for event in events:
        times = by_type.get(event.type)
        if times is None:
            by_type[event.type] = [event.at]
        else:
            times.append(event.at)
        if event.at > last_active:
            last_active = event.at
    return last_active, by_type


def _part_of(rule: RuleSettings, settings: ScoringSettings) -> Part:
    group = settings.groups.get(rule.group)
    if group is not None and group.part is not None:
        return group.part
    return KNOWN_PARTS.get(rule.group) or ("fit" if rule.field is not None else "engagement")


def _cap_part(name: str, settings: ScoringSettings) -> Part:
    """A cap is charged to its group's part; a group mixing both parts charges engagement."""
    group = settings.groups.get(name)
    if group is not None and group.part is not None:
        return group.part
    parts = {_part_of(rule, settings) for rule in settings.rules if rule.group == name}
    return "fit" if parts == {"fit"} else "engagement"


def rules_version(settings: ScoringSettings) -> str:
    """A short, stable hash of everything that changes scores: a new one means re-score."""
    data = settings.model_dump(mode="json")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
