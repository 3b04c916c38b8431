"""The iterative estimators beyond the notebook: a step size from the data (lr="auto", lr_limit, largest_eigenvalue),
partial_fit, sample weights, sparse X and several targets."""

import warnings

import numpy as np
import pytest
import scipy.sparse
from conftest import ITERATIVE, TORCH
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, SGDRegressor

import impls._step_size as step_size
from impls import DivergenceWarning, implementation, synthetic_data
from impls._base import TRAINING_MSE_BLOCK_ENTRIES
from impls._step_size import AUTO_FRACTION, largest_eigenvalue, minibatch_curvature, row_curvature


def make(name, **params):
    return implementation(name)(**params)


def independent_eigenvalue(X, weights=None) -> float:
    """λ_max of [1, X]ᵀW[1, X]/Σw, formed whole in float64 and handed to eigvalsh."""
    Z = np.column_stack([np.ones(X.shape[0]), np.asarray(X, dtype=np.float64)])
    w = np.ones(X.shape[0]) if weights is None else weights
    return float(np.linalg.eigvalsh((Z * w[:, None]).T @ Z / w.sum())[-1])


def independent_curvature(X, weights, rows_per_step) -> float:
    """The mean-square curvature of minibatches of ``rows_per_step`` rows, 2ν for ν the largest eigenvalue of the
    pencil (Q, L), here formed whole with Kronecker products, (d + 1)² × (d + 1)², and solved by scipy's eig."""
    import scipy.linalg

    n, w = X.shape[0], np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    Z = np.column_stack([np.ones(n), np.asarray(X, dtype=np.float64)])
    G = (Z * w[:, None]).T @ Z / n
    B = min(rows_per_step, n)
    if B >= n:
        return float(np.linalg.eigvalsh(G)[-1])
    a, c = (n - B) / (B * (n - 1)), n * (B - 1) / (B * (n - 1))
    vec_A = np.einsum("ij,ik->ijk", Z, Z).reshape(n, -1) * w[:, None]  # vec(wᵢ x̃ᵢx̃ᵢᵀ), one row each
    Q = a * vec_A.T @ vec_A / n + c * np.kron(G, G)
    identity = np.eye(len(G))
    L = np.kron(identity, G) + np.kron(G, identity)
    return 2 * float(np.max(scipy.linalg.eigvals(Q, L).real))


def correlated_data(num_examples=60, num_features=3, seed=0, noise=0.1):
    """A small design with correlated, off-centre columns, so that G has a clear top eigenvalue."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, num_features)) @ rng.uniform(-1, 1, (num_features, num_features)) + 1.5
    y = X @ rng.uniform(-2, 2, num_features) + 0.7 + noise * rng.standard_normal(num_examples)
    return X, y


def well_conditioned_data(num_examples=60, num_features=3, seed=0, noise=0.1):
    """Independent columns off centre (the condition number of G is about 7): full-batch descent converges fast."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, num_features)) + 0.5
    y = X @ rng.uniform(-2, 2, num_features) + 0.7 + noise * rng.standard_normal(num_examples)
    return X, y


def fitted_state(est) -> dict:
    """Everything a fit leaves, with arrays as arrays, for comparison bit for bit."""
    return {
        "coef_": np.asarray(est.coef_),
        "intercept_": np.asarray(est.intercept_),
        "loss_curve_": np.asarray(est.loss_curve_),
        "n_iter_": est.n_iter_,
        "n_steps_": est.n_steps_,
        "lr_": est.lr_,
        "diverged_": est.diverged_,
    }


def assert_same_fit(first, second):
    a, b = fitted_state(first), fitted_state(second)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ---------------------------------------------------------------------------------------------------------
# The step size from the data


