"""Least squares to the last digit the float64 data allow: iterative refinement (Björck; Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., ch. 20) with the residual r = y − b − Xw and [1, X]ᵀr computed in
double-double arithmetic, each correction solved in float64 by the factorisation at hand, until it stops mattering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS = np.finfo(np.float64).eps
# Each step multiplies the error by about cond·eps (cond of B for a QR, of BᵀB for the normal equations), so
# five steps reach float64's resolution even at cond(B) = 1e12; the cap only stops an iteration that cannot.
MAX_REFINEMENTS = 10
# Numbers per block of rows in the double-double passes: their dozen temporaries then stay in cache, where
# whole-array temporaries would go to memory and back for every operation.
BLOCK_NUMBERS = 2**15
SPLITTER = 2.0**27 + 1.0  # Veltkamp's constant: splits a float64 into two halves of 26 bits

Pair = tuple[np.ndarray, np.ndarray]  # a double-double number (or array of them): high + low, |low| ≤ ulp(high)/2


def two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth's TwoSum, any order of magnitude)."""
    s = a + b
    b_part = s - a
    return s, (a - (s - b_part)) + (b - b_part)


def two_product(a, b):
    """(p, e) with p = fl(a·b) and p + e = a·b exactly (Dekker's product: no fused multiply-add needed)."""
    p = a * b
    a_high, a_low = _split(a)
    b_high, b_low = _split(b)
    return p, ((a_high * b_high - p) + a_high * b_low + a_low * b_high) + a_low * b_low


def _split(a):
    """a = high + low, each of at most 26 significant bits, so that products of halves are exact."""
    scaled = SPLITTER * a
    high = scaled - (scaled - a)
    return high, a - high


def add(pair: Pair, value) -> Pair:
    """A double-double pair plus float64 values, renormalised."""
    s, e = two_sum(pair[0], value)
    return two_sum(s, e + pair[1])


def _extract(terms: np.ndarray, axis: int):
    """(on_grid, rest): terms rounded to a grid on which their sum is exact, and the exact remainders.

    The grid step is σ·eps/2 with σ a power of two above twice the count times the largest term: every partial
    sum of the rounded terms is then a multiple of that step below σ, hence exact, in any order (Rump, Ogita and
    Oishi's ExtractVector), and no remainder exceeds the step.
    """
    largest = np.max(np.abs(terms), axis=axis, keepdims=True, initial=0.0)
    sigma = np.ldexp(1.0, np.frexp(2.0 * (terms.shape[axis] + 1) * largest)[1])
    on_grid = (sigma + terms) - sigma
    return on_grid, terms - on_grid


def exact_sum(terms: np.ndarray, axis: int) -> Pair:
    """Σ terms along ``axis`` as a double-double pair, correct to about eps² of the sum (plus m³eps³·max|term|).

    Two extractions leave remainders of about m²·eps² of the largest term, whose float64 sum loses nothing that
    matters.
    """
    first, rest = _extract(terms, axis)
    second, rest = _extract(rest, axis)
    high, error = two_sum(first.sum(axis=axis), second.sum(axis=axis))
    return add((high, error), rest.sum(axis=axis))


def as_columns(X) -> np.ndarray:
    """A block of X, float64, with its columns as the rows of a C-ordered array: every sum below, down the
    columns of X or across them, then runs along rows of that array, contiguous in memory, which numpy adds
    fastest (not across the short rows of X)."""
    return np.asfortranarray(X, dtype=np.float64).T  # float64 first: a float32 block would split wrongly


def block_residual(columns: np.ndarray, y, theta: Pair, residual: Pair | None = None) -> Pair:
    """y − b − Xw (− ``residual``) over a block of rows (X as ``as_columns`` gives it), in double-double,
    for θ = (b, w) in double-double."""
    high, low = theta
    products, errors = two_product(columns, high[1:, None])
    terms = [y[None], np.full((1, len(y)), -high[0]), -products]
    lows = -(errors + columns * low[1:, None]).sum(axis=0) - low[0]
    if residual is not None:
        terms.append(-residual[0][None])
        lows = lows - residual[1]
    return add(exact_sum(np.vstack(terms), axis=0), lows)


def block_gradient(columns: np.ndarray, r: Pair) -> Pair:
    """[1, X]ᵀr over a block of rows, in double-double: exact products, then an exact sum down each column."""
    products, errors = two_product(columns, r[0])
    lows = np.append(r[1].sum(), (errors + columns * r[1]).sum(axis=1))
    return add(exact_sum(np.vstack([r[0][None], products]), axis=1), lows)


