"""Scoring throughput: leads scored per second on one core with 20 rules.

Re-scoring every stored lead after a rule change must take seconds, so the
target is at least 100,000 leads/s. The leads are a fixed, seeded mix of form
answers (about 400 distinct job titles; multiple-choice company sizes, revenues
and interests; a unique email per lead) and engagement events (a third of the
leads have one to four). Repeated answers are what real forms send, and the
engine remembers each field's recent answers; unique emails are checked anew.
The baseline is the engine one writes first: it walks the pydantic rule
settings for every lead, calls `re.search` with the pattern string (the `re`
module's cache lookup each time), parses amounts without a cache and builds
every reason anew. Both score the same leads in the same run, and must agree
on every score first.

Run: `python benchmarks/bench_scoring.py` (or `--quick`).
"""

from __future__ import annotations

import math
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from leadsync.models import Event, Lead, Reason, Score
from leadsync.scoring.amounts import parse_amount
from leadsync.scoring.conditions import LEAD_ATTRIBUTES
from leadsync.scoring.engine import Scorer, round_points
from leadsync.scoring.settings import RuleSettings, ScoringSettings, default_table

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TARGET = 100_000.0

SENIORITY = ["", "Chief", "VP", "Vice President of", "Head of", "Director of", "Senior", "Junior"]
FUNCTIONS = ["Marketing", "Sales", "Growth", "Engineering", "Operations", "Finance", "People"]
ROLES = ["", "Manager", "Officer", "Lead", "Specialist", "Intern", "Student"]
SIZES = ["1-10", "11-50", "51-200", "201-500", "500-1000", "1,000+", "5,001+", ""]
REVENUES = ["Under $1M", "$1-10M", "$10M-$50M", "$50M+", "100 million", ""]
DOMAINS = ["acme.com", "gmail.com", "uni.edu", "yahoo.co.uk", "corp.io", "example.org"]
INTERESTS = ["Request a demo", "Just browsing", "Pricing", ""]
EVENT_TYPES = ["email_opened", "email_clicked", "webinar_attended", "demo_requested"]


def twenty_rules() -> ScoringSettings:
    """The default rule set, less one passive rule: exactly 20 rules, caps and decay on."""
    table = dict(default_table())
    table["rules"] = [rule for rule in table["rules"] if rule["name"] != "Site visit"]
    settings = ScoringSettings.model_validate(table)
    assert len(settings.rules) == 20
    return settings


def make_leads(count: int, seed: int = 7) -> list[tuple[Lead, list[Event]]]:
    """A seeded mix of leads and their events."""
    pick = random.Random(seed)
    leads = []
    for number in range(count):
        title = " ".join(part for part in (pick.choice(SENIORITY), pick.choice(FUNCTIONS)) if part)
        answers = {
            "job_title": f"{title} {pick.choice(ROLES)}".strip(),
            "company_size": pick.choice(SIZES),
            "annual_revenue": pick.choice(REVENUES),
            "email": f"person{number}@{pick.choice(DOMAINS)}",
            "interest": pick.choice(INTERESTS),
        }
        created = NOW - timedelta(days=pick.uniform(0, 120))
        lead = Lead(
            id=str(number),
            created_time=created,
            page_id="page",
            form_id="form",
            answers={name: (value,) for name, value in answers.items() if value},
        )
        events = []
        if pick.random() < 1 / 3:
            for index in range(pick.randint(1, 4)):
                at = created + timedelta(days=pick.uniform(0, 30))
                events.append(Event(f"{number}-{index}", pick.choice(EVENT_TYPES), at))
        leads.append((lead, events))
    return leads