def test_largest_eigenvalue_of_a_hand_worked_case():
    # [1, X] = [[1, 0], [1, 2]]: G = [[2, 2], [2, 4]] / 2 = [[1, 1], [1, 2]], whose eigenvalues are (3 ± √5) / 2.
    assert largest_eigenvalue(np.array([[0.0], [2.0]])) == pytest.approx((3 + 5**0.5) / 2, rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("form", ["dense", "csr", "csc"])
def test_largest_eigenvalue_matches_an_independent_eigvalsh(dtype, weighted, form, monkeypatch):
    monkeypatch.setattr(step_size, "BLOCK_ROWS", 64)  # several row blocks
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((300, 6)) * [1, 10, 0.1, 3, 1, 1] + [0, 5, 0, 0, -2, 0]).astype(dtype)
    X[rng.random(X.shape) < 0.5] = 0.0  # half zeros, so that the sparse forms are sparse
    weights = rng.uniform(0, 3, 300) if weighted else None
    given = X if form == "dense" else getattr(scipy.sparse, f"{form}_matrix")(X)
    assert largest_eigenvalue(given, weights) == pytest.approx(independent_eigenvalue(X, weights), rel=1e-8)


@pytest.mark.parametrize("sparse", [False, True])
def test_largest_eigenvalue_by_power_iteration_beyond_the_eigvalsh_size(sparse, monkeypatch):
    X, _ = correlated_data(200, 5)
    monkeypatch.setattr(step_size, "EIGVALSH_MAX_SIZE", 3)  # 6 > 3: power iteration
    estimate = largest_eigenvalue(scipy.sparse.csr_matrix(X) if sparse else X, np.arange(200.0) % 3)
    assert estimate == pytest.approx(independent_eigenvalue(X, np.arange(200.0) % 3), rel=step_size.POWER_TOLERANCE)


LIMITS = [
    ("torch-concise", {}, lambda lam, B: 1 / lam),
    ("torch-concise", {"reduction": "sum"}, lambda lam, B: 1 / (B * lam)),
    ("torch-scratch", {}, lambda lam, B: 2 / lam),
    ("sklearn-sgd", {}, lambda lam, B: B / lam),
]
ROWS_PER_STEP = {"torch-concise": 7, "torch-scratch": 7, "sklearn-sgd": 1}  # at batch_size=7


def test_the_minibatch_curvature_runs_from_one_rows_to_lambda_for_all():
    assert minibatch_curvature(2.0, 5.0, 100, 100) == minibatch_curvature(2.0, 5.0, 100, 500) == 2.0
    assert minibatch_curvature(2.0, 5.0, 100, 1) == 5.0
    assert minibatch_curvature(2.0, 5.0, 100, 10) == pytest.approx(2.0 + 3.0 * 90 / (10 * 99))
    # rows [1, 0] and [1, 2]: curvatures 1 and 5, their mean square over their mean (1 + 25) / 6; with
    # weights 3 and 1: curvatures 3 and 5, (9 + 25) / 8; the trace of G when the rows are alike
    X = np.array([[0.0], [2.0]])
    assert row_curvature(X) == pytest.approx(26 / 6) and row_curvature(X, [3.0, 1.0]) == pytest.approx(34 / 8)
    assert row_curvature(np.full((4, 2), 3.0)) == pytest.approx(19.0)
    assert row_curvature(scipy.sparse.csr_matrix(X), [3.0, 1.0]) == pytest.approx(34 / 8)


@pytest.mark.parametrize("name, params, limit", LIMITS, ids=[f"{n}{p}" for n, p, _ in LIMITS])
def test_lr_auto_is_the_stated_fraction_of_the_stated_limit(name, params, limit):
    X, y = correlated_data()
    lam = independent_eigenvalue(X)
    est = make(name, batch_size=7, **params)
    assert est.lr_limit(lam) == pytest.approx(limit(lam, 7), rel=1e-15)
    est.set_params(lr="auto").fit(X, y)
    assert est.lr_ == pytest.approx(
        AUTO_FRACTION * limit(independent_curvature(X, None, ROWS_PER_STEP[name]), 7), rel=1e-6
    )  # power iteration to MEAN_SQUARE_TOLERANCE
    assert make(name, lr=0.01, **params).fit(X, y).lr_ == 0.01
    if name != "sklearn-sgd":  # full batches: exactly the fraction of the limit at λ_max
        full = make(name, lr="auto", batch_size=len(y), **params).fit(X, y)
        assert full.lr_ == pytest.approx(AUTO_FRACTION * full.lr_limit(lam), rel=1e-8)


