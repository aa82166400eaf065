"""Compiles a field rule's conditions into one check of a lead's answer.

A field is a form question's name or a lead attribute (`form_id`, `form_name`,
`campaign_name`, `ad_name`, `platform`, `is_organic`, ...); a question answered
on the form wins over an attribute of the same name, so `email` reads the email
question and falls back to `Lead.email` (the work email). An answer is the
tuple of its values; () when the lead has none. Regexes are compiled here once,
and a check is a closure over exactly what it needs: scoring a lead touches
neither pydantic nor the `re` module's cache.

Semantics, for people writing rules:
- `matches` searches the answer (several values joined by ", ") anywhere;
  anchor with ^ and $ to match it whole.
- `equals` and `any_of` ignore case and surrounding spaces, and hold when the
  whole answer or any one of its values is listed. A number in `equals` is
  compared as an amount ("1,000" equals 1000); `true`/`false` compare with
  "true"/"false", so `field = "is_organic"` with `equals = true` works.
- `at_least` / `at_most` read the answer as an amount range (see amounts.py) and
  hold when the whole range is inside: "500-1000" is at least 500 and at most
  1000, but not at least 600. Text without an amount never holds.
- `present = true` holds for a non-blank answer, `present = false` for a
  missing or blank one. Several conditions on one rule must all hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from leadsync.models import Lead
from leadsync.scoring.amounts import parse_amount
from leadsync.scoring.settings import RuleSettings

Values = tuple[str, ...]
Check = Callable[[Values], bool]
TextCheck = Callable[[str], object]

# Lead attributes a rule may name as its field, and how to read each as text.
LEAD_ATTRIBUTES: dict[str, Callable[[Lead], str]] = {
    "lead_id": lambda lead: lead.id,
    "page_id": lambda lead: lead.page_id,
    "form_id": lambda lead: lead.form_id,
    "form_name": lambda lead: lead.form_name,
    "ad_id": lambda lead: lead.ad_id,
    "ad_name": lambda lead: lead.ad_name,
    "adset_id": lambda lead: lead.adset_id,
    "adset_name": lambda lead: lead.adset_name,
    "campaign_id": lambda lead: lead.campaign_id,
    "campaign_name": lambda lead: lead.campaign_name,
    "platform": lambda lead: lead.platform,
    "is_organic": lambda lead: "true" if lead.is_organic else "false",
    "email": lambda lead: lead.email,
}


def read_answer(lead: Lead, field: str) -> Values:
    """The values of `field` for `lead`: its answer, else the lead attribute; () for none."""
    values = lead.answers.get(field)
    if values:
        return tuple(values)
    attribute = LEAD_ATTRIBUTES.get(field)
    text = attribute(lead) if attribute is not None else ""
    return (text,) if text else ()


def compile_text_check(rule: RuleSettings) -> TextCheck | None:
    """For a rule with only `matches`, or only `at_least`/`at_most`: a check of the answer's
    text (values joined by ", "), truthy when it holds; None for other rules.

    These are most rules, and this is the fast way to run them: the caller joins an
    answer once for all of a field's rules, and a regex check is the compiled
    pattern's own `search`, with no Python call around it.
    """
    given = set(rule.conditions())
    if given == {"matches"}:
        return re.compile(rule.matches or "").search
    if given and given <= {"at_least", "at_most"}:
        return _within_text(rule.at_least, rule.at_most)
    return None


def compile_check(rule: RuleSettings) -> Check:
    """One closure that says whether `rule`'s conditions hold for an answer's values."""
    if rule.present is False:
        return lambda values: not any(value.strip() for value in values)
    checks: list[Check] = []
    if rule.matches is not None:
        checks.append(_matches(rule.matches))
    if rule.equals is not None:
        checks.append(_equals(rule.equals))
    if rule.any_of is not None:
        checks.append(_one_of(frozenset(_normal(choice) for choice in rule.any_of)))
    if rule.at_least is not None or rule.at_most is not None:
        checks.append(_within(rule.at_least, rule.at_most))
    if rule.present:
        checks.append(lambda values: any(value.strip() for value in values))
    if len(checks) == 1:
        (check,) = checks
        return lambda values: bool(values) and check(values)
    return lambda values: bool(values) and all(check(values) for check in checks)


def _joined(values: Values) -> str:
    return values[0] if len(values) == 1 else ", ".join(values)


def _normal(text: str) -> str:
    return text.strip().casefold()


def _matches(pattern: str) -> Check:
    search = re.compile(pattern).search
    return lambda values: search(_joined(values)) is not None


def _equals(expected: bool | int | float | str) -> Check:
    if isinstance(expected, bool):
        return _one_of(frozenset({"true" if expected else "false"}))
    if isinstance(expected, int | float):
        return _within(float(expected), float(expected))
    return _one_of(frozenset({_normal(expected)}))


def _one_of(choices: frozenset[str]) -> Check:
    def check(values: Values) -> bool:
        if len(values) > 1 and _normal(", ".join(values)) in choices:
            return True
        return any(_normal(value) in choices for value in values)

    return check


def _within(low: float | None, high: float | None) -> Check:
    holds = _within_text(low, high)
    return lambda values: holds(_joined(values))


def _within_text(low: float | None, high: float | None) -> TextCheck:
    floor = float("-inf") if low is None else low
    ceiling = float("inf") if high is None else high

    def holds(text: str) -> bool:
        amount = parse_amount(text)
        return amount is not None and amount[0] >= floor and amount[1] <= ceiling

    return holds
