"""Where constant-step SGD settles, predicted: the distance from least squares, in its standard errors, at which
the iterates read at an epoch's end stay, and where their tail average gets to.

With θ* the least-squares solution and rᵢ = yᵢ − x̃ᵢᵀθ* its residuals, the error e = θ − θ* of SGD on the mean ½
loss of a batch b moves by e ← e − (η/|b|) Σ_{i∈b} wᵢx̃ᵢ(x̃ᵢᵀe − rᵢ): a contraction (I − ηH_b) plus the gradient
noise η·(1/|b|) Σ_{i∈b} wᵢx̃ᵢrᵢ. Over a whole epoch of random reshuffling every row is drawn once and Σᵢ wᵢx̃ᵢrᵢ = 0
(the normal equations), so the noise left at the epoch's end is of second order in η: far less than the
with-replacement SGD of the continuous-time theory (Mandt, Hoffman & Blei, JMLR 2017) predicts (Mishchenko, Khaled &
Richtárik, NeurIPS 2020, on random reshuffling).

The prediction: ξ, one epoch of that recursion started at e = 0 (the noise an epoch adds), is drawn for NUM_CHAINS
independent permutations at once; its mean μ and covariance C then give the end-of-epoch stationary law, with the
epoch's mean contraction P = (I − ηG)^m (m steps, G = (1/n) Σ wᵢx̃ᵢx̃ᵢᵀ): the second moment Σ of the settled
error solves the discrete Lyapunov equation Σ = PΣPᵀ + Cov(ξ) (``scipy.linalg.solve_discrete_lyapunov``), around
the mean (I − P)⁻¹E[ξ]: random reshuffling's bias, of second order in η, kept where the chains resolve it
(``shrunk_mean``). (E[PΣPᵀ] is taken as
P̄ΣP̄ᵀ: the randomness of the epoch's product enters at second order in η.) The report's measure at stationarity is
then the expected largest |eⱼ|/seⱼ over the parameters, by NUM_DRAWS seeded draws of that Gaussian, in the data's
units. The tail average over N epochs: the steps' mean of e has a long-run covariance (consecutive epochs' means
are correlated: the noise of one epoch decays in the next), estimated from NOISE_EPOCHS epochs in a row, over N,
around their mean, the bias of random reshuffling, which no averaging removes; the start's error decays by each
direction's (1 − ηλ)ᵗ, averaged over the steps averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_CHAINS = 64  # permutations drawn at once: the covariance to about √(2/64) = 18 % of itself
NOISE_EPOCHS = 4  # epochs run in a row for the tail average's long-run variance (consecutive epochs' means correlate)
NUM_DRAWS = 4000  # draws of the stationary Gaussian for the expected largest distance in SE
MAX_STEPS = 25_000  # steps per epoch beyond which no prediction is made (NOISE_EPOCHS × this many Python steps)
SEED = 0


@dataclass(frozen=True)
class EpochNoise:
    """The error recursion from e = 0, over NUM_CHAINS chains of permutations, in the coordinates θ = (b, w) of the
    data as fitted: ends (chains × p), the errors at the first epoch's end; means, the means of the errors over the
    steps of NOISE_EPOCHS epochs in a row; the step η on the mean ½ loss; the steps per epoch; G."""

    ends: np.ndarray
    means: np.ndarray
    step: float
    steps: int
    gram: np.ndarray


def epoch_noise(X, y, theta, step: float, batch_length: int, weights=None) -> EpochNoise | None:
    """``EpochNoise`` of minibatch SGD with steps of ``step`` on batches of ``batch_length`` rows, around
    ``theta`` = (b, w), least squares on (X, y); None where an epoch has more than MAX_STEPS steps."""
    n = X.shape[0]
    batch_length = min(int(batch_length), n)
    steps = -(-n // batch_length)
    if steps > MAX_STEPS:
        return None
    rows = np.column_stack([np.ones(n), np.asarray(X, dtype=np.float64)])
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    residuals = np.asarray(y, dtype=np.float64) - rows @ theta
    rng = np.random.default_rng(SEED)
    e, total, ends = np.zeros((NUM_CHAINS, rows.shape[1])), np.zeros((NUM_CHAINS, rows.shape[1])), None
    for _ in range(NOISE_EPOCHS):
        orders = np.argsort(rng.random((NUM_CHAINS, n)), axis=1)  # a new permutation per chain and epoch
        for start in range(0, n, batch_length):
            batch = orders[:, start : start + batch_length]
            x, weighted = rows[batch], (w * residuals)[batch]  # (chains, B, p), (chains, B)
            fitted = np.einsum("kbp,kp->kb", x, e) * w[batch]
            e -= (step / batch.shape[1]) * np.einsum("kbp,kb->kp", x, fitted - weighted)
            total += e
        ends = e.copy() if ends is None else ends
    gram = (rows * w[:, None]).T @ rows / n
    return EpochNoise(ends, total / (steps * NOISE_EPOCHS), float(step), steps, gram)


def stationary(noise: EpochNoise) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the error read at an epoch's end once SGD has settled."""
    import scipy.linalg

    eigenvalues, basis = np.linalg.eigh(noise.gram)
    factors = (1.0 - noise.step * np.maximum(eigenvalues, 0.0)) ** noise.steps
    moving = np.abs(factors) < 1.0 - 1e-12  # a direction of zero curvature holds no noise (x̃ has no part there)
    contraction = (basis * np.where(moving, factors, 0.0)) @ basis.T
    mean = shrunk_mean(noise.ends)
    covariance = np.cov(noise.ends, rowvar=False)
    projector = basis[:, moving] @ basis[:, moving].T
    inverse = basis[:, moving] @ np.diag(1.0 / (1.0 - factors[moving])) @ basis[:, moving].T
    settled = scipy.linalg.solve_discrete_lyapunov(contraction, projector @ covariance @ projector)
    return inverse @ mean, (settled + settled.T) / 2


