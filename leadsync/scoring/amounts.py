"""Reads the amounts people type or pick in lead forms as number ranges.

Company sizes and revenues arrive as text: "500-1000", "1,000+", "$50M",
"50 million", "10k", "Under $1M", "between 10 and 50". `parse_amount` turns
such text into an inclusive (low, high) range, so a rule's `at_least` and
`at_most` can compare it. A single number is the range (n, n); "1,000+" or
"more than 1000" is (1000, inf); "under 50" is (0, 50). Amounts are never
negative: a "-" is read as a range dash. Text with no number, or with numbers
that do not form one amount or one range, gives None, and a numeric condition
on it does not hold. Results are cached: form answers repeat a lot.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

# Longest spellings first, so "million" is not read as "m" followed by "illion".
_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "mil": 1e6,
    "mln": 1e6,
    "mm": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
    "t": 1e12,
}
_SCALE_WORDS = "|".join(sorted(_SCALES, key=len, reverse=True))

_NUMBER = re.compile(
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    rf"(?:\s*(?P<scale>{_SCALE_WORDS})\b)?"
    r"(?P<plus>\s*\+)?",
    re.IGNORECASE,
)
# What may stand between the two ends of a range: "500-1000", "1 to 5", "10 and 50".
_RANGE_GAP = re.compile(r"\s*(?:-|–|—|to|and|until)\s*[$€£¥]?\s*", re.IGNORECASE)
_OPEN_ABOVE = re.compile(
    r"(?:more than|over|above|greater than|at least|from|min(?:imum)?|>=?|≥)\W*$", re.IGNORECASE
)
_OPEN_BELOW = re.compile(
    r"(?:less than|under|below|fewer than|up to|at most|max(?:imum)?|<=?|≤)\W*$", re.IGNORECASE
)

Amount = tuple[float, float]


@lru_cache(maxsize=8192)
def parse_amount(text: str) -> Amount | None:
    """The inclusive (low, high) range that `text` states, or None when it states none."""
    found = list(_NUMBER.finditer(text))
    if len(found) == 1:
        return _single(text, found[0])
    if len(found) == 2 and _RANGE_GAP.fullmatch(text, found[0].end(), found[1].start()):
        return _range(found[0], found[1])
    return None


def _value(match: re.Match[str], scale: str | None = None) -> float:
    number = float(match["number"].replace(",", ""))
    factor = _SCALES.get((scale or match["scale"] or "").lower(), 1)
    # Round away binary noise (1.1 * 1000 = 1100.0000000000002) so `at_most 1100` holds.
    return round(number * factor, 6)


def _single(text: str, match: re.Match[str]) -> Amount:
    value = _value(match)
    before = text[: match.start()]
    if match["plus"] or _OPEN_ABOVE.search(before):
        return (value, math.inf)
    if _OPEN_BELOW.search(before):
        return (0.0, value)
    return (value, value)


def _range(first: re.Match[str], second: re.Match[str]) -> Amount:
    low, high = _value(first), _value(second)
    # "$1-5M" means 1M to 5M: the second end's scale carries over when the first has none,
    # as long as the range still runs upwards ("500-1M" stays 500 to 1M).
    if not first["scale"] and second["scale"]:
        scaled = _value(first, second["scale"])
        if scaled <= high:
            low = scaled
    if second["plus"]:
        high = math.inf
    return (min(low, high), max(low, high))
