"""The closed form on dask arrays: the same block accumulator, one task per chunk, combined by a tree sum.

Only array methods are used (``rechunk``, ``map_blocks``, ``sum``, ``@``), so this works with classic
``dask.array`` and with dask's query planning, on whatever scheduler is active (a ``distributed.Client``
or dask's default): nothing here starts a cluster. The per-chunk functions are module-level, so that
worker processes can import them. dask itself is imported only when the data already are dask objects.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg
from sklearn.utils import InputTags
from sklearn.utils.validation import _check_feature_names, check_is_fitted

from impls.closed_form.moments import block_moments
from impls.closed_form.refinement import (
    EPS,
    Coordinates,
    Pair,
    add,
    as_columns,
    block_gradient,
    block_residual,
    block_sums,
    refine,
    sum_parts,
)
from impls.closed_form.solvers import Passes, Solution, column_scale, rank_deficient


@dataclasses.dataclass(slots=True)
class DaskInputTags(InputTags):
    """scikit-learn's input tags and one more: ``dask``, the estimator fits dask collections where they live."""

    dask: bool = False


def dask_input_tags(tags):
    """``tags`` (an estimator's scikit-learn Tags) saying that it fits dask collections without gathering them."""
    # Field by field, not dataclasses.asdict, which deep-copies every field.
    fields = {field.name: getattr(tags.input_tags, field.name) for field in dataclasses.fields(tags.input_tags)}
    tags.input_tags = DaskInputTags(**fields, dask=True)
    return tags


def as_arrays(X, y):
    """X as a 2-D dask array with one chunk across its columns, y as 1-D with X's row chunks; and X's
    column names when X is a DataFrame (None otherwise)."""
    import dask.array as da

    names = [str(name) for name in X.columns] if hasattr(X, "columns") else None
    # A dask DataFrame or Series: the row counts of its partitions are needed. With query planning, the
    # expression is optimised first, so that the counts are of the partitions the array will have.
    if hasattr(X, "to_dask_array"):
        X = (X.optimize() if hasattr(X, "optimize") else X).to_dask_array(lengths=True)
    if hasattr(y, "to_dask_array"):
        y = (y.optimize() if hasattr(y, "optimize") else y).to_dask_array(lengths=True)
    X, y = da.asarray(X), da.asarray(y)
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(f"X must be 2-D and y 1-D; got {X.ndim}-D X and {y.ndim}-D y.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y have inconsistent numbers of samples: {X.shape[0]} and {y.shape[0]}.")
    X = X.rechunk({1: -1}).astype(np.float64) if X.dtype.kind in "biu" else X.rechunk({1: -1})
    return X, y.rechunk((X.chunks[0],)), names


def validate_data(estimator, X, y):
    """``as_arrays``, setting ``n_features_in_`` and ``feature_names_in_`` as scikit-learn's ``validate_data`` does."""
    X, y, names = as_arrays(X, y)
    estimator.n_features_in_ = X.shape[1]
    if names is not None and all(isinstance(name, str) for name in names):
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    else:
        vars(estimator).pop("feature_names_in_", None)
    return X, y


def column_header(X):
    """An empty pandas DataFrame with a dask DataFrame's columns (scikit-learn checks names on pandas), or X."""
    if not hasattr(X, "columns"):
        return X
    import pandas

    return pandas.DataFrame(columns=X.columns)


def first_block(X, y):
    """The first row chunk of X and y that has rows, computed (for the shifts that keep the centring exact);
    empty chunks, as a file of no rows gives, are passed over here and add nothing to any sum."""
    import dask

    start = 0
    for rows in X.chunks[0]:
        if rows:
            return dask.compute(X[start : start + rows], y[start : start + rows])
    raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")


def _block_moments(X_block, y_block, x_shift, y_shift):
    return block_moments(X_block, y_block[:, 0], x_shift, y_shift)[None]


