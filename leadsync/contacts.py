"""Contact hygiene: a lead's phone in E.164, its email for matching, and its person key.

Pure functions, no I/O. A phone number is read with Google's libphonenumber
(the `phonenumbers` package) in the region the lead's `country` answer names
when it is a two-letter region code, else the configured default region; a
number written with a leading `+` needs no region. A number libphonenumber
cannot read, or one no number plan of its region gives out, is kept as typed
and flagged (`Contact.phone_valid` False), never dropped. An email is trimmed
and lower-cased. The person key recognises the same person across forms: the
normalised email, else the E.164 phone, else "" (no key: never a repeat).
"""

from __future__ import annotations

import phonenumbers

from leadsync.models import Contact, Lead

# Facebook's standard questions that hold a phone number or a country, first found wins.
PHONE_QUESTIONS = ("phone_number", "phone", "work_phone_number", "mobile_phone")
COUNTRY_QUESTIONS = ("country",)


def normalise_email(text: str) -> str:
    """The email as matched: trimmed and lower-cased ("" when blank)."""
    return text.strip().lower()


def normalise_phone(text: str, region: str) -> tuple[str, bool]:
    """(E.164, True) when `text` reads as a phone number of `region`; (text, False) when not."""
    typed = text.strip()
    if not typed:
        return "", True
    try:
        number = phonenumbers.parse(typed, region.upper() or None)
    except phonenumbers.NumberParseException:
        return typed, False
    if not phonenumbers.is_valid_number(number):  # "12" would pass as possible in DE
        return typed, False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True


def region_of(lead: Lead, default_region: str) -> str:
    """The lead's country answer when it is a region libphonenumber knows, else the default."""
    for question in COUNTRY_QUESTIONS:
        answer = lead.answer(question).strip().upper()
        if answer in phonenumbers.SUPPORTED_REGIONS:
            return answer
    return default_region.upper()


def typed_phone(lead: Lead) -> str:
    """The phone number as the lead typed it ("" when the form asked none)."""
    for question in PHONE_QUESTIONS:
        if answer := lead.answer(question).strip():
            return answer
    return ""


def person_key(email: str, phone_e164: str) -> str:
    """Who the lead is, across forms: "email:<email>", else "phone:<E.164>", else ""."""
    if email:
        return f"email:{email}"
    return f"phone:{phone_e164}" if phone_e164 else ""


def contact_of(lead: Lead, default_region: str) -> Contact:
    """The lead's normalised contact details and person key (not yet a repeat of anyone)."""
    typed = typed_phone(lead)
    phone, valid = normalise_phone(typed, region_of(lead, default_region))
    e164 = phone if valid else ""
    key = person_key(normalise_email(lead.email), e164)
    return Contact(lead.id, key, phone_e164=e164, phone_valid=valid, phone_typed=typed)
