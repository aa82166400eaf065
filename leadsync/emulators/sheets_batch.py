"""The `spreadsheets.batchUpdate` request kinds of the Sheets emulator.

Covers what gspread and leadsync send and what a person does to a sheet:
addSheet, deleteSheet, updateSheetProperties, appendDimension,
insertDimension, deleteDimension, updateCells and sortRange. Requests apply in
order to a copy of the spreadsheet; the caller keeps the copy only when every
request succeeded, so a batch is all or nothing like the real API.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from leadsync.emulators.sheets_grid import (
    DEFAULT_COLUMNS,
    DEFAULT_ROWS,
    ApiError,
    Cell,
    Spreadsheet,
    Worksheet,
    bad_request,
    make_cell,
)

Reply = dict[str, Any]


def apply(book: Spreadsheet, requests: list[dict[str, Any]]) -> list[Reply]:
    """Applies each request in order to `book` (a copy); returns one reply per request."""
    replies = []
    for number, request in enumerate(requests):
        if not isinstance(request, dict) or len(request) != 1:
            raise bad_request(f"Invalid requests[{number}]: exactly one kind is expected")
        kind, body = next(iter(request.items()))
        handler = HANDLERS.get(kind)
        if handler is None:
            raise bad_request(f"Invalid requests[{number}]: the emulator does not support {kind}")
        try:
            replies.append(handler(book, body or {}))
        except ApiError as exc:
            raise bad_request(f"Invalid requests[{number}].{kind}: {exc.message}") from None
    book.check_cell_limit()
    return replies


def _add_sheet(book: Spreadsheet, body: dict[str, Any]) -> Reply:
    props = body.get("properties") or {}
    title = props.get("title") or f"Sheet{len(book.sheets) + 1}"
    if any(s.title.lower() == title.lower() for s in book.sheets):
        raise bad_request(
            f'A sheet with the name "{title}" already exists. Please enter another name.'
        )
    taken = {s.sheet_id for s in book.sheets}
    sheet_id = props.get("sheetId")
    if sheet_id is None:
        sheet_id = random.randrange(1, 2**31 - 1)
        while sheet_id in taken:
            sheet_id = random.randrange(1, 2**31 - 1)
    elif sheet_id in taken:
        raise bad_request(f"A sheet with the ID {sheet_id} already exists.")
    grid = props.get("gridProperties") or {}
    sheet = Worksheet(
        sheet_id=int(sheet_id),
        title=title,
        row_count=int(grid.get("rowCount", DEFAULT_ROWS)),
        column_count=int(grid.get("columnCount", DEFAULT_COLUMNS)),
        frozen_rows=int(grid.get("frozenRowCount", 0)),
    )
    index = min(int(props.get("index", len(book.sheets))), len(book.sheets))
    book.sheets.insert(index, sheet)
    return {"addSheet": {"properties": sheet.properties(index)}}


def _delete_sheet(book: Spreadsheet, body: dict[str, Any]) -> Reply:
    sheet = book.by_id(int(body.get("sheetId", -1)))
    if len(book.sheets) == 1:
        raise bad_request("You can't remove all the sheets in a document.")
    book.sheets.remove(sheet)
    return {}


def _fields(mask: str) -> set[str]:
    """A field mask's paths; Google accepts both "gridProperties.rowCount" and ".../rowCount"."""
    return {f.strip().replace(".", "/") for f in mask.split(",") if f.strip()}


def _update_sheet_properties(book: Spreadsheet, body: dict[str, Any]) -> Reply:
    props = body.get("properties") or {}
    sheet = book.by_id(int(props.get("sheetId", 0)))
    fields = _fields(body.get("fields", ""))
    if not fields:
        raise bad_request("At least one field must be updated, but 'fields' is empty")
    everything = "*" in fields
    grid = props.get("gridProperties") or {}
    if everything or "title" in fields:
        title = props.get("title", sheet.title)
        if any(s is not sheet and s.title.lower() == title.lower() for s in book.sheets):
            raise bad_request(f'A sheet with the name "{title}" already exists.')
        sheet.title = title
    if everything or "gridProperties" in fields or "gridProperties/rowCount" in fields:
        sheet.resize(rows=grid.get("rowCount", sheet.row_count))
    if everything or "gridProperties" in fields or "gridProperties/columnCount" in fields:
        sheet.resize(columns=grid.get("columnCount", sheet.column_count))
    if everything or "gridProperties" in fields or "gridProperties/frozenRowCount" in fields:
        sheet.frozen_rows = int(grid.get("frozenRowCount", 0))
    if everything or "index" in fields:
        book.sheets.remove(sheet)
        book.sheets.insert(min(int(props.get("index", 0)), len(book.sheets)), sheet)
    return {}


def _dimension(book: Spreadsheet, body: dict[str, Any]) -> tuple[Worksheet, str, int, int]:
    span = body.get("range") or {}
    sheet = book.by_id(int(span.get("sheetId", 0)))
    dimension = span.get("dimension")
    if dimension not in ("ROWS", "COLUMNS"):
        raise bad_request("dimension must be ROWS or COLUMNS")
    start, end = int(span.get("startIndex", 0)), int(span.get("endIndex", 0))
    if not 0 <= start < end:
        raise bad_request(f"Invalid range: startIndex {start}, endIndex {end}")
    return sheet, dimension, start, end


