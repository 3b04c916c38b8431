"""Least squares in closed form: solve the normal equations of the centred data, (X̃ᵀWX̃) w = X̃ᵀWỹ, b = ȳ − x̄ᵀw
(W the sample weights, the identity without them; x̄ and ȳ their weighted means): ``textbook_solution``.

``fit`` reads as scikit-learn's ``LinearRegression.fit``: prepare (validate, weights, moments), solve, statistics,
intercept. The machinery that makes it exact and scalable is in ``impls/closed_form/``, whose docstring maps it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from impls._base import fit_atomically
from impls._collections import is_dask
from impls.closed_form.centred_system import CentredSystem
from impls.closed_form.dask import dask_input_tags, fitted_predict
from impls.closed_form.prepare import add_block, prepare
from impls.closed_form.solvers import Passes, Solution, SufficientStatistics
from impls.closed_form.statistics import Statistics, fit_statistics
from impls.closed_form.streaming import Stream

# The normal equations are solved where the equilibrated X̃ᵀX̃ has a condition number of at most this: their error,
# eps·cond, is then 2e-8 at most, and each step of refinement multiplies it by that much again. QR above it. The
# size of the residual does not enter the choice (docs/performance.md, "Accuracy on hard data").
MAX_CONDITION = 1e8


def textbook_solution(system: CentredSystem) -> tuple[np.ndarray, float]:
    """The method: the normal equations of the centred data solved by Cholesky, never inverted, X̃ᵀWX̃ w = X̃ᵀWỹ, then
    b = ȳ − x̄ᵀw. ``system`` holds X̃ᵀWX̃ and X̃ᵀWỹ, formed from the moments with the shifts that keep the centring
    exact (``impls.closed_form.centred_system``)."""
    coef = system.solve()
    return coef, system.intercept(coef)


def solve(system: CentredSystem, passes: Passes | SufficientStatistics) -> Solution:
    """The one solving branch of every fit. Well-conditioned: the textbook solution, refined against the data by
    ``passes`` where that can change a digit (``RowBlocks`` in memory, ``SparsePasses``, dask's ``Chunks``, or the
    moments alone, ``SufficientStatistics``); else ``passes``' own least squares (QR, or SVD where rank-deficient)."""
    if system.condition() > MAX_CONDITION:
        return passes.least_squares()
    return passes.refine(*textbook_solution(system))


