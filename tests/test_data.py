"""The one data generator."""

import numpy as np
import pytest
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


def _synthetic_data_in_one_go(w, b, num_examples, *, noise=0.01, random_state=0, dtype=np.float32):
    """The generator as it was first written: every draw at once, X in float64, then cast."""
    true_w = np.asarray(w, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((num_examples, true_w.size))
    y = X @ true_w + b + rng.normal(0.0, noise, num_examples)
    return X.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (1000, 2), (16385, 3), (40000, 50)])
def test_drawing_in_blocks_gives_the_same_bits_as_drawing_at_once(shape, dtype):
    num_examples, num_features = shape
    w = np.linspace(-1.0, 2.0, num_features)
    for seed in (0, [7, 1]):
        X, y = synthetic_data(w, 0.3, num_examples, noise=0.5, random_state=seed, dtype=dtype)
        X_once, y_once = _synthetic_data_in_one_go(w, 0.3, num_examples, noise=0.5, random_state=seed, dtype=dtype)
        assert X.dtype == X_once.dtype and y.dtype == y_once.dtype
        assert X.tobytes() == X_once.tobytes() and y.tobytes() == y_once.tobytes()
