"""Reading a user's data file: a CSV with a header row, one column the target, the others features."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from runner.checks import UsageError


def read_csv(path: str, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a CSV with a header row; ``target`` names the column to predict, the other columns are features.

    Every problem raises UsageError naming the file, and for a bad cell its row (as a line number of
    the file, the header being line 1) and column.
    """
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise UsageError(f"cannot read --data {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--data {path} is not UTF-8 text (byte {exc.start}); give a CSV file") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise UsageError(f"--data {path} is not a readable CSV ({exc})") from None
    if not rows:
        raise UsageError(f"--data {path} is empty; it needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    if target not in header:
        raise UsageError(
            f"--target {target!r} is not a column of {path}; its columns are {', '.join(map(repr, header))}"
        )
    if len(header) < 2:
        raise UsageError(f"--data {path} has only the target column; it needs at least one feature column")
    if len(rows) < 2:
        raise UsageError(f"--data {path} has a header but no data rows")
    values = np.empty((len(rows) - 1, len(header)))
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != len(header):
            raise UsageError(f"--data {path} row {line} has {len(row)} fields; the header has {len(header)}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                what = "is empty" if not cell.strip() else f"is {cell.strip()[:20]!r}, not a number"
                raise UsageError(f"--data {path} row {line}, column {header[j]!r} {what}") from None
            if not math.isfinite(values[i, j]):
                raise UsageError(
                    f"--data {path} row {line}, column {header[j]!r} is {cell.strip()}, not a finite number"
                )
    column = header.index(target)
    features = [name for name in header if name != target]
    return np.delete(values, column, axis=1), values[:, column], features
