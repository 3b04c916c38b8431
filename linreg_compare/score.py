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
from linreg_compare.standardize import final_estimator, in_original_units, weighted


@dataclass
class Data:
    """The training sample, an optional held-out sample, and the true parameters when they are known."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    true_w: list[float] | None = None
    true_b: float | None = None
    weights: np.ndarray | None = None  # sample weights of the training rows: every MSE is then weighted
    weights_test: np.ndarray | None = None


@dataclass
class Scores:
    """One implementation's scores; all None when it raised. A new metric is a field here, set in ``score``."""

    coef: list[float] | None = None
    intercept: float | None = None
    coef_error: float | None = None
    intercept_error: float | None = None
    param_distance_to_lstsq: float | None = None
    param_distance_to_lstsq_in_se: float | None = None
    distance_in_se: list[float] | None = None  # |θⱼ − θ_lsⱼ|/seⱼ for w₁, …, w_d, b: an unfit b cannot hide
    joint_distance_in_se: float | None = None  # the Mahalanobis distance: a correlated error cannot hide either
    train_mse: float | None = None
    excess_train_mse: float | None = None
    test_mse: float | None = None
    train_r2: float | None = None  # 1 − MSE / Var(y) on the training rows (weighted), least squares' R² for its own
    test_r2: float | None = None
    epochs: int | None = None
    loss_curve: list[float] | None = None


SCORE_ROWS = 16384  # rows scored at a time: scratch memory is one float64 block, never a copy of X


def mse(X, y, coef, intercept, weights=None) -> float:
    """Mean squared error (no ½) of the line (coef, intercept) on (X, y), Σwr²/Σw with ``weights``: float64 sums
    over row blocks (over dask's chunks, one pass where the data live, for dask arrays)."""
    coef, total = np.asarray(coef, dtype=np.float64), 0.0
    if is_dask(X):
        from impls.closed_form.dask import predict

        return float(((predict(X, coef, intercept) - y) ** 2).mean().compute())
    with np.errstate(all="ignore"):
        for start in range(0, len(X), SCORE_ROWS):
            residual = X[start : start + SCORE_ROWS].astype(np.float64) @ coef
            residual += intercept
            residual -= y[start : start + SCORE_ROWS]
            if weights is None:
                total += residual @ residual
            else:
                total += (residual * weights[start : start + SCORE_ROWS]) @ residual
    return float(total / (len(X) if weights is None else np.sum(weights, dtype=np.float64)))


def least_squares_reference(data: Data, noise: float | None) -> dict:
    """The least-squares solution of the training sample by the package's own closed form, the yardstick
    of every row, with the standard errors that say how far from it an estimate may stray by chance."""
    from impls import NumpyClosedFormRegressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n <= d + 1: no standard errors, said by "-" in the table
        try:
            fit = NumpyClosedFormRegressor().fit(data.X, data.y, sample_weight=data.weights)
        except ValueError as exc:  # dask data are checked as they are read: a NaN or inf shows here
            raise DataError(f"the data: {str(exc).splitlines()[0]}") from None
    num_examples, num_features = data.X.shape
    return {
        **statsmodels_summary(fit, num_examples),
        "coef": fit.coef_.tolist(),
        "intercept": fit.intercept_,
        "solver": f"numpy-closed-form, {fit.solver_}",
        "coef_stderr": fit.coef_stderr_.tolist(),
        "intercept_stderr": fit.intercept_stderr_,
        "rank": int(fit.rank_),
        "sigma2": float(fit.sigma2_),
        "weight_total": float(num_examples if data.weights is None else np.sum(data.weights, dtype=np.float64)),
        "train_mse": mse(data.X, data.y, fit.coef_, fit.intercept_, data.weights),
        "train_tss_mean": _variance(data.y, data.weights),
        "test_mse": None
        if data.X_test is None
        else checked_mse(data.X_test, data.y_test, fit.coef_, fit.intercept_, data.weights_test),
        "noise_floor_mse": None if noise is None else noise**2,
        "expected_lstsq_param_error": None if noise is None else noise * math.sqrt((num_features + 1) / num_examples),
    }


