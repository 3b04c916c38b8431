"""The sufficient statistics of least squares with an intercept: ZᵀZ for Z = [X − x_shift, 1, y − y_shift], summed
over row blocks. The in-memory fit, the dask fit and the runner's reference all sum these same blocks.
"""

from __future__ import annotations

import numpy as np

# Rows per block: a block in float64 is at most BLOCK_ROWS × d × 8 bytes of scratch memory.
BLOCK_ROWS = 16384


def block_moments(X_block, y_block, x_shift, y_shift: float) -> np.ndarray:
    """ZᵀZ for Z = [X_block − x_shift, 1, y_block − y_shift]: the (d + 2)×(d + 2) sufficient statistics.

    Summed over blocks it holds the shifted Gram matrix, Σx, Σxy, n, Σy and Σy². ``x_shift=None``
    reads the block as it is (no copy for float64 data).
    """
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN or inf is reported after the accumulation
        x = X_block.astype(np.float64, copy=False) if x_shift is None else X_block - x_shift
        y = np.asarray(y_block, dtype=np.float64) - y_shift
        d = x.shape[1]
        moments = np.empty((d + 2, d + 2))
        moments[:d, :d] = x.T @ x  # numpy calls BLAS syrk for this product: half the flops of a gemm
        # Σx and Σx(y − shift) in one product, while the block is still in cache.
        moments[:d, d:] = x.T @ np.column_stack([np.ones(len(y)), y])
        moments[d:, :d] = moments[:d, d:].T
        moments[d:, d:] = [[len(y), y.sum()], [y.sum(), y @ y]]
    return moments


def shifts(X_block, y_block) -> tuple[np.ndarray | None, float]:
    """Shifts that keep centring exact: the first block's means, where they are large next to its spread.

    Centring afterwards (XᵀX − n x̄x̄ᵀ) loses a factor 1 + x̄²/s² of precision to cancellation; shifting
    each block first costs a copy of the block, so it is done only where the means are large.
    """
    x_shift = X_block.mean(axis=0, dtype=np.float64)
    if np.all(np.abs(x_shift) <= X_block.std(axis=0, dtype=np.float64)):
        return None, float(np.mean(y_block, dtype=np.float64))
    # A column constant in the block is shifted by its value, not by its computed mean (which can be off
    # by an ulp): a column constant in all the data is then exactly zero once shifted, hence found rank-deficient.
    constant = np.ptp(X_block, axis=0) == 0
    x_shift[constant] = X_block[0, constant]
    return x_shift, float(np.mean(y_block, dtype=np.float64))
