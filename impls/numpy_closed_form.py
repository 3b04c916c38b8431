"""Ordinary least squares in closed form: solve the normal equations of the centred data, (X̃ᵀX̃) w = X̃ᵀỹ, b = ȳ − x̄ᵀw.

X̃ᵀX̃ is accumulated over row blocks, so X is read once, never copied whole, and may arrive in chunks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import assert_all_finite, check_X_y, validate_data

from impls._base import LinearPredictorMixin

# Rows per block: a block in float64 is at most BLOCK_ROWS × d × 8 bytes of scratch memory.
BLOCK_ROWS = 16384
# Above this condition number of X̃ᵀX̃ (the square of X̃'s), the normal equations lose more than
# about 1e-10 of relative accuracy, so the solution falls back to an orthogonal (SVD) least-squares solver.
MAX_CONDITION = 1e6


class NumpyClosedFormRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Least-squares linear regression with an intercept, solved in closed form with numpy.

    The answer is the one of ``numpy.linalg.lstsq`` and scikit-learn's ``LinearRegression``: on a
    rank-deficient X it is the minimum-norm ``coef_`` (the intercept is not part of the norm, as in
    ``LinearRegression``; this equals ``lstsq`` on ``[X, 1]`` unless a combination of columns of X is constant).

    ``fit(X, y)`` accepts any 2-D array, a ``numpy.memmap`` larger than memory included;
    ``fit_blocks(blocks)`` takes an iterable of ``(X_block, y_block)`` for data that arrive in chunks.

    Attributes
    ----------
    coef_, intercept_ : the fitted line.  n_iter_ : 1 (one pass over the data).
    solver_ : ``"normal-equations"`` or ``"lstsq"`` (the fallback on an ill-conditioned or rank-deficient X).
    """

    def fit(self, X, y):
        # The finiteness check is left to the accumulation below (a NaN or inf anywhere makes a diagonal
        # entry of XᵀX or Σy non-finite), which saves a whole extra pass over X.
        X, y = validate_data(self, X, y, y_numeric=True, dtype=[np.float64, np.float32], ensure_all_finite=False)
        blocks = ((X[i : i + BLOCK_ROWS], y[i : i + BLOCK_ROWS]) for i in range(0, len(X), BLOCK_ROWS))
        if self._solve_normal_equations(blocks, X, y):
            return self
        # Ill-conditioned or rank-deficient: the SVD of the centred X, as LinearRegression does.
        x_mean, y_mean = X.mean(axis=0, dtype=np.float64), y.mean(dtype=np.float64)
        self.coef_ = np.linalg.lstsq(X - x_mean, y - y_mean, rcond=None)[0]
        self.intercept_ = float(y_mean - x_mean @ self.coef_)
        self.solver_, self.n_iter_ = "lstsq", 1
        return self

    def fit_blocks(self, blocks: Iterable[tuple[np.ndarray, np.ndarray]]):
        """Fit on ``(X_block, y_block)`` pairs read one at a time; memory stays O(d²) plus one block.

        On an ill-conditioned X, the blocks cannot be read again for an SVD: the normal equations are
        then solved through the eigendecomposition, keeping the minimum-norm answer, with a warning.
        """
        checked = (
            check_X_y(X_block, y_block, y_numeric=True, dtype=[np.float64, np.float32]) for X_block, y_block in blocks
        )
        if not self._solve_normal_equations(checked, ill_conditioned="eigh"):
            raise ValueError("fit_blocks needs at least one block of data; got none.")
        return self

    def _solve_normal_equations(self, blocks, X=None, y=None, ill_conditioned="give up") -> bool:
        """Accumulate the normal equations over the blocks and solve them; False if there is nothing to
        solve or X is too ill-conditioned for them (unless ``ill_conditioned="eigh"``)."""
        num_examples, d = 0, None
        for X_block, y_block in blocks:
            if d is None:
                d = X_block.shape[1]
                gram, moments, sum_y = np.zeros((d, d)), np.zeros((d, 2)), 0.0
                # Centring afterwards (XᵀX − n x̄x̄ᵀ) loses a factor 1 + x̄²/s² of precision to cancellation.
                # Where the first block's means are large next to its spread, shift every block by them first
                # (a copy of each block); otherwise read the blocks as they are (no copy at all).
                x_shift = X_block.mean(axis=0, dtype=np.float64)
                if np.all(np.abs(x_shift) <= X_block.std(axis=0, dtype=np.float64)):
                    x_shift = None
                y_shift = y_block.mean(dtype=np.float64)
            elif X_block.shape[1] != d:
                raise ValueError(f"Every block must have {d} features, as the first; got {X_block.shape[1]}.")
            with np.errstate(invalid="ignore"):  # a NaN or inf in the input is reported after the loop
                x_block = X_block.astype(np.float64, copy=False) if x_shift is None else X_block - x_shift
                y_block = y_block - y_shift
            num_examples += len(x_block)
            sum_y += y_block.sum()
            gram += x_block.T @ x_block  # numpy calls BLAS syrk for this product: half the flops of a gemm
            # Σx and Σx(y − ȳ₀) in one product, while the block is still in cache.
            moments += x_block.T @ np.column_stack([np.ones(len(y_block)), y_block])
        if d is None:
            return False
        if not (np.isfinite(np.diag(gram)).all() and np.isfinite(moments).all() and np.isfinite(sum_y)):
            if X is not None:  # scikit-learn's own message, naming the bad input
                assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
                assert_all_finite(y, input_name="y", estimator_name=type(self).__name__)
            raise ValueError("X or y is too large in magnitude: XᵀX overflows float64. Scale the data first.")
        sum_x, moment = moments[:, 0], moments[:, 1].copy()
        x_shift = np.zeros(d) if x_shift is None else x_shift
        self.n_features_in_ = d

        # Centre exactly: subtract the means that remain after the shifts.
        x_mean, y_mean = sum_x / num_examples, sum_y / num_examples
        gram -= num_examples * np.outer(x_mean, x_mean)
        moment -= num_examples * x_mean * y_mean

        eigenvalues = np.linalg.eigvalsh(gram)
        well_conditioned = eigenvalues[0] > eigenvalues[-1] / MAX_CONDITION
        if well_conditioned:
            self.coef_ = scipy.linalg.solve(gram, moment, assume_a="positive definite")
            self.solver_ = "normal-equations"
        elif ill_conditioned == "eigh":
            warnings.warn(
                "X is ill-conditioned or rank-deficient; from blocks, the minimum-norm solution comes from "
                "the normal equations, accurate to about eps·cond(X)². Fit in memory for the SVD solver.",
                stacklevel=3,
            )
            eigenvalues, eigenvectors = np.linalg.eigh(gram)
            keep = eigenvalues > eigenvalues[-1] * len(eigenvalues) * np.finfo(np.float64).eps
            self.coef_ = eigenvectors[:, keep] @ ((eigenvectors[:, keep].T @ moment) / eigenvalues[keep])
            self.solver_ = "eigh"
        else:
            return False
        self.intercept_ = float(y_shift + y_mean - (x_shift + x_mean) @ self.coef_)
        self.n_iter_ = 1
        return True