class NumpyClosedFormRegressor(RegressorMixin, BaseEstimator):
    """Least-squares linear regression with an intercept, solved in closed form with numpy.

    ``fit`` prepares, solves, and computes the statistics and the intercept. One pass over X in row blocks sums the
    moments, beside Y those of the residual of a pilot (the solution of the first rows); where cond(X̃ᵀX̃), columns
    scaled to unit norm, is at most ``MAX_CONDITION``, ``textbook_solution`` solves the centred system
    X̃ᵀWX̃ w = X̃ᵀWỹ by Cholesky, then b = ȳ − x̄ᵀw. Where that one pass gives every statistic to 1e-10 relative (σ²,
    the standard errors, R² and 1 − R², and (b, w) normwise in the scale of the fitted values:
    ``impls.closed_form.solvers.one_pass_enough``: cond ≤ 10, means no larger than the spread, R² up to about
    1 − 1e-9), X is read once; else (b, w) is refined against the residuals in double-double arithmetic until it
    converges (on data of more than ``impls.closed_form.solvers.EXTENDED_LIMIT`` numbers, by one float64 step).
    Ill-conditioned data are solved by a QR refined by Björck's method (with weights: a QR of the √w-scaled rows in
    double-double), or by SVD for the minimum-norm ``coef_`` where X̃ is truly rank-deficient
    (``impls.closed_form.solvers``). The answer is the exact least-squares solution of the float64 data to 12 digits
    or more wherever cond(X̃) ≤ 1e10, and to 1e-10 where one pass was enough.

    ``fit(X, y, sample_weight)`` takes arrays, a ``numpy.memmap`` larger than memory, dask collections (without
    weights), read in blocks, never gathered (only a QR in memory copies X), and a ``scipy.sparse`` X, never made
    dense: X̃ᵀWX̃ = XᵀWX − Σw·x̄x̄ᵀ from sparse products, after shifting the columns whose mean is larger than their
    spread (which are mostly non-zero: ``impls.closed_form.moments.sparse_shifts``), so that the centring loses at
    most a factor 1 + x̄²/s² ≤ 2 of precision (s a column's spread), then refined in float64; ill-conditioned sparse
    data are copied dense for the QR only where that fits in memory (else the normal equations' answer, with a
    warning). A 2-D y of k targets is solved from the same moments. ``partial_fit`` and ``fit_blocks(blocks)`` read
    the rows once, in O(d²) memory: a triangular factor updated block by block in double-double, which keeps the
    in-memory fit's digits, or where the first block is well-conditioned (``impls.closed_form.streaming.easy``) the
    float64 moments, as fast as ``fit`` (with a warning if the data as a whole turn out not to be).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        The least-squares weights (one row per target for a 2-D y, as ``LinearRegression``).
    intercept_ : float or ndarray of shape (n_targets,)
        The least-squares intercept.
    n_iter_ : int
        1: the closed form is not iterative.
    n_refinements_ : int
        Steps of refinement, each a pass over the data: 0 where one pass was enough; else usually 2 (the second
        changes nothing), at most ``impls.closed_form.refinement.MAX_REFINEMENTS``; 1 or 0 past
        ``impls.closed_form.solvers.EXTENDED_LIMIT`` numbers (in float64) and for a sparse X; 0 for a truly
        rank-deficient X and from ``fit_blocks`` and ``partial_fit``.
    solver_ : str
        ``"normal-equations"``, ``"qr"`` (ill-conditioned in memory; from ``fit_blocks`` and ``partial_fit``
        whenever the first block is not well-conditioned: the double-double factor), ``"svd"`` (truly
        rank-deficient) or ``"eigh"`` (ill-conditioned, from the moments alone: a sparse X too large to copy
        dense, or a stream whose first block was well-conditioned).
    rank_ : int
        Numerical rank of the centred X.
    n_samples_fit_ : int
        Number of examples fitted (those of zero weight too).
    sigma2_, coef_stderr_, intercept_stderr_, rsquared_ : float, ndarray of shape (n_features,), float, float
        Σwr² / (n − rank − 1), the standard errors of ``coef_`` and ``intercept_``, and R², as statsmodels'
        OLS and WLS give them (``impls.closed_form.statistics``); NaN, with a warning, where no degree of freedom is
        left.
        With k targets, one per target: shapes (k,), (k, n_features), (k,), (k,).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X had string column names.

    Examples
    --------
    >>> from impls import NumpyClosedFormRegressor
    >>> model = NumpyClosedFormRegressor().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    >>> model.coef_, model.intercept_, model.solver_, model.n_refinements_
    (array([2.]), 1.0, 'normal-equations', 1)
    >>> model = NumpyClosedFormRegressor().fit([[0.0], [1.0], [2.0], [3.0]], [1.0, 3.0, 5.0, 8.0])
    >>> round(model.sigma2_, 6), model.coef_stderr_.round(6), round(model.rsquared_, 6)
    (0.15, array([0.173205]), 0.988785)
    """

    @fit_atomically
    def fit(self, X, y, sample_weight=None):
        prepared = prepare(self, X, y, sample_weight)  # validated, weights scaled, the moments in one pass over X
        solutions = [solve(system, passes) for system, passes in prepared.targets()]
        statistics = fit_statistics(solutions, prepared.systems, prepared.rows, prepared.weight_exponent)
        self._set_statistics(statistics, prepared.single_target)
        self._set_coef_and_intercept(solutions, prepared.rows, prepared.single_target)
        self._stream = prepared.stream()  # for a partial_fit to continue
        return self

    @fit_atomically
    def partial_fit(self, X, y, sample_weight=None):
        """Add the rows (X, y) to those seen so far, by ``fit``, ``fit_blocks`` or ``partial_fit``, and solve again:
        the same answer as ``fit`` on all of them, in O(d²) memory (``impls.closed_form.streaming``). A sparse X is
        made dense one call's rows at a time: the factor's update reads every entry of the block."""
        stream, single_target = add_block(self, getattr(self, "_stream", None), X, y, sample_weight)
        return self._solve_stream(stream, single_target)

    @fit_atomically
    def fit_blocks(self, blocks: Iterable[tuple]):
        """Fit on ``(X_block, y_block)`` or ``(X_block, y_block, sample_weight_block)`` tuples read one at a time,
        in O(d²) memory plus one block: the same answer as ``partial_fit`` block after block, from scratch (a sparse
        block made dense, one at a time)."""
        vars(self).pop("_stream", None)
        vars(self).pop("feature_names_in_", None)  # blocks are arrays: no column names, as scikit-learn resets
        stream = None
        for X, y, *sample_weight in blocks:
            X = X if scipy.sparse.issparse(X) else np.asarray(X)  # arrays: no column names to check between blocks
            stream, single_target = add_block(self, stream, X, y, *sample_weight)
        if stream is None:
            raise ValueError("fit_blocks needs at least one block of data; got none.")
        return self._solve_stream(stream, single_target)

    def __sklearn_tags__(self):
        tags = dask_input_tags(super().__sklearn_tags__())
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True  # and single_output stays True
        return tags

    def predict(self, X):
        """X @ coef_ᵀ + intercept_ (a sparse X too); lazily, as a dask array, when X is a dask array or DataFrame."""
        if is_dask(X):
            return fitted_predict(self, X)
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32])
        return X @ self.coef_.T + self.intercept_

    def _solve_stream(self, stream: Stream, single_target: bool):
        """The answer from a stream's moments or factor, and the stream kept for the next ``partial_fit``."""
        if not stream.finite():
            raise ValueError("X or y is too large in magnitude: XᵀX overflows float64. Scale the data first.")
        if stream.factor is None:
            systems = stream.systems()
            solutions = [solve(system, SufficientStatistics(system, "from data read once")) for system in systems]
        else:
            systems = stream.solutions()
            solutions = [Solution(*fit[:6]) for fit in systems]
        statistics = fit_statistics(solutions, systems, stream.rows, stream.weight_exponent)
        self._set_statistics(statistics, single_target)
        self._set_coef_and_intercept(solutions, stream.rows, single_target)
        self._stream = stream
        return self

    def _set_statistics(self, statistics: Statistics, single_target: bool) -> None:
        """σ², the standard errors and R², one per target (``fit_statistics``), or the one target's for a 1-D y."""
        if single_target:
            sigma2, coef_stderr, intercept_stderr, rsquared = statistics
            statistics = Statistics(float(sigma2[0]), coef_stderr[0], float(intercept_stderr[0]), float(rsquared[0]))
        self.sigma2_, self.coef_stderr_, self.intercept_stderr_, self.rsquared_ = statistics

    def _set_coef_and_intercept(self, solutions: list[Solution], rows: int, single_target: bool) -> None:
        """coef_ and intercept_ (one row per target, or the one target's for a 1-D y), and how they were found."""
        coef = np.array([s.coef for s in solutions], dtype=np.float64)
        intercept = np.array([s.intercept for s in solutions], dtype=np.float64)
        self.coef_, self.intercept_ = (coef[0], float(intercept[0])) if single_target else (coef, intercept)
        self.rank_, self.n_samples_fit_ = int(solutions[0].rank), int(rows)
        self.solver_, self.n_iter_ = solutions[0].solver, 1
        self.n_refinements_ = max(int(s.refinements) for s in solutions)
