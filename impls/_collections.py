"""Whether objects are dask collections, asked without importing dask (or anything heavy) first."""

from __future__ import annotations

import sys


def is_dask(*collections) -> bool:
    """Whether any argument is a dask collection; dask is asked only if the caller has imported it."""
    dask = sys.modules.get("dask")
    return dask is not None and any(dask.is_dask_collection(c) for c in collections)
