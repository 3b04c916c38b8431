"""The closed form's accurate solvers: the normal equations' answer refined against the data, a column-pivoted QR of
B = [1/√n, X̃D⁻¹] refined by Björck's augmented system (the double-double factor of √w-scaled rows with sample
weights), and the minimum-norm answer by SVD where X̃ is rank-deficient.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from impls._base import _user_stacklevel
from impls.closed_form import refinement
from impls.closed_form.double_double_factor import factor_of_blocks, factor_solutions, minimum_norm
from impls.closed_form.moments import BLOCK_ROWS

EPS = refinement.EPS
# Well-conditioned data skip the residual pass: below this condition number the normal equations are accurate to
# about eps·cond (``one_pass_enough``; without a pilot, large data where also eps·TSS ≤ 1e-12·RSS).
SKIP_REFINEMENT_BELOW_CONDITION = 10.0
# What the statistics of a fit without a residual pass are accurate to, relative (``one_pass_enough``).
STATISTICS_TOLERANCE = 1e-10
# The pilot's residual sum of squares may be this many times the RSS: the RSS then keeps all but about one digit of
# the moments' own accuracy.
MAX_PILOT_EXCESS = 10.0
# Up to this many numbers in X, the normal equations' answer is refined until it converges, with residuals
# in double-double (about 25 float64 operations per number and step, in cache-sized blocks); beyond, by at
# most one step in float64, one pass at the speed of a matrix-vector product. (A QR, which copies X and
# costs O(nd²), is always refined in double-double.)
EXTENDED_LIMIT = 2**22
# A QR of a sparse X copies it dense: X, the centred copy, B and Q, each n × (d + 1) numbers.
DENSE_COPIES = 4


@dataclass(frozen=True)
class Solution:
    """What a solver found: (b, w), how, the rank, F with (X̃ᵀX̃)⁻¹ = FFᵀ (a pseudo-inverse when
    rank-deficient: every variance is then a sum of squares, never negative by cancellation), the RSS, and
    the steps of refinement."""

    coef: np.ndarray
    intercept: float
    solver: str
    rank: int
    covariance_factor: np.ndarray  # F with (X̃ᵀX̃)⁻¹ = FFᵀ (a pseudo-inverse when rank-deficient)
    rss: float
    refinements: int = 0


class SufficientStatistics:
    """Solving from the moments alone, with no data to read again (a stream of moments, a sparse X too large to copy
    dense): no refinement, the RSS from the moments; on an ill-conditioned X̃ the minimum-norm answer through the
    eigendecomposition of X̃ᵀX̃, with a warning."""

    def __init__(self, system, why: str):
        self.system, self.why = system, why

    def refine(self, coef, intercept: float) -> Solution:
        system = self.system
        return Solution(coef, intercept, "normal-equations", system.d, system.inverse_factor(), system.rss(coef))

    def least_squares(self) -> Solution:
        warnings.warn(
            f"X is ill-conditioned or rank-deficient; {self.why}, the minimum-norm solution comes from the normal "
            "equations, accurate to about eps·cond(X)².",
            stacklevel=_user_stacklevel(),
        )
        system = self.system
        eigenvalues, eigenvectors = np.linalg.eigh(system.gram)
        keep = eigenvalues > eigenvalues[-1] * system.d * EPS
        factor = eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])
        coef = factor @ (factor.T @ system.xty)
        return Solution(coef, system.intercept(coef), "eigh", int(keep.sum()), factor, system.rss(coef))


class Passes:
    """The passes over data that can be read again, after the moments: the refinement of the normal equations'
    answer, and the RSS. Subclasses read the data: ``exact(θ)`` gives ([1, X]ᵀr, Σr²) for r = y − b − Xw in
    double-double, θ = (b, w); ``plain(w, offset)`` gives (Σr², Σr, (X − x_shift)ᵀr) in float64 for the
    residual in the shifted frame; ``least_squares()`` solves ill-conditioned data by a QR."""

    def __init__(self, X, y, system, weights: np.ndarray | None = None):
        self.X, self.y, self.system, self.weights = X, y, system, weights

    @property
    def extended(self) -> bool:
        """Whether the data are small enough for the residuals in double-double (``EXTENDED_LIMIT``)."""
        return self.X.size <= EXTENDED_LIMIT

    def refine(self, coef, intercept: float) -> Solution:
        """The normal equations' (b, w), as they are where the moments give every statistic to STATISTICS_TOLERANCE
        (``one_pass_enough``), else refined: until it converges in double-double, or on large data by one float64
        step where that can change a digit that matters, each correction solved by the same Cholesky factor."""
        system = self.system
        rss, refinements = system.rss(coef), 0
        if one_pass_enough(system, rss):
            pass
        elif self.extended:
            coordinates = refinement.Coordinates(system.x_mean, column_scale(system.gram), system.n)

            def step(theta):  # the normal equations with [1, X]ᵀr on the right, through the centred X̃ᵀX̃
                gradient, rss = self.exact(theta)
                total, centred = coordinates.centred_gradient(gradient)
                return coordinates.from_centred(total / system.n, system.solve(centred)), rss

            theta, refinements, rss = refinement.refine(step, np.append(intercept, coef), coordinates)
            coef, intercept = theta[0][1:], theta[0][0]
        elif system.condition() > SKIP_REFINEMENT_BELOW_CONDITION or EPS * system.tss > 1e-12 * rss:
            # One step: the correction solves the same system with, on the right,
            # X̃ᵀr = (X − x_shift)ᵀr − x_mean_after_shift·Σr.
            offset = system.y_mean_after_shift - system.x_mean_after_shift @ coef  # the intercept in the shifted frame
            rss, sum_r, xtr = self.plain(coef, offset)
            delta_w = system.solve(xtr - system.x_mean_after_shift * sum_r)
            # w + δw is kept in extended precision until b is formed: x̄ᵀ(w − round(w)) can be large.
            coef = coef.astype(np.longdouble) + delta_w
            offset, refinements = offset + (sum_r / system.n - system.x_mean_after_shift @ delta_w), 1
            coef, intercept = np.asarray(coef, dtype=np.float64), system.intercept(coef, offset)
        return Solution(coef, intercept, "normal-equations", system.d, system.inverse_factor(), rss, refinements)

    def rss(self, coef, intercept: float) -> float:
        """Σ(y − b − Xw)² over the data, in double-double where the data are small enough."""
        if self.extended:
            return self.exact((np.append(intercept, coef), np.zeros(len(coef) + 1)))[1]
        system = self.system
        return self.plain(coef, intercept - system.y_shift + system.x_shift @ coef)[0]

    def minimum_norm(self, triangle: np.ndarray, scale: np.ndarray, y_mean: float) -> Solution:
        """The minimum-norm coef_ from the triangular factor of [1/√n, X̃/D, ỹ], by an SVD of its X̃/D block.

        Behind the constant column, that block is the factor of X̃/D made exactly orthogonal to the constant,
        and its last column holds the coordinates of ỹ (``impls.closed_form.double_double_factor.minimum_norm``).
        """
        d = len(scale)
        coef, rank, factor = minimum_norm(
            triangle[1 : d + 1, 1 : d + 1], triangle[1 : d + 1, d + 1], scale, self.system.n
        )
        intercept = float(y_mean - self.system.x_mean @ coef)
        return Solution(coef, intercept, "svd", rank, factor, self.rss(coef, intercept))


class RowBlocks(Passes):
    """An in-memory X (a memmap included), read one row block at a time."""

    def exact(self, theta: refinement.Pair) -> tuple[refinement.Pair, float]:
        return refinement.residual_sums(self.X, self.y, theta, weights=self.weights)[1:]

    def plain(self, coef, offset: float) -> tuple[float, float, np.ndarray]:
        X, y, system = self.X, self.y, self.system
        rss, sum_r, xtr = 0.0, 0.0, np.zeros(X.shape[1])
        for start in range(0, X.shape[0], BLOCK_ROWS):
            x = self.shifted_rows(start, start + BLOCK_ROWS)
            y_block = np.asarray(y[start : start + BLOCK_ROWS], dtype=np.float64)  # float32 y: cast first
            residual = (y_block - system.y_shift) - x @ coef - offset
            weighted = residual if self.weights is None else residual * self.weights[start : start + BLOCK_ROWS]
            rss += residual @ weighted
            sum_r += weighted.sum()
            xtr += x.T @ weighted
        return rss, sum_r, xtr

    def shifted_rows(self, start: int, stop: int):
        """Rows start to stop of X − x_shift."""
        x = self.X[start:stop]
        return x - self.system.x_shift if self.system.shifted else x

    def least_squares(self) -> Solution:
        """Least squares by a column-pivoted QR of B = [1/√n, X̃ D⁻¹] (X̃ centred, D its column norms), refined
        until it converges against the residuals of the original data in double-double.

        The refinement solves the augmented system [[I, B], [Bᵀ, 0]] [r; φ] = [y; 0] for the residual and the
        parameters together (Björck's method), which converges where κ(B)·eps < 1, whatever the residual, and
        so recovers the digits lost in forming B. Truly rank-deficient data get the minimum-norm answer by SVD.
        With sample weights, the QR is of the rows scaled by √w, in double-double (``weighted_least_squares``).
        """
        if self.weights is not None:
            return self.weighted_least_squares()
        X, y, system = self.X, self.y, self.system
        n, d = X.shape
        centred = X - system.x_mean
        norms = np.linalg.norm(centred, axis=0)
        norms[norms == 0] = 1.0
        B = np.column_stack([np.full(n, 1 / np.sqrt(n)), centred / norms])
        del centred
        Q, R, pivots = scipy.linalg.qr(B, mode="economic", pivoting=True)
        if rank_deficient(np.diag(R), n, d):
            y_mean = float(np.mean(y, dtype=np.float64))
            triangle = np.linalg.qr(np.column_stack([B, y - y_mean]), mode="r")
            # Fewer examples than columns: the factor has fewer rows than columns, padded with zero rows.
            triangle = np.vstack([triangle, np.zeros((d + 2 - len(triangle), d + 2))])
            return self.minimum_norm(triangle, norms, y_mean)

        def correction(f, g):  # (δr, δφ) with δr + B δφ = f and Bᵀ δr = g, through B = QR
            h = scipy.linalg.solve_triangular(R, g[pivots], trans="T")
            qf = Q.T @ f
            delta_phi = np.empty(d + 1)
            delta_phi[pivots] = scipy.linalg.solve_triangular(R, qf - h)
            return Q @ h + (f - Q @ qf), delta_phi

        coordinates = refinement.Coordinates(system.x_mean, norms, n)
        first_residual, phi = correction(np.asarray(y, dtype=np.float64), np.zeros(d + 1))
        residual, delta_r = (first_residual, np.zeros(n)), np.zeros(n)

        def step(theta):  # f = y − b − Xw − r and g = −Bᵀr in double-double, r kept in double-double beside θ
            nonlocal residual, delta_r
            # The last step's δr, applied now that its δθ was (refine drops a correction that stopped shrinking).
            residual = refinement.add(residual, delta_r)
            f, gradient, rss = refinement.residual_sums(X, y, theta, residual)
            delta_r, delta_phi = correction(f, -coordinates.gradient(gradient))
            return coordinates.parameters(delta_phi), rss

        theta, refinements, rss = refinement.refine(step, coordinates.parameters(phi), coordinates)
        # (BᵀB)⁻¹ = P R⁻¹ R⁻ᵀ Pᵀ, and BᵀB = diag(1, D⁻¹X̃ᵀX̃D⁻¹) (the constant column is orthogonal to the
        # centred ones), so (X̃ᵀX̃)⁻¹ = FFᵀ with F the rows of P R⁻¹ for X, divided by D.
        r_inverse = scipy.linalg.solve_triangular(R, np.eye(d + 1))
        factor = np.empty_like(r_inverse)
        factor[pivots] = r_inverse
        return Solution(theta[0][1:], theta[0][0], "qr", d, factor[1:] / norms[:, None], rss, refinements)

    def weighted_least_squares(self) -> Solution:
        """Weighted least squares on ill-conditioned data: the double-double factor of √w·[1, X − x̄, y − ȳ], one
        Householder update per block of rows (``impls.closed_form.double_double_factor``), accurate to about
        1e-32·cond(X̃)."""
        X, y, system = self.X, self.y, self.system
        blocks = (
            (X[start : start + BLOCK_ROWS], y[start : start + BLOCK_ROWS], self.weights[start : start + BLOCK_ROWS])
            for start in range(0, X.shape[0], BLOCK_ROWS)
        )
        factor = factor_of_blocks(blocks, system.d + 2, system.x_mean, system.y_mean)
        fit = factor_solutions(factor, system.d, system.x_mean, system.y_mean, X.shape[0])[0]
        return Solution(fit.coef, fit.intercept, fit.solver, fit.rank, fit.covariance_factor, fit.rss)


class SparsePasses(RowBlocks):
    """A scipy.sparse X (CSR), never densified but for a QR on ill-conditioned data, and then only where a dense
    copy fits in memory (``dense_fits``): refined in float64, by the sparse products of ``shifted``, X − x_shift
    (X itself where no column is shifted, ``impls.closed_form.moments.sparse_shifts``), with w and with r."""

    extended = False

    def __init__(self, X, y, system, weights: np.ndarray | None = None, shifted=None):
        super().__init__(X, y, system, weights)
        self.shifted = X if shifted is None else shifted

    def shifted_rows(self, start: int, stop: int):
        return self.shifted[start:stop]

    def least_squares(self) -> Solution:
        if dense_fits(self.X.shape):
            return RowBlocks(self.X.toarray(), self.y, self.system, self.weights).least_squares()
        return SufficientStatistics(self.system, "with a sparse X too large to copy dense").least_squares()


def dense_fits(shape: tuple[int, int]) -> bool:
    """Whether DENSE_COPIES float64 copies of an X of this shape fit in half the memory available now."""
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):  # not Linux: assume 8 GiB
        available = 8 * 2**30
    return DENSE_COPIES * shape[0] * (shape[1] + 1) * 8 <= available / 2


def one_pass_enough(system, rss: float) -> bool:
    """Whether the moments alone, with a pilot's residual (``impls.closed_form.moments.Pilot``), give every statistic to
    STATISTICS_TOLERANCE relative: σ², the standard errors, R² and 1 − R² (the RSS), and (b, w) normwise in the
    scale of the fitted values (φ = (√n·(b + x̄ᵀw), D·w)).

    - cond(X̃ᵀX̃) ≤ SKIP_REFINEMENT_BELOW_CONDITION: the Cholesky solve loses at most a digit more than the moments;
    - no shift: means no larger than the spread, so that b = ȳ − x̄ᵀw is as accurate as the centred solution;
    - Σw(r − r̄)² ≤ MAX_PILOT_EXCESS·RSS: the RSS, Σr̃² − 2δᵀX̃ᵀr̃ + δᵀX̃ᵀX̃δ, loses at most that factor of the
      moments' own accuracy (eps times a block's length at worst, far less in practice);
    - 2√(d + 2)·eps·√(TSS/RSS) ≤ STATISTICS_TOLERANCE: each r = ỹ − x̃ᵀw₀ − c₀, a sum of d + 2 terms rounded in
      float64, is off by about √(d + 2)·eps·|ỹ|, which moves Σr² by at most 2‖error‖/‖r‖ of itself: R² up to
      about 1 − 1e-9 at 50 features reads X once; an exact fit (RSS = 0) is refined.

    tests/test_closed_form.py checks every statistic against the refined fit up to R² = 1 − 1e-9: the one-pass
    statistics agree to 1e-13 or better there. Without a pilot (dask, sparse X, a stream), never: large data there
    skip the pass only where cond ≤ SKIP_REFINEMENT_BELOW_CONDITION and eps·TSS ≤ 1e-12·RSS (``Passes.refine``)."""
    if system.pilot_coef is None or system.shifted or not system.condition() <= SKIP_REFINEMENT_BELOW_CONDITION:
        return False
    if not (rss > 0 and system.residual_ss <= MAX_PILOT_EXCESS * rss):
        return False
    return bool(2 * np.sqrt(system.d + 2) * EPS * np.sqrt(system.tss / rss) <= STATISTICS_TOLERANCE)


def column_scale(gram: np.ndarray) -> np.ndarray:
    """D: the norms of X̃'s columns, 1 for a constant column (which stays a column of zeros)."""
    scale = np.sqrt(np.maximum(np.diag(gram), 0.0))
    scale[scale == 0] = 1.0
    return scale


def rank_deficient(diagonal: np.ndarray, n: int, d: int) -> bool:
    """The rank test on the diagonal of a column-pivoted QR of B = [1/√n, X̃/D] (n × (d + 1)): truly
    rank-deficient when its last entry is at most eps·max(n, d) times the first, or B has fewer rows than columns."""
    diagonal = np.abs(diagonal)
    return len(diagonal) < d + 1 or diagonal[-1] <= EPS * max(n, d) * diagonal[0]