def _append_dimension(book: Spreadsheet, body: dict[str, Any]) -> Reply:
    sheet = book.by_id(int(body.get("sheetId", 0)))
    length = int(body.get("length", 0))
    if length < 1:
        raise bad_request("length must be at least 1")
    if body.get("dimension") == "ROWS":
        sheet.row_count += length
    elif body.get("dimension") == "COLUMNS":
        sheet.column_count += length
    else:
        raise bad_request("dimension must be ROWS or COLUMNS")
    return {}


def _insert_dimension(book: Spreadsheet, body: dict[str, Any]) -> Reply:
    sheet, dimension, start, end = _dimension(book, body)
    size = sheet.row_count if dimension == "ROWS" else sheet.column_count
    if start > size:
        raise bad_request(f"Invalid range: startIndex {start} is after the last {dimension}")
    if dimension == "ROWS":
        sheet.insert_rows(start, end - start)
    else:
        sheet.insert_columns(start, end - start)
    return {}


def _delete_dimension(book: Spreadsheet, body: dict[str, Any]) -> Reply:
    sheet, dimension, start, end = _dimension(book, body)
    if end > (sheet.row_count if dimension == "ROWS" else sheet.column_count):
        raise bad_request(f"Invalid range: endIndex {end} is after the last {dimension}")
    if dimension == "ROWS":
        if end - start >= sheet.row_count:
            raise bad_request("You can't delete all the rows on the sheet.")
        sheet.delete_rows(start, end)
    else:
        if end - start >= sheet.column_count:
            raise bad_request("You can't delete all the columns on the sheet.")
        sheet.delete_columns(start, end)
    return {}


_VALUE_KINDS = {"stringValue": "RAW", "numberValue": "RAW", "boolValue": "RAW"}


def _user_value(data: dict[str, Any]) -> Cell | None:
    entered = (data or {}).get("userEnteredValue")
    if not entered:
        return None
    kind, value = next(iter(entered.items()))
    if kind == "formulaValue":
        return make_cell(value, "USER_ENTERED")
    if kind not in _VALUE_KINDS:
        raise bad_request(f"Unknown userEnteredValue kind {kind}")
    return make_cell(value, "RAW")


def _update_cells(book: Spreadsheet, body: dict[str, Any]) -> Reply:
    if "userEnteredValue" not in _fields(body.get("fields", "")) and body.get("fields") != "*":
        raise bad_request("fields must include userEnteredValue")
    if "start" in body:
        start = body["start"]
        sheet = book.by_id(int(start.get("sheetId", 0)))
        row0, col0 = int(start.get("rowIndex", 0)), int(start.get("columnIndex", 0))
    else:
        span = body.get("range") or {}
        sheet = book.by_id(int(span.get("sheetId", 0)))
        row0, col0 = int(span.get("startRowIndex", 0)), int(span.get("startColumnIndex", 0))
    for r, row in enumerate(body.get("rows") or []):
        for c, data in enumerate(row.get("values") or []):
            if row0 + r >= sheet.row_count or col0 + c >= sheet.column_count:
                raise sheet.exceeds(row0 + r, col0 + c)
            sheet.put(row0 + r, col0 + c, _user_value(data))
    return {}


def _sort_key(cell: Cell | None) -> tuple[int, Any]:
    """Sheets order: numbers, then text (case-insensitive), then booleans; blanks last."""
    if cell is None or cell.value is None:
        return (3, "")
    if isinstance(cell.value, bool):
        return (2, cell.value)
    if isinstance(cell.value, int | float):
        return (0, cell.value)
    return (1, str(cell.value).lower())


def _sort_range(book: Spreadsheet, body: dict[str, Any]) -> Reply:
    span = body.get("range") or {}
    sheet = book.by_id(int(span.get("sheetId", 0)))
    start = int(span.get("startRowIndex", sheet.frozen_rows))
    end = min(int(span.get("endRowIndex", sheet.row_count)), sheet.row_count)
    col0 = int(span.get("startColumnIndex", 0))
    col1 = min(int(span.get("endColumnIndex", sheet.column_count)), sheet.column_count)
    block = [[sheet.get(r, c) for c in range(col0, col1)] for r in range(start, end)]
    for spec in reversed(body.get("sortSpecs") or []):
        index = int(spec.get("dimensionIndex", 0)) - col0
        descending = spec.get("sortOrder") == "DESCENDING"
        filled = [row for row in block if _sort_key(row[index])[0] != 3]
        blanks = [row for row in block if _sort_key(row[index])[0] == 3]
        filled.sort(key=lambda row, i=index: _sort_key(row[i]), reverse=descending)
        block = filled + blanks  # blanks stay last in both orders
    for r, row in enumerate(block):
        for c, value in enumerate(row):
            if value is not None or sheet.get(start + r, col0 + c) is not None:
                sheet.put(start + r, col0 + c, value)
    return {}


HANDLERS: dict[str, Callable[[Spreadsheet, dict[str, Any]], Reply]] = {
    "addSheet": _add_sheet,
    "deleteSheet": _delete_sheet,
    "updateSheetProperties": _update_sheet_properties,
    "appendDimension": _append_dimension,
    "insertDimension": _insert_dimension,
    "deleteDimension": _delete_dimension,
    "updateCells": _update_cells,
    "sortRange": _sort_range,
}
