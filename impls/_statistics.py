"""The statistics of an OLS fit, as statsmodels' results give them: σ² = RSS / (n − rank − 1),
se(w)² = σ²·diag((X̃ᵀX̃)⁻¹), se(b)² = σ²·(1/n + x̄ᵀ(X̃ᵀX̃)⁻¹x̄) and R² = 1 − RSS / Σ(y − ȳ)²,
with (X̃ᵀX̃)⁻¹ = FFᵀ from the solver.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np


class Statistics(NamedTuple):
    sigma2: float
    coef_stderr: np.ndarray
    intercept_stderr: float
    rsquared: float


def ols_statistics(
    rss: float, rank: int, covariance_factor: np.ndarray, n: int, x_mean: np.ndarray, tss: float
) -> Statistics:
    """σ², the standard errors and R² of a fit whose residual sum of squares is ``rss`` (F = ``covariance_factor``)."""
    dof = n - rank - 1
    if dof > 0:
        sigma2 = max(rss, 0.0) / dof
    else:
        warnings.warn(
            f"{n} examples for {rank} independent features and an intercept leave no degree of "
            "freedom: sigma2_, coef_stderr_ and intercept_stderr_ are NaN.",
            RuntimeWarning,
            stacklevel=5,  # the caller of fit: ols_statistics ← _set_solution ← fit ← fit_atomically ← the caller
        )
        sigma2 = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        rsquared = float(1.0 - rss / tss) if tss > 0 else np.nan
    coef_stderr = np.sqrt(sigma2 * np.sum(covariance_factor**2, axis=1))
    intercept_stderr = float(np.sqrt(sigma2 * (1.0 / n + np.sum((x_mean @ covariance_factor) ** 2))))
    return Statistics(float(sigma2), coef_stderr, intercept_stderr, rsquared)
