"""The statistics of a least-squares fit, as statsmodels' OLS and WLS results give them: σ² = Σwr² / (n − rank − 1),
se(w)² = σ²·diag((X̃ᵀWX̃)⁻¹), se(b)² = σ²·(1/Σw + x̄ᵀ(X̃ᵀWX̃)⁻¹x̄) and R² = 1 − Σwr² / Σw(y − ȳ)², with (X̃ᵀWX̃)⁻¹ = FFᵀ
from the solver, x̄ and ȳ the weighted means, and n the number of examples (those of weight zero too, as in WLS).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from impls._base import _user_stacklevel


class Statistics(NamedTuple):
    """σ², the standard errors of w and b, and R² (floats, or arrays of one per target from ``fit_statistics``)."""

    sigma2: float
    coef_stderr: np.ndarray
    intercept_stderr: float
    rsquared: float


def ols_statistics(
    rss: float,
    rank: int,
    covariance_factor: np.ndarray,
    n: int,
    x_mean: np.ndarray,
    tss: float,
    weight_total: float | None = None,
) -> Statistics:
    """σ², the standard errors and R² of a fit whose (weighted) residual sum of squares is ``rss`` (F =
    ``covariance_factor``), of ``n`` examples whose weights sum to ``weight_total`` (n without weights)."""
    dof = n - rank - 1
    if dof > 0:
        sigma2 = max(rss, 0.0) / dof
    else:
        warnings.warn(
            f"{n} examples for {rank} independent features and an intercept leave no degree of "
            "freedom: sigma2_, coef_stderr_ and intercept_stderr_ are NaN.",
            RuntimeWarning,
            stacklevel=_user_stacklevel(),
        )
        sigma2 = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        rsquared = float(1.0 - rss / tss) if tss > 0 else np.nan
    weight_total = n if weight_total is None else weight_total
    coef_stderr = np.sqrt(sigma2 * np.einsum("ij,ij->i", covariance_factor, covariance_factor))  # no d×d temporary
    intercept_stderr = float(np.sqrt(sigma2 * (1.0 / weight_total + np.sum((x_mean @ covariance_factor) ** 2))))
    return Statistics(float(sigma2), coef_stderr, intercept_stderr, rsquared)


def fit_statistics(solutions, systems, rows: int, weight_exponent: int = 0) -> Statistics:
    """Each target's statistics, as arrays with one entry (or row) per target, from its solver's ``Solution`` and its
    centred system's Σw (``n``), weighted x̄ and Σw(y − ȳ)², of the weights times 2^-weight_exponent
    (``impls.closed_form.prepare.weight_exponent_of``): σ² is scaled back; nothing else depends on the weights'
    scale."""
    statistics = [
        ols_statistics(s.rss, s.rank, s.covariance_factor, rows, system.x_mean, system.tss, system.n)
        for s, system in zip(solutions, systems)
    ]
    sigma2, coef_stderr, intercept_stderr, rsquared = (np.array(column) for column in zip(*statistics))
    return Statistics(np.ldexp(sigma2, weight_exponent), coef_stderr, intercept_stderr, rsquared)
