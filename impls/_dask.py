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


def column_header(X):
    """An empty pandas DataFrame with a dask DataFrame's columns (scikit-learn checks names on pandas), or X."""
    if not hasattr(X, "columns"):
        return X
    import pandas

    return pandas.DataFrame(columns=X.columns)


def first_block(X, y):
    """The first row chunk of X and y that has rows, computed (for the shifts that keep the centring exact);
    empty chunks, as a file of no rows gives, are passed over here and add nothing to any sum."""
    import dask

    start = 0
    for rows in X.chunks[0]:
        if rows:
            return dask.compute(X[start : start + rows], y[start : start + rows])
    raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")


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


def _block_r(X_block, y_block, x_mean, scale, root_n, y_mean):
    """The triangular factor of this chunk's rows of [1/√n, (X − x̄)/D, y − ȳ], zero rows added to make it
    square (a chunk of fewer rows than columns, an empty one included)."""
    z = np.column_stack([np.full(len(X_block), 1 / root_n), (X_block - x_mean) / scale, y_block[:, 0] - y_mean])
    size = z.shape[1]
    triangle = np.linalg.qr(z, mode="r") if len(z) else np.zeros((0, size))
    return np.vstack([triangle, np.zeros((size - len(triangle), size))])


def r_factor(X, y, x_mean, scale, y_mean: float) -> np.ndarray:
    """R of [1/√n, (X − x̄)/D, y − ȳ] by TSQR: one Householder QR per chunk, then one of their stacked
    (d + 2)-square factors, which has the same R (a QR of the blocks' Qs times theirs). Stable on
    rank-deficient data, where the Cholesky factor of the Gram matrix does not exist."""
    import dask.array as da

    size = X.shape[1] + 2
    stacked = da.map_blocks(
        _block_r, X, y[:, None], x_mean, scale, np.sqrt(X.shape[0]), y_mean,
        dtype=np.float64, chunks=((size,) * X.numblocks[0], (size,)),
    )  # fmt: skip
    return np.linalg.qr(stacked.compute(), mode="r")


def _block_predict(X_block, coef, intercept):
    return X_block @ coef + intercept


def predict(X, coef, intercept: float):
    """X @ coef + intercept, lazily, one task per chunk: a dask array in, a dask array out."""
    X = X.to_dask_array(lengths=True) if hasattr(X, "to_dask_array") else X
    X = X.rechunk({1: -1})
    return X.map_blocks(_block_predict, coef, intercept, drop_axis=1, dtype=np.float64)


def _block_q(X_block, x_mean, scale, root_n, factors):
    """This chunk's rows of Q = B R⁻¹, B = [1/√n, (X − x̄)/D], R = Rₖ⋯R₁R₀: solved against each factor
    in turn, as CholeskyQR forms them (one solve against the product would lose eps·cond(B) of Q's
    orthogonality)."""
    q = np.column_stack([np.full(len(X_block), 1 / root_n), (X_block - x_mean) / scale])
    for R in factors:
        q = _solve(R, q.T, transposed=True).T
    return q


def _solve(R, b, transposed=False):
    """R⁻¹b (Rᵀ⁻¹b when ``transposed``) for an upper-triangular R."""
    import scipy.linalg

    return scipy.linalg.solve_triangular(R, b, trans="T" if transposed else "N")


def _block_gram(X_block, y_block, x_mean, scale, root_n, factors):
    """[ZᵀZ, Zᵀy] of one chunk, Z = B R⁻¹."""
    z = _block_q(X_block, x_mean, scale, root_n, factors)
    return np.column_stack([z.T @ z, z.T @ y_block[:, 0]])[None]


def _block_refinement(X_block, y_block, x_mean, scale, root_n, factors, start, history, constant, coef):
    """One refinement pass over a chunk: its residual r replayed through the corrections so far, then
    [g, Qᵀf, Σr²] of this step, with f = y − c − X̃w − r and g = −Bᵀr, in extended precision (np.longdouble)."""
    ext = np.longdouble
    q = _block_q(X_block, x_mean, scale, root_n, factors)
    centred, y_ext = X_block.astype(ext) - x_mean.astype(ext), y_block[:, 0].astype(ext)

    def f(constant, coef, residual):
        return np.asarray((y_ext - constant) - centred @ coef - residual, dtype=np.float64)

    residual = (y_block[:, 0] - q @ start).astype(ext)  # the first solve's residual, y − QQᵀy
    for step_constant, step_coef, h, qf in history:  # δr = Qh + (f − Q Qᵀf), as every earlier step applied it
        residual += (q @ h + (f(step_constant, step_coef, residual) - q @ qf)).astype(ext)
    # g stays in extended precision until summed over all chunks: each chunk's part is of the size of
    # X̃ᵀr over its rows, while their sum, Bᵀr over all rows, is nearly zero.
    g = -np.append(residual.sum() / ext(root_n), (centred.T @ residual) / scale)
    return np.concatenate([g, q.T @ f(constant, coef, residual), [residual @ residual]])[None]


