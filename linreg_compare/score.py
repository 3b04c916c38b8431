"""The one scoring of every implementation: a fitted estimator and the data in, one row of scores out.

Every loss and error in the report is computed here, in float64, by the same code for all four.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from impls._collections import is_dask
from linreg_compare.checks import DataError


@dataclass
class Data:
    """The training sample, an optional held-out sample, and the true parameters when they are known."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    true_w: list[float] | None = None
    true_b: float | None = None


@dataclass
class Scores:
    """One implementation's scores; all None when it raised. A new metric is a field here, set in ``score``."""

    coef: list[float] | None = None
    intercept: float | None = None
    coef_error: float | None = None
    intercept_error: float | None = None
    param_distance_to_lstsq: float | None = None
    param_distance_to_lstsq_in_se: float | None = None
    train_mse: float | None = None
    excess_train_mse: float | None = None
    test_mse: float | None = None
    epochs: int | None = None
    loss_curve: list[float] | None = None


SCORE_ROWS = 16384  # rows scored at a time: scratch memory is one float64 block, never a copy of X


def mse(X, y, coef, intercept) -> float:
    """Mean squared error (no ½) of the line (coef, intercept) on (X, y): float64 sums over row blocks
    (over dask's chunks, one pass where the data live, for dask arrays)."""
    coef, total = np.asarray(coef, dtype=np.float64), 0.0
    if is_dask(X):
        from impls._dask import predict

        return float(((predict(X, coef, intercept) - y) ** 2).mean().compute())
    with np.errstate(all="ignore"):
        for start in range(0, len(X), SCORE_ROWS):
            residual = X[start : start + SCORE_ROWS].astype(np.float64) @ coef
            residual += intercept
            residual -= y[start : start + SCORE_ROWS]
            total += residual @ residual
    return float(total / len(X))


def least_squares_reference(data: Data, noise: float | None) -> dict:
    """The least-squares solution of the training sample by the package's own closed form, the yardstick
    of every row, with the standard errors that say how far from it an estimate may stray by chance."""
    from impls import NumpyClosedFormRegressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n <= d + 1: no standard errors, said by "-" in the table
        try:
            fit = NumpyClosedFormRegressor().fit(data.X, data.y)
        except ValueError as exc:  # dask data are checked as they are read: a NaN or inf shows here
            raise DataError(f"the data: {str(exc).splitlines()[0]}") from None
    num_examples, num_features = data.X.shape
    return {
        "coef": fit.coef_.tolist(),
        "intercept": fit.intercept_,
        "solver": f"numpy-closed-form, {fit.solver_}",
        "coef_stderr": fit.coef_stderr_.tolist(),
        "intercept_stderr": fit.intercept_stderr_,
        "train_mse": mse(data.X, data.y, fit.coef_, fit.intercept_),
        "noise_floor_mse": None if noise is None else noise**2,
        "expected_lstsq_param_error": None if noise is None else noise * math.sqrt((num_features + 1) / num_examples),
    }


def score(estimator, data: Data, reference: dict) -> Scores:
    """The scores of a fitted estimator: errors against the truth and against least squares, and its MSEs."""
    coef, intercept = np.asarray(estimator.coef_, dtype=np.float64), float(estimator.intercept_)
    lstsq = np.append(reference["coef"], reference["intercept"])
    stderr = np.append(reference["coef_stderr"], reference["intercept_stderr"])
    distance = np.abs(np.append(coef, intercept) - lstsq)
    train_mse = mse(data.X, data.y, coef, intercept)
    return Scores(
        coef=coef.tolist(),
        intercept=intercept,
        coef_error=None if data.true_w is None else float(np.linalg.norm(coef - data.true_w)),
        intercept_error=None if data.true_b is None else abs(intercept - data.true_b),
        param_distance_to_lstsq=float(np.linalg.norm(distance)),
        param_distance_to_lstsq_in_se=_largest_ratio(distance, stderr),
        train_mse=train_mse,
        excess_train_mse=train_mse - reference["train_mse"],
        test_mse=None if data.X_test is None else mse(data.X_test, data.y_test, coef, intercept),
        epochs=int(estimator.n_iter_),
        loss_curve=[float(v) for v in getattr(estimator, "loss_curve_", [])],
    )


def _largest_ratio(distance, stderr) -> float | None:
    """max |θ̂ⱼ − θ*ⱼ| / seⱼ: the optimisation error in units of least squares' statistical error."""
    if not np.all(np.isfinite(stderr)) or not np.all(stderr > 0):
        return None
    return float(np.max(distance / stderr))
