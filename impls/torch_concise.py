"""The d2l notebook's concise way: ``nn.Linear``, ``nn.MSELoss`` and ``torch.optim.SGD`` over shuffled minibatches.

Each step: (w, b) ← (w, b) − lr · ∇ MSELoss(reduction)(net(X_batch), y_batch).
Data-parallel (``distributed=True``), ``DistributedDataParallel`` averages the gradients of W ranks, each
on its shard of the batch, with each rank's summed loss weighted so that the average is the whole batch's.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import StrOptions
from torch import nn
from torch.utils import data

from impls._base import (
    BATCH_SIZE,
    BOOLEAN,
    INIT_STD,
    LR,
    NUM_EPOCHS,
    RANDOM_STATE,
    TORCH_DTYPE,
    LinearPredictorMixin,
    TrainingLog,
    check_device,
    fit_context,
)
from impls._distributed import ddp_batch_loss
from impls.data import Minibatches, torch_generator


class TorchConciseRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Linear regression with PyTorch's high-level API, as in the d2l notebook.

    Parameters
    ----------
    lr : float, default=0.03
        Learning rate of ``torch.optim.SGD``.
    batch_size : int, default=10
        Examples per minibatch; a batch larger than the data means one batch per epoch.
    num_epochs : int, default=3
        Passes over the data.
    reduction : {"mean", "sum"}, default="mean"
        ``nn.MSELoss``'s reduction: the notebook's mean, or its exercise's sum (the same steps then
        need ``lr / batch_size``).
    random_state : int, RandomState instance or None, default=0
        Seeds one local ``torch.Generator`` for the initial weights and the minibatch order. A
        ``numpy.random.RandomState`` gives that seed as one draw from it (so it advances); None, fresh entropy.
    init_std : float, default=0.01
        The initial weights are drawn from N(0, init_std²) (the notebook's 0.01; 0 gives zeros); the bias starts at 0.
    device : str, default="cpu"
        Torch device to train on (``"cpu"``, ``"cuda"``, ``"cuda:N"``); the data are moved there once.
    dtype : {"float32", "float64"}, default="float32"
        The arithmetic of training (the notebook's float32).
    use_dataloader : bool, default=False
        Draw batches with ``torch.utils.data.DataLoader`` as the notebook does; by default the same
        batches are cut from the in-memory tensors directly.
    record_steps : bool, default=False
        Keep the parameters after every step in ``coef_path_`` and ``intercept_path_``.
    distributed : bool, default=False
        Train data-parallel with ``DistributedDataParallel`` across the ranks of torch.distributed's
        default process group (see ``python -m linreg_compare.distributed``): every rank calls ``fit`` with the
        same data and takes its shard of every minibatch of ``batch_size``; the steps are those of one
        process with the same ``batch_size``, and every rank ends with the same fitted estimator.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The fitted weights, in float64 (the last epoch's before any divergence).
    intercept_ : float
        The fitted bias.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float, length n_iter_
        Training MSE after each epoch.
    diverged_ : bool
        Training was stopped because the loss blew up (see ``impls.DivergenceWarning``).
    coef_path_ : ndarray of shape (n_steps + 1, n_features)
        With ``record_steps``: the weights at the start and after every step.
    intercept_path_ : ndarray of shape (n_steps + 1,)
        With ``record_steps``: the bias at the start and after every step.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X had string column names.

    Examples
    --------
    >>> from impls import TorchConciseRegressor, synthetic_data
    >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, random_state=0)
    >>> model = TorchConciseRegressor(lr=0.03, batch_size=10, num_epochs=3).fit(X, y)
    >>> model.coef_.round(2), round(model.intercept_, 2), model.n_iter_
    (array([ 2. , -3.4]), 4.2, 3)
    """

    _parameter_constraints = {
        "lr": LR,
        "batch_size": BATCH_SIZE,
        "num_epochs": NUM_EPOCHS,
        "reduction": [StrOptions({"mean", "sum"})],
        "random_state": RANDOM_STATE,
        "init_std": INIT_STD,
        "device": [str],
        "dtype": TORCH_DTYPE,
        "use_dataloader": BOOLEAN,
        "record_steps": BOOLEAN,
        "distributed": BOOLEAN,
    }

    def __init__(
        self,
        *,
        lr=0.03,
        batch_size=10,
        num_epochs=3,
        reduction="mean",
        random_state=0,
        init_std=0.01,
        device="cpu",
        dtype="float32",
        use_dataloader=False,
        record_steps=False,
        distributed=False,
    ):
        self.lr = lr
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.reduction = reduction
        self.random_state = random_state
        self.init_std = init_std
        self.device = device
        self.dtype = dtype
        self.use_dataloader = use_dataloader
        self.record_steps = record_steps
        self.distributed = distributed

    @fit_context(dtype=[np.float64, np.float32])
    def fit(self, X, y):
        device, dtype = check_device(self, self.device), getattr(torch, self.dtype)
        generator = torch_generator(self.random_state)  # one local generator: the initial weights, then the batches

        # The data set, moved to the device once, and read in shuffled minibatches: by the notebook's
        # DataLoader, or by default the same batches cut from the tensors in memory.
        features = torch.as_tensor(X, dtype=dtype).to(device)
        labels = torch.as_tensor(y, dtype=dtype).reshape(-1, 1).to(device)
        if self.use_dataloader:
            dataset = data.TensorDataset(features, labels)
            data_iter = data.DataLoader(dataset, int(self.batch_size), shuffle=True, generator=generator)
        else:
            data_iter = Minibatches(features, labels, self.batch_size, generator)

        # The model: one fully connected layer, with N(0, init_std²) weights and a zero bias drawn from our
        # generator (nn.Linear's own initialisation draws from torch's global one: fork_rng puts it back).
        with torch.random.fork_rng(devices=[]):
            net = nn.Sequential(nn.Linear(X.shape[1], 1, dtype=dtype))
        nn.init.normal_(net[0].weight, mean=0.0, std=self.init_std, generator=generator)
        nn.init.zeros_(net[0].bias)
        net.to(device)

        # The loss of a minibatch, the notebook's; data-parallel, this rank's share of it (impls/_distributed.py).
        loss = nn.MSELoss(reduction=self.reduction)
        batch_loss = ddp_batch_loss(self, net, generator) if self.distributed else lambda X, y: loss(net(X), y)
        trainer = torch.optim.SGD(net.parameters(), lr=float(self.lr), foreach=False)  # foreach: docs/performance.md

        # Train: one optimiser step per minibatch; after each epoch, the log records the training MSE.
        log = TrainingLog.of_torch_model(self, net, net.parameters(), features, labels)
        for _ in range(self.num_epochs):
            with log.epoch():
                for X_batch, y_batch in data_iter:
                    l = batch_loss(X_batch, y_batch)
                    trainer.zero_grad()
                    l.backward()
                    trainer.step()
                    log.step()
            if log.stopped:
                break
        log.finish(self)
        return self
