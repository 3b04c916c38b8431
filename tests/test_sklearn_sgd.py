"""The scikit-learn estimator against a bare SGDRegressor with the mapped step size."""

import numpy as np
import pytest
from sklearn.linear_model import SGDRegressor

from impls import SklearnSGDRegressor


def test_sklearn_sgd_matches_a_bare_sgd_regressor(notebook_data):
    X, y = notebook_data
    ours = SklearnSGDRegressor().fit(X, y)
    bare = SGDRegressor(penalty=None, learning_rate="constant", eta0=0.006, max_iter=3, tol=None, random_state=0)
    bare.fit(X.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(ours.coef_, bare.coef_, atol=2e-3)
    assert ours.intercept_ == pytest.approx(bare.intercept_[0], abs=2e-3)
