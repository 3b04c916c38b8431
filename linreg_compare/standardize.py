"""Standardised features for the iterative implementations: scikit-learn's ``StandardScaler`` in a ``Pipeline``
before the estimator, and the fitted line mapped back to the original units.

With z = (x − μ)/s, the line w_zᵀz + b_z is (w_z/s)ᵀx + (b_z − (w_z/s)ᵀμ): the same predictions, so every row
is compared with least squares on the data as given.
"""

from __future__ import annotations

import numpy as np


def standardized(estimator):
    """``estimator`` after a ``StandardScaler``, in a ``Pipeline`` (the estimator stays a plain estimator)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), estimator)


def weighted(estimator, sample_weight) -> dict:
    """The keyword arguments of ``fit`` that pass ``sample_weight`` to the estimator (the last step of a pipeline)."""
    return fit_keywords(estimator, sample_weight=sample_weight)


def fit_keywords(estimator, **keywords) -> dict:
    """The keyword arguments of ``fit`` that pass ``keywords`` (those not None) to the estimator, or to the last
    step of a pipeline (``step__name``)."""
    prefix = f"{estimator.steps[-1][0]}__" if hasattr(estimator, "steps") else ""
    return {prefix + name: value for name, value in keywords.items() if value is not None}


def final_estimator(fitted):
    """The estimator itself: the last step of a pipeline, or ``fitted``."""
    return fitted[-1] if hasattr(fitted, "steps") else fitted


def in_original_units(fitted) -> tuple[np.ndarray, float]:
    """(coef, intercept) of a fitted estimator or standardising pipeline, in the units of the data given to it."""
    estimator = final_estimator(fitted)
    coef, intercept = np.asarray(estimator.coef_, dtype=np.float64), float(estimator.intercept_)
    if estimator is fitted:
        return coef, intercept
    scaler = fitted[0]
    coef = coef / scaler.scale_
    return coef, intercept - float(coef @ scaler.mean_)
