"""Ordinary least squares in closed form: solve the normal equations of the centred data, (X̃ᵀX̃) w = X̃ᵀỹ, b = ȳ − x̄ᵀw.

X̃ᵀX̃ is summed over row blocks (``impls._moments``); the answer is refined, or found by QR, in ``impls._solvers``."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import assert_all_finite, check_X_y

from impls import _dask
from impls._base import LinearPredictorMixin, fit_atomically, validate_training_data
from impls._collections import is_dask
from impls._moments import BLOCK_ROWS, block_moments, shifts
from impls._solvers import ReadOnce, RowBlocks, Solution
from impls._statistics import ols_statistics

# The normal equations are solved where the equilibrated X̃ᵀX̃ has a condition number of at most this: their error,
# eps·cond, is then 2e-8 at most, and each step of refinement multiplies it by that much again. QR above it. The
# size of the residual does not enter the choice (docs/performance.md, "Accuracy on hard data").
MAX_CONDITION = 1e8


def textbook_solution(X, y) -> tuple[np.ndarray, float]:
    """The method alone, for in-memory X: centre, solve the normal equations (never invert), b = ȳ − x̄ᵀw."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x_mean, y_mean = X.mean(axis=0), y.mean()
    centred = X - x_mean
    coef = np.linalg.solve(centred.T @ centred, centred.T @ (y - y_mean))
    return coef, float(y_mean - x_mean @ coef)


class NumpyClosedFormRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Least-squares linear regression with an intercept, solved in closed form with numpy.

    One pass over X in row blocks sums the moments; the centred system X̃ᵀX̃ w = X̃ᵀỹ is solved by Cholesky where
    cond(X̃ᵀX̃), columns scaled to unit norm, is at most ``MAX_CONDITION``, then b = ȳ − x̄ᵀw, and (b, w) is refined
    against the residuals in double-double arithmetic until it converges; else by a QR refined by Björck's method,
    or by SVD for the minimum-norm ``coef_`` where X̃ is truly rank-deficient (``impls._solvers``). The answer is
    the exact least-squares solution of the float64 data to 12 digits or more wherever cond(X̃) ≤ 1e10.

    ``fit(X, y)`` takes arrays, a ``numpy.memmap`` larger than memory or dask collections, read in blocks, never
    gathered (only a QR in memory copies X); ``fit_blocks(blocks)`` takes ``(X_block, y_block)`` pairs read once.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The least-squares weights.
    intercept_ : float
        The least-squares intercept.
    n_iter_ : int
        1: the closed form is not iterative.
    n_refinements_ : int
        Steps of refinement, each a pass over the data: usually 2 (the second changes nothing), at most
        ``impls._refinement.MAX_REFINEMENTS``; 1 or 0 past ``impls._solvers.EXTENDED_LIMIT`` numbers (in
        float64); 0 for a truly rank-deficient X and from ``fit_blocks``.
    solver_ : str
        ``"normal-equations"``, ``"qr"`` (ill-conditioned), ``"svd"`` (truly rank-deficient) or ``"eigh"``
        (ill-conditioned, from ``fit_blocks``).
    rank_ : int
        Numerical rank of the centred X.
    n_samples_fit_ : int
        Number of examples fitted.
    sigma2_, coef_stderr_, intercept_stderr_, rsquared_ : float, ndarray of shape (n_features,), float, float
        RSS / (n − rank − 1), the standard errors of ``coef_`` and ``intercept_``, and R², as statsmodels'
        OLS gives them (``impls._statistics``); NaN, with a warning, where no degree of freedom is left.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X had string column names.

    Examples
    --------
    >>> from impls import NumpyClosedFormRegressor
    >>> model = NumpyClosedFormRegressor().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    >>> model.coef_, model.intercept_, model.solver_, model.n_refinements_
    (array([2.]), 1.0, 'normal-equations', 2)
    >>> model = NumpyClosedFormRegressor().fit([[0.0], [1.0], [2.0], [3.0]], [1.0, 3.0, 5.0, 8.0])
    >>> round(model.sigma2_, 6), model.coef_stderr_.round(6), round(model.rsquared_, 6)
    (0.15, array([0.173205]), 0.988785)
    """

    @fit_atomically
    def fit(self, X, y):
        if is_dask(X, y):  # one task per chunk, where the data live: X is never gathered
            X, y = _dask.validate_data(self, X, y)
            x_shift, y_shift = shifts(*_dask.first_block(X, y))
            moments, data = _dask.moments(X, y, x_shift, y_shift), _dask.Chunks
            if not np.isfinite(moments).all():
                raise ValueError("Input X or y contains NaN or infinity, or is too large in magnitude for float64.")
        else:  # finiteness is checked on the moments, where a NaN or inf reaches the diagonal: no extra pass over X
            X, y = validate_training_data(self, X, y, dtype=[np.float64, np.float32], ensure_all_finite=False)
            x_shift, y_shift = shifts(X[:BLOCK_ROWS], y[:BLOCK_ROWS])
            moments, data = np.zeros((X.shape[1] + 2,) * 2), RowBlocks
            for start in range(0, len(X), BLOCK_ROWS):
                rows = slice(start, start + BLOCK_ROWS)
                moments += block_moments(X[rows], y[rows], x_shift, y_shift)
            if not np.isfinite(np.diag(moments)).all():  # scikit-learn's own message, naming the bad input
                assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
                assert_all_finite(y, input_name="y", estimator_name=type(self).__name__)
                raise ValueError("X or y is too large in magnitude: XᵀX overflows float64. Scale the data first.")
        system = _CentredSystem(moments, x_shift, y_shift)
        self._set_solution(_solve(system, data(X, y, system)), system)
        return self

    @fit_atomically
    def fit_blocks(self, blocks: Iterable[tuple[np.ndarray, np.ndarray]]):
        """Fit on ``(X_block, y_block)`` pairs read one at a time, in O(d²) memory plus one block: without the
        refinement or the QR, which would read the blocks again (``impls._solvers.ReadOnce``)."""
        moments = x_shift = y_shift = None
        for X_block, y_block in blocks:
            X_block, y_block = check_X_y(X_block, y_block, y_numeric=True, dtype=[np.float64, np.float32])
            if moments is None:
                x_shift, y_shift = shifts(X_block, y_block)
                moments = np.zeros((X_block.shape[1] + 2,) * 2)
            elif X_block.shape[1] != len(moments) - 2:
                raise ValueError(
                    f"Every block must have {len(moments) - 2} features, as the first; got {X_block.shape[1]}."
                )
            moments += block_moments(X_block, y_block, x_shift, y_shift)
        if moments is None:
            raise ValueError("fit_blocks needs at least one block of data; got none.")
        if not np.isfinite(moments).all():
            raise ValueError("X or y is too large in magnitude: XᵀX overflows float64. Scale the data first.")
        system = _CentredSystem(moments, x_shift, y_shift)
        solution = _solve(system, ReadOnce(system))
        vars(self).pop("feature_names_in_", None)  # blocks are arrays: no column names, as scikit-learn resets
        self.n_features_in_ = system.d
        self._set_solution(solution, system)
        return self

    def __sklearn_tags__(self):
        return _dask.dask_input_tags(super().__sklearn_tags__())

    def predict(self, X):
        """X @ coef_ + intercept_; lazily, as a dask array, when X is a dask array or DataFrame."""
        return _dask.fitted_predict(self, X) if is_dask(X) else super().predict(X)

    def _set_solution(self, solution: Solution, system: _CentredSystem) -> None:
        """The solution and its statistics, assigned together at the end of a fit."""
        n = int(system.n)
        statistics = ols_statistics(
            solution.rss, solution.rank, solution.covariance_factor, n, system.x_mean, system.tss
        )
        self.coef_, self.intercept_ = np.asarray(solution.coef, dtype=np.float64), float(solution.intercept)
        self.sigma2_, self.coef_stderr_, self.intercept_stderr_, self.rsquared_ = statistics
        self.rank_, self.n_samples_fit_ = int(solution.rank), n
        self.solver_, self.n_iter_, self.n_refinements_ = solution.solver, 1, int(solution.refinements)


class _CentredSystem:
    """The centred normal equations X̃ᵀX̃ w = X̃ᵀỹ, from the moments that ``block_moments`` sums.

    The data enter shifted, X − x_shift and y − y_shift, which float64 subtracts exactly where the
    shift is close to the values (Sterbenz's lemma); residuals are computed in that frame too, where
    the intercept is ``offset = y_mean_after_shift − x_mean_after_shiftᵀw``, so that large means never
    enter a sum of products.
    """

    def __init__(self, moments: np.ndarray, x_shift, y_shift: float):
        self.d = d = len(moments) - 2
        self.n = n = moments[d, d]
        self.x_shift, self.y_shift = np.zeros(d) if x_shift is None else x_shift, y_shift
        # Centre exactly: subtract the means that remain after the shifts.
        self.x_mean_after_shift, self.y_mean_after_shift = moments[:d, d] / n, moments[d, d + 1] / n
        self.gram = moments[:d, :d] - n * np.outer(self.x_mean_after_shift, self.x_mean_after_shift)
        self.xty = moments[:d, d + 1] - n * self.x_mean_after_shift * self.y_mean_after_shift
        self.tss = moments[d + 1, d + 1] - n * self.y_mean_after_shift**2  # Σ(y − ȳ)²
        self.x_mean, self.y_mean = self.x_shift + self.x_mean_after_shift, self.y_shift + self.y_mean_after_shift
        self._cholesky = None

    def condition(self) -> float:
        """Condition number of the Gram matrix of X̃ with its columns scaled to unit norm."""
        scale = np.sqrt(np.diag(self.gram))
        if not (scale > 0).all():
            return np.inf
        eigenvalues = np.linalg.eigvalsh(self.gram / np.outer(scale, scale))
        return np.inf if eigenvalues[0] <= 0 else eigenvalues[-1] / eigenvalues[0]

    def solve(self, right=None) -> np.ndarray:
        """w solving X̃ᵀX̃ w = X̃ᵀỹ (or ``right`` instead of X̃ᵀỹ), by Cholesky: solved, never inverted."""
        if self._cholesky is None:
            self._cholesky = scipy.linalg.cho_factor(self.gram)
        return scipy.linalg.cho_solve(self._cholesky, self.xty if right is None else right)

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
        return scipy.linalg.solve_triangular(upper, np.eye(self.d), lower=lower)


def _solve(system: _CentredSystem, data) -> Solution:
    """The one solving branch of every fit. Well-conditioned: w by Cholesky, b = ȳ − x̄ᵀw, refined against ``data``
    (``RowBlocks`` in memory, ``_dask.Chunks``, or ``ReadOnce`` from blocks); else ``data``'s own least squares."""
    if system.condition() > MAX_CONDITION:
        return data.least_squares()
    coef = system.solve()
    return data.refine(coef, system.intercept(coef))
