"""The sufficient statistics of least squares with an intercept: ZᵀWZ for Z = [X − x_shift, 1, Y − y_shift] (W the
sample weights, the identity without them), summed over row blocks. The in-memory fit, the dask fit and the runner's
reference all sum these same blocks; a sparse X gets them from sparse products, unshifted.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

# Rows per block: a block in float64 is at most BLOCK_ROWS × d × 8 bytes of scratch memory.
BLOCK_ROWS = 16384
# Rows of X̃ᵀX̃ centred at a time, so that its centring needs no second d×d array (a sparse X can have many columns).
CENTRING_ROWS = 256
# Up to this many features the condition number is computed exactly (an eigendecomposition, O(d³) and several
# seconds at d = 2000); beyond, estimated from the Cholesky factor.
EXACT_CONDITION_UP_TO = 2000


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


class CentredSystem:
    """The centred normal equations X̃ᵀWX̃ w = X̃ᵀWỹ of one target, from the moments that ``block_moments`` sums.

    The data enter shifted, X − x_shift and y − y_shift, which float64 subtracts exactly where the
    shift is close to the values (Sterbenz's lemma); residuals are computed in that frame too, where
    the intercept is ``offset = y_mean_after_shift − x_mean_after_shiftᵀw``, so that large means never
    enter a sum of products. ``n`` is the sum of the weights: the number of examples without weights.
    """

    def __init__(self, moments: np.ndarray, x_shift, y_shift: float):
        self.d = d = len(moments) - 2
        self.n = n = moments[d, d]
        self.x_shift, self.y_shift = np.zeros(d) if x_shift is None else x_shift, y_shift
        # Centre exactly: subtract the means that remain after the shifts.
        self.x_mean_after_shift, self.y_mean_after_shift = moments[:d, d] / n, moments[d, d + 1] / n
        self.gram = moments[:d, :d].copy()
        for rows in range(0, d, CENTRING_ROWS):  # − n x̄x̄ᵀ a band of rows at a time: no d×d temporary
            band = slice(rows, rows + CENTRING_ROWS)
            self.gram[band] -= n * np.outer(self.x_mean_after_shift[band], self.x_mean_after_shift)
        self.xty = moments[:d, d + 1] - n * self.x_mean_after_shift * self.y_mean_after_shift
        self.tss = moments[d + 1, d + 1] - n * self.y_mean_after_shift**2  # Σw(y − ȳ)²
        self.x_mean, self.y_mean = self.x_shift + self.x_mean_after_shift, self.y_shift + self.y_mean_after_shift
        self._cholesky = self._shared = self._condition = None
        self._shared_by = 0  # systems (of other targets) that solve with this one's Cholesky factor

    @classmethod
    def of_target(cls, moments: np.ndarray, target: int, x_shift, y_shift) -> CentredSystem:
        """The system of target ``target`` from the moments of k targets, [X, 1, Y]ᵀW[X, 1, Y]."""
        d = len(moments) - 1 - np.size(y_shift)
        if len(moments) == d + 2:
            return cls(moments, x_shift, float(np.ravel(y_shift)[0]))
        keep = np.r_[0 : d + 1, d + 1 + target]
        return cls(moments[np.ix_(keep, keep)], x_shift, float(np.ravel(y_shift)[target]))

    def share_factor(self, other: CentredSystem) -> CentredSystem:
        """Use ``other``'s Cholesky factor (the same X̃ᵀWX̃, another target): factored once for every target."""
        self._shared = other
        other._shared_by += 1
        return self

    def condition(self) -> float:
        """Condition number of the Gram matrix of X̃ with its columns scaled to unit norm: exact up to
        ``EXACT_CONDITION_UP_TO`` features, beyond them LAPACK's estimate from the Cholesky factor (O(d²), within
        a factor d of the 2-norm's)."""
        if self._condition is None:
            self._condition = self._compute_condition()
        return self._condition

    def _compute_condition(self) -> float:
        scale = np.sqrt(np.diag(self.gram))
        if not (scale > 0).all():
            return np.inf
        if self.d > EXACT_CONDITION_UP_TO:
            equilibrated = self.gram / scale
            equilibrated /= scale[:, None]
            bands = range(0, self.d, CENTRING_ROWS)  # its 1-norm a band of rows at a time (it is symmetric)
            norm = max(np.abs(equilibrated[i : i + CENTRING_ROWS]).sum(axis=1).max() for i in bands)
            # Its transpose, the same symmetric matrix in Fortran order, is factored in place: LAPACK's order, no copy.
            factor, info = scipy.linalg.lapack.dpotrf(equilibrated.T, lower=0, overwrite_a=1, clean=1)
            if info != 0:
                return np.inf
            reciprocal, _ = scipy.linalg.lapack.dpocon(factor, norm)
            factor *= scale  # X̃ᵀX̃ = (R D)ᵀ(R D): the solves' Cholesky factor, not computed twice
            self._cholesky = (factor, False)
            return np.inf if reciprocal <= 0 else 1.0 / reciprocal
        eigenvalues = np.linalg.eigvalsh(self.gram / np.outer(scale, scale))
        return np.inf if eigenvalues[0] <= 0 else eigenvalues[-1] / eigenvalues[0]

    def solve(self, right=None) -> np.ndarray:
        """w solving X̃ᵀX̃ w = X̃ᵀỹ (or ``right`` instead of X̃ᵀỹ), by Cholesky: solved, never inverted."""
        if self._cholesky is None and self._shared is not None:
            self._shared.solve()
            self._cholesky = self._shared._cholesky
        if self._cholesky is None:
            self._cholesky = scipy.linalg.cho_factor(self.gram)
        return scipy.linalg.cho_solve(self._cholesky, self.xty if right is None else right)

    def _alone(self) -> bool:
        return self._shared is None and self._shared_by == 0 and np.isfortran(self._cholesky[0])

    def intercept(self, coef, offset: float | None = None) -> float:
        """b = ȳ − x̄ᵀw, as y_shift + offset − x_shiftᵀw in extended precision (the shifts can be large)."""
        offset = self.y_mean_after_shift - self.x_mean_after_shift @ coef if offset is None else offset
        ext = np.longdouble
        return float(ext(self.y_shift) + ext(offset) - self.x_shift.astype(ext) @ np.asarray(coef, dtype=ext))

    def inverse_factor(self) -> np.ndarray:
        """F = R⁻¹ with X̃ᵀX̃ = RᵀR (Cholesky), so that (X̃ᵀX̃)⁻¹ = FFᵀ: for the standard errors only."""
        if self._cholesky is None:
            self.solve()
        upper, lower = self._cholesky
        # In one d×d array, no identity; in the factor's own, where no other target will solve with it again.
        inverse, _ = scipy.linalg.lapack.dtrtri(upper, lower=int(lower), overwrite_c=int(self._alone()))
        if self._alone():
            self._cholesky = None
        for row in range(self.d):  # the other triangle holds what cho_factor left there: zeros, row by row, in place
            inverse[row, row + 1 :] = 0.0 if lower else inverse[row, row + 1 :]
            inverse[row, :row] = inverse[row, :row] if lower else 0.0
        return inverse