def test_the_sum_reductions_limit_takes_the_batch_actually_drawn():
    X, y = correlated_data(num_examples=20)
    est = make("torch-concise", lr="auto", reduction="sum", batch_size=50).fit(X, y)  # one batch of 20 rows
    assert est.lr_ == pytest.approx(AUTO_FRACTION / (20 * independent_eigenvalue(X)), rel=1e-8)


@pytest.mark.parametrize("name", ITERATIVE)
def test_lr_auto_with_weights_takes_the_curvature_of_the_weighted_loss(name):
    X, y = correlated_data()
    weights = np.linspace(0.5, 4.0, len(y))
    est = make(name, lr="auto", batch_size=7).fit(X, y, sample_weight=weights)
    # the batch loss Σ wᵢ ℓᵢ / B has mean(w) times the Hessian of the weighted Gram matrix over Σw
    curvature = independent_curvature(X, weights, ROWS_PER_STEP[name])
    assert est.lr_ == pytest.approx(AUTO_FRACTION * est.lr_limit(curvature), rel=1e-6)


def _diverges(name, lr, X, y, **params) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        return make(name, lr=lr, **params).fit(X, y).diverged_


@pytest.mark.parametrize("name, params, limit", LIMITS, ids=[f"{n}{p}" for n, p, _ in LIMITS])
def test_the_stated_limits_are_the_boundaries_where_every_batch_has_the_gram_of_the_whole(name, params, limit):
    # Every row is [1, 2]: every batch's Gram matrix (and every sample's) is G = [[1, 2], [2, 4]], λ = tr G = 5,
    # so the limit is exact for any batch; below it the error along [1, 2] shrinks by |1 − 2·lr/limit| per step,
    # above it grows.
    X, y = np.full((50, 1), 2.0), 3.0 + np.random.default_rng(0).standard_normal(50)
    lam = largest_eigenvalue(X)
    assert lam == pytest.approx(5.0)
    lr_limit = make(name, **params).lr_limit(lam)
    assert lr_limit == pytest.approx(limit(5.0, 10))
    assert not _diverges(name, 0.9 * lr_limit, X, y, num_epochs=20, **params)
    assert _diverges(name, 1.1 * lr_limit, X, y, num_epochs=20, **params)


@pytest.mark.parametrize("name, params, limit", LIMITS[:3], ids=[f"{n}{p}" for n, p, _ in LIMITS[:3]])
def test_the_stated_limits_are_the_boundaries_of_full_batch_gradient_descent(name, params, limit):
    X, y = correlated_data()
    lr_limit = make(name, batch_size=len(y), **params).lr_limit(largest_eigenvalue(X))
    full_batch = dict(batch_size=len(y), num_epochs=300, dtype="float64", **params)
    assert not _diverges(name, 0.9 * lr_limit, X, y, **full_batch)
    assert _diverges(name, 1.1 * lr_limit, X, y, **full_batch)


@pytest.mark.parametrize("name", ITERATIVE)
def test_minibatches_need_their_own_curvature_not_lambda_max(name):
    # 30 independent features, batches of 10 (SGDRegressor: of 1): λ_max ≈ 1.3 but tr G = 31, and a batch's
    # Gram matrix has a top eigenvalue far above λ_max. Half the limit at λ_max diverges; "auto" does not,
    # and the limit at the minibatch curvature is the boundary: 1.5 times it diverges.
    rng = np.random.default_rng(12)
    X = rng.standard_normal((500, 30))
    y = X @ rng.standard_normal(30) + 1.0 + 0.1 * rng.standard_normal(500)
    est = make(name, lr="auto", num_epochs=10)
    assert not _diverges(name, "auto", X, y, num_epochs=10)
    assert _diverges(name, AUTO_FRACTION * est.lr_limit(largest_eigenvalue(X)), X, y, num_epochs=10)
    assert _diverges(name, 1.5 * est.fit(X, y).lr_ / AUTO_FRACTION, X, y, num_epochs=10)


