"""Keeps text that leads typed from running as a formula when a CSV we write is opened.

Excel, LibreOffice Calc and Google Sheets run a CSV cell that begins with `=`,
`+`, `-` or `@` as a formula (and skip a leading tab, CR or LF before one), so a
lead who types `=HYPERLINK(...)` or `+cmd|...` attacks whoever opens our export.
OWASP's rule (CSV Injection page): no cell may begin with `=` `+` `-` `@`, tab,
CR or LF; we prefix such a text cell with a single quote, which spreadsheets read
as "this is text" and hide. Only strings are touched: a number we computed, such
as a negative score, is written as the number it is. `FormulaSafeDictWriter` is
`csv.DictWriter` with that applied to every cell it writes, the header included;
`restore` undoes it when such a file is read back in.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any

# OWASP "CSV Injection": equals, plus, minus, at, tab (0x09), carriage return (0x0D),
# line feed (0x0A).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
TEXT_MARK = "'"


def neutralise(value: Any) -> Any:
    """`value` with a leading single quote when it is text a spreadsheet would run."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return TEXT_MARK + value
    return value


def restore(value: str) -> str:
    """The text `neutralise` was given: a quote before a formula character is removed."""
    if value.startswith(TEXT_MARK) and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


class FormulaSafeDictWriter(csv.DictWriter):
    """A `csv.DictWriter` whose every text cell is `neutralise`d."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: neutralise(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for rowdict in rowdicts:
            self.writerow(rowdict)
