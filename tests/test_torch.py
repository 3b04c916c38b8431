"""The two torch estimators: the DataLoader's batches, their dtype and device, the ½ of the loss, the global RNG."""

import numpy as np
import pytest
import torch
from conftest import TORCH
from torch.utils import data

from impls import IMPLEMENTATIONS, TorchConciseRegressor, TorchScratchRegressor, synthetic_data
from impls.data import minibatches, torch_generator

GOOD_X, GOOD_Y = np.ones((4, 2)), np.arange(4.0)


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


def test_concise_and_scratch_start_alike_and_the_half_is_worth_a_factor_2_in_lr(notebook_data):
    X, y = notebook_data
    concise = _trajectory(TorchConciseRegressor(lr=0.03), X, y)
    np.testing.assert_array_equal(concise[0], _trajectory(TorchScratchRegressor(lr=0.06), X, y)[0])
    # with the same lr they part (the step-by-step agreement at twice the lr is in test_study.py)
    assert np.abs(concise - _trajectory(TorchScratchRegressor(lr=0.03), X, y)).max() > 1e-2


@pytest.mark.parametrize("name", TORCH)
def test_torch_ones_compute_in_their_dtype(name):
    X, y = synthetic_data([2, -3.4], 4.2, 100, dtype=np.float64)
    single = IMPLEMENTATIONS[name]().fit(X, y)  # float64 input, float32 arithmetic (the default)
    double = IMPLEMENTATIONS[name](dtype="float64").fit(X, y)
    assert np.all(single.coef_ == single.coef_.astype(np.float32))  # values representable in float32
    assert not np.all(double.coef_ == double.coef_.astype(np.float32))


def test_unknown_reduction():
    with pytest.raises(
        ValueError, match=r"'reduction' parameter of TorchConciseRegressor must be a str among .*Got 'max'"
    ):
        IMPLEMENTATIONS["torch-concise"](reduction="max").fit(GOOD_X, GOOD_Y)


@pytest.mark.parametrize("name", TORCH)
@pytest.mark.parametrize("device", ["gpu", "cuda:99"] + ([] if __import__("torch").cuda.is_available() else ["cuda"]))
def test_unknown_or_unavailable_device(name, device):
    with pytest.raises(
        ValueError, match=rf"'device' parameter of .* must be a torch device available on this machine.*Got '{device}'"
    ):
        IMPLEMENTATIONS[name](device=device).fit(GOOD_X, GOOD_Y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
@pytest.mark.parametrize("name", TORCH)
def test_cuda_fit_matches_the_cpu_fit(name, notebook_data):
    cpu = IMPLEMENTATIONS[name]().fit(*notebook_data)
    gpu = IMPLEMENTATIONS[name](device="cuda").fit(*notebook_data)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, atol=1e-4)
    assert gpu.intercept_ == pytest.approx(cpu.intercept_, abs=1e-4)


@pytest.mark.parametrize("name", TORCH)
def test_fitting_leaves_torchs_global_random_state_alone(name, notebook_data):
    before = torch.random.get_rng_state()
    IMPLEMENTATIONS[name]().fit(*notebook_data)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_seed_changes_the_minibatch_order_on_the_same_data():
    X, y = synthetic_data([2, -3.4], 4.2, 1000)
    a = IMPLEMENTATIONS["torch-scratch"](random_state=0, record_steps=True).fit(X, y)
    b = IMPLEMENTATIONS["torch-scratch"](random_state=1, record_steps=True).fit(X, y)
    assert not np.array_equal(a.coef_path_[1:], b.coef_path_[1:])
