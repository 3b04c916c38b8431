"""The textbook's from-scratch way: tensors with ``requires_grad``, autograd, and a hand-written minibatch SGD.

Each step: (w, b) ← (w, b) − lr / |B| · ∇ Σ_{i∈B} ½ (x_iᵀw + b − y_i)², with |B| the length of the batch drawn.
Data-parallel (``distributed=True``), each of W ranks sums the loss over its shard of B and ``backward()``
sums the W gradients with ``all_reduce`` before the same step: the sum over the shards is the sum over B.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin

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
from impls._distributed import all_reduce_batch_loss
from impls.data import minibatches, torch_generator


def linreg(X, w, b):
    """The linear regression model."""
    return X @ w + b


def squared_loss(y_hat, y):
    """Half the squared error: the ½ cancels the 2 of the derivative, so the gradient is just the residual."""
    return (y_hat - y) ** 2 / 2


def sgd(params, lr, batch_size):
    """Minibatch stochastic gradient descent on a loss summed over the batch: param ← param − lr/|B| · grad."""
    with torch.no_grad():  # the update must not itself be recorded by autograd
        for param in params:
            param.sub_(param.grad, alpha=lr / batch_size)  # batch_size: the length of the batch actually drawn
            param.grad.zero_()


class TorchScratchRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Linear regression written from scratch with PyTorch tensors and autograd (no ``nn``, no ``torch.optim``).

    Parameters
    ----------
    lr : float, default=0.03
        Learning rate for the ½-squared loss. The same steps as ``TorchConciseRegressor(lr=a)``
        (whose MSE has no ½) need ``lr=2a`` here.
    batch_size : int, default=10
        Examples per minibatch; the step divides by the length of the batch actually drawn.
    num_epochs : int, default=3
        Passes over the data.
    random_state : int, RandomState instance or None, default=0
        As for ``TorchConciseRegressor``: with the same value both start from the same parameters and
        draw the same batches.
    init_std : float, default=0.01
        The initial weights are drawn from N(0, init_std²); the bias starts at 0.
    device : str, default="cpu"
        Torch device to train on.
    dtype : {"float32", "float64"}, default="float32"
        The arithmetic of training.
    record_steps : bool, default=False
        Keep the parameters after every step in ``coef_path_`` and ``intercept_path_``.
    distributed : bool, default=False
        Train data-parallel across the ranks of torch.distributed's default process group (see
        ``python -m linreg_compare.distributed``): every rank calls ``fit`` with the same data, takes its shard of
        every minibatch of ``batch_size``, and ``backward()`` sums the gradients with ``all_reduce``; the steps
        are those of one process with the same ``batch_size``, and every rank ends with the same fitted estimator.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The fitted weights, in float64 (the last epoch's before any divergence).
    intercept_ : float
        The fitted bias.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float, length n_iter_
        Training MSE (no ½) after each epoch.
    diverged_ : bool
        Training was stopped because the loss blew up.
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
    >>> from impls import TorchScratchRegressor, synthetic_data
    >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, random_state=0)
    >>> model = TorchScratchRegressor(lr=0.06).fit(X, y)  # twice the concise lr: the loss has a ½
    >>> model.coef_.round(2), round(model.intercept_, 2)
    (array([ 2. , -3.4]), 4.2)
    """

    _parameter_constraints = {
        "lr": LR,
        "batch_size": BATCH_SIZE,
        "num_epochs": NUM_EPOCHS,
        "random_state": RANDOM_STATE,
        "init_std": INIT_STD,
        "device": [str],
        "dtype": TORCH_DTYPE,
        "record_steps": BOOLEAN,
        "distributed": BOOLEAN,
    }

    def __init__(
        self,
        *,
        lr=0.03,
        batch_size=10,
        num_epochs=3,
        random_state=0,
        init_std=0.01,
        device="cpu",
        dtype="float32",
        record_steps=False,
        distributed=False,
    ):
        self.lr = lr
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.random_state = random_state
        self.init_std = init_std
        self.device = device
        self.dtype = dtype
        self.record_steps = record_steps
        self.distributed = distributed

    @fit_context(dtype=[np.float64, np.float32])
    def fit(self, X, y):
        device, dtype = check_device(self, self.device), getattr(torch, self.dtype)
        generator = torch_generator(self.random_state)  # one local generator: the initial w, then the batches

        # The data set, moved to the device once.
        features = torch.as_tensor(X, dtype=dtype).to(device)
        labels = torch.as_tensor(y, dtype=dtype).reshape(-1, 1).to(device)

        # Initialise the parameters: w ~ N(0, init_std²) (the book's 0.01), b = 0.
        w = torch.normal(0.0, self.init_std, size=(X.shape[1], 1), generator=generator, dtype=dtype).to(device)
        b = torch.zeros(1, dtype=dtype, device=device)
        w.requires_grad_(True)
        b.requires_grad_(True)

        # The loss of a minibatch, the book's; data-parallel, that of this rank's shard, whose gradients
        # backward() sums over the ranks (impls/_distributed.py).
        def batch_loss(X, y):
            return squared_loss(linreg(X, w, b), y)

        if self.distributed:
            batch_loss = all_reduce_batch_loss(self, batch_loss, [w, b], generator)

        # Train: one hand-written SGD step per minibatch; after each epoch, the log records the training MSE.
        log = TrainingLog.of_torch_model(self, lambda X: linreg(X, w, b), [w, b], features, labels)
        for _ in range(self.num_epochs):
            with log.epoch():
                for X_batch, y_batch in minibatches(features, labels, self.batch_size, generator):
                    l = batch_loss(X_batch, y_batch)
                    l.sum().backward()
                    sgd([w, b], float(self.lr), len(X_batch))
                    log.step()
            if log.stopped:
                break
        log.finish(self)
        return self
