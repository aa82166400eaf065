"""The data model of the Sheets emulator: spreadsheets, worksheets, cells.

A worksheet is a grid of `rowCount` x `columnCount` cells stored as a list of
rows. Cells keep what the API was given: RAW input stays as sent (text stays
text, so `=IMPORTXML(...)` is a string), USER_ENTERED input is parsed the way
the Sheets UI would (formulas, numbers, booleans, a leading apostrophe). Values
come back FORMATTED (strings), UNFORMATTED or as FORMULA. Errors carry the
status and message the real API sends (`ApiError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from leadsync.emulators import sheets_a1 as a1

# The real limits (Sheets "Usage limits", "Files you can store in Google Drive").
MAX_CELL_CHARS = 50_000
MAX_WORKBOOK_CELLS = 10_000_000
DEFAULT_ROWS = 1000
DEFAULT_COLUMNS = 26

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ApiError(Exception):
    """An error the Sheets API answers with: HTTP status, google.rpc status, message."""

    def __init__(self, code: int, status: str, message: str):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


@dataclass(frozen=True, slots=True)
class Cell:
    """One non-empty cell: its value, or the formula a USER_ENTERED "=..." became."""

    value: str | int | float | bool | None
    formula: str | None = None

    def formatted(self) -> str:
        if self.formula is not None:
            return "#NAME?"  # the emulator does not evaluate formulas
        if isinstance(self.value, bool):
            return "TRUE" if self.value else "FALSE"
        if isinstance(self.value, float) and self.value.is_integer():
            return str(int(self.value))
        return str(self.value)

    def rendered(self, option: str) -> Any:
        if option == "FORMULA" and self.formula is not None:
            return self.formula
        if option in ("UNFORMATTED_VALUE", "FORMULA") and self.formula is None:
            return self.value
        return self.formatted()


def make_cell(raw: Any, input_option: str) -> Cell | None:
    """What a written value becomes; None clears the cell."""
    if isinstance(raw, list | dict):
        raise bad_request(f"Invalid values: {type(raw).__name__} is not a cell value")
    if isinstance(raw, str) and len(raw) > MAX_CELL_CHARS:
        raise bad_request(
            f"Your input contains more than the maximum of {MAX_CELL_CHARS} characters "
            "in a single cell."
        )
    if raw is None or raw == "":
        return None
    if input_option == "RAW" or not isinstance(raw, str):
        return Cell(raw)
    return _user_entered(raw)


def _user_entered(text: str) -> Cell:
    """Parses typed text as the Sheets UI does (the part that matters for leads)."""
    if text.startswith("'"):
        return Cell(text[1:])
    if text.startswith("=") and len(text) > 1:
        return Cell(None, formula=text)
    if text.upper() in ("TRUE", "FALSE"):
        return Cell(text.upper() == "TRUE")
    if _NUMBER.match(text.strip()):
        number = float(text)
        # A phone number typed as 0612345678 or +3161234 loses its + and zeros here.
        return Cell(int(number) if number.is_integer() and "." not in text else number)
    return Cell(text)


@dataclass
class Worksheet:
    """One tab: its properties and its rows of cells (rows and cells may be short)."""

    sheet_id: int
    title: str
    row_count: int = DEFAULT_ROWS
    column_count: int = DEFAULT_COLUMNS
    frozen_rows: int = 0
    rows: list[list[Cell | None]] = field(default_factory=list)

    def properties(self, index: int) -> dict[str, Any]:
        grid: dict[str, Any] = {"rowCount": self.row_count, "columnCount": self.column_count}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }

    # -- cells ---------------------------------------------------------------
    def get(self, row: int, col: int) -> Cell | None:
        if row < len(self.rows) and col < len(self.rows[row]):
            return self.rows[row][col]
        return None

    def put(self, row: int, col: int, value: Cell | None) -> None:
        while len(self.rows) <= row:
            self.rows.append([])
        line = self.rows[row]
        while len(line) <= col:
            line.append(None)
        line[col] = value

    def row_is_empty(self, row: int, start_col: int = 0, end_col: int | None = None) -> bool:
        if row >= len(self.rows):
            return True
        return all(c is None for c in self.rows[row][start_col:end_col])

    def last_used_row(self) -> int:
        """Zero-based index of the last row holding a value; -1 when empty."""
        for row in range(len(self.rows) - 1, -1, -1):
            if not self.row_is_empty(row):
                return row
        return -1

    # -- dimensions ------------------------------------------------------------
    def insert_rows(self, at: int, count: int) -> None:
        if at < len(self.rows):
            self.rows[at:at] = [[] for _ in range(count)]
        self.row_count += count

    def insert_columns(self, at: int, count: int) -> None:
        for line in self.rows:
            if at < len(line):
                line[at:at] = [None] * count
        self.column_count += count

    def delete_rows(self, start: int, end: int) -> None:
        del self.rows[start:end]
        self.row_count -= end - start

    def delete_columns(self, start: int, end: int) -> None:
        for line in self.rows:
            del line[start:end]
        self.column_count -= end - start

    def resize(self, rows: int | None = None, columns: int | None = None) -> None:
        if rows is not None:
            if rows < 1:
                raise bad_request("Invalid grid properties: rowCount must be at least 1")
            del self.rows[rows:]
            self.row_count = rows
        if columns is not None:
            if columns < 1:
                raise bad_request("Invalid grid properties: columnCount must be at least 1")
            for line in self.rows:
                del line[columns:]
            self.column_count = columns

    def exceeds(self, row: int, col: int) -> ApiError:
        return bad_request(
            f"Range ({a1.quote_title(self.title)}!{a1.cell(row, col)}) exceeds grid limits. "
            f"Max rows: {self.row_count}, max columns: {self.column_count}"
        )


@dataclass
class Spreadsheet:
    """A spreadsheet file: its tabs and the accounts it is shared with."""

    spreadsheet_id: str
    title: str
    sheets: list[Worksheet] = field(default_factory=list)
    shared_with: set[str] = field(default_factory=set)
    time_zone: str = "Etc/GMT"

    def clone(self) -> Spreadsheet:
        """A copy to apply a batch to; cells are immutable, so rows are copied shallowly."""
        sheets = [
            Worksheet(s.sheet_id, s.title, s.row_count, s.column_count, s.frozen_rows)
            for s in self.sheets
        ]
        for copy, sheet in zip(sheets, self.sheets, strict=True):
            copy.rows = [list(row) for row in sheet.rows]
        return Spreadsheet(
            self.spreadsheet_id, self.title, sheets, set(self.shared_with), self.time_zone
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {
                "title": self.title,
                "locale": "en_US",
                "autoRecalc": "ON_CHANGE",
                "timeZone": self.time_zone,
            },
            "sheets": [{"properties": s.properties(i)} for i, s in enumerate(self.sheets)],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }

    def worksheet(self, title: str | None) -> Worksheet:
        """The tab named `title` (the first tab when None); 400 like the API when unknown."""
        if title is None:
            return self.sheets[0]
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        raise bad_request(f"Unable to parse range: {a1.quote_title(title)}")

    def by_id(self, sheet_id: int) -> Worksheet:
        for sheet in self.sheets:
            if sheet.sheet_id == sheet_id:
                return sheet
        raise bad_request(f"No grid with id: {sheet_id}")

    def check_cell_limit(self) -> None:
        total = sum(s.row_count * s.column_count for s in self.sheets)
        if total > MAX_WORKBOOK_CELLS:
            raise bad_request(
                "This action would increase the number of cells in the workbook above the "
                f"limit of {MAX_WORKBOOK_CELLS} cells."
            )

    def resolve(self, text: str) -> tuple[Worksheet, a1.GridRange]:
        try:
            grid = a1.parse(text)
        except a1.A1Error:
            raise bad_request(f"Unable to parse range: {text}") from None
        try:
            return self.worksheet(grid.sheet), grid
        except ApiError:
            raise bad_request(f"Unable to parse range: {text}") from None
