"""One renderer for every report (the comparison and each study): a table, markdown, JSON or CSV.

A report gives ``to_dict()`` (the JSON object), ``csv_records()`` (one flat dict per CSV row), ``cells()``
(a header and rows of strings for people) and ``notes()`` (lines printed under the table).
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np

FORMATS = ("table", "markdown", "json", "csv")


def render(report, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(finite_or_null(report.to_dict()), indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        return to_csv(report.csv_records())
    header, rows = report.cells()
    extra = report.extra_tables() if hasattr(report, "extra_tables") else []
    return (markdown_table if fmt == "markdown" else text_table)(header, rows, report.notes(), extra)


# Notes longer than this are wrapped (the report's lines fit a terminal of about this width).
NOTE_WIDTH = 120


def text_table(header: list[str], rows: list[list[str]], notes: list[str], extra=()) -> str:
    """Columns padded to their widest cell, a rule under the header; the extra tables likewise, each after a blank
    line; then the notes, each wrapped at NOTE_WIDTH (continuation lines indented)."""
    import textwrap

    blocks = [_text_block(header, rows)] + [_text_block(*table) for table in extra]
    wrapped = [
        line
        for note in notes
        for line in textwrap.wrap(note, NOTE_WIDTH, subsequent_indent="  ", break_on_hyphens=False)
    ]
    return "\n\n".join(blocks) + "\n\n" + "\n".join(wrapped) + "\n"


def _text_block(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]], notes: list[str], extra=()) -> str:
    blocks = [_markdown_block(header, rows)] + [_markdown_block(*table) for table in extra]
    return "\n\n".join(blocks) + "\n\n" + "\n".join(f"- {escape_markdown(note)}" for note in notes) + "\n"


def escape_markdown(text: str) -> str:
    """Text that markdown shows as it is: its | (a cell's edge), * and _ (emphasis) and backticks escaped."""
    for character in "\\`*_|":
        text = text.replace(character, "\\" + character)
    return text


def _markdown_block(header: list[str], rows: list[list[str]]) -> str:
    escaped = [[escape_markdown(cell) for cell in row] for row in [header, *rows]]
    lines = ["| " + " | ".join(row) + " |" for row in escaped]
    lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
    return "\n".join(lines)


def to_csv(records: list[dict]) -> str:
    """One line per record; lists as JSON text; non-finite numbers as empty cells."""
    out = io.StringIO()
    fields = list(dict.fromkeys(key for record in records for key in record))  # every record's keys, first seen first
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for record in finite_or_null(records):
        writer.writerow({key: json.dumps(value) if isinstance(value, list) else value for key, value in record.items()})
    return out.getvalue()


def finite_or_null(value):
    """Non-finite floats become None (null in JSON, an empty cell in CSV), recursively; numpy scalars plain."""
    if isinstance(value, np.generic):  # numpy scalars as the Python numbers JSON knows
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def number(value, fmt: str) -> str:
    """``value`` formatted, or "-" where there is none (an error row, no truth) or it is not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return fmt.format(value)


def numbers(values, fmt: str) -> str:
    return "-" if values is None else "[" + ", ".join(number(v, fmt) for v in values) + "]"


def cell(value) -> str:
    """A study's cell: three significant digits, or scientific notation for the very small and large."""
    if isinstance(value, float):
        return "0" if value == 0 else (f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 else f"{value:.2e}")
    return "-" if value is None else str(value)
