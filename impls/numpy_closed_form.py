"""Least squares in closed form: solve the normal equations of the centred data, (X̃ᵀWX̃) w = X̃ᵀWỹ, b = ȳ − x̄ᵀw
(W the sample weights, the identity without them; x̄ and ȳ their weighted means).

X̃ᵀWX̃ is summed over row blocks (``impls._moments``); the answer is refined, or found by QR, in ``impls._solvers``;
data read once keep a factor updated block by block (``impls._streaming``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, assert_all_finite, check_is_fitted, validate_data

from impls import _dask
from impls._base import fit_atomically, validate_training_data
from impls._collections import is_dask
from impls._moments import (
    BLOCK_ROWS,
    CentredSystem,
    pilot_moments,
    shift_sparse,
    shifts,
    sparse_moments,
    sparse_shifts,
)
from impls._solvers import Moments, RowBlocks, Solution, SparsePasses
from impls._statistics import ols_statistics
from impls._streaming import Stream

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


class NumpyClosedFormRegressor(RegressorMixin, BaseEstimator):
    """Least-squares linear regression with an intercept, solved in closed form with numpy.

    One pass over X in row blocks sums the moments, beside Y those of the residual of a pilot (the solution of the
    first rows); the centred system X̃ᵀWX̃ w = X̃ᵀWỹ is solved by Cholesky where cond(X̃ᵀX̃), columns scaled to unit
    norm, is at most ``MAX_CONDITION``, then b = ȳ − x̄ᵀw. Where that one pass gives every statistic to 1e-10
    relative (σ², the standard errors, R² and 1 − R², and (b, w) normwise in the scale of the fitted values:
    ``impls._solvers.one_pass_enough``: cond ≤ 10, means no larger than the spread, R² up to about 1 − 1e-9),
    X is read once; else (b, w) is refined against the residuals in double-double arithmetic until it converges
    (on data of more than ``impls._solvers.EXTENDED_LIMIT`` numbers, by one float64 step). Ill-conditioned data
    are solved by a QR refined by Björck's method (with weights: a QR of the √w-scaled rows in double-double), or
    by SVD for the minimum-norm ``coef_`` where X̃ is truly rank-deficient (``impls._solvers``). The answer is the
    exact least-squares solution of the float64 data to 12 digits or more wherever cond(X̃) ≤ 1e10, and to 1e-10
    where one pass was enough.

    ``fit(X, y, sample_weight)`` takes arrays, a ``numpy.memmap`` larger than memory, dask collections (without
    weights), read in blocks, never gathered (only a QR in memory copies X), and a ``scipy.sparse`` X, never made
    dense: X̃ᵀWX̃ = XᵀWX − Σw·x̄x̄ᵀ from sparse products, after shifting the columns whose mean is larger than their
    spread (which are mostly non-zero: ``impls._moments.sparse_shifts``), so that the centring loses at most a factor
    1 + x̄²/s² ≤ 2 of precision (s a column's spread), then refined in float64; ill-conditioned sparse data
    are copied dense for the QR only where that fits in memory (else the normal equations' answer, with a
    warning). A 2-D y of k targets is solved from the same moments. ``partial_fit`` and ``fit_blocks(blocks)`` read
    the rows once, in O(d²) memory: a triangular factor updated block by block in double-double, which keeps
    the in-memory fit's digits, or where the first block is well-conditioned (``impls._streaming.easy``) the
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
        changes nothing), at most ``impls._refinement.MAX_REFINEMENTS``; 1 or 0 past
        ``impls._solvers.EXTENDED_LIMIT`` numbers (in float64) and for a sparse X; 0 for a truly rank-deficient X
        and from ``fit_blocks`` and ``partial_fit``.
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
        OLS and WLS give them (``impls._statistics``); NaN, with a warning, where no degree of freedom is left.
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
        if is_dask(X, y):  # one task per chunk, where the data live: X is never gathered
            if sample_weight is not None:
                raise ValueError(f"{self._name} takes no sample_weight with dask input; got sample_weight.")
            X, y = _dask.validate_data(self, X, y)
            x_shift, y_shift = shifts(*_dask.first_block(X, y))
            moments, data, Y, weights = _dask.moments(X, y, x_shift, y_shift), _dask.Chunks, y[:, None], None
            pilot, single_target, weight_exponent = None, True, 0
            if not np.isfinite(moments).all():
                raise ValueError("Input X or y contains NaN or infinity, or is too large in magnitude for float64.")
        else:  # finiteness is checked on the moments, where a NaN or inf reaches the diagonal: no extra pass over X
            X, Y, weights, single_target = self._validate(X, y, sample_weight, ensure_all_finite=False)
            weight_exponent = _weight_exponent(weights)
            weights = _rescaled(weights, weight_exponent)
            if scipy.sparse.issparse(X):  # only the columns whose centring would cancel are shifted (made dense)
                x_shift, y_shift = sparse_shifts(X), np.mean(Y[:BLOCK_ROWS], axis=0)
                shifted = X if x_shift is None else shift_sparse(X, x_shift)
                moments, pilot = sparse_moments(shifted, Y, y_shift, weights), None
                data = functools.partial(SparsePasses, shifted=shifted)
            else:  # with the residual of the first rows' solution, for the RSS where R² is close to 1
                (moments, x_shift, y_shift, pilot), data = pilot_moments(X, Y, weights), RowBlocks
            if not np.isfinite(np.diag(moments)).all():  # scikit-learn's own message, naming the bad input
                assert_all_finite(X.data if scipy.sparse.issparse(X) else X, input_name="X", estimator_name=self._name)
                assert_all_finite(Y, input_name="y", estimator_name=self._name)
                raise ValueError("X or y is too large in magnitude: XᵀX overflows float64. Scale the data first.")
        systems = _systems(moments, x_shift, y_shift, pilot)
        solutions = [_solve(system, data(X, Y[:, j], system, weights)) for j, system in enumerate(systems)]
        self._set_solutions(solutions, systems, X.shape[0], single_target, weight_exponent)
        size = X.shape[1] + 1 + np.size(y_shift)  # [X, 1, Y]'s moments, for a partial_fit to continue
        self._stream = Stream.of_moments(moments[:size, :size], x_shift, y_shift, X.shape[0], weight_exponent)
        return self

    @fit_atomically
    def partial_fit(self, X, y, sample_weight=None):
        """Add the rows (X, y) to those seen so far, by ``fit``, ``fit_blocks`` or ``partial_fit``, and solve again:
        the same answer as ``fit`` on all of them, in O(d²) memory (``impls._streaming``). A sparse X is made dense
        one call's rows at a time: the factor's update reads every entry of the block."""
        first = not hasattr(self, "_stream")
        X, Y, weights, single_target = self._validate(X, y, sample_weight, reset=first)
        X = X.toarray() if scipy.sparse.issparse(X) else X
        weight_exponent = _weight_exponent(weights) if first else self._stream.weight_exponent
        weights = _rescaled(weights, weight_exponent)
        if first:
            stream = Stream.of_first_block(X, Y, weights, weight_exponent)
        elif Y.shape[1] != len(self._stream.y_shift):
            raise ValueError(f"y has {Y.shape[1]} targets, but the rows seen so far have {len(self._stream.y_shift)}.")
        else:
            stream = self._stream.add(X, Y, weights)
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
            X, Y, weights, single_target = self._validate(X, y, *sample_weight, reset=stream is None)
            X = X.toarray() if scipy.sparse.issparse(X) else X
            weight_exponent = _weight_exponent(weights) if stream is None else stream.weight_exponent
            weights = _rescaled(weights, weight_exponent)
            if stream is None:
                stream = Stream.of_first_block(X, Y, weights, weight_exponent)
            else:
                stream = stream.add(X, Y, weights)
        if stream is None:
            raise ValueError("fit_blocks needs at least one block of data; got none.")
        return self._solve_stream(stream, single_target)

    def __sklearn_tags__(self):
        tags = _dask.dask_input_tags(super().__sklearn_tags__())
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True  # and single_output stays True
        return tags

    def predict(self, X):
        """X @ coef_ᵀ + intercept_ (a sparse X too); lazily, as a dask array, when X is a dask array or DataFrame."""
        if is_dask(X):
            return _dask.fitted_predict(self, X)
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32])
        return X @ self.coef_.T + self.intercept_

    @property
    def _name(self) -> str:
        return type(self).__name__

    def _validate(self, X, y, sample_weight=None, reset=True, ensure_all_finite=True):
        """scikit-learn's checks of (X, y, sample_weight): X dense or CSR, y as (n, k), whether y was 1-D, and the
        weights, non-negative (None without weights, for the unweighted arithmetic)."""
        rules = {"accept_sparse": ["csr", "csc"], "dtype": [np.float64, np.float32], "multi_output": True}
        X, y = validate_training_data(self, X, y, reset=reset, ensure_all_finite=ensure_all_finite, **rules)
        X = X.tocsr() if scipy.sparse.issparse(X) else X
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        return X, (y[:, None] if y.ndim == 1 else y), weights, y.ndim == 1

    def _solve_stream(self, stream: Stream, single_target: bool):
        """The answer from a stream's moments or factor, and the stream kept for the next ``partial_fit``."""
        if not stream.finite():
            raise ValueError("X or y is too large in magnitude: XᵀX overflows float64. Scale the data first.")
        if stream.factor is None:
            systems = stream.systems()
            solutions = [_solve(system, Moments(system, "from data read once")) for system in systems]
        else:
            systems = stream.solutions()
            solutions = [Solution(*fit[:6]) for fit in systems]
        self._set_solutions(solutions, systems, stream.rows, single_target, stream.weight_exponent)
        self._stream = stream
        return self

    def _set_solutions(
        self, solutions: list[Solution], systems, rows: int, single_target: bool, weight_exponent: int = 0
    ) -> None:
        """The solutions of the targets and their statistics, assigned together at the end of a fit. ``systems``
        hold each target's Σw (``n``), weighted x̄ and Σw(y − ȳ)², of the weights times 2^-weight_exponent
        (``_weight_exponent``): σ² = Σwr²/dof is scaled back; nothing else depends on the weights' scale."""
        statistics = [
            ols_statistics(s.rss, s.rank, s.covariance_factor, rows, system.x_mean, system.tss, system.n)
            for s, system in zip(solutions, systems)
        ]
        coef = np.array([s.coef for s in solutions], dtype=np.float64)
        intercept = np.array([s.intercept for s in solutions], dtype=np.float64)
        sigma2, coef_stderr, intercept_stderr, rsquared = (np.array(column) for column in zip(*statistics))
        sigma2 = np.ldexp(sigma2, weight_exponent)
        if single_target:
            coef, intercept, coef_stderr = coef[0], float(intercept[0]), coef_stderr[0]
            sigma2, intercept_stderr, rsquared = float(sigma2[0]), float(intercept_stderr[0]), float(rsquared[0])
        self.coef_, self.intercept_ = coef, intercept
        self.sigma2_, self.coef_stderr_ = sigma2, coef_stderr
        self.intercept_stderr_, self.rsquared_ = intercept_stderr, rsquared
        self.rank_, self.n_samples_fit_ = int(solutions[0].rank), int(rows)
        self.solver_, self.n_iter_ = solutions[0].solver, 1
        self.n_refinements_ = max(int(s.refinements) for s in solutions)


