"""Ordinary least squares in closed form: solve the normal equations of the centred data, (X̃ᵀX̃) w = X̃ᵀỹ, b = ȳ − x̄ᵀw.

X̃ᵀX̃ is accumulated over row blocks, so X is read once, never copied whole, and may arrive in chunks;
ill-conditioned data are solved by a QR factorisation of the centred, equilibrated X instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_feature_names, assert_all_finite, check_is_fitted, check_X_y

from impls import _dask
from impls._base import LinearPredictorMixin, fit_atomically, validate_training_data

# Rows per block: a block in float64 is at most BLOCK_ROWS × d × 8 bytes of scratch memory.
BLOCK_ROWS = 16384
# The normal equations are solved when the condition number of the equilibrated X̃ᵀX̃ (the square of
# X̃'s) is at most this: their error, eps·cond, is then 2e-8 at most, and one step of refinement
# against the residuals brings it down to that of a QR factorisation. Above it, QR.
MAX_CONDITION = 1e8
# Large well-conditioned data skip the residual pass: below this condition number the normal equations
# are already accurate to about eps·cond, and where Σ(y − ȳ)² is not much above the RSS (eps·TSS ≤ 1e-12·RSS,
# so that R² < 1 − 2e-4) the RSS from the sufficient statistics loses at most 1e-12 of itself to cancellation.
REFINE_CONDITION = 10.0
# Up to this many numbers in X, the residuals of refinement are computed in extended precision
# (np.longdouble, 64-bit mantissa on x86): twenty times slower than float64, but then the answer is
# accurate to far below float64's rounding of the data on ill-conditioned problems.
EXTENDED_LIMIT = 2**22
EPS = np.finfo(np.float64).eps


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
    the normal equations are solved by Cholesky and refined once against the residuals y − Xw − b
    (a second pass, which also gives the residual sum of squares), unless the data are large and that
    pass cannot change a digit that matters (``REFINE_CONDITION``). Otherwise X̃ is copied, centred and
    scaled, and factorised by a column-pivoted QR; its solution is refined against the residuals of
    the original data computed in extended precision, which recovers the digits that float64's
    rounding of the centred data loses. Where X̃ is *truly* rank-deficient, meaning a diagonal entry
    of R is below eps·max(n, d) times the largest (a combination of columns is constant to machine
    precision of the scaled problem), the answer is the minimum-norm ``coef_``, as ``numpy.linalg.lstsq``
    and ``LinearRegression`` give (the intercept is not part of the norm; this equals ``lstsq`` on
    ``[X, 1]`` unless a combination of columns of X is constant).

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
        1: the data are read once (twice with the residual pass).
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
    >>> model.coef_, model.intercept_, model.solver_
    (array([2.]), 1.0, 'normal-equations')
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
        if system.condition() <= MAX_CONDITION:
            coef = system.solve()
            offset = system.y_rest - system.x_rest @ coef  # the intercept in the shifted frame
            rss = system.rss(coef)
            if X.size <= EXTENDED_LIMIT or system.condition() > REFINE_CONDITION or EPS * system.tss > 1e-12 * rss:
                # One step of refinement: the correction solves the same system with X̃ᵀr on the right.
                rss, (delta_w, delta_offset) = _residual_pass(X, y, coef, offset, system, refine=True)
                # w + δw is kept in extended precision until b is formed: x̄ᵀ(w − round(w)) can be large.
                coef, offset = coef.astype(np.longdouble) + delta_w, offset + delta_offset
            coef, intercept = np.asarray(coef, dtype=np.float64), system.intercept(coef, offset)
            solver, rank, factor = "normal-equations", X.shape[1], system.inverse_factor()
        else:
            coef, intercept, solver, rank, factor = _solve_by_qr(X, y, system.x_mean)
            offset = intercept - system.y_shift + system.x_shift @ coef
            rss = _residual_pass(X, y, coef, offset, system)[0]
        self._set_solution(coef, intercept, solver, rank, len(X), rss, system, factor)
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
        rss, intercept = system.rss(coef), system.intercept(coef, system.y_rest - system.x_rest @ coef)
        vars(self).pop("feature_names_in_", None)  # blocks are arrays: no column names, as scikit-learn resets
        self.n_features_in_ = system.d
        self._set_solution(coef, intercept, solver, rank, int(system.n), rss, system, factor)
        return self

    def _fit_dask(self, X, y):
        """The same closed form on dask arrays or DataFrames, without gathering X: one pass for the moments,
        one for the residuals (RSS and refinement) where the in-memory fit makes one; on ill-conditioned
        data, the in-memory fit's QR and refinement, with the QR by shifted CholeskyQR (``_dask.qr_refined``)."""
        X, y, names = _dask.as_arrays(X, y)
        x_shift, y_shift = _shifts(*_dask.first_block(X, y))
        moments = _dask.moments(X, y, x_shift, y_shift)
        if not np.isfinite(moments).all():
            raise ValueError("Input X or y contains NaN or infinity, or is too large in magnitude for float64.")
        system = _CentredSystem(moments, x_shift, y_shift)
        extended = X.size <= EXTENDED_LIMIT
        if system.condition() <= MAX_CONDITION:
            coef = system.solve()
            offset = system.y_rest - system.x_rest @ coef
            rss = system.rss(coef)
            if extended or system.condition() > REFINE_CONDITION or EPS * system.tss > 1e-12 * rss:
                # The in-memory fit's rule: refine against the residuals, one more pass over the chunks.
                rss, sum_r, xtr = _dask.residual_sums(X, y, coef, offset, system, extended)
                delta_w, delta_offset = system.correction(sum_r, xtr)
                coef, offset = coef.astype(np.longdouble) + delta_w, offset + delta_offset
            coef, intercept = np.asarray(coef, dtype=np.float64), system.intercept(coef, offset)
            solver, rank, factor = "normal-equations", system.d, system.inverse_factor()
        else:
            # The in-memory rank test and, on truly rank-deficient data, its minimum-norm answer, from the
            # R factor of [1/√n, X̃/D, ỹ] (one more pass); full-rank data by a QR refined as in memory.
            scale = _column_scale(system.gram)
            triangle = _dask.r_factor(X, y, system.x_mean, scale, system.y_mean)
            n, d = int(system.n), system.d
            diagonal = np.diag(scipy.linalg.qr(triangle[: d + 1, : d + 1], mode="r", pivoting=True)[0])
            if _rank_deficient(diagonal[: min(n, d + 1)], n, d):
                coef, intercept, solver, rank, factor = _minimum_norm(triangle, n, scale, system.x_mean, system.y_mean)
                offset = intercept - system.y_shift + system.x_shift @ coef
                rss = _dask.residual_sums(X, y, coef, offset, system, extended)[0]
            else:
                coef, intercept, rank, factor, rss = _dask.qr_refined(X, y, system)
                solver = "qr"
        self.n_features_in_ = system.d
        if names is not None and all(isinstance(name, str) for name in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        else:
            vars(self).pop("feature_names_in_", None)
        self._set_solution(coef, intercept, solver, rank, int(system.n), rss, system, factor)
        return self

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

    def _set_solution(self, coef, intercept, solver, rank, n, rss, system, factor) -> None:
        """The solution and its statistics, assigned together at the end of a fit.

        ``factor`` is F with (X̃ᵀX̃)⁻¹ = FFᵀ (a pseudo-inverse when rank-deficient), so that every variance
        is a sum of squares, never negative by cancellation.
        """
        dof = n - rank - 1
        if dof > 0:
            sigma2 = max(rss, 0.0) / dof
        else:
            warnings.warn(
                f"{n} examples for {rank} independent features and an intercept leave no degree of freedom: "
                "sigma2_, coef_stderr_ and intercept_stderr_ are NaN.",
                RuntimeWarning,
                stacklevel=3,
            )
            sigma2 = np.nan
        x_mean = system.x_mean
        with np.errstate(invalid="ignore", divide="ignore"):
            self.rsquared_ = float(1.0 - rss / system.tss) if system.tss > 0 else np.nan
        self.coef_, self.intercept_ = np.asarray(coef, dtype=np.float64), float(intercept)
        self.coef_stderr_ = np.sqrt(sigma2 * np.sum(factor**2, axis=1))
        self.intercept_stderr_ = float(np.sqrt(sigma2 * (1.0 / n + np.sum((x_mean @ factor) ** 2))))
        self.sigma2_, self.rank_, self.n_samples_fit_ = float(sigma2), int(rank), int(n)
        self.solver_, self.n_iter_ = solver, 1


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


def _residual_pass(X, y, coef, offset: float, system: _CentredSystem, refine: bool = False):
    """Σr² for r = (y − y_shift) − (X − x_shift)w − offset over row blocks and, with ``refine``, the
    correction (δw, δoffset) that solves the normal equations with X̃ᵀr on the right.

    The residuals are computed in extended precision for small data (``EXTENDED_LIMIT``), else in float64.
    """
    dtype = np.longdouble if X.size <= EXTENDED_LIMIT else np.float64
    weights, constant = np.asarray(coef, dtype=dtype), dtype(offset)
    shifted = system.x_shift.any()
    rss, sum_r, xtr = 0.0, 0.0, np.zeros(X.shape[1])
    for start in range(0, len(X), BLOCK_ROWS):
        x = X[start : start + BLOCK_ROWS]
        x = x - system.x_shift if shifted else x
        y_block = y[start : start + BLOCK_ROWS].astype(dtype) - dtype(system.y_shift)  # float32 y: cast first
        residual = np.asarray(y_block - x.astype(dtype) @ weights - constant, dtype=np.float64)
        rss += residual @ residual
        if refine:
            sum_r += residual.sum()
            xtr += x.T @ residual
    return rss, (system.correction(sum_r, xtr) if refine else None)


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


def _minimum_norm(triangle: np.ndarray, n: int, scale: np.ndarray, x_mean, y_mean: float):
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
    return coef, float(y_mean - x_mean @ coef), "svd", int(keep.sum()), factor


def _solve_by_qr(X, y, x_mean, refinements: int = 2):
    """Least squares by a column-pivoted QR of [1/√n, X̃ D⁻¹] (X̃ centred, D its column norms), refined
    against the residuals of the original data in extended precision.

    The refinement solves the augmented system [[I, B], [Bᵀ, 0]] [r; φ] = [y; 0] for the residual and
    the parameters together (Björck's method), which converges where κ(B)·eps < 1 and so recovers the
    digits lost in forming B. Truly rank-deficient data get the minimum-norm answer by SVD instead.
    """
    n, d = X.shape
    centred = X - x_mean
    norms = np.linalg.norm(centred, axis=0)
    norms[norms == 0] = 1.0
    B = np.column_stack([np.full(n, 1 / np.sqrt(n)), centred / norms])
    del centred
    Q, R, pivots = scipy.linalg.qr(B, mode="economic", pivoting=True)
    if _rank_deficient(np.diag(R), n, d):
        y_mean = float(np.mean(y, dtype=np.float64))
        triangle = np.linalg.qr(np.column_stack([B, y - y_mean]), mode="r")
        return _minimum_norm(_square(triangle, d + 2), n, norms, x_mean, y_mean)

    def correction(f, g):  # (δr, δφ) with δr + B δφ = f and Bᵀ δr = g, through B = QR
        h = scipy.linalg.solve_triangular(R, g[pivots], trans="T")
        qf = Q.T @ f
        delta_phi = np.empty(d + 1)
        delta_phi[pivots] = scipy.linalg.solve_triangular(R, qf - h)
        return Q @ h + (f - Q @ qf), delta_phi

    # In extended precision, with B's coordinates φ = (√n·c, D·w): the fitted values are c + X̃w, and
    # y − c is subtracted first (exactly, as c is close to the values of y), so no large product is summed.
    ext = np.longdouble
    residual, phi = correction(np.asarray(y, dtype=np.float64), np.zeros(d + 1))
    residual, constant, coef = residual.astype(ext), ext(phi[0]) / ext(np.sqrt(n)), phi[1:].astype(ext) / norms
    centred_ext, y_ext, root_n = X.astype(ext) - x_mean.astype(ext), y.astype(ext), np.sqrt(n)
    for _ in range(refinements):
        f = np.asarray((y_ext - constant) - centred_ext @ coef - residual, dtype=np.float64)
        total = residual.sum()
        g = -np.asarray(np.append(total / ext(root_n), (centred_ext.T @ residual) / norms), dtype=np.float64)
        delta_r, delta_phi = correction(f, g)
        residual += delta_r.astype(ext)
        constant += ext(delta_phi[0] / root_n)
        coef += delta_phi[1:].astype(ext) / norms
    intercept = float(constant - x_mean.astype(ext) @ coef)
    # (BᵀB)⁻¹ = P R⁻¹ R⁻ᵀ Pᵀ, and BᵀB = diag(1, D⁻¹X̃ᵀX̃D⁻¹) (the constant column is orthogonal to the
    # centred ones), so (X̃ᵀX̃)⁻¹ = FFᵀ with F the rows of P R⁻¹ for X, divided by D.
    r_inverse = scipy.linalg.solve_triangular(R, np.eye(d + 1))
    factor = np.empty_like(r_inverse)
    factor[pivots] = r_inverse
    return np.asarray(coef, dtype=np.float64), intercept, "qr", d, factor[1:] / norms[:, None]


def _square(triangle: np.ndarray, size: int) -> np.ndarray:
    """A triangular factor of fewer rows than columns (fewer examples than columns) padded with zero rows."""
    return np.vstack([triangle, np.zeros((size - len(triangle), size))])