def shrunk_mean(samples: np.ndarray) -> np.ndarray:
    """The chains' mean, each coordinate shrunk by its sampling error: m·max(0, 1 − s²/(K·m²)) (K chains, s their
    spread), so that m² is estimated without the bias s²/K that sampling error alone adds to it. Random reshuffling
    has a bias (the settled iterates' mean is not least squares, by a term of second order in η, large where a few
    rows are heavy), which this keeps where the chains resolve it and drops where they do not."""
    mean = samples.mean(axis=0)
    error = samples.var(axis=0, ddof=1) / len(samples)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(mean != 0, np.maximum(0.0, 1.0 - error / mean**2), 0.0)
    return mean * factor


def constant_step(noise: EpochNoise, start_error: np.ndarray, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the error at the end of epoch ``epochs`` from a start ``start_error`` away: the start's
    error contracted by P^epochs (the conditioning term, which sets how soon the floor is reached) around the
    settled law (its covariance taken as the settled one: the noise builds up faster than the bias decays)."""
    eigenvalues, basis = np.linalg.eigh(noise.gram)
    factors = (1.0 - noise.step * np.maximum(eigenvalues, 0.0)) ** (noise.steps * epochs)
    mean, covariance = stationary(noise)
    return basis @ (factors * (basis.T @ start_error)) + mean, covariance


def tail_average(noise: EpochNoise, start_error: np.ndarray, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the tail average after ``epochs`` epochs (over the epochs since the restart before
    last, ``impls._base.TailAverage``), from a start ``start_error`` away: the bias term, the start's error decayed
    and averaged over those steps, and the variance term, the long-run covariance of the steps' mean (NOISE_EPOCHS
    times that of the mean over NOISE_EPOCHS epochs in a row) over the number of epochs averaged."""
    from impls._base import restarts_average

    restarts = [epoch for epoch in range(epochs) if restarts_average(epoch)]
    first = restarts[-2] if len(restarts) >= 2 else 0
    averaged = epochs - first
    eigenvalues, basis = np.linalg.eigh(noise.gram)
    rate = 1.0 - noise.step * np.maximum(eigenvalues, 0.0)
    begin, count = first * noise.steps, averaged * noise.steps
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        decay = np.where(
            np.abs(1.0 - rate) > 1e-15, rate ** (begin + 1) * (1.0 - rate**count) / ((1.0 - rate) * count), 1.0
        )
    bias = basis @ (decay * (basis.T @ start_error)) + shrunk_mean(noise.means)
    long_run = NOISE_EPOCHS * np.cov(noise.means, rowvar=False)
    return bias, long_run / averaged


def expected_in_se(mean: np.ndarray, covariance: np.ndarray, to_data_units: np.ndarray, stderr: np.ndarray) -> float:
    """E[max over the parameters of |eⱼ|/seⱼ] for e ~ N(mean, covariance) in the fitted coordinates (b, w), taken to
    the report's (w, b) in the data's units by ``to_data_units``; parameters without a standard error left out."""
    mean, covariance = to_data_units @ mean, to_data_units @ covariance @ to_data_units.T
    measured = np.isfinite(stderr) & (stderr > 0)
    eigenvalues, basis = np.linalg.eigh((covariance + covariance.T) / 2)
    root = basis * np.sqrt(np.maximum(eigenvalues, 0.0))
    draws = mean + np.random.default_rng(SEED).standard_normal((NUM_DRAWS, len(mean))) @ root.T
    return float(np.mean(np.max(np.abs(draws[:, measured]) / stderr[measured], axis=1)))


def to_data_units(mean: np.ndarray | None, scale: np.ndarray | None, d: int) -> np.ndarray:
    """The linear map from the fitted coordinates (b_z, w_z) to the report's (w, b) in the data's units: w = w_z/s,
    b = b_z − μᵀ(w_z/s) for standardised features (identity, reordered, without)."""
    transform = np.zeros((d + 1, d + 1))
    scale = np.ones(d) if scale is None else scale
    mean = np.zeros(d) if mean is None else mean
    transform[:d, 1:] = np.diag(1.0 / scale)
    transform[d, 0] = 1.0
    transform[d, 1:] = -mean / scale
    return transform


def predict(
    estimator, X_fitted, y, reference_fitted: np.ndarray, reference: dict, scaler=None, weights=None, until=None
) -> dict:
    """The noise floor of ``estimator`` (an iterative estimator, fitted, on ``X_fitted``, the data as it fitted them),
    in the report's measure: ``noise_floor_in_se`` for constant steps and, when it averages, ``predicted_in_se`` of
    its tail average after the epochs it ran and, with ``until``, ``predicted_average_epochs``, the first epoch
    (up to its ``num_epochs``) at which that prediction is below ``until``; None where no prediction is made
    (sparse X, too many steps)."""
    empty = {"noise_floor_in_se": None, "predicted_in_se": None}
    if hasattr(X_fitted, "toarray") or not np.isfinite(reference.get("sigma2") or np.nan):
        return empty
    n, d = X_fitted.shape
    step = 2.0 * estimator.lr_ / estimator.lr_limit(1.0, num_examples=n)  # its lr as a step on the mean ½ loss
    noise = epoch_noise(X_fitted, y, reference_fitted, step, estimator._rows_per_step(n), weights)
    if noise is None:
        return empty
    transform = to_data_units(None if scaler is None else scaler.mean_, None if scaler is None else scaler.scale_, d)
    stderr = np.append(reference["coef_stderr"], reference["intercept_stderr"]).astype(np.float64)
    floor = expected_in_se(*stationary(noise), transform, stderr)
    if not getattr(estimator, "average", False):
        return {"noise_floor_in_se": floor, "predicted_in_se": None}
    start = -np.asarray(reference_fitted, dtype=np.float64)  # the iterative methods start near zero

    def averaged(epochs: int) -> float:
        return expected_in_se(*tail_average(noise, start, epochs), transform, stderr)

    found = {"noise_floor_in_se": floor, "predicted_in_se": averaged(estimator.n_iter_) if estimator.n_iter_ else None}
    if until is not None:
        epochs = range(1, estimator.num_epochs + 1)
        found["predicted_average_epochs"] = next((epoch for epoch in epochs if averaged(epoch) < until), None)
    return found


def for_row(fitted, X, y, reference: dict, weights=None, until=None) -> dict:
    """``predict`` for a fitted iterative estimator or standardising pipeline on the training (X, y) as given:
    the data as it fitted them, and least squares in its coordinates, (b_z, w_z) = (b + wᵀμ, w·s)."""
    from linreg_compare.standardize import final_estimator

    estimator = final_estimator(fitted)
    coef = np.asarray(reference["coef"], dtype=np.float64)
    if estimator is fitted:
        return predict(estimator, X, y, np.append(reference["intercept"], coef), reference, None, weights, until)
    scaler = fitted[0]
    theta = np.append(reference["intercept"] + coef @ scaler.mean_, coef * scaler.scale_)
    return predict(estimator, scaler.transform(X), y, theta, reference, scaler, weights, until)


def before_training(estimator, X, y, reference: dict, weights=None, until=None) -> dict:
    """``for_row`` of ``estimator`` (or pipeline) before it trains: fitted for 0 epochs, which sets its step."""
    import warnings

    from sklearn.base import clone

    from linreg_compare.standardize import final_estimator, weighted

    untrained = clone(estimator)
    final_estimator(untrained).set_params(num_epochs=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        untrained.fit(X, y, **weighted(untrained, weights))
    final_estimator(untrained).set_params(num_epochs=final_estimator(estimator).num_epochs)
    return for_row(untrained, X, y, reference, weights, until)
