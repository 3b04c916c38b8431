"""Reading a user's data: a CSV with a header row, or a Parquet file; one column the target, some the features.

pyarrow reads the file (imported only here, only when ``--data`` is given). When it refuses the file or
a value is missing or not finite, the file is read once more with Python's csv module, only to say
where: the file's line (blank lines and multi-line quoted fields counted as the file has them) and
the column. A directory or a glob of such files is read lazily with ``dask.dataframe`` (``read_dask``).
"""

from __future__ import annotations

import csv
import glob
import math
import os
from typing import NamedTuple

import numpy as np

from linreg_compare.checks import UsageError

PARQUET, CSV = (".parquet", ".pq"), (".csv",)
DATA_SUFFIXES = PARQUET + CSV  # what a directory given as --data is read for


# Cells read as missing values, as pyarrow and pandas read them.
MISSING = ("", "NA", "N/A", "NaN", "nan", "NULL", "null")


class DataFile(NamedTuple):
    """What ``read_data`` read: X, y, the feature names, the rows dropped for a missing value, and the weights."""

    X: np.ndarray
    y: np.ndarray
    features: list[str]
    dropped: int
    weights: np.ndarray | None = None


def read_data(
    path: str, target: str, features: list[str] | None = None, dropna: bool = False, weights: str | None = None
) -> DataFile:
    """X, y and the feature names from a .csv or .parquet file, in float64, with the column ``weights`` as the
    sample weights (never a feature); every problem a one-line UsageError. Rows with a missing value are dropped
    with ``dropna``, and otherwise named, column by column."""
    read = _read_parquet if path.lower().endswith(PARQUET) else read_csv
    if weights is None:
        return read(path, target, features, dropna)
    if weights == target or (features is not None and weights in features):
        raise UsageError(f"--weights {weights!r} is the target or a feature; name a column of its own")
    table = read(path, target, None if features is None else [*features, weights], dropna, exclude=weights)
    if weights not in table.features:
        raise UsageError(f"--weights {weights!r} is not a column of {path}")
    last = table.features.index(weights)
    if (table.X[:, last] < 0).any():
        raise UsageError(f"--weights {weights!r} must be numbers >= 0; {path} has {table.X[:, last].min():g}")
    if not (table.X[:, last] > 0).any():
        raise UsageError(f"--weights {weights!r} must have a number > 0; every weight in {path} is 0")
    kept = [j for j in range(table.X.shape[1]) if j != last]
    names = [table.features[j] for j in kept]
    return DataFile(np.ascontiguousarray(table.X[:, kept]), table.y, names, table.dropped, table.X[:, last].copy())


def without_missing(X, y, columns: list[str], path: str, dropna: bool):
    """(X, y, rows dropped): the rows with a missing value (NaN) dropped with ``dropna``; else, if there are any,
    one line naming each column that has them and in how many rows."""
    missing = np.isnan(X).any(axis=1) | np.isnan(y)
    if not missing.any():
        return X, y, 0
    dropped = int(missing.sum())
    if not dropna:
        counts = [(name, int(np.isnan(values).sum())) for name, values in zip(columns, [*X.T, y])]
        listed = ", ".join(f"{name!r} in {count} row{'s' * (count > 1)}" for name, count in counts if count)
        raise UsageError(
            f"--data {path} has missing values: {listed}; --dropna drops the {dropped} "
            f"{'rows that have one' if dropped > 1 else 'row that has one'} "
            "(or leave those columns out with --features)"
        )
    if missing.all():
        raise UsageError(f"--data {path}: every row has a missing value; --dropna leaves nothing to fit")
    return X[~missing], y[~missing], dropped


def many_files(path: str) -> bool:
    """Whether ``--data`` names a directory or a glob pattern rather than one file (a file that exists is one
    file, even if its name has glob characters, as ``data[1].parquet`` does)."""
    return os.path.isdir(path) or (not os.path.isfile(path) and any(char in path for char in "*?["))


