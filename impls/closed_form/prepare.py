"""A fit's first phase, as scikit-learn's ``_preprocess_data`` and ``_rescale_data`` are ``LinearRegression``'s:
validate (X, y, sample_weight), take the weights times a power of two, and sum the moments in one pass over X (in
memory, sparse, or one task per dask chunk), from which each target's centred system is formed. ``add_block`` does the
same for one block of a stream (``partial_fit``, ``fit_blocks``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from sklearn.utils.validation import _check_sample_weight, assert_all_finite

from impls._base import validate_training_data
from impls._collections import is_dask
from impls.closed_form.centred_system import CentredSystem
from impls.closed_form.dask import Chunks, first_block, moments_of_chunks
from impls.closed_form.dask import validate_data as validate_dask_data
from impls.closed_form.moments import (
    BLOCK_ROWS,
    Pilot,
    pilot_moments,
    shift_sparse,
    shifts,
    sparse_moments,
    sparse_shifts,
)
from impls.closed_form.solvers import Passes, RowBlocks, SparsePasses
from impls.closed_form.streaming import Stream


@dataclass(frozen=True)
class Prepared:
    """What a fit solves: the validated X and Y (n × k), the weights times 2^-weight_exponent (None without weights),
    whether y was 1-D, the moments with their shifts and pilot (``impls.closed_form.moments``), and ``passes``, the
    kind of ``Passes`` that reads X again to refine an answer (``RowBlocks``, ``SparsePasses`` or dask's ``Chunks``)."""

    X: object
    Y: object
    weights: np.ndarray | None
    single_target: bool
    weight_exponent: int
    moments: np.ndarray
    x_shift: np.ndarray | None
    y_shift: float | np.ndarray
    pilot: Pilot | None
    passes: Callable[..., Passes]

    @property
    def rows(self) -> int:
        return self.X.shape[0]

    @functools.cached_property
    def systems(self) -> list[CentredSystem]:
        """The centred system of each target, sharing one Cholesky factor of X̃ᵀWX̃."""
        systems = [
            CentredSystem.of_target(self.moments, j, self.x_shift, self.y_shift, self.pilot)
            for j in range(np.size(self.y_shift))
        ]
        return [systems[0]] + [system.share_factor(systems[0]) for system in systems[1:]]

    def targets(self) -> list[tuple[CentredSystem, Passes]]:
        """Each target's system and the passes over its data."""
        return [
            (system, self.passes(self.X, self.Y[:, j], system, self.weights)) for j, system in enumerate(self.systems)
        ]

    def stream(self) -> Stream:
        """The moments of [X, 1, Y] as a stream, for a ``partial_fit`` to continue."""
        size = self.X.shape[1] + 1 + np.size(self.y_shift)
        moments = self.moments[:size, :size]
        return Stream.of_moments(moments, self.x_shift, self.y_shift, self.rows, self.weight_exponent)


def prepare(estimator, X, y, sample_weight=None) -> Prepared:
    """Validate, scale the weights, and sum the moments: of a dask collection where it lives, of a sparse X by sparse
    products, else in row blocks with the residual of a pilot (for the RSS where R² is close to 1). Finiteness is
    checked on the moments, where a NaN or inf reaches the diagonal: no extra pass over X."""
    if is_dask(X, y):
        return _prepare_dask(estimator, X, y, sample_weight)
    X, Y, weights, single_target = validate(estimator, X, y, sample_weight, ensure_all_finite=False)
    weight_exponent = weight_exponent_of(weights)
    weights = rescaled(weights, weight_exponent)
    if scipy.sparse.issparse(X):
        (moments, x_shift, y_shift, pilot), passes = _sparse_moments(X, Y, weights)
    else:
        (moments, x_shift, y_shift, pilot), passes = pilot_moments(X, Y, weights), RowBlocks
    if not np.isfinite(np.diag(moments)).all():  # scikit-learn's own message, naming the bad input
        name = type(estimator).__name__
        assert_all_finite(X.data if scipy.sparse.issparse(X) else X, input_name="X", estimator_name=name)
        assert_all_finite(Y, input_name="y", estimator_name=name)
        raise ValueError("X or y is too large in magnitude: XᵀX overflows float64. Scale the data first.")
    return Prepared(X, Y, weights, single_target, weight_exponent, moments, x_shift, y_shift, pilot, passes)


def _prepare_dask(estimator, X, y, sample_weight) -> Prepared:
    """One task per chunk, where the data live: X is never gathered."""
    if sample_weight is not None:
        raise ValueError(f"{type(estimator).__name__} takes no sample_weight with dask input; got sample_weight.")
    X, y = validate_dask_data(estimator, X, y)
    x_shift, y_shift = shifts(*first_block(X, y))
    moments = moments_of_chunks(X, y, x_shift, y_shift)
    if not np.isfinite(moments).all():
        raise ValueError("Input X or y contains NaN or infinity, or is too large in magnitude for float64.")
    return Prepared(X, y[:, None], None, True, 0, moments, x_shift, y_shift, None, Chunks)


def _sparse_moments(X, Y, weights):
    """The moments of a sparse X, only the columns whose centring would cancel shifted (made dense), and its passes."""
    x_shift, y_shift = sparse_shifts(X), np.mean(Y[:BLOCK_ROWS], axis=0)
    shifted = X if x_shift is None else shift_sparse(X, x_shift)
    moments = sparse_moments(shifted, Y, y_shift, weights)
    return (moments, x_shift, y_shift, None), functools.partial(SparsePasses, shifted=shifted)


def add_block(estimator, stream: Stream | None, X, y, sample_weight=None) -> tuple[Stream, bool]:
    """The stream with the rows (X, y, sample_weight) added (a new stream for the first block), and whether y was 1-D.
    A sparse X is made dense one block at a time: the factor's update reads every entry of the block."""
    X, Y, weights, single_target = validate(estimator, X, y, sample_weight, reset=stream is None)
    X = X.toarray() if scipy.sparse.issparse(X) else X
    if stream is None:
        weight_exponent = weight_exponent_of(weights)
        return Stream.of_first_block(X, Y, rescaled(weights, weight_exponent), weight_exponent), single_target
    if Y.shape[1] != len(stream.y_shift):
        raise ValueError(f"y has {Y.shape[1]} targets, but the rows seen so far have {len(stream.y_shift)}.")
    return stream.add(X, Y, rescaled(weights, stream.weight_exponent)), single_target


def validate(estimator, X, y, sample_weight=None, reset=True, ensure_all_finite=True):
    """scikit-learn's checks of (X, y, sample_weight): X dense or CSR, y as (n, k), whether y was 1-D, and the
    weights, non-negative (None without weights, for the unweighted arithmetic)."""
    rules = {"accept_sparse": ["csr", "csc"], "dtype": [np.float64, np.float32], "multi_output": True}
    X, y = validate_training_data(estimator, X, y, reset=reset, ensure_all_finite=ensure_all_finite, **rules)
    X = X.tocsr() if scipy.sparse.issparse(X) else X
    weights = None
    if sample_weight is not None:
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    return X, (y[:, None] if y.ndim == 1 else y), weights, y.ndim == 1


def weight_exponent_of(weights) -> int:
    """e with max(weights) = m·2^e, m in [0.5, 1) (0 without weights): weights·2^-e have their largest in [0.5, 1),
    so that no sum of weighted squares underflows or overflows, whatever the weights' scale (all 5e-324, or 1e300).
    A power of two changes no weight's digits, so the fit is the same bits as with weights of any other scale."""
    if weights is None or not weights.size or not weights.max() > 0:
        return 0
    return int(np.frexp(weights.max())[1])


def rescaled(weights, exponent: int):
    """weights·2^-exponent (None stays None)."""
    return None if weights is None else np.ldexp(weights, -exponent)