def qr_refined(X, y, system, passes: int = 2, refinements: int = 2):
    """w and b on ill-conditioned data: a QR of B = [1/√n, (X − x̄)/D] by shifted CholeskyQR, then Björck's
    refinement of the augmented system, as the in-memory fit does with a Householder QR.

    The first R is the Cholesky factor of BᵀB (from the moments) plus a shift of order eps·n·d, which keeps
    it positive definite whatever the conditioning; each of ``passes`` then forms Z = BR⁻¹, whose Gram is
    close to I, and refines R ← chol(ZᵀZ)·R (CholeskyQR2 after the shift): Q = BR⁻¹ is then orthonormal
    to working precision and is recomputed from each chunk where needed, never stored. Each refinement
    solves [[I, B], [Bᵀ, 0]] [δr; δφ] = [f; g] through B = QR, with f and g from the data in extended
    precision; the residual r, which the method keeps beside φ, is replayed chunk by chunk from the small
    vectors of each step, so nothing of length n is stored either. Returns (w, b, rank, F, RSS) with
    (X̃ᵀX̃)⁻¹ = FFᵀ.
    """
    import scipy.linalg
    from dask.array import map_blocks

    n, d = int(system.n), system.d
    root_n, eps = np.sqrt(n), np.finfo(np.float64).eps
    scale = np.sqrt(np.diag(system.gram))
    scale[scale == 0] = 1.0
    gram = np.eye(d + 1)
    gram[1:, 1:] = system.gram / np.outer(scale, scale)  # the constant column is orthogonal to the centred ones
    factors = [scipy.linalg.cholesky(gram + 11 * ((n + 1) * (d + 1) + (d + 1) * (d + 2)) * eps * np.trace(gram)
                                     * np.eye(d + 1))]  # fmt: skip
    per_chunk = {"new_axis": [2], "dtype": np.float64}
    for _ in range(passes):
        sums = map_blocks(_block_gram, X, y[:, None], system.x_mean, scale, root_n, factors,
                          chunks=((1,) * X.numblocks[0], (d + 1,), (d + 2,)), **per_chunk).sum(axis=0).compute()  # fmt: skip
        factors.append(scipy.linalg.cholesky(sums[:, : d + 1]))
        start = _solve(factors[-1], sums[:, d + 1], transposed=True)  # Qᵀy for the new Q

    def solve(b, transposed=False):  # R⁻¹b or R⁻ᵀb, factor by factor
        for R in factors if transposed else factors[::-1]:
            b = _solve(R, b, transposed)
        return b

    def parameters(phi):  # B's coordinates φ = (√n·c, D·w) to (c, w), in extended precision
        return np.longdouble(phi[0]) / np.longdouble(root_n), phi[1:].astype(np.longdouble) / scale

    constant, coef = parameters(solve(start))
    history = []
    for _ in range(refinements):
        sums = map_blocks(_block_refinement, X, y[:, None], system.x_mean, scale, root_n, factors, start, history,
                          constant, coef, dtype=np.longdouble,
                          chunks=((1,) * X.numblocks[0], (2 * d + 3,))).sum(axis=0).compute()  # fmt: skip
        g, qf, rss = (np.asarray(part, dtype=np.float64) for part in (sums[: d + 1], sums[d + 1 : 2 * d + 2], sums[-1]))
        h = solve(g, transposed=True)
        history.append((constant, coef, h, qf))
        delta_constant, delta_coef = parameters(solve(qf - h))
        constant, coef = constant + delta_constant, coef + delta_coef
    intercept = float(constant - system.x_mean.astype(np.longdouble) @ coef)
    r_inverse = solve(np.eye(d + 1))
    return np.asarray(coef, dtype=np.float64), intercept, d, r_inverse[1:] / scale[:, None], rss