def statsmodels_summary(fit, num_examples: int) -> dict:
    """Least squares' results as statsmodels' ``OLS(...).fit()`` (``WLS`` with weights) names and computes them,
    the intercept first: params, bse, tvalues, pvalues (two-sided, Student's t on df_resid), conf_int (95 %),
    rsquared, rsquared_adj = 1 − (n − 1)/df_resid·(1 − R²), fvalue = (R²/df_model)/((1 − R²)/df_resid) (the test of
    every slope being 0) and f_pvalue, df_model (the rank of X̃) and df_resid = n − df_model − 1, n counting rows of
    weight 0 as statsmodels' WLS does. scipy's distributions; NaN where no degree of freedom is left."""
    from scipy import stats

    params = np.append(fit.intercept_, fit.coef_).astype(np.float64)
    bse = np.append(fit.intercept_stderr_, fit.coef_stderr_).astype(np.float64)
    df_model = int(fit.rank_)
    df_resid = num_examples - df_model - 1
    rsquared = np.float64(fit.rsquared_)  # numpy's division: an exact fit's F is inf, not ZeroDivisionError
    with np.errstate(divide="ignore", invalid="ignore"):
        tvalues = params / bse
        if df_resid > 0:
            pvalues = 2 * stats.t.sf(np.abs(tvalues), df_resid)
            half_width = stats.t.ppf(0.975, df_resid) * bse
            fvalue = (rsquared / df_model) / ((1 - rsquared) / df_resid) if df_model > 0 else np.nan
            f_pvalue = float(stats.f.sf(fvalue, df_model, df_resid)) if df_model > 0 else np.nan
            rsquared_adj = 1 - (num_examples - 1) / df_resid * (1 - rsquared)
        else:
            pvalues = half_width = np.full_like(params, np.nan)
            fvalue = f_pvalue = rsquared_adj = np.nan
    return {
        "params": params.tolist(),
        "bse": bse.tolist(),
        "tvalues": tvalues.tolist(),
        "pvalues": np.asarray(pvalues, dtype=np.float64).tolist(),
        "conf_int": np.column_stack([params - half_width, params + half_width]).tolist(),
        "rsquared": float(rsquared),
        "rsquared_adj": float(rsquared_adj),
        "fvalue": float(fvalue),
        "f_pvalue": float(f_pvalue),
        "df_model": df_model,
        "df_resid": int(df_resid),
        "nobs": int(num_examples),
    }


def checked_mse(X, y, coef, intercept, weights=None) -> float:
    """``mse`` of held-out rows, which no fit has checked: a NaN or inf among them is an error in the data."""
    value = mse(X, y, coef, intercept, weights)
    if not math.isfinite(value):
        raise DataError("the data: the held-out rows contain NaN or infinity, or values too large for float64")
    return value


def score(estimator, data: Data, reference: dict, diverged: bool = False) -> Scores:
    """The scores of a fitted estimator (or standardising pipeline, its line taken back to the data's units):
    errors against the truth and against least squares, and its MSEs. A diverged fit has no distance to least
    squares: its parameters are those of the last epoch before it blew up, not an estimate."""
    coef, intercept = in_original_units(estimator)
    distances = None if diverged else in_se(coef, intercept, reference)
    distance = np.abs(np.append(coef, intercept) - np.append(reference["coef"], reference["intercept"]))
    train_mse = mse(data.X, data.y, coef, intercept, data.weights)
    test_mse = None if data.X_test is None else mse(data.X_test, data.y_test, coef, intercept, data.weights_test)
    return Scores(
        coef=coef.tolist(),
        intercept=intercept,
        coef_error=None if data.true_w is None else float(np.linalg.norm(coef - data.true_w)),
        intercept_error=None if data.true_b is None else abs(intercept - data.true_b),
        param_distance_to_lstsq=None if diverged else float(np.linalg.norm(distance)),
        param_distance_to_lstsq_in_se=largest(distances),
        distance_in_se=distances,
        joint_distance_in_se=None if diverged else joint_in_se(train_mse, reference),
        train_mse=train_mse,
        excess_train_mse=train_mse - reference["train_mse"],
        test_mse=test_mse,
        train_r2=1 - train_mse / reference["train_tss_mean"] if reference.get("train_tss_mean") else None,
        test_r2=None if test_mse is None else r2(test_mse, data.y_test, data.weights_test),
        epochs=int(final_estimator(estimator).n_iter_),
        loss_curve=[float(v) for v in getattr(final_estimator(estimator), "loss_curve_", [])],
    )


