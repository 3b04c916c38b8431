"""The one data generator."""

import numpy as np
from conftest import NOTEBOOK_B, NOTEBOOK_W

from impls import synthetic_data


def test_synthetic_data_shapes_law_and_reproducibility():
    X, y = synthetic_data(NOTEBOOK_W, NOTEBOOK_B, 1000)
    assert X.shape == (1000, 2) and y.shape == (1000,) and X.dtype == y.dtype == np.float32
    X2, y2 = synthetic_data(NOTEBOOK_W, NOTEBOOK_B, 1000)
    assert X.tobytes() == X2.tobytes() and y.tobytes() == y2.tobytes()
    X3, _ = synthetic_data(NOTEBOOK_W, NOTEBOOK_B, 1000, random_state=1)
    assert not np.array_equal(X, X3)
    residual = y - X @ NOTEBOOK_W - NOTEBOOK_B
    assert abs(residual.std() - 0.01) < 0.001 and abs(X.std() - 1) < 0.05
    X64, _ = synthetic_data(NOTEBOOK_W, NOTEBOOK_B, 10, dtype=np.float64, noise=0.0)
    assert X64.dtype == np.float64
