"""Held-out rows of the user's data, the same for every implementation: a seeded random split
(``--test-fraction``) or K folds (``--cv``, scikit-learn's ``KFold`` with the seed).

Dask data are split where they live: each row block draws its rows from a generator seeded by the seed and
the block's index, so the split is known without reading the data, and X is never gathered.
"""

from __future__ import annotations

import math

import numpy as np

from impls._collections import is_dask
from linreg_compare.checks import UsageError


def split(X, y, fraction: float, seed: int, weights=None) -> tuple:
    """(X_train, y_train, X_test, y_test, weights_train, weights_test): ``fraction`` of the rows held out, drawn
    with ``seed`` (the weights None without ``weights``)."""
    if is_dask(X):
        held_out = lambda block, rows: _block_generator(seed, 2, block).random(rows) < fraction  # noqa: E731
        return (*_dask_split(X, y, held_out, f"--test-fraction {fraction:g}"), None, None)
    from sklearn.model_selection import train_test_split

    num_test = math.ceil(fraction * len(X))  # as train_test_split counts them
    if len(X) - num_test < 2:
        raise UsageError(f"--test-fraction {fraction:g} leaves {len(X) - num_test} of {len(X)} rows to train on")
    arrays = [X, y] if weights is None else [X, y, weights]
    parts = train_test_split(*arrays, test_size=num_test, random_state=seed)
    X_train, X_test, y_train, y_test = parts[:4]
    return X_train, y_train, X_test, y_test, *(parts[4:] if weights is not None else (None, None))


def folds(X, y, k: int, seed: int, weights=None):
    """(X_train, y_train, X_test, y_test, weights_train, weights_test) of each of ``k`` folds, in turn: every row
    is held out once."""
    if is_dask(X):
        for fold in range(k):
            held_out = lambda block, rows, fold=fold: _block_folds(seed, block, rows, k) == fold  # noqa: E731
            yield (*_dask_split(X, y, held_out, f"--cv {k}: fold {fold + 1}", "use fewer folds"), None, None)
        return
    from sklearn.model_selection import KFold

    if len(X) < k:
        raise UsageError(f"--cv {k} needs at least {k} rows; the data have {len(X)}")
    for train, test in KFold(k, shuffle=True, random_state=seed).split(X):
        yield (
            X[train],
            y[train],
            X[test],
            y[test],
            *((None, None) if weights is None else (weights[train], weights[test])),
        )


def _block_generator(seed: int, stream: int, block: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, block])


def _block_folds(seed: int, block: int, rows: int, k: int) -> np.ndarray:
    """Each row's fold: a seeded permutation of 0, 1, …, k − 1 repeated, so the folds differ in size by at most one
    row per block."""
    return _block_generator(seed, 3, block).permutation(np.arange(rows) % k)


def _dask_split(X, y, held_out, flag: str, remedy: str = "hold out more"):
    """Dask X and y split by ``held_out(block index, rows)``, a boolean mask of each row block's held-out rows,
    drawn again inside each task: the chunk sizes are counted here from the masks alone. ``flag`` names the
    setting in the error when no row is held out or fewer than two are left to train on."""
    masks = [held_out(block, rows) for block, rows in enumerate(X.chunks[0])]
    num_test = sum(int(mask.sum()) for mask in masks)
    if num_test == 0:
        raise UsageError(f"{flag} holds out none of the {X.shape[0]} rows; {remedy}")
    if X.shape[0] - num_test < 2:
        raise UsageError(f"{flag} leaves {X.shape[0] - num_test} of {X.shape[0]} rows to train on")
    parts = []
    for keep_held_out in (False, True):
        rows = tuple(int((mask == keep_held_out).sum()) for mask in masks)

        def take(block, block_info=None, keep_held_out=keep_held_out):
            index = block_info[0]["chunk-location"][0]
            return block[held_out(index, block.shape[0]) == keep_held_out]

        # meta: the kind of array each task returns, given, so that dask does not call take to guess it. A block
        # left with no row is merged away: dask's matmul loses track of empty blocks.
        nonempty = {0: tuple(count for count in rows if count)}
        X_part = X.map_blocks(take, chunks=(rows, *X.chunks[1:]), meta=np.empty((0, 0), dtype=X.dtype))
        y_part = y.map_blocks(take, chunks=(rows,), meta=np.empty((0,), dtype=y.dtype))
        parts += [X_part.rechunk(nonempty), y_part.rechunk(nonempty)] if 0 in rows else [X_part, y_part]
    return tuple(parts)