def moments_of_chunks(X, y, x_shift, y_shift: float) -> np.ndarray:
    """Σ over chunks of ``block_moments``: one task per chunk, then dask's tree sum of (d+2)×(d+2) matrices."""
    import dask.array as da

    size = X.shape[1] + 2
    chunks = ((1,) * X.numblocks[0], (size,), (size,))
    per_chunk = da.map_blocks(
        _block_moments, X, y[:, None], x_shift, y_shift, new_axis=[2], dtype=np.float64, chunks=chunks
    )
    return per_chunk.sum(axis=0).compute()


def _block_residuals(X_block, y_block, coef, offset, x_shift, y_shift):
    """[Σr², Σr, (X − x_shift)ᵀr] of one chunk, r = (y − y_shift) − (X − x_shift)w − offset, in float64."""
    x = X_block - x_shift if x_shift.any() else X_block
    residual = (y_block[:, 0].astype(np.float64) - y_shift) - x @ coef - offset
    return np.concatenate([[residual @ residual, residual.sum()], x.T @ residual])[None, :]


def _block_exact_sums(X_block, y_block, theta_high, theta_low):
    """[[1, X]ᵀr as its high and low parts, Σr²] of one chunk, for r = y − b − Xw in double-double."""
    if not len(X_block):
        return np.zeros((1, 2 * len(theta_high) + 1))
    _, (high, low), rss = block_sums(X_block, y_block[:, 0], (theta_high, theta_low))
    return np.concatenate([high, low, [rss]])[None, :]


class Chunks(Passes):
    """Dask data, one task per chunk, as ``RowBlocks`` reads rows in memory: in ``exact``, each chunk's part of
    [1, X]ᵀr is summed with the others exactly (the parts are of the size of [1, X]ᵀr over a chunk, while their
    sum is nearly zero); ill-conditioned data get the in-memory rank test and a QR refined as in memory."""

    def exact(self, theta: Pair) -> tuple[Pair, float]:
        import dask.array as da

        width = 2 * len(theta[0]) + 1
        chunks = ((1,) * self.X.numblocks[0], (width,))
        parts = da.map_blocks(
            _block_exact_sums, self.X, self.y[:, None], theta[0], theta[1], dtype=np.float64, chunks=chunks
        ).compute()
        half = len(theta[0])
        return sum_parts(parts[:, :half], parts[:, half : 2 * half]), float(parts[:, -1].sum())

    def plain(self, coef, offset: float) -> tuple[float, float, np.ndarray]:
        import dask.array as da

        shifts = (self.system.x_shift, self.system.y_shift)
        chunks = ((1,) * self.X.numblocks[0], (self.X.shape[1] + 2,))
        coef = np.asarray(coef, dtype=np.float64)
        per_chunk = da.map_blocks(
            _block_residuals, self.X, self.y[:, None], coef, offset, *shifts, dtype=np.float64, chunks=chunks
        )
        sums = per_chunk.sum(axis=0).compute()
        return sums[0], sums[1], sums[2:]

    def least_squares(self) -> Solution:
        """The in-memory rank test and, on truly rank-deficient data, its minimum-norm answer, from the R factor
        of [1/√n, X̃/D, ỹ] (one more pass); full-rank data by a QR refined as in memory (``qr_refined``)."""
        system = self.system
        scale = column_scale(system.gram)
        triangle = r_factor(self.X, self.y, system.x_mean, scale, system.y_mean)
        n, d = int(system.n), system.d
        diagonal = np.diag(scipy.linalg.qr(triangle[: d + 1, : d + 1], mode="r", pivoting=True)[0])
        if rank_deficient(diagonal[: min(n, d + 1)], n, d):
            return self.minimum_norm(triangle, scale, system.y_mean)
        coef, intercept, factor, rss, refinements = qr_refined(self.X, self.y, system)
        return Solution(coef, intercept, "qr", d, factor, rss, refinements)