@pytest.mark.parametrize("name", ITERATIVE)
def test_lr_auto_does_not_diverge_on_diabetes_where_the_default_does(name):
    X, y = load_diabetes(return_X_y=True, scaled=False)  # 442 × 10, unscaled: λ_max ≈ 7.4e4
    with pytest.warns(DivergenceWarning):
        assert make(name, lr=0.03).fit(X, y).diverged_
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        est = make(name, lr="auto", num_epochs=10).fit(X, y)
    assert not est.diverged_ and est.loss_curve_[-1] < np.mean(y**2)


# ---------------------------------------------------------------------------------------------------------
# partial_fit


@pytest.mark.parametrize("name", TORCH)
def test_a_float64_partial_fit_resumes_from_the_float64_parameters(name):
    # The intercept, a Python float, was once read back as a float32 tensor: 2.2015160823 became 2.2015160785.
    X, y = synthetic_data([2, -3.4], 4.2, 1000, random_state=0)
    fitted = make(name, dtype="float64", num_epochs=2).fit(X, y)
    partial = make(name, dtype="float64", num_epochs=1).fit(X, y).partial_fit(X, y)
    assert_same_fit(partial, fitted)


@pytest.mark.parametrize("lr", [0.02, "auto"])
@pytest.mark.parametrize("name", ITERATIVE)
def test_k_partial_fits_are_fit_with_k_epochs_bit_for_bit(name, lr):
    X, y = synthetic_data([2, -3.4], 4.2, 205, random_state=2)
    fitted = make(name, lr=lr, num_epochs=3, record_steps=True).fit(X, y)
    partial = make(name, lr=lr, record_steps=True)
    for epoch in range(1, 4):
        partial.partial_fit(X, y)
        assert partial.n_iter_ == epoch and len(partial.loss_curve_) == epoch
    assert_same_fit(partial, fitted)
    np.testing.assert_array_equal(partial.coef_path_, fitted.coef_path_)
    np.testing.assert_array_equal(partial.intercept_path_, fitted.intercept_path_)
    # and a partial_fit after fit is one more epoch of the same fit; fit starts again from scratch
    assert_same_fit(fitted.partial_fit(X, y), make(name, lr=lr, num_epochs=4).fit(X, y))
    assert_same_fit(fitted.fit(X, y), make(name, lr=lr, num_epochs=3).fit(X, y))


def test_partial_fit_with_the_dataloader_and_weights_is_fit_too():
    X, y = synthetic_data([2, -3.4], 4.2, 105, random_state=2)
    weights = np.random.default_rng(0).uniform(0, 2, 105)
    fitted = make("torch-concise", use_dataloader=True, num_epochs=2).fit(X, y, sample_weight=weights)
    partial = make("torch-concise", use_dataloader=True)
    assert_same_fit(partial.partial_fit(X, y, weights).partial_fit(X, y, weights), fitted)


@pytest.mark.parametrize("name", ITERATIVE)
def test_partial_fit_streams_chunks_and_checks_their_features(name):
    X, y = synthetic_data([2, -3.4], 4.2, 300, random_state=3)
    est = make(name, lr="auto")
    for chunk in range(3):
        est.partial_fit(X[chunk * 100 : (chunk + 1) * 100], y[chunk * 100 : (chunk + 1) * 100])
    first_lr = est.lr_  # "auto" is set once, from the first call's rows
    assert est.n_iter_ == 3 and est.lr_ == first_lr and not est.diverged_
    assert est.loss_curve_[-1] < 1e-3 * np.var(y)  # at the noise of the steps around the line, σ² = 1e-4
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 2 features"):
        est.partial_fit(np.ones((5, 3)), np.ones(5))
    assert est.n_iter_ == 3  # a call that raises changes nothing