def _weight_exponent(weights) -> int:
    """e with max(weights) = m·2^e, m in [0.5, 1) (0 without weights): weights·2^-e have their largest in [0.5, 1),
    so that no sum of weighted squares underflows or overflows, whatever the weights' scale (all 5e-324, or 1e300).
    A power of two changes no weight's digits, so the fit is the same bits as with weights of any other scale."""
    if weights is None or not weights.size or not weights.max() > 0:
        return 0
    return int(np.frexp(weights.max())[1])


def _rescaled(weights, exponent: int):
    """weights·2^-exponent (None stays None)."""
    return None if weights is None else np.ldexp(weights, -exponent)


def _systems(moments: np.ndarray, x_shift, y_shift, pilot=None) -> list[CentredSystem]:
    """The centred system of each target, sharing one Cholesky factor of X̃ᵀWX̃."""
    systems = [CentredSystem.of_target(moments, j, x_shift, y_shift, pilot) for j in range(np.size(y_shift))]
    return [systems[0]] + [system.share_factor(systems[0]) for system in systems[1:]]


def _solve(system: CentredSystem, data) -> Solution:
    """The one solving branch of every fit. Well-conditioned: w by Cholesky, b = ȳ − x̄ᵀw, refined against ``data``
    (``RowBlocks`` in memory, ``SparsePasses``, ``_dask.Chunks``, or ``Moments`` alone); else ``data``'s own least
    squares."""
    if system.condition() > MAX_CONDITION:
        return data.least_squares()
    coef = system.solve()
    return data.refine(coef, system.intercept(coef))
