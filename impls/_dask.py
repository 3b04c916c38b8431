"""The closed form on dask arrays: the same block accumulator, one task per chunk, combined by a tree sum.

Only array methods are used (``rechunk``, ``map_blocks``, ``sum``, ``@``), so this works with classic
``dask.array`` and with dask's query planning, on whatever scheduler is active (a ``distributed.Client``
or dask's default): nothing here starts a cluster. The per-chunk functions are module-level, so that
worker processes can import them. dask itself is imported only when the data already are dask objects.
"""

from __future__ import annotations

import sys

import numpy as np


def is_dask(*collections) -> bool:
    """Whether any argument is a dask collection; dask is imported only if the caller has imported it."""
    dask = sys.modules.get("dask")
    return dask is not None and any(dask.is_dask_collection(c) for c in collections)


def as_arrays(X, y):
    """X as a 2-D dask array with one chunk across its columns, y as 1-D with X's row chunks; and X's
    column names when X is a DataFrame (None otherwise)."""
    import dask.array as da

    names = [str(name) for name in X.columns] if hasattr(X, "columns") else None
    # A dask DataFrame or Series: the row counts of its partitions are needed. With query planning, the
    # expression is optimised first, so that the counts are of the partitions the array will have.
    if hasattr(X, "to_dask_array"):
        X = (X.optimize() if hasattr(X, "optimize") else X).to_dask_array(lengths=True)
    if hasattr(y, "to_dask_array"):
        y = (y.optimize() if hasattr(y, "optimize") else y).to_dask_array(lengths=True)
    X, y = da.asarray(X), da.asarray(y)
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(f"X must be 2-D and y 1-D; got {X.ndim}-D X and {y.ndim}-D y.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y have inconsistent numbers of samples: {X.shape[0]} and {y.shape[0]}.")
    X = X.rechunk({1: -1}).astype(np.float64) if X.dtype.kind in "biu" else X.rechunk({1: -1})
    return X, y.rechunk((X.chunks[0],)), names


def first_block(X, y):
    """The first row chunk of X and y, computed (for the shifts that keep the centring exact)."""
    import dask

    return dask.compute(X.blocks[0], y.blocks[0])


def _block_moments(X_block, y_block, x_shift, y_shift):
    from impls.numpy_closed_form import block_moments

    return block_moments(X_block, y_block[:, 0], x_shift, y_shift)[None]


def moments(X, y, x_shift, y_shift: float) -> np.ndarray:
    """Σ over chunks of ``block_moments``: one task per chunk, then dask's tree sum of (d+2)×(d+2) matrices."""
    import dask.array as da

    size = X.shape[1] + 2
    per_chunk = da.map_blocks(_block_moments, X, y[:, None], x_shift, y_shift, new_axis=[2], dtype=np.float64,
                              chunks=((1,) * X.numblocks[0], (size,), (size,)))  # fmt: skip
    return per_chunk.sum(axis=0).compute()


def _block_residuals(X_block, y_block, coef, offset, x_shift, y_shift, extended):
    """[Σr², Σr, (X − x_shift)ᵀr] of one chunk, r = (y − y_shift) − (X − x_shift)w − offset."""
    dtype = np.longdouble if extended else np.float64
    x = X_block - x_shift if x_shift.any() else X_block
    residual = y_block[:, 0].astype(dtype) - dtype(y_shift) - x.astype(dtype) @ coef.astype(dtype) - dtype(offset)
    residual = np.asarray(residual, dtype=np.float64)
    return np.concatenate([[residual @ residual, residual.sum()], x.T @ residual])[None, :]


def residual_sums(X, y, coef, offset, system, extended: bool):
    """(Σr², Σr, X̃ᵀr-before-centring) over all chunks: the closed form's residual pass, one task per chunk."""
    import dask.array as da

    per_chunk = da.map_blocks(_block_residuals, X, y[:, None], np.asarray(coef), offset, system.x_shift,
                              system.y_shift, extended, dtype=np.float64,
                              chunks=((1,) * X.numblocks[0], (X.shape[1] + 2,)))  # fmt: skip
    sums = per_chunk.sum(axis=0).compute()
    return sums[0], sums[1], sums[2:]


def predict(X, coef, intercept: float):
    """X @ coef + intercept, lazily: a dask array in, a dask array out."""
    X = X.to_dask_array(lengths=True) if hasattr(X, "to_dask_array") else X
    return X @ coef + intercept


def _block_gram(X_block, y_block, x_mean, y_mean, scale, r_inverse):
    """[ZᵀZ, Zᵀỹ] of one chunk, Z = ((X − x̄)/D) R⁻¹ and ỹ = y − ȳ."""
    z = ((X_block - x_mean) / scale) @ r_inverse
    return np.column_stack([z.T @ z, z.T @ (y_block[:, 0] - y_mean)])[None]


def cholesky_qr(X, y, system, passes: int = 2):
    """w and b by shifted CholeskyQR on the centred, equilibrated X (the data are read ``passes`` more times).

    X̃ₛ = (X − x̄)/D. The first R is the Cholesky factor of X̃ₛᵀX̃ₛ (from the moments) plus a shift of
    order eps·n·d, which keeps it positive definite whatever the conditioning; each pass then forms
    Z = X̃ₛR⁻¹, whose Gram is close to I, and refines R ← chol(ZᵀZ)·R (CholeskyQR2 after the shift).
    The answer is θₛ = R⁻¹ (Qᵀỹ) with Q = X̃ₛR⁻¹ orthonormal: as accurate as a Householder QR.
    Returns (w, b, rank, F) with (X̃ᵀX̃)⁻¹ = FFᵀ.
    """
    import scipy.linalg
    from dask.array import map_blocks

    n, d = int(system.n), system.d
    eps = np.finfo(np.float64).eps
    scale = np.sqrt(np.diag(system.gram))
    scale[scale == 0] = 1.0
    gram = system.gram / np.outer(scale, scale)
    R = scipy.linalg.cholesky(gram + 11 * (n * d + d * (d + 1)) * eps * np.trace(gram) * np.eye(d))
    for _ in range(passes):
        r_inverse = scipy.linalg.solve_triangular(R, np.eye(d))
        per_chunk = map_blocks(_block_gram, X, y[:, None], system.x_mean, system.y_mean, scale, r_inverse,
                               new_axis=[2], dtype=np.float64, chunks=((1,) * X.numblocks[0], (d,), (d + 1,)))  # fmt: skip
        sums = per_chunk.sum(axis=0).compute()
        R_step = scipy.linalg.cholesky(sums[:, :d])
        qty = scipy.linalg.solve_triangular(R_step, sums[:, d], trans="T")
        R = R_step @ R
    coef = scipy.linalg.solve_triangular(R, qty) / scale
    factor = scipy.linalg.solve_triangular(R, np.eye(d)) / scale[:, None]
    return coef, system.intercept(coef, system.y_rest - system.x_rest @ coef), d, factor