@pytest.mark.parametrize("name", ITERATIVE)
def test_a_partial_fit_that_diverges_warns_and_keeps_the_last_good_parameters(name):
    X, y = synthetic_data([2, -3.4], 4.2, 200)
    est = make(name, lr=0.01).partial_fit(X, y)
    good = np.copy(est.coef_)
    est.set_params(lr=1e4)
    with pytest.warns(DivergenceWarning, match="diverged after epoch 2"):
        est.partial_fit(X, y)
    assert est.diverged_ and est.n_iter_ == 2 and not np.isfinite(est.loss_curve_[-1]) or est.loss_curve_[-1] > 1e3
    np.testing.assert_array_equal(est.coef_, good)
    est.set_params(lr=0.01).partial_fit(X, y)  # goes on from the last good parameters; diverged_ stays said
    assert est.diverged_ and est.n_iter_ == 3 and np.isfinite(est.coef_).all()


# ---------------------------------------------------------------------------------------------------------
# Sample weights


@pytest.mark.parametrize("name", ITERATIVE)
def test_weights_of_ones_are_the_unweighted_fit_bit_for_bit(name):
    X, y = synthetic_data([2, -3.4], 4.2, 205, random_state=4)
    plain = make(name, num_epochs=2).fit(X, y)
    ones = make(name, num_epochs=2).fit(X, y, sample_weight=np.ones(205))
    np.testing.assert_array_equal(ones.coef_, plain.coef_)
    assert ones.intercept_ == plain.intercept_
    np.testing.assert_allclose(ones.loss_curve_, plain.loss_curve_, rtol=1e-6)  # summed in another order


@pytest.mark.parametrize("name", ITERATIVE)
def test_a_zero_weight_row_is_never_seen(name):
    # One outlier with weight 0: the fit is least squares without it (an unweighted fit is pulled far off).
    X, y = well_conditioned_data(noise=1e-3)
    y_outlier, weights = y.copy(), np.ones(len(y))
    y_outlier[5], weights[5] = y[5] + 100.0, 0.0
    keep = np.arange(len(y)) != 5
    oracle = np.linalg.lstsq(np.column_stack([X[keep], np.ones(keep.sum())]), y[keep], rcond=None)[0]
    batch = {"batch_size": len(y), "dtype": "float64"} if name in TORCH else {}  # full-batch gradient descent
    est = make(name, lr="auto", num_epochs=300, **batch)
    est.fit(X, y_outlier, sample_weight=weights)
    np.testing.assert_allclose(np.append(est.coef_, est.intercept_), oracle, atol=1e-2 if name in TORCH else 5e-2)


@pytest.mark.parametrize("name", TORCH)
def test_full_batch_gradient_descent_reaches_weighted_least_squares(name):
    X, y = well_conditioned_data(noise=0.5)
    weights = np.random.default_rng(5).uniform(0, 5, len(y))
    root = np.sqrt(weights)[:, None]
    wls = np.linalg.lstsq(root * np.column_stack([X, np.ones(len(y))]), root[:, 0] * y, rcond=None)[0]
    ols = np.linalg.lstsq(np.column_stack([X, np.ones(len(y))]), y, rcond=None)[0]
    est = make(name, lr="auto", batch_size=len(y), num_epochs=300, dtype="float64").fit(X, y, sample_weight=weights)
    fitted = np.append(est.coef_, est.intercept_)
    assert np.abs(fitted - wls).max() < 1e-3 * np.abs(wls - ols).max()
    assert est.loss_curve_[-1] == pytest.approx(np.average((X @ wls[:-1] + wls[-1] - y) ** 2, weights=weights))


