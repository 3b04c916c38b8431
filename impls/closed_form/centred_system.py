"""The centred normal equations X̃ᵀWX̃ w = X̃ᵀWỹ of one target, formed from the moments (``impls.closed_form.moments``)
and solved by Cholesky, never inverted: the textbook's system, with the shifts that keep its centring exact.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

# Rows of X̃ᵀX̃ centred at a time, so that its centring needs no second d×d array (a sparse X can have many columns).
CENTRING_ROWS = 256
# Up to this many features the condition number is computed exactly (an eigendecomposition, O(d³)); beyond, estimated
# from the Cholesky factor in O(d²).
EXACT_CONDITION_UP_TO = 2000


class CentredSystem:
    """The centred normal equations X̃ᵀWX̃ w = X̃ᵀWỹ of one target, from the moments (``impls.closed_form.moments``).

    The data enter shifted, X − x_shift and y − y_shift, which float64 subtracts exactly where the
    shift is close to the values (Sterbenz's lemma); residuals are computed in that frame too, where
    the intercept is ``offset = y_mean_after_shift − x_mean_after_shiftᵀw``, so that large means never
    enter a sum of products. ``n`` is the sum of the weights: the number of examples without weights.
    With a pilot (``pilot_coef``, w₀), the moments have one more row and column, those of the pilot's residual r
    (``impls.closed_form.moments.row_moments``): ``solve`` then gives w₀ + δ with X̃ᵀWX̃ δ = X̃ᵀWr̃, and ``rss``
    subtracts from Σw(r − r̄)².
    """

    def __init__(self, moments: np.ndarray, x_shift, y_shift: float, pilot_coef: np.ndarray | None = None):
        self.d = d = len(moments) - 2 - (pilot_coef is not None)
        self.n = n = moments[d, d]
        self.shifted = x_shift is not None
        self.x_shift, self.y_shift = np.zeros(d) if x_shift is None else x_shift, y_shift
        # Centre exactly: subtract the means that remain after the shifts.
        self.x_mean_after_shift, self.y_mean_after_shift = moments[:d, d] / n, moments[d, d + 1] / n
        self.gram = moments[:d, :d].copy()
        for rows in range(0, d, CENTRING_ROWS):  # − n x̄x̄ᵀ a band of rows at a time: no d×d temporary
            band = slice(rows, rows + CENTRING_ROWS)
            self.gram[band] -= n * np.outer(self.x_mean_after_shift[band], self.x_mean_after_shift)
        self.xty = moments[:d, d + 1] - n * self.x_mean_after_shift * self.y_mean_after_shift
        self.tss = moments[d + 1, d + 1] - n * self.y_mean_after_shift**2  # Σw(y − ȳ)²
        self.pilot_coef = pilot_coef
        if pilot_coef is not None:  # X̃ᵀWr̃ and Σw(r − r̄)² of the pilot's residual
            residual_mean = moments[d, d + 2] / n
            self.xtr = moments[:d, d + 2] - n * self.x_mean_after_shift * residual_mean
            self.residual_ss = moments[d + 2, d + 2] - n * residual_mean**2
        self.x_mean, self.y_mean = self.x_shift + self.x_mean_after_shift, self.y_shift + self.y_mean_after_shift
        self._cholesky = self._shared = self._condition = None
        self._shared_by = 0  # systems (of other targets) that solve with this one's Cholesky factor

    @classmethod
    def of_target(cls, moments: np.ndarray, target: int, x_shift, y_shift, pilot=None) -> CentredSystem:
        """The system of target ``target`` from the moments of k targets, [X, 1, Y]ᵀW[X, 1, Y], or with a ``pilot``
        (``impls.closed_form.moments.Pilot``) [X, 1, Y, R]ᵀW[X, 1, Y, R]."""
        k = np.size(y_shift)
        d = len(moments) - 1 - k * (1 if pilot is None else 2)
        y_shift = float(np.ravel(y_shift)[target])
        if k == 1:  # the moments of this one target as they are
            return cls(moments, x_shift, y_shift, None if pilot is None else pilot.coef[:, 0])
        keep = (
            np.r_[0 : d + 1, d + 1 + target] if pilot is None else np.r_[0 : d + 1, d + 1 + target, d + 1 + k + target]
        )
        pilot_coef = None if pilot is None else pilot.coef[:, target]
        return cls(moments[np.ix_(keep, keep)], x_shift, y_shift, pilot_coef)

    def share_factor(self, other: CentredSystem) -> CentredSystem:
        """Use ``other``'s Cholesky factor (the same X̃ᵀWX̃, another target): factored once for every target."""
        self._shared = other
        other._shared_by += 1
        return self

    def condition(self) -> float:
        """Condition number of the Gram matrix of X̃ with its columns scaled to unit norm: exact up to
        ``EXACT_CONDITION_UP_TO`` features, beyond them LAPACK's estimate from the Cholesky factor (O(d²), within
        a factor d of the 2-norm's). Computed once for all the targets that share a factor."""
        if self._shared is not None:
            return self._shared.condition()
        if self._condition is None:
            self._condition = self._compute_condition()
        return self._condition

    def _compute_condition(self) -> float:
        scale = np.sqrt(np.diag(self.gram))
        if not (scale > 0).all():
            return np.inf
        if self.d > EXACT_CONDITION_UP_TO:
            equilibrated = self.gram / scale
            equilibrated /= scale[:, None]
            bands = range(0, self.d, CENTRING_ROWS)  # its 1-norm a band of rows at a time (it is symmetric)
            norm = max(np.abs(equilibrated[i : i + CENTRING_ROWS]).sum(axis=1).max() for i in bands)
            # Its transpose, the same symmetric matrix in Fortran order, is factored in place: LAPACK's order, no copy.
            factor, info = scipy.linalg.lapack.dpotrf(equilibrated.T, lower=0, overwrite_a=1, clean=1)
            if info != 0:
                return np.inf
            reciprocal, _ = scipy.linalg.lapack.dpocon(factor, norm)
            factor *= scale  # X̃ᵀX̃ = (R D)ᵀ(R D): the solves' Cholesky factor, not computed twice
            self._cholesky = (factor, False)
            return np.inf if reciprocal <= 0 else 1.0 / reciprocal
        eigenvalues = np.linalg.eigvalsh(self.gram / np.outer(scale, scale))
        return np.inf if eigenvalues[0] <= 0 else eigenvalues[-1] / eigenvalues[0]

    def solve(self, right=None) -> np.ndarray:
        """w solving X̃ᵀX̃ w = X̃ᵀỹ (or ``right`` instead of X̃ᵀỹ), by Cholesky: solved, never inverted. With a pilot,
        w = w₀ + δ with X̃ᵀX̃ δ = X̃ᵀr̃."""
        if self._cholesky is None and self._shared is not None:
            self._shared.solve(self._shared.xty)
            self._cholesky = self._shared._cholesky
        if self._cholesky is None:
            # LAPACK directly (scipy's cho_factor checks finiteness first: a pass over d² numbers, and time on small
            # problems); a matrix that is not positive definite raises as cho_factor does.
            factor, info = scipy.linalg.lapack.dpotrf(self.gram, lower=0, clean=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"{info}-th leading minor of the Gram matrix is not positive definite")
            self._cholesky = (factor, False)
        if right is None and self.pilot_coef is not None:
            return self.pilot_coef + self.solve(self.xtr)
        factor, lower = self._cholesky
        solution, _ = scipy.linalg.lapack.dpotrs(factor, self.xty if right is None else right, lower=int(lower))
        return solution

    def rss(self, coef) -> float:
        """Σw(y − ȳ − x̃ᵀw)² from the moments alone. Without a pilot, Σwỹ² − 2wᵀX̃ᵀWỹ + wᵀX̃ᵀWX̃w, which loses about
        eps·Σwỹ²/RSS of itself to cancellation: many digits where R² is close to 1. With one, the same of r̃ and
        δ = w − w₀, whose terms are of the size of the RSS."""
        if self.pilot_coef is None:
            return float(self.tss - 2 * coef @ self.xty + coef @ self.gram @ coef)
        delta = coef - self.pilot_coef
        return float(self.residual_ss - 2 * delta @ self.xtr + delta @ self.gram @ delta)

    def _alone(self) -> bool:
        return self._shared is None and self._shared_by == 0 and np.isfortran(self._cholesky[0])

    def intercept(self, coef, offset: float | None = None) -> float:
        """b = ȳ − x̄ᵀw, as y_shift + offset − x_shiftᵀw in extended precision (the shifts can be large)."""
        offset = self.y_mean_after_shift - self.x_mean_after_shift @ coef if offset is None else offset
        ext = np.longdouble
        return float(ext(self.y_shift) + ext(offset) - self.x_shift.astype(ext) @ np.asarray(coef, dtype=ext))

    def inverse_factor(self) -> np.ndarray:
        """F = R⁻¹ with X̃ᵀX̃ = RᵀR (Cholesky), so that (X̃ᵀX̃)⁻¹ = FFᵀ: for the standard errors only."""
        if self._cholesky is None:
            self.solve()
        upper, lower = self._cholesky
        # In one d×d array, no identity; in the factor's own, where no other target will solve with it again. The
        # other triangle is zero (dpotrf's clean=1), and dtrtri leaves it so.
        inverse, _ = scipy.linalg.lapack.dtrtri(upper, lower=int(lower), overwrite_c=int(self._alone()))
        if self._alone():
            self._cholesky = None
        return inverse
