"""A1 notation as the Sheets API reads and writes it, for the Sheets emulator.

Parses `'Sheet Name'!A1:Z`, `Leads!1:1`, `A:A`, `A2:C` and a bare sheet name into
a zero-based, end-exclusive `GridRange` (None marks an open end), and formats
ranges back the way Google echoes them (`'My Sheet'!A1:Z1000`, `Leads!B3`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CELL = re.compile(r"^\$?([A-Za-z]*)\$?([0-9]*)$")
_PLAIN_TITLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOKS_LIKE_CELL = re.compile(r"^[A-Za-z]{1,3}[0-9]+$")


class A1Error(ValueError):
    """A range the Sheets API would refuse to parse."""


@dataclass(frozen=True, slots=True)
class GridRange:
    """A rectangle of a worksheet: rows and columns zero-based, ends exclusive, None = open."""

    sheet: str | None
    start_row: int = 0
    end_row: int | None = None
    start_col: int = 0
    end_col: int | None = None

    @property
    def is_single_cell(self) -> bool:
        return self.end_row == self.start_row + 1 and self.end_col == self.start_col + 1

    @property
    def is_bounded(self) -> bool:
        return self.end_row is not None and self.end_col is not None


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_index(letters: str) -> int:
    """A -> 0, Z -> 25, AA -> 26."""
    index = 0
    for char in letters.upper():
        index = index * 26 + ord(char) - 64
    return index - 1


def split_sheet(text: str) -> tuple[str | None, str]:
    """Splits `'It''s'!A1` into ("It's", "A1"); a lone name gives (name, "")."""
    if text.startswith("'"):
        end = 1
        while True:
            end = text.find("'", end)
            if end < 0:
                raise A1Error(text)
            if text[end + 1 : end + 2] == "'":
                end += 2
                continue
            break
        title = text[1:end].replace("''", "'")
        rest = text[end + 1 :]
        if rest and not rest.startswith("!"):
            raise A1Error(text)
        return title, rest[1:]
    if "!" in text:
        title, _, rest = text.rpartition("!")
        return title, rest
    if _LOOKS_LIKE_CELL.match(text) or ":" in text:
        return None, text
    return text, ""


def _corner(text: str, whole: str) -> tuple[int | None, int | None]:
    match = _CELL.match(text)
    if not match or not (match.group(1) or match.group(2)):
        raise A1Error(whole)
    letters, digits = match.groups()
    col = column_index(letters) if letters else None
    row = int(digits) - 1 if digits else None
    if row is not None and row < 0:
        raise A1Error(whole)
    return row, col


def _span(a: int | None, b: int | None) -> tuple[int, int | None]:
    """Start and exclusive end of one dimension; "A2:C" keeps row 2 and leaves the end open."""
    if a is None and b is None:
        return 0, None
    if a is None or b is None:
        return (a if a is not None else b), None  # type: ignore[return-value]
    return min(a, b), max(a, b) + 1


def parse(text: str) -> GridRange:
    """Parses an A1 range; raises A1Error for what the API would call unparsable."""
    sheet, cells = split_sheet(text.strip())
    if not cells:
        return GridRange(sheet)
    first, _, second = cells.partition(":")
    row1, col1 = _corner(first, text)
    if not second:
        if row1 is None or col1 is None:
            raise A1Error(text)
        return GridRange(sheet, row1, row1 + 1, col1, col1 + 1)
    row2, col2 = _corner(second, text)
    start_row, end_row = _span(row1, row2)
    start_col, end_col = _span(col1, col2)
    return GridRange(sheet, start_row, end_row, start_col, end_col)


def quote_title(title: str) -> str:
    """The sheet title as Google writes it in a range: quoted unless plain."""
    if _PLAIN_TITLE.match(title) and not _LOOKS_LIKE_CELL.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def cell(row: int, col: int) -> str:
    """Zero-based (row, col) -> "B3"."""
    return f"{column_letters(col)}{row + 1}"


def format_range(title: str, start_row: int, end_row: int, start_col: int, end_col: int) -> str:
    """A closed rectangle (ends exclusive) as Google echoes it: `Leads!A1:C3`, `Leads!B2`."""
    first = cell(start_row, start_col)
    last = cell(max(end_row - 1, start_row), max(end_col - 1, start_col))
    body = first if first == last else f"{first}:{last}"
    return f"{quote_title(title)}!{body}"