def test_sklearn_sgd_passes_the_weights_on_with_the_mapped_step():
    X, y = synthetic_data([2, -3.4], 4.2, 200, random_state=6, dtype=np.float64)
    weights = np.random.default_rng(6).uniform(0, 2, 200)
    ours = make("sklearn-sgd", lr=0.02, batch_size=5, num_epochs=3).fit(X, y, sample_weight=weights)
    bare = SGDRegressor(
        penalty=None, learning_rate="constant", eta0=2 * 0.02 / 5, random_state=np.random.RandomState(0)
    )
    for _ in range(3):
        bare.partial_fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(ours.coef_, bare.coef_)
    assert ours.intercept_ == bare.intercept_[0]


@pytest.mark.parametrize("name", ITERATIVE)
def test_bad_weights_get_scikit_learns_messages(name):
    X, y = np.ones((4, 2)), np.arange(4.0)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        make(name).fit(X, y, sample_weight=[1, -1, 1, 1])
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(4,\)"):
        make(name).fit(X, y, sample_weight=[1, 1, 1])
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        make(name).fit(X, y, sample_weight=np.zeros(4))


# ---------------------------------------------------------------------------------------------------------
# Sparse X


@pytest.mark.parametrize("form", ["csr", "csc"])
@pytest.mark.parametrize("name", TORCH)
def test_a_sparse_fit_is_the_dense_fit_bit_for_bit(name, form):
    X, y = synthetic_data(np.arange(1.0, 9.0), 4.2, 305, random_state=7)
    X[np.random.default_rng(7).random(X.shape) < 0.7] = 0.0
    sparse = getattr(scipy.sparse, f"{form}_matrix")(X)
    weights = np.random.default_rng(8).uniform(0, 2, 305)
    for sample_weight in (None, weights):
        dense_fit = make(name, lr="auto", num_epochs=2).fit(X, y, sample_weight=sample_weight)
        sparse_fit = make(name, lr="auto", num_epochs=2).fit(sparse, y, sample_weight=sample_weight)
        # the same batches, densified: the same numbers step by step; only the training MSE is summed in blocks
        np.testing.assert_array_equal(sparse_fit.coef_, dense_fit.coef_)
        assert sparse_fit.intercept_ == dense_fit.intercept_
        assert sparse_fit.lr_ == pytest.approx(dense_fit.lr_, rel=1e-12)
        np.testing.assert_allclose(sparse_fit.loss_curve_, dense_fit.loss_curve_, rtol=1e-6)
        np.testing.assert_allclose(sparse_fit.predict(sparse), dense_fit.predict(X), rtol=1e-12)


@pytest.mark.parametrize("name", TORCH)
def test_a_sparse_x_is_densified_a_batch_or_a_block_at_a_time(name, monkeypatch):
    X = scipy.sparse.random(600, 4000, density=0.001, format="csr", random_state=0, dtype=np.float32)
    y = np.asarray(X.sum(axis=1)).ravel()
    densified = []
    toarray = scipy.sparse.csr_matrix.toarray

    def recording_toarray(self, *args, **kwargs):
        densified.append(self.shape[0] * self.shape[1])
        return toarray(self, *args, **kwargs)

    monkeypatch.setattr(scipy.sparse.csr_matrix, "toarray", recording_toarray)
    make(name, batch_size=10, num_epochs=1).fit(X, y)
    assert densified and max(densified) <= TRAINING_MSE_BLOCK_ENTRIES < X.shape[0] * X.shape[1]


def test_sklearn_sgd_passes_a_sparse_x_to_sgd_regressor():
    X, y = synthetic_data([2, -3.4, 1.0], 4.2, 300, random_state=9, dtype=np.float64)
    X[np.random.default_rng(9).random(X.shape) < 0.5] = 0.0
    sparse = scipy.sparse.csr_matrix(X)
    ours = make("sklearn-sgd", num_epochs=2).fit(sparse, y)
    bare = SGDRegressor(
        penalty=None, learning_rate="constant", eta0=2 * 0.03 / 10, random_state=np.random.RandomState(0)
    )
    for _ in range(2):
        bare.partial_fit(sparse, y)
    np.testing.assert_array_equal(ours.coef_, bare.coef_)
    np.testing.assert_allclose(ours.predict(sparse), bare.predict(sparse), rtol=1e-12)


