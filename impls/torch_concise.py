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
    fit_atomically,
    validate_hyperparameters,
    validate_training_data,
)
from impls._distributed import shard, shared_generator, world
from impls.data import minibatches, torch_generator


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
        default process group (see ``python -m runner.distributed``): every rank calls ``fit`` with the
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

    @fit_atomically
    def fit(self, X, y):
        validate_hyperparameters(self)
        X, y = validate_training_data(self, X, y, dtype=[np.float64, np.float32])
        device = check_device(self, self.device)
        dtype = getattr(torch, self.dtype)
        rank, world_size = world(self)
        generator = shared_generator(torch_generator(self.random_state), world_size)

        # The data set, moved to the device once.
        features = torch.as_tensor(X, dtype=dtype).to(device)
        labels = torch.as_tensor(y, dtype=dtype).reshape(-1, 1).to(device)
        if self.use_dataloader:
            data_iter = data.DataLoader(
                data.TensorDataset(features, labels), int(self.batch_size), shuffle=True, generator=generator
            )

        # The model: one fully connected layer. nn.Linear draws default weights from the global RNG;
        # fork_rng puts its state back, so fitting leaves the caller's torch.manual_seed stream untouched.
        # (nn.utils.skip_init would avoid the draw but costs 0.6 s of imports on first use.)
        # The notebook's N(0, 0.01²) weights and zero bias then come from our own generator.
        with torch.random.fork_rng(devices=[]):
            net = nn.Sequential(nn.Linear(X.shape[1], 1, dtype=dtype))
        nn.init.normal_(net[0].weight, mean=0.0, std=self.init_std, generator=generator)
        nn.init.zeros_(net[0].bias)
        net.to(device)

        loss = nn.MSELoss(reduction=self.reduction)
        if world_size > 1:
            # DDP averages the W ranks' gradients. Each rank's loss is its shard's squared errors summed and
            # weighted by W / |B| (mean) or W (sum): the average is then the gradient of the whole batch's
            # loss, however long the shards are.
            ddp = nn.parallel.DistributedDataParallel(net)
            shard_loss = nn.MSELoss(reduction="sum")

        # foreach=False: the plain per-tensor update, the fastest for two small tensors; left at None,
        # SGD would spend part of every step deciding between its update kernels.
        trainer = torch.optim.SGD(net.parameters(), lr=float(self.lr), foreach=False)

        def parameters():
            return torch.cat([net[0].weight.detach().reshape(-1), net[0].bias.detach()])

        def training_mse():
            with torch.no_grad():
                return nn.functional.mse_loss(net(features), labels).item()

        # Train: one optimiser step per minibatch; after each epoch, the log records the training MSE.
        log = TrainingLog(self, parameters, training_mse(), self.record_steps, -(-len(X) // int(self.batch_size)))
        for _ in range(self.num_epochs):
            batches = data_iter if self.use_dataloader else minibatches(features, labels, self.batch_size, generator)
            with log.epoch(training_mse):
                for X_batch, y_batch in batches:
                    if world_size == 1:
                        l = loss(net(X_batch), y_batch)
                    else:  # this rank's shard of the batch, weighted as above
                        X_shard, y_shard = shard(X_batch, rank, world_size), shard(y_batch, rank, world_size)
                        weight = world_size / (len(X_batch) if self.reduction == "mean" else 1)
                        l = shard_loss(ddp(X_shard), y_shard) * weight
                    trainer.zero_grad()
                    l.backward()
                    trainer.step()
                    log.step()
            if log.stopped:
                break
        log.fitted(self)
        return self