def data_files(path: str) -> list[str]:
    """The files ``path`` names, sorted: a directory's .parquet/.pq or .csv files, a glob's matches, or
    the one file; all of one format."""
    if os.path.isdir(path):
        files = [os.path.join(path, name) for name in os.listdir(path) if name.lower().endswith(DATA_SUFFIXES)]
    elif many_files(path):
        files = [name for name in glob.glob(path) if os.path.isfile(name)]
    else:
        files = [path] if os.path.isfile(path) else []
    if not files:
        raise UsageError(f"--data {path} names no file (a CSV or Parquet file, a directory of them, or a glob)")
    if len({name.lower().endswith(PARQUET) for name in files}) > 1:
        raise UsageError(f"--data {path} mixes Parquet and CSV files; name one kind (a glob such as dir/*.parquet)")
    return sorted(files)


def read_dask(path: str, target: str, features: list[str] | None = None, dropna: bool = False):
    """(X, y, feature names, number of files, rows dropped): lazy float64 dask arrays of the files ``path`` names,
    without the rows that have a missing value when ``dropna`` (counted by one more pass).

    Every file's header is read first: each file must have the first file's columns, in any order, and
    columns are taken by name. A value that is not a number surfaces when the data are read.
    """
    import dask.dataframe as dd

    files = data_files(path)
    parquet = files[0].lower().endswith(PARQUET)
    headers = {name: _parquet_header(name) if parquet else _csv_header(name)[0] for name in files}
    header = headers[files[0]]
    for name, other in headers.items():
        missing, extra = [c for c in header if c not in other], [c for c in other if c not in header]
        if missing or extra:
            what = ", ".join([*(f"lacks {c!r}" for c in missing), *(f"has {c!r} too" for c in extra)])
            raise UsageError(f"--data {path}: {name} {what}; every file needs the columns of {files[0]}")
    features = choose_columns(header, target, features, path)
    columns = [*features, target]
    if parquet:
        frame = dd.read_parquet(files, columns=columns)
    else:
        # dask reads CSV columns by position, as the first file of a call lists them: one call for each
        # run of files that list them in the same order, concatenated in the files' order.
        runs = []
        for name in files:
            if runs and headers[runs[-1][-1]] == headers[name]:
                runs[-1].append(name)
            else:
                runs.append([name])
        frames = [
            dd.read_csv(run, usecols=columns, dtype=dict.fromkeys(columns, "float64"), skipinitialspace=True)[columns]
            for run in runs
        ]
        frame = frames[0] if len(frames) == 1 else dd.concat(frames)
    for name, dtype in frame.dtypes.items():
        if dtype.kind not in "biuf":
            raise UsageError(f"--data {path} column {name!r} holds {dtype}, not numbers")
    # One array of the features and the target together, so that X and y share their row chunks; with
    # query planning, optimised first, so that the partitions counted are those the array will have.
    frame, dropped = frame.astype("float64"), 0
    if dropna:
        dropped = int(frame.isna().any(axis=1).sum().compute())
        frame = frame.dropna()
    table = (frame.optimize() if hasattr(frame, "optimize") else frame).to_dask_array(lengths=True)
    return table[:, :-1], table[:, -1], features, len(files), dropped


def diagnose_files(path: str, target: str, features: list[str] | None) -> None:
    """Read each file ``path`` names, one at a time, as a single --data file is read: the first problem (a
    cell that is not a number, a missing value, a ragged row, a column of strings) is raised as its one-line
    UsageError, naming the file (and the line, for CSV). For after dask failed on the files without saying where."""
    for name in data_files(path):
        read_data(name, target, features)


def _parquet_header(path: str) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet

    try:
        return pyarrow.parquet.read_schema(path).names
    except (OSError, pa.ArrowException) as exc:
        raise UsageError(f"cannot read {path} (--data) as Parquet: {str(exc).splitlines()[0]}") from None