def test_the_dataloader_reads_dense_tensors_and_the_tags_say_so():
    est = make("torch-concise", use_dataloader=True)
    assert not est.__sklearn_tags__().input_tags.sparse and make("torch-concise").__sklearn_tags__().input_tags.sparse
    with pytest.raises(TypeError, match="Sparse data was passed for X, but dense data is required"):
        est.fit(scipy.sparse.csr_matrix(np.ones((4, 2))), np.arange(4.0))


# ---------------------------------------------------------------------------------------------------------
# Several targets


@pytest.mark.parametrize("name", TORCH)
def test_several_targets_are_fitted_each_as_on_its_own(name):
    X, y1 = synthetic_data([2, -3.4], 4.2, 200, random_state=10)
    Y = np.column_stack([y1, -y1 + 1.0, 3 * X[:, 0]])
    est = make(name, num_epochs=5).fit(X, Y)
    assert est.coef_.shape == (3, 2) and est.intercept_.shape == (3,) and est.predict(X).shape == (200, 3)
    for target in range(3):  # other initial weights and batch orders, the same loss per target: close, not equal
        alone = make(name, num_epochs=5).fit(X, Y[:, target])
        np.testing.assert_allclose(est.coef_[target], alone.coef_, atol=1e-2)
        assert est.intercept_[target] == pytest.approx(alone.intercept_, abs=1e-2)
    # one column as a 2-D y: the 1-D fit's numbers, with LinearRegression's shapes
    column = make(name, num_epochs=5).fit(X, Y[:, :1])
    assert column.coef_.shape == (1, 2) and column.intercept_.shape == (1,)
    np.testing.assert_array_equal(column.coef_[0], make(name, num_epochs=5).fit(X, Y[:, 0]).coef_)


@pytest.mark.parametrize("name", TORCH)
def test_several_targets_by_full_batch_descent_reach_linear_regression(name):
    X, _ = well_conditioned_data()
    Y = np.column_stack([X @ [1.0, -2.0, 0.5] + 3, X[:, 0] - 1]) + np.random.default_rng(11).normal(0, 0.1, (60, 2))
    est = make(name, lr="auto", batch_size=60, num_epochs=300, dtype="float64").fit(X, Y)
    reference = LinearRegression().fit(X, Y)
    np.testing.assert_allclose(est.coef_, reference.coef_, atol=1e-6)
    np.testing.assert_allclose(est.intercept_, reference.intercept_, atol=1e-6)
    partial = make(name, lr="auto", batch_size=60, dtype="float64")
    for _ in range(3):
        partial.partial_fit(X, Y)
    assert_same_fit(partial, make(name, lr="auto", batch_size=60, num_epochs=3, dtype="float64").fit(X, Y))


def test_sklearn_sgd_takes_one_target_in_scikit_learns_words():
    with pytest.raises(ValueError, match=r"y should be a 1d array, got an array of shape \(4, 2\) instead"):
        make("sklearn-sgd").fit(np.ones((4, 2)), np.ones((4, 2)))


@pytest.mark.parametrize("name", ITERATIVE)
def test_a_loss_that_ends_above_its_start_at_a_stable_step_is_noise_not_divergence(name):
    # A line that explains almost nothing (heavy-tailed noise): constant-step SGD at lr="auto" wanders above
    # the loss it started from, but the step is below the stability limit, so the fit is not called diverged.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = 0.05 * X[:, 0] + 3 * rng.standard_t(3, size=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        est = implementation(name)(lr="auto", num_epochs=3).fit(X, y)
    assert est.loss_curve_[-1] > np.mean(y**2) and not est.diverged_
    assert max(est.loss_curve_) < 3 * np.mean(y**2)
    # Above the limit, the same ending is a divergence.
    with pytest.warns(DivergenceWarning):
        above = implementation(name)(lr=3 * est.lr_ / AUTO_FRACTION, num_epochs=3).fit(X, y)
    assert above.diverged_