def naive_score(settings: ScoringSettings, lead: Lead, events: Sequence[Event], now: datetime):
    """The first engine one writes: interprets the settings for every lead."""
    reasons = []
    for rule in settings.rules:
        if rule.field is not None:
            if not _naive_holds(rule, lead):
                continue
            ages = [now - lead.created_time] if rule.decays else []
            count = 1
        else:
            matching = [event for event in events if event.type == rule.event]
            if not matching:
                continue
            chosen = matching if rule.count == "each" else [max(matching, key=lambda e: e.at)]
            ages = [now - event.at for event in chosen] if rule.decays else []
            count = len(chosen)
        points = rule.points * count
        if ages and settings.half_life_days:
            days = [max(age.total_seconds(), 0) / 86400 for age in ages]
            points = sum(rule.points * 0.5 ** (d / settings.half_life_days) for d in days)
        if round_points(points):
            reasons.append(Reason(rule.name, round_points(points), rule.group))
    for group, cap in settings.groups.items():
        total = sum(r.points for r in reasons if r.group == group)
        if cap.cap is not None and total > math.floor(cap.cap):
            reasons.append(Reason(f"{group} cap", math.floor(cap.cap) - total, group))
    idle = settings.inactivity
    last = max([lead.created_time] + [event.at for event in events])
    if idle and idle.days and (now - last).total_seconds() >= idle.days * 86400:
        reasons.append(Reason(idle.reason, round_points(idle.points), idle.group))
    points = sum(r.points for r in reasons)
    return points, points >= settings.threshold


def _naive_holds(rule: RuleSettings, lead: Lead) -> bool:
    value = lead.answer(rule.field or "")
    if not value and rule.field in LEAD_ATTRIBUTES:
        value = LEAD_ATTRIBUTES[rule.field](lead)
    if rule.present is not None:
        return bool(value.strip()) == rule.present
    if not value:
        return False
    if rule.matches is not None and not re.search(rule.matches, value):
        return False
    if rule.at_least is not None or rule.at_most is not None:
        amount = parse_amount.__wrapped__(value)
        low = rule.at_least if rule.at_least is not None else -math.inf
        high = rule.at_most if rule.at_most is not None else math.inf
        return amount is not None and amount[0] >= low and amount[1] <= high
    return True


def _rate(score_one: Callable[[Lead, list[Event]], object], leads, repeats: int) -> float:
    """Leads per CPU second of this process, each slice of leads at its fastest of `repeats`.

    CPU time, not wall time: the figure is per core. The machine is shared, so every
    slice of 1,000 leads is timed `repeats` times and its least disturbed time counts
    (as timeit advises); the sum covers every lead once, so no slice is left out.
    """
    slices = [leads[start : start + 1_000] for start in range(0, len(leads), 1_000)]
    fastest = [math.inf] * len(slices)
    for _ in range(repeats):
        for index, part in enumerate(slices):
            started = time.process_time_ns()
            for lead, events in part:
                score_one(lead, events)
            fastest[index] = min(fastest[index], time.process_time_ns() - started)
    return len(leads) / (sum(fastest) / 1e9)


def run(quick: bool = False) -> list[dict]:
    """Measures leadsync's engine against the naive baseline, in one run."""
    settings = twenty_rules()
    scorer = Scorer(settings)
    leads = make_leads(5_000 if quick else 50_000)
    for lead, events in leads[:2_000]:  # both engines must agree before they race
        score: Score = scorer.score(lead, events, NOW)
        assert (score.points, score.mql) == naive_score(settings, lead, events, NOW), lead.id
    repeats = 2 if quick else 5
    ours = _rate(lambda lead, events: scorer.score(lead, events, NOW), leads, repeats)
    naive = _rate(lambda lead, events: naive_score(settings, lead, events, NOW), leads, repeats)
    return [
        {
            "figure": "scoring throughput, 20 rules, one core",
            "leadsync": round(ours),
            "baseline": round(naive),
            "unit": "leads/s",
            "target": f">= {TARGET:,.0f} leads/s",
        }
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(
            f"{row['figure']}: leadsync {row['leadsync']:,} {row['unit']}, "
            f"baseline {row['baseline']:,} {row['unit']} "
            f"({row['leadsync'] / row['baseline']:.1f}x), target {row['target']}"
        )
