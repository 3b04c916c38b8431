"""The moments of least squares with an intercept, its sufficient statistics: ZᵀWZ for Z = [X − x_shift, 1,
Y − y_shift] (W the sample weights, the identity without them), summed over row blocks. The in-memory fit adds the
columns R of a pilot's residual (``pilot_moments``, ``row_moments``), one BLAS call per block on as many threads as BLAS
has; the dask fit and the streams sum ``block_moments``; a sparse X gets them from sparse products (``sparse_moments``),
after shifting only the columns whose centring would cancel (``sparse_shifts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from impls.closed_form.blas_threads import in_threads

# Rows per block of a stream or a dask chunk's sums, and of the shifts: at most BLOCK_ROWS × d × 8 bytes of scratch.
BLOCK_ROWS = 16384
# Numbers per block of the in-memory pass: a block of Z in float64 is 2 MiB, a typical core's L2 cache, so that ZᵀZ
# reads the block from cache right after it was copied, and the pass makes few BLAS calls (one per block).
BLOCK_NUMBERS = 2**18
# The blocks' products are summed in at most this many groups of consecutive blocks, each group in block order and
# the groups in group order: the same bits whichever thread summed which group, and few d×d partial sums in memory.
MAX_GROUPS = 16
# The pilot is the least-squares solution of the first rows: at least this many per unknown (or the whole data), so
# that its residual over all the data is not much above the least-squares one (by about d/rows of it).
PILOT_ROWS_PER_UNKNOWN = 4
# A first block whose Cholesky factor shows a condition number above this (a_ii / r_ii², a lower bound) gives no pilot.
PILOT_MAX_CONDITION = 1e8


def block_moments(X_block, y_block, x_shift, y_shift, weights=None) -> np.ndarray:
    """ZᵀWZ for Z = [X_block − x_shift, 1, y_block − y_shift]: the (d + 1 + k)×(d + 1 + k) sufficient statistics of
    k targets (k = 1 for a 1-D y_block; ``y_shift`` a float or k of them).

    Summed over blocks it holds the shifted Gram matrix, Σx, Σxy, n (Σw), Σy and Σy². ``x_shift=None``
    reads the block as it is (no copy for float64 data).
    """
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN or inf is reported after the accumulation
        x = X_block.astype(np.float64, copy=False) if x_shift is None else X_block - x_shift
        y = np.asarray(y_block, dtype=np.float64)
        y = (y[:, None] if y.ndim == 1 else y) - y_shift
        d, k = x.shape[1], y.shape[1]
        rest = np.column_stack([np.ones(len(y)), y])  # [1, y − y_shift]
        moments = np.empty((d + 1 + k, d + 1 + k))
        if weights is None:
            moments[:d, :d] = x.T @ x  # numpy calls BLAS syrk for this product: half the flops of a gemm
            # Σx and Σx(y − shift) in one product, while the block is still in cache.
            moments[:d, d:] = x.T @ rest
            moments[d:, d:] = rest.T @ rest
        else:
            weighted = x * weights[:, None]
            moments[:d, :d] = weighted.T @ x
            moments[:d, d:] = weighted.T @ rest
            moments[d:, d:] = (rest * weights[:, None]).T @ rest
        moments[d:, :d] = moments[:d, d:].T
    return moments


@dataclass(frozen=True)
class Pilot:
    """A provisional solution, W₀ (d × k) and c₀ (k), whose residual R = (Y − y_shift) − (X − x_shift)W₀ − c₀ the
    pass sums beside Y: the centred normal equations then solve for the correction to W₀ with X̃ᵀR on the right,
    whose rounding error is that of the small residual, not of Y, and the RSS, ΣR̃² − δᵀX̃ᵀR̃, loses no digits to the
    cancellation of Σỹ² against the fitted sum of squares where R² is close to 1 (one step of iterative refinement,
    made in the same pass as the moments)."""

    coef: np.ndarray
    offset: np.ndarray

    @classmethod
    def of_moments(cls, moments: np.ndarray, k: int, rows: int) -> Pilot | None:
        """The least-squares solution of the rows whose moments (of k targets) these are, or None where they do
        not determine one (no more rows than unknowns, a NaN, a Cholesky factor that fails or shows a condition
        above PILOT_MAX_CONDITION)."""
        d = len(moments) - 1 - k
        if rows <= d + 1 or not np.isfinite(moments).all():
            return None
        n, x_means, y_means = moments[d, d], moments[d, :d] / moments[d, d], moments[d, d + 1 :] / moments[d, d]
        gram = moments[:d, :d] - n * np.outer(x_means, x_means)
        factor, info = scipy.linalg.lapack.dpotrf(gram, lower=0, clean=1)
        if info != 0 or not np.all(np.diag(gram) <= PILOT_MAX_CONDITION * np.diag(factor) ** 2):
            return None
        coef, _ = scipy.linalg.lapack.dpotrs(factor, moments[:d, d + 1 :] - n * np.outer(x_means, y_means), lower=0)
        return cls(coef, y_means - x_means @ coef)


def row_moments(X, Y, x_shift, y_shift, weights=None, pilot: Pilot | None = None) -> np.ndarray:
    """ZᵀWZ for Z = [X − x_shift, 1, Y − y_shift, R] over the rows of an in-memory X (a memmap too), R the residual
    of ``pilot`` (no R without one).

    Each block is copied into one contiguous float64 Z (shifted, cast, with the ones and the targets beside X), whose
    ZᵀZ is one BLAS call (syrk); the blocks are shared out among as many threads as BLAS would use, each calling BLAS
    on one thread (``in_threads``).
    """
    d, k = X.shape[1], Y.shape[1]
    width = d + 1 + k * (1 if pilot is None else 2)
    rows = max(1, BLOCK_NUMBERS // width)
    starts = range(0, X.shape[0], rows)
    size = -(-len(starts) // MAX_GROUPS)  # blocks per group
    groups = [starts[i : i + size] for i in range(0, len(starts), size)]
    y_shift = np.asarray(y_shift, dtype=np.float64)  # an array: float32 targets are then shifted in float64

    def group_sum(group: Sequence[int]) -> np.ndarray:
        block, total = np.empty((min(rows, X.shape[0]), width)), None
        with np.errstate(invalid="ignore", over="ignore"):  # a NaN or inf is reported after the accumulation
            for start in group:
                z = _fill(block, X, Y, start, x_shift, y_shift)
                if pilot is not None:
                    _fill_residual(z, k, pilot)
                weighted = z if weights is None else z * weights[start : start + len(z), None]
                product = weighted.T @ z  # z.T @ z: one syrk, half the flops of a gemm
                if total is None:
                    total = product
                else:
                    total += product
        return total

    sums = in_threads(group_sum, groups)
    moments = sums[0]
    for part in sums[1:]:
        moments += part
    return moments


def _fill(block: np.ndarray, X, Y, start: int, x_shift, y_shift: np.ndarray) -> np.ndarray:
    """The rows of Z = [X − x_shift, 1, Y − y_shift, (R)] from ``start`` on, as many as fit in ``block`` (float64: the
    copy casts float32 data too); R's columns are left for ``_fill_residual``."""
    d, k = X.shape[1], Y.shape[1]
    z = block[: min(len(block), X.shape[0] - start)]
    stop = start + len(z)
    if x_shift is None:
        z[:, :d] = X[start:stop]
    else:
        np.subtract(X[start:stop], x_shift, out=z[:, :d])
    z[:, d] = 1.0
    np.subtract(Y[start:stop], y_shift, out=z[:, d + 1 : d + 1 + k])
    return z