@pytest.mark.parametrize("name", ITERATIVE)
@pytest.mark.parametrize("lambda_max", [0.0, -1.0, np.inf, np.nan])
def test_lr_limit_takes_only_a_positive_curvature(name, lambda_max):
    with pytest.raises(ValueError, match="lambda_max must be a finite number > 0"):
        implementation(name)().lr_limit(lambda_max)


# ---------------------------------------------------------------------------------------------------------
# Tail averaging


@pytest.mark.parametrize("name", ITERATIVE)
def test_k_averaged_partial_fits_are_an_averaged_fit_with_k_epochs_bit_for_bit(name):
    X, y = synthetic_data([2, -3.4], 4.2, 205, random_state=2)
    fitted = make(name, average=True, num_epochs=5).fit(X, y)
    partial = make(name, average=True)
    for _ in range(5):
        partial.partial_fit(X, y)
    assert_same_fit(partial, fitted)


@pytest.mark.parametrize("name", ITERATIVE)
def test_the_tail_average_reaches_least_squares_where_the_last_iterate_stalls(name):
    from impls import NumpyClosedFormRegressor

    X, y = synthetic_data([2, -3.4], 4.2, 1000, random_state=0)
    reference = NumpyClosedFormRegressor().fit(X, y)

    def distance_in_se(model):
        return np.max(np.abs(model.coef_ - reference.coef_) / reference.coef_stderr_)

    last = make(name, num_epochs=30).fit(X, y)
    averaged = make(name, num_epochs=30, average=True).fit(X, y)
    assert distance_in_se(averaged) < 0.1 < distance_in_se(last)


def test_two_epochs_averaged_are_sgdregressors_own_average_over_both():
    # the segments restart at epoch 1 and are combined: the mean over both epochs, as SGDRegressor's average=True
    X, y = synthetic_data([2, -3.4], 4.2, 300, random_state=1)
    X, y = X.astype(np.float64), y.astype(np.float64)
    ours = make("sklearn-sgd", average=True, num_epochs=2).fit(X, y)
    bare = SGDRegressor(
        penalty=None,
        learning_rate="constant",
        eta0=0.006,
        tol=None,
        average=True,
        random_state=np.random.RandomState(0),
    )
    for _ in range(2):
        bare.partial_fit(X, y)
    np.testing.assert_allclose(ours.coef_, bare.coef_, rtol=1e-12)
    assert ours.intercept_ == pytest.approx(bare.intercept_[0], rel=1e-12)


def test_the_average_restarts_at_powers_of_two():
    from impls._base import restarts_average

    assert [epoch for epoch in range(20) if restarts_average(epoch)] == [1, 2, 4, 8, 16]


@pytest.mark.parametrize("name", ITERATIVE)
def test_lr_limit_refuses_a_bool_and_a_curvature_whose_reciprocal_overflows(name):
    with pytest.raises(ValueError, match="lambda_max must be a finite number > 0"):
        make(name).lr_limit(True)
    with pytest.raises(ValueError, match="finite reciprocal"):
        make(name).lr_limit(1e-320)


def test_the_mean_square_limit_holds_on_the_notebooks_data():
    # stable at 0.8 times the stated limit, diverged at 3 times it, for every implementation (issue #29)
    from impls._step_size import step_limit

    X, y = synthetic_data([2, -3.4], 4.2, 1000, random_state=0)
    for name in ITERATIVE:
        limit = step_limit(make(name), X)
        assert not _diverges(name, 0.8 * limit, X, y, num_epochs=10)
        assert _diverges(name, 3 * limit, X, y, num_epochs=3)
