"""What the data say about the step size, before any fit: the limit of each iterative implementation's own steps
(``impls._step_size.step_limit``: minibatch SGD's mean-square stability on the data as fitted, standardised and
weighted), and the spectrum of G = [1, X]ᵀ[1, X]/n, the Hessian of the mean half squared error, whose condition
number κ = λ_max/λ_min sets how slowly the flattest direction converges: a step α leaves a fraction
ρ = max|1 − αλ| of the error per full-gradient step, so reaching a tolerance takes about ln(start/tolerance)/(−ln ρ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Up to this many features the Gram matrix is formed and its whole spectrum computed (κ as well as λ_max);
# beyond, only λ_max, by power iterations on X (``impls._step_size``).
SPECTRUM_FEATURES = 2000
# statsmodels warns when cond([1, X]) = sqrt(κ of the Gram) exceeds 1000: strong multicollinearity or other
# numerical problems; the same bar, on the Gram matrix the methods see.
LARGE_CONDITION = 1000.0**2
GRAM_ROWS = 16384  # rows per product: scratch memory is one block


class StepSizeWarning(UserWarning):
    """A learning rate above the stable step of the data: the fit will diverge."""


class FloorWarning(StepSizeWarning):
    """A race whose constant steps settle farther from least squares than its bar: it will not get there."""


@dataclass(frozen=True)
class Spectrum:
    """λ_max and λ_min of the Gram matrix of [1, X] over n that the iterative methods descend (λ_min None when
    not computed), and whether X was standardised first."""

    largest: float
    smallest: float | None
    standardized: bool
    condition_as_given: float | None = None  # κ of [1, X] as given, beside that of the standardised [1, Z]
    condition_standardized: float | None = None

    @property
    def condition(self) -> float | None:
        if self.smallest is None:
            return None
        return math.inf if self.smallest <= 0 else self.largest / self.smallest


def spectrum(X, standardized: bool, weights=None) -> Spectrum:
    """The spectrum of G = [1, X]ᵀ[1, X]/n that the iterative methods descend, or of [1, Z]ᵀ[1, Z]/n for the
    standardised Z = (X − μ)/s (StandardScaler's statistics; a constant column keeps s = 1, so its Z is zero).
    With sample ``weights`` the batch loss Σwᵢℓᵢ/|B| has the curvature of [1, X]ᵀW[1, X]/n: that matrix then.

    The Gram matrix is summed over row blocks of X − μ, so large means never cancel inside a sum of products;
    [1, X] = [1, X − μ]·Bᵀ, B = [[1, 0], [μ, I]], gives G of X as given, and dividing by s that of Z.
    """
    n, d = X.shape
    if d + 1 > SPECTRUM_FEATURES:
        from impls._step_size import largest_eigenvalue

        if standardized:
            from sklearn.preprocessing import StandardScaler

            X = StandardScaler().fit_transform(X)
        scale = 1.0 if weights is None else float(np.mean(weights))  # largest_eigenvalue divides by Σw
        return Spectrum(scale * largest_eigenvalue(X, weights), None, standardized)
    mean = X.mean(axis=0, dtype=np.float64)
    gram = np.zeros((d + 1, d + 1))
    for start in range(0, n, GRAM_ROWS):
        rows = slice(start, start + GRAM_ROWS)
        block = np.column_stack([np.ones(len(X[rows])), X[rows] - mean])
        gram += (block if weights is None else block * weights[rows, None]).T @ block
    gram /= n
    scale = X.std(axis=0, dtype=np.float64)
    scale[scale == 0] = 1.0
    to_standardized = np.diag(np.append(1.0, 1 / scale))
    to_given = np.eye(d + 1)
    to_given[1:, 0] = mean
    given = np.linalg.eigvalsh(to_given @ gram @ to_given.T)
    standard = np.linalg.eigvalsh(to_standardized @ gram @ to_standardized.T)
    eigenvalues = standard if standardized else given
    return Spectrum(
        float(eigenvalues[-1]),
        float(max(eigenvalues[0], 0.0)),
        standardized,
        _condition(given),
        _condition(standard),
    )


def _condition(eigenvalues: np.ndarray) -> float:
    return math.inf if eigenvalues[0] <= 0 else float(eigenvalues[-1] / eigenvalues[0])


def as_fitted(X, standardized: bool):
    """X as the iterative implementations see it: standardised by a StandardScaler when the runner does so."""
    if not standardized:
        return X
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(X)


def limits(estimators: dict, X_fitted, weights=None) -> dict:
    """Each iterative estimator's largest stable lr on the data as it fits them (``as_fitted``), in its own
    convention: the limit of its own steps (``impls._step_size.step_limit``), the one ``lr="auto"`` halves and
    its divergence check uses."""
    from impls._step_size import step_limit

    return {
        name: step_limit(estimator, X_fitted, weights)
        for name, estimator in estimators.items()
        if hasattr(estimator, "lr_limit")
    }


def above_limit(lr, stable: dict) -> list[str]:
    """The implementations whose limit a numeric ``lr`` exceeds."""
    return [] if lr == "auto" else [name for name, limit in stable.items() if lr > limit]


def warning(lr, stable: dict, standardized: bool) -> str | None:
    """What to say before fitting when ``lr`` is above some implementation's limit."""
    over = above_limit(lr, stable)
    if not over:
        return None
    listed = ", ".join(f"{name} {stable[name]:.3g}" for name in over)
    way_out = "--lr auto" if standardized else "--standardize or --lr auto"
    return (
        f"lr {lr:g} is above the stable step of these data (minibatch SGD diverges above: {listed}); "
        f"expect divergence; {way_out} sets a step from the data"
    )


def note(lr, stable: dict, used: dict, spectrum: Spectrum, weighted: bool = False) -> str:
    """The report's line: each implementation's limit for its own minibatch steps, whether lr is above it, λ_max
    and the condition number, told apart: scaling (κ of X as given) from collinearity (κ of standardised X)."""
    seen = "the standardised training X" if spectrum.standardized else "the training X as given"
    gram = "[1, X]ᵀW[1, X]/n (W the weights)" if weighted else "[1, X]ᵀ[1, X]/n"
    limits_text = ", ".join(f"{name} {limit:.3g}" for name, limit in stable.items())
    parts = [
        f"step size: minibatch SGD on {seen} is stable (in mean square, each with its own batch and loss) for lr "
        f"below {limits_text}",
        f"G = {gram} has λ_max {spectrum.largest:.4g}",
    ]
    if spectrum.condition is not None:
        parts.append(_condition_text(spectrum))
    if lr == "auto":
        parts.append("lr auto: " + ", ".join(f"{name} {step:.3g}" for name, step in used.items() if step is not None))
    else:
        over = above_limit(lr, stable)
        parts.append(f"lr {lr:g} is above the limit of {', '.join(over)}" if over else f"lr {lr:g} is below each")
    return "; ".join(parts)


def _condition_text(spectrum: Spectrum) -> str:
    """κ, with what it means: collinearity where the standardised design has it, scaling where only the design as
    given has it (which standardising removes), and the epochs a large κ costs."""
    text = f"condition number κ = λ_max/λ_min {spectrum.condition:.3g}"
    given, standard = spectrum.condition_as_given, spectrum.condition_standardized
    if standard is not None and standard > LARGE_CONDITION:
        return text + (
            f" (standardised {standard:.3g}): collinearity, strong (statsmodels warns above 1000 for [1, X], "
            "1e6 here); gradient methods need about κ times more steps than on orthogonal features"
        )
    if not spectrum.standardized and given is not None and standard is not None and given > 100 * standard:
        return text + (
            f", but {standard:.3g} after standardising: the columns' scales, not collinearity; full-gradient "
            f"descent needs about κ·ln(1/tolerance) steps, {given / standard:.2g} times more than standardised "
            "(--standardize)"
        )
    if spectrum.standardized and given is not None and given > 100 * (standard or 1.0):
        return text + f" (as given {given:.3g}: the columns' scales, which standardising removed)"
    return text


def summary(lr, stable: dict, used: dict, spectrum: Spectrum, weighted: bool = False) -> dict:
    """The report's step-size record: the spectrum, each limit, each step used, and the note."""
    return {
        "lambda_max": spectrum.largest,
        "lambda_min": spectrum.smallest,
        "condition": spectrum.condition,
        "condition_as_given": spectrum.condition_as_given,
        "condition_standardized": spectrum.condition_standardized,
        "standardized": spectrum.standardized,
        "lr_limit": stable,
        "lr_used": used,
        "note": note(lr, stable, used, spectrum, weighted),
    }


def predicted_steps(step: float, spectrum: Spectrum, start: float, target: float) -> int | None:
    """Full-gradient steps of size ``step`` (on the mean half squared error, Hessian G) that shrink an error of
    ``start`` to ``target``: ln(start/target)/(−ln ρ), ρ = max(|1 − step·λ_min|, |1 − step·λ_max|)."""
    if spectrum.smallest is None or not start > target or not math.isfinite(start):
        return None if spectrum.smallest is None or not math.isfinite(start) else 0
    rate = max(abs(1 - step * spectrum.smallest), abs(1 - step * spectrum.largest))
    if rate >= 1:
        return None
    return math.ceil(math.log(start / target) / -math.log(rate))