def block_sums(
    X, y, theta: Pair, residual: Pair | None = None, weights: np.ndarray | None = None
) -> tuple[np.ndarray, Pair, float]:
    """(f, [1, X]ᵀWr, Σwr²) over a block of rows, with f = y − b − Xw − ``residual`` rounded to float64 (W the
    sample ``weights``, the identity without them).

    Without ``residual`` (the normal equations' refinement), r is f itself, the residual of θ, kept in
    double-double for the gradient; with it (Björck's, which carries r beside θ), r is ``residual``.
    """
    columns, y = as_columns(X), np.asarray(y, dtype=np.float64)
    f = block_residual(columns, y, theta, residual)
    r = f if residual is None else residual
    if weights is None:
        return f[0], block_gradient(columns, r), float(r[0] @ r[0])
    high, error = two_product(weights, r[0])  # w·r in double-double: exact product, then w times the low part
    return f[0], block_gradient(columns, (high, error + weights * r[1])), float(r[0] @ (weights * r[0]))


def sum_parts(high: np.ndarray, low: np.ndarray) -> Pair:
    """The sum of double-double parts (one row per block or chunk), exactly as one sum."""
    return add(exact_sum(high, axis=0), low.sum(axis=0))


def residual_sums(
    X, y, theta: Pair, residual: Pair | None = None, weights: np.ndarray | None = None
) -> tuple[np.ndarray, Pair, float]:
    """``block_sums`` over all the rows of an in-memory X (a memmap included), block by block."""
    rows = max(1, BLOCK_NUMBERS // (X.shape[1] + 1))
    f, parts, rss = np.empty(len(X)), [], 0.0
    for start in range(0, len(X), rows):
        block = slice(start, start + rows)
        part = None if residual is None else (residual[0][block], residual[1][block])
        block_weights = None if weights is None else weights[block]
        f[block], gradient, block_rss = block_sums(X[block], y[block], theta, part, block_weights)
        parts.append(gradient)
        rss += block_rss
    high, low = (np.array(side) for side in zip(*parts))
    return f, sum_parts(high, low), rss


@dataclass(frozen=True)
class Coordinates:
    """φ = (√n·c, D·w) with c = b + x̄ᵀw: the parameters in the basis B = [1/√n, (X − x̄)/D] in which the
    factorisations are made (x̄ the column means as rounded, D the norms of the centred columns; with sample
    weights, n is their sum, x̄ the weighted means and D the weighted norms)."""

    x_mean: np.ndarray
    scale: np.ndarray
    n: float

    def centred_gradient(self, gradient: Pair) -> tuple[float, np.ndarray]:
        """(Σr, (X − x̄)ᵀr) from [1, X]ᵀr, x̄Σr subtracted in double-double: with large means the two nearly cancel."""
        high, low = gradient
        products, errors = two_product(self.x_mean, high[0])
        centred, error = two_sum(high[1:], -products)
        return high[0] + low[0], centred + (error - errors + low[1:] - self.x_mean * low[0])

    def gradient(self, gradient: Pair) -> np.ndarray:
        """Bᵀr from [1, X]ᵀr."""
        total, centred = self.centred_gradient(gradient)
        return np.append(total / np.sqrt(self.n), centred / self.scale)

    def parameters(self, phi: np.ndarray) -> np.ndarray:
        """(b, w) from φ."""
        return self.from_centred(phi[0] / np.sqrt(self.n), phi[1:] / self.scale)

    def from_centred(self, constant: float, coef: np.ndarray) -> np.ndarray:
        """(b, w) from the constant of the centred model c = b + x̄ᵀw and w."""
        return np.append(constant - self.x_mean @ coef, coef)

    def size(self, delta: np.ndarray) -> float:
        """‖δφ‖ for δθ = (δb, δw): about the norm of the change in the fitted values."""
        coef = delta[1:]
        return float(np.hypot(np.sqrt(self.n) * (delta[0] + self.x_mean @ coef), np.linalg.norm(self.scale * coef)))


def refine(step: Callable[[Pair], tuple[np.ndarray, float]], theta: np.ndarray, coordinates: Coordinates):
    """θ = (b, w), kept in double-double, corrected by δθ = ``step(θ)`` until δθ is below float64's resolution
    of θ in every entry, or stops shrinking, or after ``MAX_REFINEMENTS`` steps; returns (θ, steps, RSS).

    ``step`` makes one pass over the data and returns the correction and the RSS of the residual it computed.
    A correction that is not at most half the one before (in ‖δφ‖, LAPACK's rule in xGERFS) is noise at the
    limit of the arithmetic, or the start of a divergence: it is dropped, and the iteration ends.
    """
    theta, previous, steps = (np.asarray(theta, dtype=np.float64), np.zeros(len(theta))), np.inf, 0
    while steps < MAX_REFINEMENTS:
        delta, rss = step(theta)
        steps += 1
        size = coordinates.size(delta)
        if not size <= previous / 2:  # NaN included
            break
        theta, previous = add(theta, delta), size
        if np.all(np.abs(delta) <= EPS * np.abs(theta[0])):
            break
    return theta, steps, rss
