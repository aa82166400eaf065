"""The `spreadsheets.values` methods of the Sheets emulator: get, update, append, clear.

Each function takes a `Spreadsheet` and the request's parts and returns the JSON
body the real API answers with. Grid limits behave like Google's: a write whose
first cell lies outside the grid is refused ("exceeds grid limits"), a write that
runs past a bounded range is refused, and otherwise the grid grows to fit the
data; `append` finds the table in the range and inserts rows after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leadsync.emulators import sheets_a1 as a1
from leadsync.emulators.sheets_grid import (
    ApiError,
    Cell,
    Spreadsheet,
    Worksheet,
    bad_request,
    make_cell,
)

INPUT_OPTIONS = ("RAW", "USER_ENTERED")
RENDER_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")


def _rows(values: Any, major: str | None) -> list[list[Any]]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
        raise bad_request("Invalid value at 'data.values': a list of lists is expected")
    if major == "COLUMNS":
        height = max((len(c) for c in values), default=0)
        return [[c[i] if i < len(c) else None for c in values] for i in range(height)]
    return values


def _cells(rows: list[list[Any]], input_option: str | None) -> list[list[Cell | None | bool]]:
    """Converts every value before anything is written, so a bad one writes nothing.

    A JSON null becomes False: "leave this cell as it is".
    """
    if input_option not in INPUT_OPTIONS:
        raise bad_request(f"Invalid valueInputOption: {input_option or 'unspecified'}")
    return [[False if v is None else make_cell(v, input_option) for v in row] for row in rows]


def _put_all(sheet: Worksheet, row0: int, col0: int, cells: list[list[Any]]) -> int:
    written = 0
    for r, line in enumerate(cells):
        for c, value in enumerate(line):
            if value is not False:
                sheet.put(row0 + r, col0 + c, value)
                written += 1
    return written


def _grow(book: Spreadsheet, sheet: Worksheet, rows: int, columns: int) -> None:
    sheet.row_count = max(sheet.row_count, rows)
    sheet.column_count = max(sheet.column_count, columns)
    book.check_cell_limit()


def _update_response(
    book: Spreadsheet, sheet: Worksheet, row0: int, col0: int, cells: list
) -> dict:
    height, width = len(cells), max((len(r) for r in cells), default=0)
    return {
        "spreadsheetId": book.spreadsheet_id,
        "updatedRange": a1.format_range(sheet.title, row0, row0 + height, col0, col0 + width),
        "updatedRows": height,
        "updatedColumns": width,
        "updatedCells": sum(len(r) for r in cells),
    }


def get(
    book: Spreadsheet, text: str, major: str | None = None, render: str | None = None
) -> dict[str, Any]:
    """values.get: the range clipped to the grid, trailing empty rows and cells left out."""
    major = major or "ROWS"
    render = render or "FORMATTED_VALUE"
    if render not in RENDER_OPTIONS:
        raise bad_request(f"Invalid valueRenderOption: {render}")
    sheet, grid = book.resolve(text)
    if grid.start_row >= sheet.row_count or grid.start_col >= sheet.column_count:
        raise sheet.exceeds(grid.start_row, grid.start_col)
    end_row = min(grid.end_row or sheet.row_count, sheet.row_count)
    end_col = min(grid.end_col or sheet.column_count, sheet.column_count)
    values: list[list[Any]] = []
    for r in range(grid.start_row, min(end_row, len(sheet.rows))):
        line = [sheet.get(r, c) for c in range(grid.start_col, end_col)]
        while line and line[-1] is None:
            line.pop()
        values.append(["" if c is None else c.rendered(render) for c in line])
    while values and not values[-1]:
        values.pop()
    if major == "COLUMNS" and values:
        width = max(len(r) for r in values)
        values = [[r[i] if i < len(r) else "" for r in values] for i in range(width)]
        values = [_trim(col) for col in values]
    body: dict[str, Any] = {
        "range": a1.format_range(sheet.title, grid.start_row, end_row, grid.start_col, end_col),
        "majorDimension": major,
    }
    if values:
        body["values"] = values
    return body


def _trim(column: list[Any]) -> list[Any]:
    while column and column[-1] == "":
        column.pop()
    return column


def update(
    book: Spreadsheet, text: str, values: Any, input_option: str | None, major: str | None = None
) -> dict[str, Any]:
    """values.update: writes a rectangle of values starting at the range's first cell."""
    sheet, grid = book.resolve(text)
    cells = _cells(_rows(values, major), input_option)
    height, width = len(cells), max((len(r) for r in cells), default=0)
    if grid.start_row >= sheet.row_count or grid.start_col >= sheet.column_count:
        raise sheet.exceeds(grid.start_row, grid.start_col)
    if not grid.is_single_cell:
        if grid.end_row is not None and grid.start_row + height > grid.end_row:
            raise _outside(text, f"row [{grid.start_row + height}]")
        if grid.end_col is not None and grid.start_col + width > grid.end_col:
            raise _outside(text, f"column [{a1.column_letters(grid.start_col + width - 1)}]")
    _grow(book, sheet, grid.start_row + height, grid.start_col + width)
    _put_all(sheet, grid.start_row, grid.start_col, cells)
    return _update_response(book, sheet, grid.start_row, grid.start_col, cells)


