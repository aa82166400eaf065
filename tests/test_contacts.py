"""Contact hygiene: phones to E.164, emails for matching, the person key; and working hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadsync.contacts import contact_of, normalise_email, normalise_phone
from leadsync.hours import WorkingHours
from leadsync.models import Contact, Lead, Owner, utcnow


def lead(**answers: str) -> Lead:
    return Lead("1", utcnow(), "p1", "f1", answers={k: (v,) for k, v in answers.items()})


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),  # US national, with punctuation
        ("415.555.2671", "US", "+14155552671"),  # US national, dotted
        ("020 7946 0958", "GB", "+442079460958"),  # UK national, trunk 0
        ("07911 123456", "GB", "+447911123456"),  # UK mobile
        ("030 901820", "DE", "+4930901820"),  # German national, trunk 0
        ("+44 20 7946 0958", "US", "+442079460958"),  # international wins over the region
    ],
)
def test_national_formats_come_out_in_e164(typed, region, e164):
    assert normalise_phone(typed, region) == (e164, True)


@pytest.mark.parametrize("typed", ["12", "call me", "+999 1234"])
def test_an_unreadable_number_is_kept_as_typed_and_flagged(typed):
    assert normalise_phone(f" {typed} ", "US") == (typed, False)


def test_the_country_answer_picks_the_region_else_the_default():
    assert contact_of(lead(phone_number="030 901820", country="de"), "US").phone_e164 == (
        "+4930901820"
    )
    assert contact_of(lead(phone_number="(415) 555-2671", country="Mars"), "US").phone_e164 == (
        "+14155552671"
    )


def test_the_person_key_is_the_email_else_the_phone():
    assert contact_of(lead(email=" Ana@X.io ", phone_number="4155552671"), "US") == Contact(
        "1", "email:ana@x.io", "+14155552671", True, "4155552671"
    )
    assert contact_of(lead(phone_number="415 555 2671"), "US").person_key == "phone:+14155552671"
    unreadable = contact_of(lead(phone_number="12"), "US")
    assert (unreadable.person_key, unreadable.phone_valid, unreadable.phone_typed) == (
        "",
        False,
        "12",
    )
    assert normalise_email("  A@B.C ") == "a@b.c"


def test_working_hours_in_the_owners_zone():
    hours = WorkingHours.parse("mon-fri 09:00-17:00 Europe/Paris")
    monday = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # 09:30 in Paris (a calendar fact)
    assert hours.covers(monday)
    assert not hours.covers(monday + timedelta(hours=8))  # 17:30 in Paris
    assert not hours.covers(monday - timedelta(days=1))  # Sunday
    night = WorkingHours.parse("fri 22:00-06:00")
    assert night.covers(datetime(2026, 12, 5, 3, tzinfo=UTC))  # Saturday 03:00: Friday's night
    assert Owner("Ana").is_working(utcnow())
    assert not Owner("Ana", hours="sat 00:00-00:01").is_working(monday)


@pytest.mark.parametrize(
    "text", ["weekdays 9-5", "mon-fri 09:00-25:00", "mon-fri 09:00-17:00 Nowhere/X"]
)
def test_unreadable_working_hours_say_how_to_write_them(text):
    with pytest.raises(ValueError, match="write|IANA|time of day"):
        WorkingHours.parse(text)
