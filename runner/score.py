"""The one scoring of every implementation: a fitted estimator and the data in, one row of scores out.

Every loss and error in the report is computed here, in float64, by the same code for all four.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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
    train_mse: float | None = None
    excess_train_mse: float | None = None
    test_mse: float | None = None
    epochs: int | None = None
    loss_curve: list[float] | None = None


def mse(X, y, coef, intercept) -> float:
    """Mean squared error (no ½) of the line (coef, intercept) on (X, y), in float64."""
    with np.errstate(all="ignore"):
        return float(np.mean((X.astype(np.float64) @ np.asarray(coef) + intercept - y.astype(np.float64)) ** 2))


def least_squares_reference(data: Data, noise: float | None) -> dict:
    """The least-squares solution of the training sample, the yardstick of every row."""
    X, y = data.X, data.y
    design = np.column_stack([X.astype(np.float64), np.ones(len(X))])
    solution = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
    num_examples, num_features = X.shape
    return {
        "coef": solution[:-1].tolist(),
        "intercept": float(solution[-1]),
        "train_mse": mse(X, y, solution[:-1], solution[-1]),
        "noise_floor_mse": None if noise is None else noise**2,
        "expected_lstsq_param_error": None if noise is None else noise * math.sqrt((num_features + 1) / num_examples),
    }


def score(estimator, data: Data, reference: dict) -> Scores:
    """The scores of a fitted estimator: errors against the truth and against least squares, and its MSEs."""
    coef, intercept = np.asarray(estimator.coef_, dtype=np.float64), float(estimator.intercept_)
    lstsq = np.append(reference["coef"], reference["intercept"])
    train_mse = mse(data.X, data.y, coef, intercept)
    return Scores(
        coef=coef.tolist(),
        intercept=intercept,
        coef_error=None if data.true_w is None else float(np.linalg.norm(coef - data.true_w)),
        intercept_error=None if data.true_b is None else abs(intercept - data.true_b),
        param_distance_to_lstsq=float(np.linalg.norm(np.append(coef, intercept) - lstsq)),
        train_mse=train_mse,
        excess_train_mse=train_mse - reference["train_mse"],
        test_mse=None if data.X_test is None else mse(data.X_test, data.y_test, coef, intercept),
        epochs=int(estimator.n_iter_),
        loss_curve=[float(v) for v in getattr(estimator, "loss_curve_", [])],
    )
