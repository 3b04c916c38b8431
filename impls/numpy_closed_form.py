"""Ordinary least squares in closed form: solve the normal equations of the centred data, (X̃ᵀX̃) w = X̃ᵀỹ, b = ȳ − x̄ᵀw.

X̃ᵀX̃ is accumulated over row blocks, so X is read once, never copied whole, and may arrive in chunks;
ill-conditioned data are solved by a QR factorisation of the centred, equilibrated X instead. Either answer
is then refined against residuals in double-double arithmetic (``impls._refinement``) until it converges.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_feature_names, assert_all_finite, check_is_fitted, check_X_y

from impls import _dask, _refinement
from impls._base import LinearPredictorMixin, fit_atomically, validate_training_data

# Rows per block: a block in float64 is at most BLOCK_ROWS × d × 8 bytes of scratch memory.
BLOCK_ROWS = 16384
# The normal equations are solved when the condition number of the equilibrated X̃ᵀX̃ (the square of
# X̃'s) is at most this: their error, eps·cond, is then 2e-8 at most, and each step of refinement multiplies
# it by about that much again. Above it, QR, whose steps multiply the error by eps·sqrt(cond). The size of
# the residual does not enter the choice: with r and X̃ᵀr in double-double, the normal equations' refinement
# contracts at the same rate whatever the residual (a first step to 15 digits with residuals three times the
# largest y, benchmarks/accuracy.py), and without them, on data past EXTENDED_LIMIT, a QR in float64 loses
# the same eps·cond·‖r‖/‖X̃w‖ to a large residual as the normal equations do.
MAX_CONDITION = 1e8
# Large well-conditioned data skip the residual pass: below this condition number the normal equations
# are already accurate to about eps·cond, and where Σ(y − ȳ)² is not much above the RSS (eps·TSS ≤ 1e-12·RSS,
# so that R² < 1 − 2e-4) the RSS from the sufficient statistics loses at most 1e-12 of itself to cancellation.
REFINE_CONDITION = 10.0
# Up to this many numbers in X, the normal equations' answer is refined until it converges, with residuals
# in double-double (about 25 float64 operations per number and step, in cache-sized blocks); beyond, by at
# most one step in float64, one pass at the speed of a matrix-vector product. (A QR, which copies X and
# costs O(nd²), is always refined in double-double.)
EXTENDED_LIMIT = 2**22
EPS = _refinement.EPS


def block_moments(X_block, y_block, x_shift, y_shift: float) -> np.ndarray:
    """ZᵀZ for Z = [X_block − x_shift, 1, y_block − y_shift]: the (d + 2)×(d + 2) sufficient statistics.

    Summed over blocks it holds the shifted Gram matrix, Σx, Σxy, n, Σy and Σy². ``x_shift=None``
    reads the block as it is (no copy for float64 data).
    """
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN or inf is reported after the accumulation
        x = X_block.astype(np.float64, copy=False) if x_shift is None else X_block - x_shift
        y = np.asarray(y_block, dtype=np.float64) - y_shift
        d = x.shape[1]
        moments = np.empty((d + 2, d + 2))
        moments[:d, :d] = x.T @ x  # numpy calls BLAS syrk for this product: half the flops of a gemm
        # Σx and Σx(y − shift) in one product, while the block is still in cache.
        moments[:d, d:] = x.T @ np.column_stack([np.ones(len(y)), y])
        moments[d:, :d] = moments[:d, d:].T
        moments[d:, d:] = [[len(y), y.sum()], [y.sum(), y @ y]]
    return moments


def _shifts(X_block, y_block):
    """Shifts that keep centring exact: the first block's means, where they are large next to its spread.

    Centring afterwards (XᵀX − n x̄x̄ᵀ) loses a factor 1 + x̄²/s² of precision to cancellation; shifting
    each block first costs a copy of the block, so it is done only where the means are large.
    """
    x_shift = X_block.mean(axis=0, dtype=np.float64)
    if np.all(np.abs(x_shift) <= X_block.std(axis=0, dtype=np.float64)):
        return None, float(np.mean(y_block, dtype=np.float64))
    # A column constant in the block is shifted by its value, not by its computed mean (which can be off
    # by an ulp): a column constant in all the data is then exactly zero once shifted, hence found rank-deficient.
    constant = np.ptp(X_block, axis=0) == 0
    x_shift[constant] = X_block[0, constant]
    return x_shift, float(np.mean(y_block, dtype=np.float64))


class NumpyClosedFormRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Least-squares linear regression with an intercept, solved in closed form with numpy.

    How it solves. One pass over X in row blocks accumulates the centred Gram matrix X̃ᵀX̃ and X̃ᵀỹ.
    If X̃, with each column scaled to unit norm, is well-conditioned (cond(X̃ᵀX̃) ≤ ``MAX_CONDITION``),
    the normal equations are solved by Cholesky. Otherwise X̃ is copied, centred and scaled, and factorised
    by a column-pivoted QR. Either solution is then refined against the residuals of the original data,
    computed with [1, X]ᵀr in double-double arithmetic (``impls._refinement``), each correction solved by the
    same factorisation (Björck's augmented system for the QR), until the correction is below float64's
    resolution of the answer or stops shrinking: the answer is then the exact least-squares solution of the
    float64 data to 12 digits or more wherever cond(X̃) ≤ 1e10 (``benchmarks/accuracy.py``). On data of more
    than ``EXTENDED_LIMIT`` numbers, the normal equations' answer gets one step of refinement in float64
    instead, or none where that pass cannot change a digit that matters (``REFINE_CONDITION``). Where X̃ is
    *truly* rank-deficient, meaning a diagonal entry of R is below eps·max(n, d) times the largest (a
    combination of columns is constant to machine precision of the scaled problem), the answer is the
    minimum-norm ``coef_``, as ``numpy.linalg.lstsq`` and ``LinearRegression`` give (the intercept is not
    part of the norm; this equals ``lstsq`` on ``[X, 1]`` unless a combination of columns of X is constant).

    ``fit(X, y)`` accepts any 2-D array, a ``numpy.memmap`` larger than memory included (well-conditioned
    data are read in blocks, never copied); ``fit_blocks(blocks)`` takes an iterable of
    ``(X_block, y_block)`` for data that arrive in chunks.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The least-squares weights.
    intercept_ : float
        The least-squares intercept.
    n_iter_ : int
        1: the closed form is not iterative (``n_refinements_`` counts the passes of its refinement).
    n_refinements_ : int
        Steps of refinement, each one pass over the data: usually 2 on well-conditioned data (the second
        finds the answer unchanged in float64), up to 5 at cond(X̃) = 1e12, at most
        ``impls._refinement.MAX_REFINEMENTS``; 1 or 0 on large data (float64); 0 without refinement (a truly
        rank-deficient X, ``fit_blocks``).
    solver_ : str
        ``"normal-equations"``, ``"qr"`` (ill-conditioned), ``"svd"`` (truly rank-deficient, minimum
        norm) or, from ``fit_blocks`` on ill-conditioned data, ``"eigh"``.
    rank_ : int
        Numerical rank of the centred X.
    n_samples_fit_ : int
        Number of examples fitted.
    sigma2_ : float
        Residual variance RSS / (n − rank − 1): the unbiased estimate of the noise variance under the
        usual OLS assumptions. NaN, with a warning, when n ≤ rank + 1 (no degree of freedom is left).
        ``fit`` computes the RSS from the residuals, except on large data where the sufficient statistics
        (Σỹ² − 2wᵀX̃ᵀỹ + wᵀX̃ᵀX̃w) lose at most 1e-12 of it (see ``REFINE_CONDITION``); ``fit_blocks``,
        which cannot read the data again, always from the sufficient statistics, which lose about
        eps·Σỹ²/RSS of it to cancellation when the fit is very good (R² close to 1).
    coef_stderr_ : ndarray of shape (n_features,)
        Standard errors of ``coef_``: sqrt(sigma2_ · diag((X̃ᵀX̃)⁻¹)) (a pseudo-inverse when rank-deficient).
    intercept_stderr_ : float
        Standard error of ``intercept_``: sqrt(sigma2_ · (1/n + x̄ᵀ(X̃ᵀX̃)⁻¹x̄)).
    rsquared_ : float
        1 − RSS / Σ(y − ȳ)² (NaN when y is constant).
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
        if _dask.is_dask(X, y):
            return self._fit_dask(X, y)
        # The finiteness check is left to the accumulation below (a NaN or inf anywhere makes a diagonal
        # entry of XᵀX or Σy non-finite), which saves a whole extra pass over X.
        X, y = validate_training_data(self, X, y, dtype=[np.float64, np.float32], ensure_all_finite=False)
        x_shift, y_shift = _shifts(X[:BLOCK_ROWS], y[:BLOCK_ROWS])
        moments = np.zeros((X.shape[1] + 2,) * 2)
        for start in range(0, len(X), BLOCK_ROWS):
            moments += block_moments(X[start : start + BLOCK_ROWS], y[start : start + BLOCK_ROWS], x_shift, y_shift)
        if not np.isfinite(np.diag(moments)).all():  # scikit-learn's own message, naming the bad input
            assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
            assert_all_finite(y, input_name="y", estimator_name=type(self).__name__)
            raise ValueError("X or y is too large in magnitude: XᵀX overflows float64. Scale the data first.")
        system = _CentredSystem(moments, x_shift, y_shift)
        passes = _RowBlocks(X, y, system)
        if system.condition() <= MAX_CONDITION:
            solution = _solve_normal_equations(system, passes)
        else:
            solution = _solve_by_qr(X, y, system, passes)
        self._set_solution(solution, len(X), system)
        return self

    @fit_atomically
    def fit_blocks(self, blocks: Iterable[tuple[np.ndarray, np.ndarray]]):
        """Fit on ``(X_block, y_block)`` pairs read one at a time; memory stays O(d²) plus one block.

        The blocks cannot be read again, so there is neither refinement nor QR: on an ill-conditioned X
        the normal equations are solved through the eigendecomposition, keeping the minimum-norm answer,
        with a warning (accurate to about eps·cond(X̃)²). The RSS comes from the sufficient statistics.
        """
        moments = x_shift = y_shift = None
        for X_block, y_block in blocks:
            X_block, y_block = check_X_y(X_block, y_block, y_numeric=True, dtype=[np.float64, np.float32])
            if moments is None:
                x_shift, y_shift = _shifts(X_block, y_block)
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
        if system.condition() <= MAX_CONDITION:
            coef, solver, rank, factor = system.solve(), "normal-equations", system.d, system.inverse_factor()
        else:
            warnings.warn(
                "X is ill-conditioned or rank-deficient; from blocks, the minimum-norm solution comes from "
                "the normal equations, accurate to about eps·cond(X)². Fit in memory for the QR solver.",
                stacklevel=3,
            )
            coef, rank, factor = system.solve_minimum_norm()
            solver = "eigh"
        intercept = system.intercept(coef, system.y_rest - system.x_rest @ coef)
        vars(self).pop("feature_names_in_", None)  # blocks are arrays: no column names, as scikit-learn resets
        self.n_features_in_ = system.d
        self._set_solution(_Solution(coef, intercept, solver, rank, factor, system.rss(coef)), int(system.n), system)
        return self

    def _fit_dask(self, X, y):
        """The same closed form on dask arrays or DataFrames, without gathering X: one pass for the moments,
        then each pass of the in-memory fit as one pass over the chunks (``_dask.Chunks``); on ill-conditioned
        data, the in-memory fit's QR and refinement, with the QR by shifted CholeskyQR (``_dask.qr_refined``)."""
        X, y, names = _dask.as_arrays(X, y)
        x_shift, y_shift = _shifts(*_dask.first_block(X, y))
        moments = _dask.moments(X, y, x_shift, y_shift)
        if not np.isfinite(moments).all():
            raise ValueError("Input X or y contains NaN or infinity, or is too large in magnitude for float64.")
        system = _CentredSystem(moments, x_shift, y_shift)
        passes = _dask.Chunks(X, y, system, extended=X.size <= EXTENDED_LIMIT)
        if system.condition() <= MAX_CONDITION:
            solution = _solve_normal_equations(system, passes)
        else:
            # The in-memory rank test and, on truly rank-deficient data, its minimum-norm answer, from the
            # R factor of [1/√n, X̃/D, ỹ] (one more pass); full-rank data by a QR refined as in memory.
            scale = _column_scale(system.gram)
            triangle = _dask.r_factor(X, y, system.x_mean, scale, system.y_mean)
            n, d = int(system.n), system.d
            diagonal = np.diag(scipy.linalg.qr(triangle[: d + 1, : d + 1], mode="r", pivoting=True)[0])
            if _rank_deficient(diagonal[: min(n, d + 1)], n, d):
                solution = _minimum_norm(triangle, n, scale, system.x_mean, system.y_mean, passes)
            else:
                coef, intercept, factor, rss, refinements = _dask.qr_refined(X, y, system)
                solution = _Solution(coef, intercept, "qr", system.d, factor, rss, refinements)
        self.n_features_in_ = system.d
        if names is not None and all(isinstance(name, str) for name in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        else:
            vars(self).pop("feature_names_in_", None)
        self._set_solution(solution, int(system.n), system)
        return self

    def __sklearn_tags__(self):
        return _dask.dask_input_tags(super().__sklearn_tags__())

    def predict(self, X):
        """X @ coef_ + intercept_; lazily, as a dask array, when X is a dask array or DataFrame."""
        if _dask.is_dask(X):
            check_is_fitted(self)
            # A dask DataFrame's columns checked by name as pandas ones are, through an empty pandas frame.
            _check_feature_names(self, _dask.column_header(X), reset=False)
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input.")  # fmt: skip
            return _dask.predict(X, self.coef_, self.intercept_)
        return super().predict(X)

    def _set_solution(self, solution: _Solution, n: int, system: _CentredSystem) -> None:
        """The solution and its statistics, assigned together at the end of a fit."""
        dof = n - solution.rank - 1
        if dof > 0:
            sigma2 = max(solution.rss, 0.0) / dof
        else:
            warnings.warn(
                f"{n} examples for {solution.rank} independent features and an intercept leave no degree of "
                "freedom: sigma2_, coef_stderr_ and intercept_stderr_ are NaN.",
                RuntimeWarning,
                stacklevel=3,
            )
            sigma2 = np.nan
        factor = solution.factor
        with np.errstate(invalid="ignore", divide="ignore"):
            self.rsquared_ = float(1.0 - solution.rss / system.tss) if system.tss > 0 else np.nan
        self.coef_, self.intercept_ = np.asarray(solution.coef, dtype=np.float64), float(solution.intercept)
        self.coef_stderr_ = np.sqrt(sigma2 * np.sum(factor**2, axis=1))
        self.intercept_stderr_ = float(np.sqrt(sigma2 * (1.0 / n + np.sum((system.x_mean @ factor) ** 2))))
        self.sigma2_, self.rank_, self.n_samples_fit_ = float(sigma2), int(solution.rank), int(n)
        self.solver_, self.n_iter_, self.n_refinements_ = solution.solver, 1, int(solution.refinements)


@dataclass(frozen=True)
class _Solution:
    """What a solver found: (b, w), how, the rank, F with (X̃ᵀX̃)⁻¹ = FFᵀ (a pseudo-inverse when
    rank-deficient: every variance is then a sum of squares, never negative by cancellation), the RSS, and
    the steps of refinement."""

    coef: np.ndarray
    intercept: float
    solver: str
    rank: int
    factor: np.ndarray
    rss: float
    refinements: int = 0


class _CentredSystem:
    """The centred normal equations X̃ᵀX̃ w = X̃ᵀỹ, from the moments that ``block_moments`` sums.

    The data enter shifted, X − x_shift and y − y_shift, which float64 subtracts exactly where the
    shift is close to the values (Sterbenz's lemma); residuals are computed in that frame too, where
    the intercept is ``offset = y_rest − x_restᵀw``, so that large means never enter a sum of products.
    """

    def __init__(self, moments: np.ndarray, x_shift, y_shift: float):
        self.d = d = len(moments) - 2
        self.n = n = moments[d, d]
        self.x_shift, self.y_shift = np.zeros(d) if x_shift is None else x_shift, y_shift
        # Centre exactly: subtract the means that remain after the shifts.
        self.x_rest, self.y_rest = moments[:d, d] / n, moments[d, d + 1] / n
        self.gram = moments[:d, :d] - n * np.outer(self.x_rest, self.x_rest)
        self.xty = moments[:d, d + 1] - n * self.x_rest * self.y_rest
        self.tss = moments[d + 1, d + 1] - n * self.y_rest**2  # Σ(y − ȳ)²
        self.x_mean, self.y_mean = self.x_shift + self.x_rest, self.y_shift + self.y_rest
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

    def correction(self, sum_r: float, xtr: np.ndarray) -> tuple[np.ndarray, float]:
        """One step of refinement from the residuals r: (δw, δoffset) solving the normal equations with
        X̃ᵀr on the right, where X̃ᵀr = (X − x_shift)ᵀr − x_rest·Σr."""
        delta_w = self.solve(xtr - self.x_rest * sum_r)
        return delta_w, sum_r / self.n - self.x_rest @ delta_w

    def inverse_factor(self) -> np.ndarray:
        """F = R⁻¹ with X̃ᵀX̃ = RᵀR (Cholesky), so that (X̃ᵀX̃)⁻¹ = FFᵀ: for the standard errors only."""
        if self._cholesky is None:
            self.solve()
        upper, lower = self._cholesky
        return scipy.linalg.solve_triangular(upper, np.eye(self.d), lower=lower)

    def intercept(self, coef, offset: float) -> float:
        """b = y_shift + offset − x_shiftᵀw, summed in extended precision (the shifts can be large)."""
        ext = np.longdouble
        return float(ext(self.y_shift) + ext(offset) - self.x_shift.astype(ext) @ np.asarray(coef, dtype=ext))

    def solve_minimum_norm(self):
        """The minimum-norm w through the eigendecomposition of X̃ᵀX̃, its rank and pseudo-inverse's factor."""
        eigenvalues, eigenvectors = np.linalg.eigh(self.gram)
        keep = eigenvalues > eigenvalues[-1] * self.d * EPS
        factor = eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])
        return factor @ (factor.T @ self.xty), int(keep.sum()), factor

    def rss(self, coef) -> float:
        """Σ(y − ȳ − x̃ᵀw)² from the sufficient statistics (cancellation: see ``sigma2_``)."""
        return float(self.tss - 2 * coef @ self.xty + coef @ self.gram @ coef)