def _block_r(X_block, y_block, x_mean, scale, root_n, y_mean):
    """The triangular factor of this chunk's rows of [1/√n, (X − x̄)/D, y − ȳ], zero rows added to make it
    square (a chunk of fewer rows than columns, an empty one included)."""
    z = np.column_stack([np.full(len(X_block), 1 / root_n), (X_block - x_mean) / scale, y_block[:, 0] - y_mean])
    size = z.shape[1]
    triangle = np.linalg.qr(z, mode="r") if len(z) else np.zeros((0, size))
    return np.vstack([triangle, np.zeros((size - len(triangle), size))])


def r_factor(X, y, x_mean, scale, y_mean: float) -> np.ndarray:
    """R of [1/√n, (X − x̄)/D, y − ȳ] by TSQR: one Householder QR per chunk, then one of their stacked
    (d + 2)-square factors, which has the same R (a QR of the blocks' Qs times theirs). Stable on
    rank-deficient data, where the Cholesky factor of the Gram matrix does not exist."""
    import dask.array as da

    size = X.shape[1] + 2
    chunks = ((size,) * X.numblocks[0], (size,))
    stacked = da.map_blocks(
        _block_r, X, y[:, None], x_mean, scale, np.sqrt(X.shape[0]), y_mean, dtype=np.float64, chunks=chunks
    )
    return np.linalg.qr(stacked.compute(), mode="r")


def fitted_predict(estimator, X):
    """A fitted linear estimator's X @ coef_ + intercept_ on a dask collection, lazily, after scikit-learn's checks."""
    check_is_fitted(estimator)
    # A dask DataFrame's columns checked by name as pandas ones are, through an empty pandas frame.
    _check_feature_names(estimator, column_header(X), reset=False)
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return predict(X, estimator.coef_, estimator.intercept_)


def _block_predict(X_block, coef, intercept):
    return X_block @ coef + intercept


def predict(X, coef, intercept: float):
    """X @ coef + intercept, lazily, one task per chunk: a dask array in, a dask array out."""
    X = X.to_dask_array(lengths=True) if hasattr(X, "to_dask_array") else X
    X = X.rechunk({1: -1})
    return X.map_blocks(_block_predict, coef, intercept, drop_axis=1, dtype=np.float64)


def _block_q(X_block, x_mean, scale, root_n, factors):
    """This chunk's rows of Q = B R⁻¹, B = [1/√n, (X − x̄)/D], R = Rₖ⋯R₁R₀: solved against each factor
    in turn, as CholeskyQR forms them (one solve against the product would lose eps·cond(B) of Q's
    orthogonality)."""
    q = np.column_stack([np.full(len(X_block), 1 / root_n), (X_block - x_mean) / scale])
    for R in factors:
        q = _solve(R, q.T, transposed=True).T
    return q


def _solve(R, b, transposed=False):
    """R⁻¹b (Rᵀ⁻¹b when ``transposed``) for an upper-triangular R."""
    return scipy.linalg.solve_triangular(R, b, trans="T" if transposed else "N")


def _block_gram(X_block, y_block, x_mean, scale, root_n, factors):
    """[ZᵀZ, Zᵀy] of one chunk, Z = B R⁻¹."""
    z = _block_q(X_block, x_mean, scale, root_n, factors)
    return np.column_stack([z.T @ z, z.T @ y_block[:, 0]])[None]


def _block_refinement(X_block, y_block, x_mean, scale, root_n, factors, start, history, theta_high, theta_low):
    """One step of Björck's refinement over a chunk: its residual r replayed through the corrections so far
    (from the first solve's y − QQᵀy), then [[1, X]ᵀr as its high and low parts, Qᵀf, Σr²] of this step,
    with f = y − b − Xw − r, all in double-double (``impls.closed_form.refinement``)."""
    if not len(X_block):
        return np.zeros((1, 3 * len(theta_high) + 1))
    y_block = y_block[:, 0].astype(np.float64)
    q = _block_q(X_block, x_mean, scale, root_n, factors)
    residual = (y_block - q @ start, np.zeros(len(y_block)))
    columns = as_columns(X_block)
    for theta, h, qf in history:  # δr = Qh + (f − Q Qᵀf), as every earlier step applied it
        f = block_residual(columns, y_block, theta, residual)[0]
        residual = add(residual, q @ h + (f - q @ qf))
    f = block_residual(columns, y_block, (theta_high, theta_low), residual)[0]
    high, low = block_gradient(columns, residual)
    return np.concatenate([high, low, q.T @ f, [residual[0] @ residual[0]]])[None]