def _fill_residual(z: np.ndarray, k: int, pilot: Pilot) -> None:
    """R = (Y − y_shift) − (X − x_shift)W₀ − c₀ into the last k columns of a block of Z."""
    d = z.shape[1] - 1 - 2 * k
    np.subtract(z[:, d + 1 : d + 1 + k], z[:, :d] @ pilot.coef, out=z[:, d + 1 + k :])
    z[:, d + 1 + k :] -= pilot.offset


def pilot_moments(X, Y, weights=None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, Pilot | None]:
    """``row_moments`` of all the rows with the residual of a pilot, the least-squares solution of the first rows
    (a block, and at least PILOT_ROWS_PER_UNKNOWN per unknown); the shifts (``shifts``), and the pilot: None where
    those rows determine none, and then the moments have no R.

    The first rows are read twice, first unshifted: their moments tell whether X needs a shift (then they are read
    once more, shifted), without a pass of their own. Where they are all the rows, in one block, they are copied
    once: the pilot's residual is written beside them, and only its products are new.
    """
    d, k = X.shape[1], Y.shape[1]
    size = d + 1 + k
    first = max(BLOCK_NUMBERS // (size + k), PILOT_ROWS_PER_UNKNOWN * (d + 1))
    y_shift = np.mean(Y[:BLOCK_ROWS], axis=0, dtype=np.float64)
    if X.shape[0] > BLOCK_NUMBERS // (size + k):
        head_weights = None if weights is None else weights[:first]
        head = row_moments(X[:first], Y[:first], None, y_shift, head_weights)
        x_shift = None
        if _means_large(head, d):
            x_shift, y_shift = shifts(X[:BLOCK_ROWS], Y[:BLOCK_ROWS])
            head = row_moments(X[:first], Y[:first], x_shift, y_shift, head_weights)
        pilot = Pilot.of_moments(head, k, min(first, X.shape[0]))
        if pilot is None:
            moments = head if first >= X.shape[0] else row_moments(X, Y, x_shift, y_shift, weights)
            return moments, x_shift, _y_shift(y_shift), None
        return row_moments(X, Y, x_shift, y_shift, weights, pilot), x_shift, _y_shift(y_shift), pilot
    block = np.empty((X.shape[0], size + k))
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN or inf is reported after the accumulation
        z = _fill(block, X, Y, 0, None, y_shift)
        head = _product(z, size, weights)
        x_shift = None
        if _means_large(head, d):
            x_shift, y_shift = shifts(X[:BLOCK_ROWS], Y[:BLOCK_ROWS])
            z = _fill(block, X, Y, 0, x_shift, np.asarray(y_shift, dtype=np.float64))
            head = _product(z, size, weights)
        pilot = Pilot.of_moments(head, k, X.shape[0])
        if pilot is None:
            return head, x_shift, _y_shift(y_shift), None
        _fill_residual(z, k, pilot)
        with_residual = (z if weights is None else z * weights[:, None]).T @ z[:, size:]
    moments = np.empty((size + k, size + k))
    moments[:size, :size], moments[:, size:] = head, with_residual
    moments[size:, :size] = with_residual[:size].T
    return moments, x_shift, _y_shift(y_shift), pilot


def _product(z: np.ndarray, columns: int, weights) -> np.ndarray:
    """The first ``columns`` columns' ZᵀWZ (syrk without weights)."""
    head = z[:, :columns]
    return (head if weights is None else head * weights[:, None]).T @ head


def _means_large(moments: np.ndarray, d: int) -> bool:
    """Whether some column's mean is larger than its spread in the rows whose unshifted moments these are
    (``shifts``' rule, from the moments: no pass of its own)."""
    n = moments[d, d]
    means = moments[d, :d] / n
    with np.errstate(invalid="ignore"):
        return not np.all(means**2 <= np.diag(moments)[:d] / n - means**2)


def _y_shift(y_shift):
    """y's shift as ``shifts`` gives it: a float for one target, an array for several."""
    return float(y_shift[0]) if np.size(y_shift) == 1 else np.asarray(y_shift, dtype=np.float64)


def sparse_moments(X, y, y_shift, weights=None) -> np.ndarray:
    """``block_moments`` of a scipy.sparse X, unshifted (a shift would fill it in), by sparse products: XᵀWX has
    the non-zeros of the products of X's columns, and only the result, (d + 1 + k)², is dense."""
    y = np.asarray(y, dtype=np.float64)
    y = (y[:, None] if y.ndim == 1 else y) - y_shift
    d, k = X.shape[1], y.shape[1]
    rest = np.column_stack([np.ones(len(y)), y])
    weighted_rest = rest if weights is None else rest * weights[:, None]
    moments = np.empty((d + 1 + k, d + 1 + k))
    weighted = X if weights is None else X.multiply(weights[:, None]).tocsr()
    with np.errstate(invalid="ignore", over="ignore"):
        gram = (X.T @ weighted).tocoo()  # written into place: no second dense d×d array
        gram.sum_duplicates()
        moments[:d, :d] = 0.0
        moments[gram.row, gram.col] = gram.data
        del gram
        moments[:d, d:] = X.T @ weighted_rest
        moments[d:, d:] = rest.T @ weighted_rest
    moments[d:, :d] = moments[:d, d:].T
    return moments


def sparse_shifts(X) -> np.ndarray | None:
    """Shifts for the columns of a scipy.sparse X whose mean is larger than their spread (``shifts``' rule), None
    where there are none: the centring XᵀX − n x̄x̄ᵀ would cancel there to a factor 1 + x̄²/s² of precision.

    Such a column has more non-zeros than zeros (a column non-zero in a fraction p of the rows has x̄²/s² ≤ p/(1 − p),
    by Cauchy-Schwarz), so shifting it (``shift_sparse``) at most doubles its entries; a truly sparse column
    is never shifted. A constant column is shifted by its value, so that it becomes exactly zero."""
    n = X.shape[0]
    means = np.asarray(X.sum(axis=0), dtype=np.float64).ravel() / n
    squares = np.asarray(X.multiply(X).sum(axis=0), dtype=np.float64).ravel() / n
    with np.errstate(invalid="ignore", over="ignore"):
        large = ~(means**2 <= squares - means**2)  # a NaN or inf is reported after the moments
    if not large.any():
        return None
    low, high = X.min(axis=0).toarray().ravel(), X.max(axis=0).toarray().ravel()
    x_shift = np.where(large, np.where(low == high, high, means), 0.0)
    return np.where(np.isfinite(x_shift), x_shift, 0.0)


def shift_sparse(X, x_shift: np.ndarray):
    """X − x_shift as a CSR matrix: the shifted columns dense, every other one as sparse as it was."""
    import scipy.sparse

    columns = np.flatnonzero(x_shift)
    outer = scipy.sparse.csr_matrix(
        (np.tile(x_shift[columns], X.shape[0]), np.tile(columns, X.shape[0]), np.arange(X.shape[0] + 1) * len(columns)),
        shape=X.shape,
    )
    return (X - outer).tocsr()


def shifts(X_block, y_block) -> tuple[np.ndarray | None, float | np.ndarray]:
    """Shifts that keep centring exact: the first block's means, where they are large next to its spread (the
    y shift: a float for a 1-D y, one per target for a 2-D one).

    Centring afterwards (XᵀX − n x̄x̄ᵀ) loses a factor 1 + x̄²/s² of precision to cancellation; shifting
    each block first costs a copy of the block, so it is done only where the means are large.
    """
    y_shift = np.mean(y_block, axis=0, dtype=np.float64)
    y_shift = float(y_shift) if np.ndim(y_shift) == 0 else y_shift
    x_shift = X_block.mean(axis=0, dtype=np.float64)
    if np.all(np.abs(x_shift) <= X_block.std(axis=0, dtype=np.float64)):
        return None, y_shift
    # A column constant in the block is shifted by its value, not by its computed mean (which can be off
    # by an ulp): a column constant in all the data is then exactly zero once shifted, hence found rank-deficient.
    constant = np.ptp(X_block, axis=0) == 0
    x_shift[constant] = X_block[0, constant]
    return x_shift, y_shift