class _RowBlocks:
    """The passes over an in-memory X (a memmap included) after the moments, one row block at a time:
    ``exact(θ)`` in double-double for the refinement (``impls._refinement``), ``plain(w, offset)`` in float64."""

    def __init__(self, X, y, system: _CentredSystem):
        self.X, self.y, self.system = X, y, system
        self.extended = X.size <= EXTENDED_LIMIT

    def exact(self, theta: _refinement.Pair) -> tuple[_refinement.Pair, float]:
        """([1, X]ᵀr, Σr²) for r = y − b − Xw, θ = (b, w)."""
        return _refinement.residual_sums(self.X, self.y, theta)[1:]

    def plain(self, coef, offset: float) -> tuple[float, float, np.ndarray]:
        """(Σr², Σr, (X − x_shift)ᵀr) for r = (y − y_shift) − (X − x_shift)w − offset, in float64."""
        X, y, system = self.X, self.y, self.system
        shifted = system.x_shift.any()
        rss, sum_r, xtr = 0.0, 0.0, np.zeros(X.shape[1])
        for start in range(0, len(X), BLOCK_ROWS):
            x = X[start : start + BLOCK_ROWS]
            x = x - system.x_shift if shifted else x
            y_block = np.asarray(y[start : start + BLOCK_ROWS], dtype=np.float64)  # float32 y: cast first
            residual = (y_block - system.y_shift) - x @ coef - offset
            rss += residual @ residual
            sum_r += residual.sum()
            xtr += x.T @ residual
        return rss, sum_r, xtr