def choose_columns(
    header: list[str], target: str, features: list[str] | None, path: str, exclude: str | None = None
) -> list[str]:
    """The feature columns: ``features`` if given, else every column but the target (then ``exclude`` last, when
    it is a column: the weights, read beside the features); the header checked first."""
    for index, name in enumerate(header, 1):
        if not name.strip():
            raise UsageError(
                f"--data {path}: column {index} has an empty name (an index written by pandas.to_csv? "
                "write it with index=False, or name the column)"
            )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UsageError(f"--data {path} names the column(s) {', '.join(map(repr, repeated))} more than once")
    if target not in header:
        several = "," in target and all(name.strip() in header for name in target.split(","))
        if several:
            raise UsageError(
                f"--target takes one column; {target!r} names several. The library fits several targets at once: "
                "NumpyClosedFormRegressor, TorchConciseRegressor and TorchScratchRegressor take a y of k columns"
            )
        raise UsageError(
            f"--target {target!r} is not a column of {path}; its columns are {', '.join(map(repr, header))}"
        )
    if features is None:
        features = [name for name in header if name not in (target, exclude)]
        features += [exclude] if exclude in header else []
        if not features:
            raise UsageError(f"--data {path} has only the target column; it needs at least one feature column")
        return features
    unknown = [name for name in features if name not in header]
    if unknown:
        raise UsageError(
            f"--features {', '.join(map(repr, unknown))} not a column of {path}; its columns are "
            f"{', '.join(map(repr, header))}"
        )
    if target in features:
        raise UsageError(f"--features includes the target {target!r}; a column cannot predict itself")
    if not features or len(set(features)) != len(features):
        raise UsageError(f"--features must name distinct columns; got {', '.join(features) or 'none'}")
    return features


def read_csv(path: str, target: str, features: list[str] | None = None, dropna: bool = False, exclude=None):
    """Read a CSV with a header row: ``target`` is the column to predict, ``features`` the columns of X; the
    rows with a missing value (an empty cell, NA, NaN) dropped with ``dropna``. (X, y, features, rows dropped)."""
    import pyarrow as pa
    import pyarrow.csv

    header, header_lines = _csv_header(path)
    features = choose_columns(header, target, features, path, exclude)
    columns = [*features, target]
    try:
        table = pyarrow.csv.read_csv(
            path,
            # The header's names as read above (stripped of spaces): pyarrow skips the header record itself.
            read_options=pyarrow.csv.ReadOptions(column_names=header, skip_rows=header_lines),
            convert_options=pyarrow.csv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.float64()),
                include_columns=columns,
                null_values=list(MISSING),
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        _diagnose_csv(path, header, columns)
        raise UsageError(f"--data {path} is not a readable CSV ({str(exc).splitlines()[0]})") from None
    if table.num_rows == 0:
        raise UsageError(f"--data {path} has a header but no data rows")
    X, y = _to_numpy(table, features, target)  # a missing cell is NaN
    dropped = 0
    if not (np.isfinite(X).all() and np.isfinite(y).all()):  # a missing cell, or an infinite one
        X, y, dropped = without_missing(X, y, columns, path, dropna)
        if not (np.isfinite(X).all() and np.isfinite(y).all()):
            _diagnose_csv(path, header, columns)  # an infinite cell: say where
    return DataFile(X, y, features, dropped)


def _to_numpy(table, features, target) -> tuple[np.ndarray, np.ndarray]:
    """X into one C-ordered float64 array, and y, from an Arrow table of float64 columns, a batch of rows at a time
    (its block of X stays in cache while its columns are copied in); a null, a missing cell, becomes NaN."""
    X, y = np.empty((table.num_rows, len(features))), np.empty(table.num_rows)
    start = 0
    for batch in table.select([*features, target]).to_batches():
        rows = slice(start, start + batch.num_rows)
        for j, column in enumerate(batch.columns[:-1]):
            X[rows, j] = column.to_numpy(zero_copy_only=False)
        y[rows] = batch.columns[-1].to_numpy(zero_copy_only=False)
        start += batch.num_rows
    return X, y