def _outside(text: str, where: str) -> ApiError:
    return bad_request(f"Requested writing within range [{text}], but tried writing to {where}")


def batch_update(book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    """values.batchUpdate: several ranges in one request (the caller makes it atomic)."""
    data = body.get("data") or []
    option = body.get("valueInputOption")
    responses = [
        update(book, item.get("range", ""), item.get("values"), option, item.get("majorDimension"))
        for item in data
    ]
    return {
        "spreadsheetId": book.spreadsheet_id,
        "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
        "totalUpdatedColumns": sum(r["updatedColumns"] for r in responses),
        "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
        "totalUpdatedSheets": len({r["updatedRange"].rpartition("!")[0] for r in responses}),
        "responses": responses,
    }


def _find_table(sheet: Worksheet, grid: a1.GridRange) -> tuple[int, int, int | None] | None:
    """First row, last row and column end of the table the range points at.

    The table starts at the first non-empty cell at or below the range's first row,
    in the range's columns (only its own column for a single cell such as "A1"). It
    spans the run of filled cells to the right of that cell and goes down, past the
    range's end, while rows have a value in that span: appending to "Leads!A1" lands
    below the last row of the table that starts at A1, as with the real API.
    """
    end_col = grid.start_col + 1 if grid.is_single_cell else grid.end_col
    first = next(
        (
            row
            for row in range(grid.start_row, len(sheet.rows))
            if not sheet.row_is_empty(row, grid.start_col, end_col)
        ),
        None,
    )
    if first is None:
        return None
    span_end = end_col
    if grid.is_single_cell:
        line, span_end = sheet.rows[first], grid.start_col
        while span_end < len(line) and line[span_end] is not None:
            span_end += 1
        span_end = max(span_end, grid.start_col + 1)
    last = first
    while last + 1 < len(sheet.rows) and not sheet.row_is_empty(last + 1, grid.start_col, span_end):
        last += 1
    return first, last, span_end


def append(
    book: Spreadsheet,
    text: str,
    values: Any,
    input_option: str | None,
    insert_option: str | None = None,
    major: str | None = None,
) -> dict[str, Any]:
    """values.append: writes after the table found in the range, inserting rows if asked."""
    sheet, grid = book.resolve(text)
    cells = _cells(_rows(values, major), input_option)
    height, width = len(cells), max((len(r) for r in cells), default=0)
    if grid.start_row >= sheet.row_count or grid.start_col >= sheet.column_count:
        raise sheet.exceeds(grid.start_row, grid.start_col)
    table = _find_table(sheet, grid)
    at = table[1] + 1 if table else grid.start_row
    if (insert_option or "OVERWRITE") == "INSERT_ROWS":
        sheet.insert_rows(at, height)
    _grow(book, sheet, at + height, grid.start_col + width)
    _put_all(sheet, at, grid.start_col, cells)
    body: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
    if table:
        first, last, span_end = table
        if span_end is None:
            span_end = max(len(sheet.rows[r]) for r in range(first, last + 1))
        body["tableRange"] = a1.format_range(
            sheet.title, first, last + 1, grid.start_col, max(span_end, grid.start_col + 1)
        )
    body["updates"] = _update_response(book, sheet, at, grid.start_col, cells)
    return body


def clear(book: Spreadsheet, text: str) -> dict[str, Any]:
    """values.clear: empties the cells of the range (the grid keeps its size)."""
    sheet, grid = book.resolve(text)
    end_row = min(grid.end_row or sheet.row_count, sheet.row_count)
    end_col = min(grid.end_col or sheet.column_count, sheet.column_count)
    for row in range(grid.start_row, min(end_row, len(sheet.rows))):
        line = sheet.rows[row]
        for col in range(grid.start_col, min(end_col, len(line))):
            line[col] = None
    return {
        "spreadsheetId": book.spreadsheet_id,
        "clearedRange": a1.format_range(
            sheet.title, grid.start_row, end_row, grid.start_col, end_col
        ),
    }


def batch_get(
    book: Spreadsheet, ranges: Sequence[str], major: str | None, render: str | None
) -> dict[str, Any]:
    """values.batchGet: several ranges in one read."""
    return {
        "spreadsheetId": book.spreadsheet_id,
        "valueRanges": [get(book, r, major, render) for r in ranges],
    }