def qr_refined(X, y, system, passes: int = 2):
    """The solution on ill-conditioned data: a QR of B = [1/√n, (X − x̄)/D] by shifted CholeskyQR, then Björck's
    refinement of the augmented system until it converges, as the in-memory fit does with a Householder QR.

    The first R is the Cholesky factor of BᵀB (from the moments) plus a shift of order eps·n·d, which keeps
    it positive definite whatever the conditioning; each of ``passes`` then forms Z = BR⁻¹, whose Gram is
    close to I, and refines R ← chol(ZᵀZ)·R (CholeskyQR2 after the shift): Q = BR⁻¹ is then orthonormal
    to working precision and is recomputed from each chunk where needed, never stored. Each refinement
    solves [[I, B], [Bᵀ, 0]] [δr; δφ] = [f; g] through B = QR, with f and g from the data in double-double;
    the residual r, which the method keeps beside θ, is replayed chunk by chunk from the small vectors of
    each step, so nothing of length n is stored either. Returns (w, b, F, RSS, steps) with (X̃ᵀX̃)⁻¹ = FFᵀ.
    """
    from dask.array import map_blocks

    n, d = int(system.n), system.d
    root_n = np.sqrt(n)
    scale = np.sqrt(np.diag(system.gram))
    scale[scale == 0] = 1.0
    gram = np.eye(d + 1)
    gram[1:, 1:] = system.gram / np.outer(scale, scale)  # the constant column is orthogonal to the centred ones
    shift = 11 * ((n + 1) * (d + 1) + (d + 1) * (d + 2)) * EPS * np.trace(gram)
    factors = [scipy.linalg.cholesky(gram + shift * np.eye(d + 1))]
    geometry = (system.x_mean, scale, root_n)  # of B = [1/√n, (X − x̄)/D], which every chunk forms again
    gram_chunks = ((1,) * X.numblocks[0], (d + 1,), (d + 2,))
    for _ in range(passes):
        per_chunk = map_blocks(
            _block_gram, X, y[:, None], *geometry, factors, new_axis=[2], dtype=np.float64, chunks=gram_chunks
        )
        sums = per_chunk.sum(axis=0).compute()
        factors.append(scipy.linalg.cholesky(sums[:, : d + 1]))
        start = _solve(factors[-1], sums[:, d + 1], transposed=True)  # Qᵀy for the new Q

    def solve(b, transposed=False):  # R⁻¹b or R⁻ᵀb, factor by factor
        for R in factors if transposed else factors[::-1]:
            b = _solve(R, b, transposed)
        return b

    coordinates = Coordinates(system.x_mean, scale, n)
    history = []

    def step(theta):  # one pass: the chunks' parts of [1, X]ᵀr and Qᵀf, summed, give (δr, δθ) as in memory
        arguments = (*geometry, factors, start, list(history), theta[0], theta[1])
        chunks = ((1,) * X.numblocks[0], (3 * d + 4,))
        parts = map_blocks(_block_refinement, X, y[:, None], *arguments, dtype=np.float64, chunks=chunks).compute()
        gradient = sum_parts(parts[:, : d + 1], parts[:, d + 1 : 2 * d + 2])
        qf, rss = parts[:, 2 * d + 2 : 3 * d + 3].sum(axis=0), float(parts[:, -1].sum())
        h = solve(-coordinates.gradient(gradient), transposed=True)
        history.append((theta, h, qf))  # replayed by the next step, which refine takes only if it keeps this one
        return coordinates.parameters(solve(qf - h)), rss

    theta, refinements, rss = refine(step, coordinates.parameters(solve(start)), coordinates)
    r_inverse = solve(np.eye(d + 1))
    return theta[0][1:], theta[0][0], r_inverse[1:] / scale[:, None], rss, refinements
