"""The four implementations against the seed's numbers, against oracles, and against each other."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch.utils import data

from impls import (
    IMPLEMENTATIONS,
    NAMES,
    NumpyClosedFormRegressor,
    SklearnSGDRegressor,
    TorchConciseRegressor,
    TorchScratchRegressor,
    synthetic_data,
)
from impls.data import minibatches, torch_generator

TRUE_W, TRUE_B = np.array([2.0, -3.4]), 4.2
ITERATIVE = ["torch-concise", "torch-scratch", "sklearn-sgd"]


@pytest.fixture(scope="module")
def seed_data():
    return synthetic_data(TRUE_W, TRUE_B, 1000)


def test_registry_lists_the_four_names():
    assert (
        list(IMPLEMENTATIONS) == list(NAMES) == ["torch-concise", "torch-scratch", "numpy-closed-form", "sklearn-sgd"]
    )
    assert IMPLEMENTATIONS["torch-concise"] is TorchConciseRegressor


def test_synthetic_data_shapes_law_and_reproducibility():
    X, y = synthetic_data(TRUE_W, TRUE_B, 1000)
    assert X.shape == (1000, 2) and y.shape == (1000,) and X.dtype == y.dtype == np.float32
    X2, y2 = synthetic_data(TRUE_W, TRUE_B, 1000)
    assert X.tobytes() == X2.tobytes() and y.tobytes() == y2.tobytes()
    X3, _ = synthetic_data(TRUE_W, TRUE_B, 1000, random_state=1)
    assert not np.array_equal(X, X3)
    residual = y - X @ TRUE_W - TRUE_B
    assert abs(residual.std() - 0.01) < 0.001 and abs(X.std() - 1) < 0.05
    X64, _ = synthetic_data(TRUE_W, TRUE_B, 10, dtype=np.float64, noise=0.0)
    assert X64.dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_recovers_the_seed_parameters_to_the_noise_floor(name, seed_data):
    X, y = seed_data
    est = IMPLEMENTATIONS[name]().fit(X, y)
    assert est.coef_.shape == (2,) and isinstance(est.intercept_, float)
    np.testing.assert_allclose(est.coef_, TRUE_W, atol=0.01)
    assert abs(est.intercept_ - TRUE_B) < 0.01
    train_mse = np.mean((est.predict(X) - y) ** 2)
    assert 5e-5 < train_mse < 1.5e-4  # noise floor σ² = 1e-4, as the seed prints (0.000097)
    if name in ITERATIVE:
        assert est.n_iter_ == 3 and len(est.loss_curve_) == 3 and not est.diverged_
        assert est.loss_curve_[-1] == pytest.approx(train_mse, rel=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises_not_fitted(name, seed_data):
    with pytest.raises(NotFittedError):
        IMPLEMENTATIONS[name]().predict(seed_data[0])


@pytest.mark.parametrize("name", NAMES)
def test_same_random_state_same_fit_and_another_differs(name, seed_data):
    X, y = seed_data
    first = IMPLEMENTATIONS[name](random_state=3) if name in ITERATIVE else IMPLEMENTATIONS[name]()
    second = IMPLEMENTATIONS[name](random_state=3) if name in ITERATIVE else IMPLEMENTATIONS[name]()
    np.testing.assert_array_equal(first.fit(X, y).coef_, second.fit(X, y).coef_)
    if name in ITERATIVE:
        other = IMPLEMENTATIONS[name](random_state=4).fit(X, y)
        assert not np.array_equal(first.coef_, other.coef_)


def _design(rank_deficient):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 5)) + 3.0  # off-centre on purpose
    if rank_deficient:
        X[:, 4] = X[:, 0] - 2 * X[:, 1]  # a linear combination, so XᵀX is singular
    y = X @ np.array([1.0, -2.0, 0.5, 3.0, -1.0]) + 0.7 + 0.1 * rng.standard_normal(200)
    return X, y


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_closed_form_equals_lstsq_and_linear_regression(rank_deficient):
    X, y = _design(rank_deficient)
    est = NumpyClosedFormRegressor().fit(X, y)
    solution = np.linalg.lstsq(np.column_stack([X, np.ones(len(X))]), y, rcond=None)[0]
    np.testing.assert_allclose(est.coef_, solution[:-1], rtol=1e-10, atol=1e-12)
    assert est.intercept_ == pytest.approx(solution[-1], rel=1e-10)
    oracle = LinearRegression().fit(X, y)
    np.testing.assert_allclose(est.coef_, oracle.coef_, rtol=1e-10, atol=1e-12)
    assert est.intercept_ == pytest.approx(oracle.intercept_, rel=1e-10)
    assert est.solver_ == ("lstsq" if rank_deficient else "normal-equations")


def test_closed_form_on_three_points_worked_by_hand():
    # y = 2x + 1 through (0, 1), (1, 3), (2, 5): x̄ = 1, ȳ = 3, w = Σ(x-x̄)(y-ȳ) / Σ(x-x̄)² = 4/2 = 2, b = 3 - 2 = 1.
    est = NumpyClosedFormRegressor().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    assert est.coef_[0] == pytest.approx(2.0, abs=1e-14) and est.intercept_ == pytest.approx(1.0, abs=1e-14)
    # Two identical columns share the slope equally (minimum norm): w = [1, 1].
    est = NumpyClosedFormRegressor().fit([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], [1.0, 3.0, 5.0])
    np.testing.assert_allclose(est.coef_, [1.0, 1.0], atol=1e-12)
    assert est.intercept_ == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", ITERATIVE)
def test_iterative_ones_reach_the_hand_worked_line(name):
    X = np.array([[0.0], [1.0], [2.0]])
    y = np.array([1.0, 3.0, 5.0])
    est = IMPLEMENTATIONS[name](lr=0.05, batch_size=1, num_epochs=400).fit(X, y)
    assert est.coef_[0] == pytest.approx(2.0, abs=1e-3) and est.intercept_ == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_closed_form_from_blocks_and_memmap_equals_in_memory(rank_deficient, tmp_path):
    X, y = _design(rank_deficient)
    in_memory = NumpyClosedFormRegressor().fit(X, y)
    blocks = ((X[i : i + 37], y[i : i + 37]) for i in range(0, len(X), 37))
    if rank_deficient:
        with pytest.warns(UserWarning, match="ill-conditioned"):
            chunked = NumpyClosedFormRegressor().fit_blocks(blocks)
        np.testing.assert_allclose(chunked.coef_, in_memory.coef_, rtol=1e-6)
    else:
        chunked = NumpyClosedFormRegressor().fit_blocks(blocks)
        np.testing.assert_allclose(chunked.coef_, in_memory.coef_, rtol=1e-12)
    mapped = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mapped[:] = X
    np.testing.assert_array_equal(NumpyClosedFormRegressor().fit(mapped, y).coef_, in_memory.coef_)


def test_fit_blocks_with_no_block_says_so():
    with pytest.raises(ValueError, match="at least one block"):
        NumpyClosedFormRegressor().fit_blocks([])


def test_minibatches_are_the_dataloader_batches_epoch_after_epoch():
    features = torch.arange(23.0).reshape(-1, 1)
    loader = data.DataLoader(
        data.TensorDataset(features, features), batch_size=5, shuffle=True, generator=torch_generator(11)
    )
    ours = torch_generator(11)
    for _ in range(3):
        theirs = [x.reshape(-1).tolist() for x, _ in loader]
        mine = [x.reshape(-1).tolist() for x, _ in minibatches(features, features, 5, ours)]
        assert mine == theirs
    assert len(theirs) == 5 and len(theirs[-1]) == 3


def _trajectory(est, X, y):
    est.set_params(record_steps=True).fit(X, y)
    return np.column_stack([est.coef_path_, est.intercept_path_])


def test_concise_with_dataloader_takes_exactly_the_same_steps(seed_data):
    X, y = seed_data
    fast = _trajectory(TorchConciseRegressor(), X, y)
    seed_way = _trajectory(TorchConciseRegressor(use_dataloader=True), X, y)
    assert fast.shape == (301, 3)
    np.testing.assert_array_equal(fast, seed_way)


def test_concise_and_scratch_start_alike_and_agree_with_twice_the_lr(seed_data):
    X, y = seed_data
    concise = _trajectory(TorchConciseRegressor(lr=0.03), X, y)
    scratch = _trajectory(TorchScratchRegressor(lr=0.06), X, y)
    np.testing.assert_array_equal(concise[0], scratch[0])  # same initial parameters
    assert np.abs(concise - scratch).max() < 1e-5
    # and with the same lr they do not: the ½ in the loss is worth a factor 2.
    assert np.abs(concise - _trajectory(TorchScratchRegressor(lr=0.03), X, y)).max() > 1e-2


def test_sum_reduction_with_lr_over_batch_size_equals_mean(seed_data):
    X, y = seed_data
    mean = _trajectory(TorchConciseRegressor(lr=0.03), X, y)
    summed = _trajectory(TorchConciseRegressor(reduction="sum", lr=0.003), X, y)
    assert np.abs(mean - summed).max() < 1e-5


def test_sklearn_sgd_matches_a_bare_sgd_regressor(seed_data):
    X, y = seed_data
    ours = SklearnSGDRegressor().fit(X, y)
    bare = SGDRegressor(penalty=None, learning_rate="constant", eta0=0.006, max_iter=3, tol=None, random_state=0)
    bare.fit(X.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(ours.coef_, bare.coef_, atol=2e-3)
    assert ours.intercept_ == pytest.approx(bare.intercept_[0], abs=2e-3)


@pytest.mark.parametrize("name", NAMES)
def test_works_in_pipeline_cross_validation_and_grid_search(name, seed_data):
    X, y = seed_data
    scores = cross_val_score(make_pipeline(StandardScaler(), IMPLEMENTATIONS[name]()), X, y, cv=3)
    assert scores.min() > 0.99
    if name in ITERATIVE:
        grid = GridSearchCV(IMPLEMENTATIONS[name](), {"lr": [1e-4, 0.03]}, cv=3).fit(X, y)
        assert grid.best_params_ == {"lr": 0.03}


@pytest.mark.filterwarnings("ignore::impls.DivergenceWarning")  # some checks fit unscaled data at lr 0.03
@parametrize_with_checks([IMPLEMENTATIONS[name]() for name in NAMES])
def test_scikit_learn_conformance(estimator, check):
    # No check is expected to fail: every one of scikit-learn's checks applies and passes.
    check(estimator)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
@pytest.mark.parametrize("name", ["torch-concise", "torch-scratch"])
def test_cuda_fit_matches_the_cpu_fit(name, seed_data):
    cpu = IMPLEMENTATIONS[name]().fit(*seed_data)
    gpu = IMPLEMENTATIONS[name](device="cuda").fit(*seed_data)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, atol=1e-4)
    assert gpu.intercept_ == pytest.approx(cpu.intercept_, abs=1e-4)


@pytest.mark.parametrize("name", ["torch-concise", "torch-scratch"])
def test_fitting_leaves_torchs_global_random_state_alone(name, seed_data):
    before = torch.random.get_rng_state()
    IMPLEMENTATIONS[name]().fit(*seed_data)
    assert torch.equal(torch.random.get_rng_state(), before)
