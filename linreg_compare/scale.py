"""Data that live in dask collections (files larger than memory, a cluster's arrays): where each implementation fits.

The closed form fits the dask arrays where they are, on whatever scheduler is active; the reference
and every score are computed there too, by one pass each (``linreg_compare.score.mse``), never by gathering X.
The iterative implementations need the data in one process: they get them gathered when they fit in
memory, a uniform sample of ``sample`` rows when asked, and otherwise are skipped with the reason.
"""

from __future__ import annotations

import numpy as np

from linreg_compare.capabilities import fits_dask_in_place
from linreg_compare.checks import UsageError, available_memory, memory_needed


def dask_arrays(X, y):
    """X and y as float64 dask arrays with row chunks (X one chunk across its columns), and X's column names."""
    from impls.closed_form.dask import as_arrays

    try:
        return as_arrays(X, y)
    except ValueError as exc:
        raise UsageError(f"X and y: {str(exc).splitlines()[0]}") from None


def gathered_for_one_process(names, X, y, sample: int | None, seed: int, dtype: str) -> tuple[np.ndarray | None, ...]:
    """(X, y, what) for the implementations that need the data in one process: all of it gathered if it
    fits in memory (``what`` None), a uniform sample of ``sample`` rows (``what`` says so), or
    (None, None, why not)."""
    needs_one_process = [name for name in names if not fits_dask_in_place(name)]
    num_examples, num_features = X.shape
    if not needs_one_process:
        return None, None, None
    if sample is not None and sample < num_examples:
        # Rows drawn without replacement from a generator of their own, then read in file order.
        rows = np.sort(np.random.default_rng([seed, 2]).choice(num_examples, size=sample, replace=False))
        X_sample, y_sample = _compute(X[rows], y[rows])
        return X_sample, y_sample, f"on a uniform sample of {sample} of the {num_examples} rows"
    needed = memory_needed(num_examples, num_features, 0, "float64", needs_one_process, dtype)
    available = available_memory()
    if available is not None and needed > available:
        return (
            None,
            None,
            (
                f"data larger than memory ({needed / 2**30:.1f} GiB needed in one process, "
                f"{available / 2**30:.1f} GiB available); --sample N fits it on N rows"
            ),
        )
    X_all, y_all = _compute(X, y)
    return X_all, y_all, None


def _compute(X, y):
    import dask

    return dask.compute(X, y)