def _rss(passes, system: _CentredSystem, coef, intercept: float) -> float:
    """Σ(y − b − Xw)² over the data, in double-double where the data are small enough."""
    if passes.extended:
        return passes.exact((np.append(intercept, coef), np.zeros(len(coef) + 1)))[1]
    return passes.plain(coef, intercept - system.y_shift + system.x_shift @ coef)[0]


def _solve_normal_equations(system: _CentredSystem, passes) -> _Solution:
    """Cholesky of X̃ᵀX̃, then refinement: until it converges in double-double (``passes.extended``), else
    one float64 step where it can change a digit that matters. ``passes`` reads the data: ``_RowBlocks``
    in memory, ``_dask.Chunks`` on dask."""
    coef = system.solve()
    offset = system.y_rest - system.x_rest @ coef  # the intercept in the shifted frame
    rss, refinements = system.rss(coef), 0
    if passes.extended:
        coordinates = _refinement.Coordinates(system.x_mean, _column_scale(system.gram), int(system.n))

        def step(theta):  # the normal equations with [1, X]ᵀr on the right, through the centred X̃ᵀX̃
            gradient, rss = passes.exact(theta)
            total, centred = coordinates.centred_gradient(gradient)
            return coordinates.from_centred(total / system.n, system.solve(centred)), rss

        theta, refinements, rss = _refinement.refine(step, np.append(system.intercept(coef, offset), coef), coordinates)
        coef, intercept = theta[0][1:], theta[0][0]
    else:
        if system.condition() > REFINE_CONDITION or EPS * system.tss > 1e-12 * rss:
            # One step: the correction solves the same system with X̃ᵀr on the right.
            rss, sum_r, xtr = passes.plain(coef, offset)
            delta_w, delta_offset = system.correction(sum_r, xtr)
            # w + δw is kept in extended precision until b is formed: x̄ᵀ(w − round(w)) can be large.
            coef, offset, refinements = coef.astype(np.longdouble) + delta_w, offset + delta_offset, 1
        coef, intercept = np.asarray(coef, dtype=np.float64), system.intercept(coef, offset)
    return _Solution(coef, intercept, "normal-equations", system.d, system.inverse_factor(), rss, refinements)