def in_se(coef, intercept: float, reference: dict) -> list[float | None] | None:
    """|θⱼ − θ_lsⱼ| / seⱼ for every parameter (w₁, …, w_d, b): the optimisation error in units of least squares'
    statistical error. A parameter whose standard error is 0 (a constant column's, which least squares leaves at
    its minimum-norm 0 whatever the others do) has None; all None (no standard error at all) is None."""
    stderr = np.append(reference["coef_stderr"], reference["intercept_stderr"]).astype(np.float64)
    measured = np.isfinite(stderr) & (stderr > 0)
    if not measured.any():
        return None
    lstsq = np.append(reference["coef"], reference["intercept"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.abs(np.append(coef, intercept) - lstsq) / stderr
    return [float(ratio) if ok else None for ratio, ok in zip(ratios, measured)]


def joint_in_se(train_mse: float, reference: dict) -> float | None:
    """The Mahalanobis distance of θ from least squares' θ̂ in the metric of least squares' covariance
    σ̂²(X̃ᵀWX̃)⁻¹ (X̃ = [1, X]), from the training MSEs alone:

        d² = (θ − θ̂)ᵀ X̃ᵀWX̃ (θ − θ̂) / σ̂² = Σw · (MSE(θ) − MSE(θ̂)) / σ̂²,

    since Σwᵢ(yᵢ − x̃ᵢᵀθ)² = Σwᵢ(yᵢ − x̃ᵢᵀθ̂)² + (θ − θ̂)ᵀX̃ᵀWX̃(θ − θ̂) (the cross term is 2(θ̂ − θ)ᵀX̃ᵀW(y − X̃θ̂), zero by
    the normal equations), MSE the weighted mean Σwr²/Σw. Its square is, at θ drawn from least squares' own sampling
    law, a χ² of d + 1 degrees of freedom: 1 SE jointly is as far as one parameter's 1 SE. None without σ̂² > 0."""
    sigma2 = reference.get("sigma2")
    if sigma2 is None or not sigma2 > 0 or not math.isfinite(train_mse):
        return None
    excess = max(train_mse - reference["train_mse"], 0.0)
    return math.sqrt(reference["weight_total"] * excess / sigma2)


# A row is "ok" only when its training MSE is at most this factor of least squares' (the minimum).
SETTLED_FACTOR = 1.1


def status(scores: Scores, reference: dict, diverged: bool) -> str:
    """What happened to a fit, in a few words (the step-size note says why): ``ok`` only when it neither diverged nor
    ended more than 10 % above least squares' training MSE; else how it diverged or how far it stayed."""
    if diverged:
        peak = max(scores.loss_curve) if scores.loss_curve else math.nan
        epoch = (scores.loss_curve.index(peak) + 1) if scores.loss_curve else scores.epochs
        reached = f"MSE {peak:.2g}" if math.isfinite(peak) else "MSE overflowed"
        return f"diverged after epoch {epoch}: {reached} (w, b: the epoch before)"
    minimum = reference["train_mse"]
    if scores.train_mse is not None and minimum > 0 and scores.train_mse > SETTLED_FACTOR * minimum:
        ratio = scores.train_mse / minimum
        above = f"{100 * (ratio - 1):.0f} % above" if ratio < 3 else f"{ratio:.3g} times"
        return f"not settled after {scores.epochs} epochs: train MSE {above} least squares'"
    return "ok"


def largest(distances: list[float | None] | None) -> float | None:
    """The largest of the distances that were measured (None where none was)."""
    measured = [] if distances is None else [distance for distance in distances if distance is not None]
    return max(measured) if measured else None


def _variance(y, weights=None) -> float | None:
    """The (weighted) variance of y about its mean, for R² = 1 − MSE/Var(y); None where y is constant."""
    if is_dask(y):
        mean = float(y.sum().compute()) / y.shape[0]
        variance = float(((y - mean) ** 2).sum().compute()) / y.shape[0]
    else:
        y = np.asarray(y, dtype=np.float64)
        mean = np.average(y, weights=weights)
        variance = float(np.average((y - mean) ** 2, weights=weights))
    return variance if variance > 0 else None


def r2(test_mse: float, y_test, weights=None) -> float | None:
    """1 − MSE / Var(y): the fraction of the held-out targets' variance the line explains (negative: worse than
    predicting their mean); both weighted with ``weights``."""
    if is_dask(y_test):  # two sums: dask's var fails under its array query planning (np.iscomplexobj)
        mean = float(y_test.sum().compute()) / y_test.shape[0]
        variance = float(((y_test - mean) ** 2).sum().compute()) / y_test.shape[0]
    else:
        mean = np.average(y_test, weights=weights)
        variance = float(np.average((y_test - mean) ** 2, weights=weights))
    return None if variance == 0 else 1 - test_mse / variance


def cross_validated(estimator, first_test_mse: float, other_folds, training_rows=lambda X, y: (X, y)) -> dict:
    """The held-out MSE of ``estimator`` refitted (untimed) on each of ``other_folds``' training rows, as
    ``training_rows`` gives them to it (gathered from dask, say), with the first fold's ``first_test_mse``:
    every fold's figure, their mean and standard deviation (None where ``training_rows`` gives no rows)."""
    from sklearn.base import clone

    from impls import DivergenceWarning

    test_mses = [first_test_mse]
    for X_train, y_train, X_test, y_test, weights, weights_test in other_folds:
        X_train, y_train = training_rows(X_train, y_train)
        if X_train is None:
            return {"cv_test_mse": None, "cv_test_mse_mean": None, "cv_test_mse_std": None}
        fitted = clone(estimator)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # the first fold's row says so, once
            warnings.simplefilter("ignore", RuntimeWarning)  # no degree of freedom left: no standard errors
            fitted.fit(X_train, y_train, **weighted(fitted, weights))
        test_mses.append(mse(X_test, y_test, *in_original_units(fitted), weights_test))
    return {
        "cv_test_mse": test_mses,
        "cv_test_mse_mean": float(np.mean(test_mses)),
        "cv_test_mse_std": float(np.std(test_mses)),
    }
