"""The scikit-learn estimator against a bare SGDRegressor with the mapped step size."""

import numpy as np
import pytest
import scipy.sparse
import sklearn
from sklearn.linear_model import SGDRegressor

from impls import DivergenceWarning, SklearnSGDRegressor, sklearn_sgd, synthetic_data


def test_sklearn_sgd_matches_a_bare_sgd_regressor(notebook_data):
    X, y = notebook_data
    ours = SklearnSGDRegressor().fit(X, y)
    bare = SGDRegressor(penalty=None, learning_rate="constant", eta0=0.006, max_iter=3, tol=None, random_state=0)
    bare.fit(X.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(ours.coef_, bare.coef_, atol=2e-3)
    assert ours.intercept_ == pytest.approx(bare.intercept_[0], abs=2e-3)


def bare_epochs(X, y, sample_weight=None, epochs=3, eta0=0.006):
    """Epoch after epoch of a bare SGDRegressor's public partial_fit: the reference for every path of ours."""
    bare = SGDRegressor(penalty=None, learning_rate="constant", eta0=eta0, random_state=np.random.RandomState(0))
    for _ in range(epochs):
        bare.partial_fit(X, y, sample_weight=sample_weight)
    return np.append(bare.coef_, bare.intercept_)


@pytest.mark.parametrize("checks_every_epoch", [False, True])
def test_each_epoch_is_a_bare_partial_fit_bit_for_bit(checks_every_epoch, monkeypatch):
    """With the data checked once (SGDRegressor's per-epoch routine) or on every epoch (partial_fit), the same bits
    as a bare SGDRegressor's partial_fit epochs: on an integer y, a CSC X, weights, and a partial_fit resumed."""
    checked_once = sklearn_sgd.EPOCHS_WITHOUT_CHECKS and not checks_every_epoch
    monkeypatch.setattr(sklearn_sgd, "EPOCHS_WITHOUT_CHECKS", checked_once)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 4))
    X[rng.random(X.shape) < 0.5] = 0.0
    y = np.rint(X @ [3.0, -2.0, 1.0, 0.5] + 7).astype(np.int64)
    weights = rng.uniform(0, 2, 150)
    for data, sample_weight in ((X, None), (scipy.sparse.csc_matrix(X), None), (X, weights)):
        ours = SklearnSGDRegressor(num_epochs=3).fit(data, y, sample_weight=sample_weight)
        np.testing.assert_array_equal(np.append(ours.coef_, ours.intercept_), bare_epochs(data, y, sample_weight))
        assert ours.n_iter_ == 3 and len(ours.loss_curve_) == 3
    resumed = SklearnSGDRegressor(num_epochs=1).fit(X, y)
    resumed.partial_fit(X, y)
    resumed.partial_fit(X, y)
    np.testing.assert_array_equal(np.append(resumed.coef_, resumed.intercept_), bare_epochs(X, y))


def test_an_overflow_in_an_epoch_is_a_divergence_whichever_path(monkeypatch):
    X, y = synthetic_data([2, -3.4], 4.2, 100, random_state=0, dtype=np.float64)
    fits = []
    for checked in (True, False):
        monkeypatch.setattr(sklearn_sgd, "EPOCHS_WITHOUT_CHECKS", sklearn_sgd.EPOCHS_WITHOUT_CHECKS and checked)
        with pytest.warns(DivergenceWarning):
            fits.append(SklearnSGDRegressor(lr=500.0, num_epochs=5).fit(X, y))
    assert all(fit.diverged_ for fit in fits)
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)


@pytest.mark.skipif(
    tuple(int(part) for part in sklearn.__version__.split(".")[:2]) < (1, 8),
    reason="SGDRegressor's per-epoch routine takes another signature before scikit-learn 1.8",
)
def test_the_data_are_checked_once_per_fit_on_this_scikit_learn():
    """The per-epoch routine is found; a change of its signature in a later scikit-learn fails here, not silently."""
    assert sklearn_sgd.EPOCHS_WITHOUT_CHECKS