def _column_scale(gram: np.ndarray) -> np.ndarray:
    """D: the norms of X̃'s columns, 1 for a constant column (which stays a column of zeros)."""
    scale = np.sqrt(np.maximum(np.diag(gram), 0.0))
    scale[scale == 0] = 1.0
    return scale


def _rank_deficient(diagonal: np.ndarray, n: int, d: int) -> bool:
    """The rank test on the diagonal of a column-pivoted QR of B = [1/√n, X̃/D] (n × (d + 1)): truly
    rank-deficient when its last entry is at most eps·max(n, d) times the first, or B has fewer rows than columns."""
    diagonal = np.abs(diagonal)
    return len(diagonal) < d + 1 or diagonal[-1] <= EPS * max(n, d) * diagonal[0]


def _minimum_norm(triangle: np.ndarray, n: int, scale: np.ndarray, x_mean, y_mean: float, passes) -> _Solution:
    """The minimum-norm coef_ from the triangular factor of [1/√n, X̃/D, ỹ], by an SVD of its X̃/D block.

    Behind the constant column, that block is the factor of X̃/D made exactly orthogonal to the constant,
    and its last column holds the coordinates of ỹ: X̃/D = Q·T and Qᵀỹ = t, so with T = UΣVᵀ the minimum-norm
    solution of X̃/D·v ≈ ỹ is V Σ⁺ Uᵀt. Singular values below eps·max(n, d) times the largest count as zero.
    """
    d = len(scale)
    U, singular, Vt = np.linalg.svd(triangle[1 : d + 1, 1 : d + 1])
    keep = singular > EPS * max(n, d) * singular[0]
    coef = (Vt[keep].T @ ((U[:, keep].T @ triangle[1 : d + 1, d + 1]) / singular[keep])) / scale
    # That is the minimum norm of D·w; the minimum norm of w removes w's part in the null space of X̃.
    null = Vt[~keep].T / scale[:, None]
    if null.size:
        coef = coef - null @ np.linalg.lstsq(null, coef, rcond=None)[0]
    factor = (Vt[keep].T / singular[keep]) / scale[:, None]  # the pseudo-inverse of X̃ᵀX̃ is FFᵀ
    intercept = float(y_mean - x_mean @ coef)
    return _Solution(coef, intercept, "svd", int(keep.sum()), factor, _rss(passes, passes.system, coef, intercept))


