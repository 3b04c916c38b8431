"""The triangular factor R of the rows of √w·[1, X − x_shift, Y − y_shift] in double-double arithmetic (about 32
digits), updated block by block by a Householder QR of the stack [R; block], as R's biglm updates Miller's AS 274;
and the least-squares answers it holds, solved by back substitution in double-double, or of minimum norm by an SVD.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from impls.closed_form.refinement import EPS, Pair, sum_parts, two_product, two_sum


def _normalised(high, low) -> Pair:
    """(s, e) with s = fl(high + low) and s + e = high + low exactly, for |high| ≥ |low| (Dekker's FastTwoSum)."""
    s = high + low
    return s, low - (s - high)


def dd_add(a: Pair, b: Pair) -> Pair:
    s, e = two_sum(a[0], b[0])
    return _normalised(s, e + (a[1] + b[1]))


def dd_negative(a: Pair) -> Pair:
    return -a[0], -a[1]


def dd_multiply(a: Pair, b: Pair) -> Pair:
    p, e = two_product(a[0], b[0])
    return _normalised(p, e + (a[0] * b[1] + a[1] * b[0]))


def dd_divide(a: Pair, b: Pair) -> Pair:
    """a / b: the float64 quotient, then the quotient of what it leaves, a − q·b, computed exactly enough."""
    q = a[0] / b[0]
    remainder = dd_add(a, dd_negative(dd_multiply((q, np.zeros_like(q)), b)))
    return _normalised(q, remainder[0] / b[0])


def dd_sqrt(a: Pair) -> Pair:
    """√a: the float64 root s, corrected by (a − s²) / 2s with s² exact (0 stays 0)."""
    s = np.sqrt(a[0])
    square, error = two_product(s, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        correction = np.where(s > 0, ((a[0] - square) - error + a[1]) / (2 * s), 0.0)
    return _normalised(s, correction)


def dd_sum(a: Pair) -> Pair:
    """Σ over the first axis, the high parts summed exactly (``impls.closed_form.refinement.exact_sum``)."""
    return sum_parts(a[0], a[1])


def scaled_rows(X, Y, x_shift, y_shift, weights) -> Pair:
    """The block's rows of √w·[1, X − x_shift, Y − y_shift] in double-double: the shifts subtracted exactly."""
    x = two_sum(np.asarray(X, dtype=np.float64), -x_shift)
    y = two_sum(np.asarray(Y, dtype=np.float64), -np.asarray(y_shift))
    y = (y[0].reshape(len(X), -1), y[1].reshape(len(X), -1))
    ones = (np.ones(len(X)), np.zeros(len(X)))
    rows = tuple(np.column_stack([ones[part], x[part], y[part]]) for part in (0, 1))
    if weights is None:
        return rows
    root = dd_sqrt((weights, np.zeros_like(weights)))
    return dd_multiply(rows, (root[0][:, None], root[1][:, None]))


def householder_update(R: Pair, rows: Pair) -> Pair:
    """R' with R'ᵀR' = RᵀR + rowsᵀrows: the triangular factor of the stack [R; rows] by Householder reflections in
    double-double, each zeroing one column of ``rows`` against the diagonal entry of R above it."""
    R_high, R_low = R[0].copy(), R[1].copy()
    Z_high, Z_low = rows[0].copy(), rows[1].copy()
    for j in range(R_high.shape[1]):
        z = (Z_high[:, j], Z_low[:, j])
        below = dd_sum(dd_multiply(z, z))  # ‖z‖²
        if below[0] == 0:
            continue
        alpha = (R_high[j, j], R_low[j, j])
        norm = dd_sqrt(dd_add(dd_multiply(alpha, alpha), below))
        beta = norm if alpha[0] < 0 else dd_negative(norm)  # −sign(α)‖(α, z)‖: α − β never cancels
        # The reflection I − τvvᵀ, v = (1, z / (α − β)), τ = (β − α) / β, maps (α, z) to (β, 0) (LAPACK's dlarfg).
        v = dd_divide(z, dd_add(alpha, dd_negative(beta)))
        tau = dd_divide(dd_add(beta, dd_negative(alpha)), beta)
        rest = (Z_high[:, j + 1 :], Z_low[:, j + 1 :])
        v_column = (v[0][:, None], v[1][:, None])
        s = dd_add((R_high[j, j + 1 :], R_low[j, j + 1 :]), dd_sum(dd_multiply(v_column, rest)))
        t = dd_multiply(tau, s)
        R_high[j, j + 1 :], R_low[j, j + 1 :] = dd_add((R_high[j, j + 1 :], R_low[j, j + 1 :]), dd_negative(t))
        update = dd_multiply(v_column, (t[0][None], t[1][None]))
        Z_high[:, j + 1 :], Z_low[:, j + 1 :] = dd_add(rest, dd_negative(update))
        R_high[j, j], R_low[j, j] = beta
    return R_high, R_low


def back_substitution(R: Pair, right: Pair) -> Pair:
    """R⁻¹·right in double-double, R upper-triangular and non-singular, ``right`` a (size, k) pair."""
    size = len(R[0])
    solution = (np.zeros_like(right[0]), np.zeros_like(right[1]))
    for i in range(size - 1, -1, -1):
        known = (R[0][i, i + 1 :, None], R[1][i, i + 1 :, None])
        done = dd_sum(dd_multiply(known, (solution[0][i + 1 :], solution[1][i + 1 :])))
        value = dd_divide(dd_add((right[0][i], right[1][i]), dd_negative(done)), (R[0][i, i], R[1][i, i]))
        solution[0][i], solution[1][i] = value
    return solution


def factor_of_blocks(blocks, size: int, x_shift, y_shift) -> Pair:
    """R of the rows of every (X, Y, weights) block in ``blocks``, one Householder update per block."""
    factor = (np.zeros((size, size)), np.zeros((size, size)))
    for X, Y, weights in blocks:
        factor = householder_update(factor, scaled_rows(X, Y, x_shift, y_shift, weights))
    return factor


class FactorFit(NamedTuple):
    """One target's answer from the factor: (b, w), how, the rank, F with (X̃ᵀWX̃)⁻¹ = FFᵀ, the RSS, and what the
    statistics need besides: Σw, the weighted means of X and Σw(y − ȳ)²."""

    coef: np.ndarray
    intercept: float
    solver: str
    rank: int
    covariance_factor: np.ndarray
    rss: float
    n: float
    x_mean: np.ndarray
    tss: float


def factor_solutions(factor: Pair, d: int, x_shift, y_shift, rows: int) -> list[FactorFit]:
    """Each target's least-squares answer from R, the factor of √w·[1, X − x_shift, Y − y_shift] over ``rows`` rows.

    Behind the constant column, R's X block is the factor of X̃ (the part of X orthogonal to the constant) and its
    target columns hold the coordinates of each ỹ; the rows below the X block hold each residual. Solved by back
    substitution in double-double where X̃ has full rank; else the minimum-norm answer by an SVD of that block.
    """
    high, low = factor
    x_shift = np.zeros(d) if x_shift is None else x_shift
    total = float(high[0, 0] ** 2)  # Σw
    x_mean = x_shift + high[0, 1 : d + 1] / high[0, 0]
    block = high[1 : d + 1, 1 : d + 1]
    scale = np.sqrt(np.sum(block**2, axis=0))
    scale[scale == 0] = 1.0
    singular = np.linalg.svd(block / scale, compute_uv=False)
    full_rank = singular[-1] > EPS * max(rows, d) * singular[0]
    if full_rank:
        upper, right = (part[: d + 1, : d + 1] for part in factor), tuple(part[: d + 1, d + 1 :] for part in factor)
        theta = back_substitution(tuple(upper), right)
        covariance_factor = scipy.linalg.solve_triangular(block, np.eye(d))
    fits = []
    for j, shift in enumerate(np.atleast_1d(y_shift)):
        column = high[:, d + 1 + j]
        tss, residual_rows = float(column[1:] @ column[1:]), column[d + 1 :]
        if full_rank:
            coef = (theta[0][1:, j], theta[1][1:, j])
            # b = y_shift + c − x_shiftᵀw in double-double: the shifts can be large next to b.
            shifted = dd_sum(dd_multiply((x_shift, np.zeros(d)), coef))
            constant = dd_add((np.float64(shift), np.float64(0.0)), (theta[0][0, j], theta[1][0, j]))
            intercept = dd_add(constant, dd_negative(shifted))
            rss = float(residual_rows @ residual_rows)
            fit = (coef[0] + coef[1], float(intercept[0] + intercept[1]), "qr", d, covariance_factor, rss)
        else:
            coef, rank, covariance = minimum_norm(block / scale, column[1 : d + 1], scale, rows)
            residual = column[1 : d + 1] - block @ coef
            y_mean = shift + high[0, d + 1 + j] / high[0, 0]
            rss = float(residual @ residual + residual_rows @ residual_rows)
            fit = (coef, float(y_mean - x_mean @ coef), "svd", rank, covariance, rss)
        fits.append(FactorFit(*fit, total, x_mean, tss))
    return fits


def minimum_norm(triangle: np.ndarray, coordinates: np.ndarray, scale: np.ndarray, n: float):
    """(w, rank, F): the minimum-norm w with X̃w ≈ ỹ, from T, the factor of X̃/D made orthogonal to the constant
    (X̃/D = Q·T), and t = Qᵀỹ; with T = UΣVᵀ, D·w = V Σ⁺ Uᵀt. Singular values below eps·max(n, d) times the
    largest count as zero. F, with FFᵀ the pseudo-inverse of X̃ᵀX̃, for the standard errors."""
    d = len(scale)
    U, singular, Vt = np.linalg.svd(triangle)
    keep = singular > EPS * max(n, d) * singular[0]
    coef = (Vt[keep].T @ ((U[:, keep].T @ coordinates) / singular[keep])) / scale
    # That is the minimum norm of D·w; the minimum norm of w removes w's part in the null space of X̃.
    null = Vt[~keep].T / scale[:, None]
    if null.size:
        coef = coef - null @ np.linalg.lstsq(null, coef, rcond=None)[0]
    # The pseudo-inverse is not invariant under the column scaling D: that of X̃ᵀX̃ = D·TᵀT·D comes from the SVD of
    # T·D itself, its `rank` largest singular values (the rank found on the scaled T, where it is well judged).
    rank = int(keep.sum())
    _, unscaled, unscaled_Vt = np.linalg.svd(triangle * scale)
    return coef, rank, unscaled_Vt[:rank].T / unscaled[:rank]
