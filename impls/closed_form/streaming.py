"""Least squares from data read once (``fit_blocks``, ``partial_fit``), in O(d²) memory, to the last digit: the
double-double triangular factor of ``double_double_factor.py``, updated block by block; or, where the first block shows
data on which float64 loses nothing, the float64 moments of ``moments.py``, at the cost of one matrix product a block.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from impls._base import _user_stacklevel
from impls.closed_form.centred_system import CentredSystem
from impls.closed_form.double_double_factor import FactorFit, factor_solutions, householder_update, scaled_rows
from impls.closed_form.moments import block_moments, shifts
from impls.closed_form.refinement import EPS, Pair
from impls.closed_form.solvers import SKIP_REFINEMENT_BELOW_CONDITION


@dataclass(frozen=True)
class Stream:
    """The data seen so far: ``factor``, the double-double R of √w·[1, X − x_shift, Y − y_shift], or, where the first
    block is easy (``easy``), ``moments``, their float64 ZᵀWZ. ``rows`` counts the examples, those of zero weight
    too (statsmodels' WLS counts them in its degrees of freedom). Each block gives a new Stream, so that a fit that
    raises half-way leaves the estimator's as it was."""

    x_shift: np.ndarray | None
    y_shift: np.ndarray
    rows: int
    moments: np.ndarray | None = None
    factor: Pair | None = None
    weight_exponent: int = 0  # the weights are taken times 2^-weight_exponent, the first block's scale

    @classmethod
    def of_first_block(cls, X, Y, weights, weight_exponent: int = 0) -> Stream:
        """The stream of one block, whose shifts and kind it decides (``weights`` already times 2^-weight_exponent)."""
        x_shift, y_shift = shifts(X, Y)
        y_shift = np.asarray(y_shift, dtype=np.float64)
        moments = block_moments(X, Y, x_shift, y_shift, weights)
        if easy(moments, x_shift, y_shift, len(X)):
            return cls(x_shift, y_shift, len(X), moments=moments, weight_exponent=weight_exponent)
        empty = _empty_factor(X.shape[1] + 1 + Y.shape[1])
        return cls(x_shift, y_shift, 0, factor=empty, weight_exponent=weight_exponent).add(X, Y, weights)

    @classmethod
    def of_moments(cls, moments: np.ndarray, x_shift, y_shift, rows: int, weight_exponent: int = 0) -> Stream:
        """The stream of data already summed into float64 moments: a ``fit``, to be continued by ``partial_fit``."""
        y_shift = np.atleast_1d(np.asarray(y_shift, dtype=np.float64))
        return cls(x_shift, y_shift, rows, moments=moments, weight_exponent=weight_exponent)

    @property
    def d(self) -> int:
        size = len(self.moments if self.factor is None else self.factor[0])
        return size - 1 - len(self.y_shift)

    def add(self, X, Y, weights) -> Stream:
        """The stream with one more block of rows."""
        if self.factor is None:
            moments = self.moments + block_moments(X, Y, self.x_shift, self.y_shift, weights)
            return replace(self, moments=moments, rows=self.rows + len(X))
        x_shift = np.zeros(self.d) if self.x_shift is None else self.x_shift
        factor = householder_update(self.factor, scaled_rows(X, Y, x_shift, self.y_shift, weights))
        return replace(self, factor=factor, rows=self.rows + len(X))

    def finite(self) -> bool:
        return bool(np.isfinite(self.moments if self.factor is None else self.factor[0]).all())

    def systems(self) -> list[CentredSystem]:
        """The centred system of each target, from the moments (of a moments stream), with a warning where the data
        as a whole turned out harder than their first block."""
        systems = [
            CentredSystem.of_target(self.moments, j, self.x_shift, self.y_shift) for j in range(len(self.y_shift))
        ]
        if not all(easy_system(system) for system in systems):
            warnings.warn(
                "The first block was well-conditioned but the data as a whole are not: their answer, from the "
                "normal equations in float64, is accurate to about eps·cond(X̃)². Pass a first block that looks "
                "like the data, or fit in memory.",
                UserWarning,
                stacklevel=_user_stacklevel(),
            )
        return systems

    def solutions(self) -> list[FactorFit]:
        """Each target's least-squares answer from the double-double factor (of a factor stream)."""
        return factor_solutions(self.factor, self.d, self.x_shift, self.y_shift, self.rows)


def _empty_factor(size: int) -> Pair:
    return np.zeros((size, size)), np.zeros((size, size))


def easy(moments: np.ndarray, x_shift, y_shift, rows: int) -> bool:
    """Whether float64 moments keep every digit of these data: more rows than unknowns, no large means (no x_shift),
    and for every target what the in-memory fit of large data trusts without refinement (``easy_system``)."""
    k = np.size(y_shift)
    d = len(moments) - 1 - k
    if x_shift is not None or rows <= d + 1:
        return False
    return all(easy_system(CentredSystem.of_target(moments, j, None, y_shift)) for j in range(k))


def easy_system(system: CentredSystem) -> bool:
    """cond(X̃ᵀX̃) ≤ SKIP_REFINEMENT_BELOW_CONDITION, so that the normal equations lose at most a digit, and R² well
    below 1 (eps·Σ(y − ȳ)² ≤ 1e-12·RSS), so that the RSS from the moments loses nothing to cancellation."""
    if not system.condition() <= SKIP_REFINEMENT_BELOW_CONDITION:
        return False
    return bool(EPS * system.tss <= 1e-12 * system.rss(system.solve()))
