"""The class's results as CSV for a spreadsheet. Names and messages are the students' own
words: a cell that a spreadsheet would run as a formula (=, +, -, @, or a tab or carriage return
first) is written with a leading apostrophe, so it shows as text and runs nothing."""

from __future__ import annotations

import csv
import io

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return out.getvalue()