def _records(path: str):
    """(first line of the record, its fields) for every non-blank record, as csv reads the file, streamed."""
    try:
        file = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise UsageError(f"cannot read --data {path}: {exc.strerror or exc}") from None
    with file:
        reader = csv.reader(file)
        end = 0
        try:
            for row in reader:
                start, end = end + 1, reader.line_num
                if row:
                    yield start, row
        except UnicodeDecodeError:
            raise UsageError(f"--data {path} is not UTF-8 text (near line {end + 1}); give a CSV file") from None
        except csv.Error as exc:
            raise UsageError(f"--data {path} is not a readable CSV (line {reader.line_num}: {exc})") from None


def _csv_header(path: str) -> tuple[list[str], int]:
    """The header's names, stripped of spaces, and the line it ends on (blank lines before it counted)."""
    records = _records(path)
    for start, row in records:
        return [name.strip() for name in row], start + sum(name.count("\n") for name in row)
    raise UsageError(f"--data {path} is empty; it needs a header row and at least one data row")


def _diagnose_csv(path: str, header: list[str], columns: list[str]) -> None:
    """Find the first bad record or cell of the columns used, and raise its one-line error: a ragged record, a
    cell that is not a number (naming every column that has one), or an infinite one."""
    used = [header.index(name) for name in columns]
    records = _records(path)
    next(records)  # the header
    first, text = None, []
    for line, row in records:
        if len(row) != len(header):
            raise UsageError(f"--data {path} line {line} has {len(row)} fields; the header has {len(header)}")
        for j in used:
            cell = row[j].strip()
            if cell in MISSING or header[j] in text:
                continue
            cell_line = line + sum(field.count("\n") for field in row[:j])  # a quoted field can span lines
            try:
                value = float(cell.replace("_", "?"))  # Python reads 1_000 as 1000; pyarrow does not
            except ValueError:
                text.append(header[j])
                first = first or f"--data {path} line {cell_line}, column {header[j]!r} is {cell[:20]!r}, not a number"
                continue
            if not math.isfinite(value) and first is None:
                raise UsageError(f"--data {path} line {cell_line}, column {header[j]!r} is {cell}, not a finite number")
    if text:
        numeric = [name for name in columns[:-1] if name not in text]  # the features: the target is last
        raise UsageError(
            f"{first}; the columns that hold text are {', '.join(map(repr, text))}: choose numeric ones with "
            f"--features{' (numeric here: ' + ','.join(numeric) + ')' if numeric else ''}"
        )


def _read_parquet(path: str, target: str, features: list[str] | None, dropna: bool = False, exclude=None):
    import pyarrow as pa
    import pyarrow.parquet

    try:
        header = pyarrow.parquet.read_schema(path).names
        features = choose_columns(header, target, features, path, exclude)
        table = pyarrow.parquet.read_table(path, columns=[*features, target])
    except (OSError, pa.ArrowException) as exc:
        raise UsageError(f"cannot read --data {path} as Parquet: {str(exc).splitlines()[0]}") from None
    if table.num_rows == 0:
        raise UsageError(f"--data {path} has no rows")
    text = [name for name in table.column_names if not _numeric(table.column(name).type)]
    if text:
        kinds = ", ".join(f"{name!r} holds {table.column(name).type}" for name in text)
        numeric = [name for name in features if name not in text]
        raise UsageError(
            f"--data {path} column {kinds}, not numbers: choose numeric columns with --features"
            f"{' (numeric here: ' + ','.join(numeric) + ')' if numeric else ''}"
        )
    table = table.cast(pa.schema([pa.field(name, pa.float64()) for name in table.column_names]))
    X, y = _to_numpy(table, features, target)  # a missing value is NaN
    for j, values in enumerate([*X.T, y]):
        bad = np.flatnonzero(np.isinf(values))
        if bad.size:
            name = [*features, target][j]
            raise UsageError(
                f"--data {path} row {bad[0] + 1}, column {name!r} is {values[bad[0]]}, not a finite number"
            )
    X, y, dropped = without_missing(X, y, [*features, target], path, dropna)
    return DataFile(X, y, features, dropped)


def _numeric(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