def _solve_by_qr(X, y, system: _CentredSystem, passes: _RowBlocks) -> _Solution:
    """Least squares by a column-pivoted QR of B = [1/√n, X̃ D⁻¹] (X̃ centred, D its column norms), refined
    until it converges against the residuals of the original data in double-double.

    The refinement solves the augmented system [[I, B], [Bᵀ, 0]] [r; φ] = [y; 0] for the residual and the
    parameters together (Björck's method), which converges where κ(B)·eps < 1, whatever the residual, and
    so recovers the digits lost in forming B. Truly rank-deficient data get the minimum-norm answer by SVD.
    """
    n, d = X.shape
    centred = X - system.x_mean
    norms = np.linalg.norm(centred, axis=0)
    norms[norms == 0] = 1.0
    B = np.column_stack([np.full(n, 1 / np.sqrt(n)), centred / norms])
    del centred
    Q, R, pivots = scipy.linalg.qr(B, mode="economic", pivoting=True)
    if _rank_deficient(np.diag(R), n, d):
        y_mean = float(np.mean(y, dtype=np.float64))
        triangle = np.linalg.qr(np.column_stack([B, y - y_mean]), mode="r")
        return _minimum_norm(_square(triangle, d + 2), n, norms, system.x_mean, y_mean, passes)

    def correction(f, g):  # (δr, δφ) with δr + B δφ = f and Bᵀ δr = g, through B = QR
        h = scipy.linalg.solve_triangular(R, g[pivots], trans="T")
        qf = Q.T @ f
        delta_phi = np.empty(d + 1)
        delta_phi[pivots] = scipy.linalg.solve_triangular(R, qf - h)
        return Q @ h + (f - Q @ qf), delta_phi

    coordinates = _refinement.Coordinates(system.x_mean, norms, n)
    first_residual, phi = correction(np.asarray(y, dtype=np.float64), np.zeros(d + 1))
    residual, delta_r = (first_residual, np.zeros(n)), np.zeros(n)

    def step(theta):  # f = y − b − Xw − r and g = −Bᵀr in double-double, r kept in double-double beside θ
        nonlocal residual, delta_r
        # The last step's δr, applied now that its δθ was (refine drops a correction that stopped shrinking).
        residual = _refinement.add(residual, delta_r)
        f, gradient, rss = _refinement.residual_sums(X, y, theta, residual)
        delta_r, delta_phi = correction(f, -coordinates.gradient(gradient))
        return coordinates.parameters(delta_phi), rss

    theta, refinements, rss = _refinement.refine(step, coordinates.parameters(phi), coordinates)
    # (BᵀB)⁻¹ = P R⁻¹ R⁻ᵀ Pᵀ, and BᵀB = diag(1, D⁻¹X̃ᵀX̃D⁻¹) (the constant column is orthogonal to the
    # centred ones), so (X̃ᵀX̃)⁻¹ = FFᵀ with F the rows of P R⁻¹ for X, divided by D.
    r_inverse = scipy.linalg.solve_triangular(R, np.eye(d + 1))
    factor = np.empty_like(r_inverse)
    factor[pivots] = r_inverse
    return _Solution(theta[0][1:], theta[0][0], "qr", d, factor[1:] / norms[:, None], rss, refinements)


def _square(triangle: np.ndarray, size: int) -> np.ndarray:
    """A triangular factor of fewer rows than columns (fewer examples than columns) padded with zero rows."""
    return np.vstack([triangle, np.zeros((size - len(triangle), size))])
