"""The textbook's from-scratch way: tensors with ``requires_grad``, autograd, and a hand-written minibatch SGD.

Each step: (w, b) ← (w, b) − lr / |B| · ∇ Σ_{i∈B} ½ (x_iᵀw + b − y_i)², with |B| the length of the batch drawn.
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
    fit_atomically,
    validate_hyperparameters,
    validate_training_data,
)
from impls.data import minibatches, torch_generator


def linreg(X, w, b):
    """The linear regression model."""
    return X @ w + b


def squared_loss(y_hat, y):
    """Half the squared error: the ½ cancels the 2 of the derivative, so the gradient is just the residual."""
    return (y_hat - y) ** 2 / 2


def sgd(params, lr, batch_len):
    """Minibatch stochastic gradient descent on a summed loss."""
    # The update must not itself be recorded by autograd, hence no_grad.
    with torch.no_grad():
        for param in params:
            # param ← param − (lr / |B|)·grad, as one in-place op rather than three (a fifth of the step's
            # time at batch 10). |B| is the length of the batch actually drawn: the last one can be shorter.
            param.sub_(param.grad, alpha=lr / batch_len)
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
    ):
        self.lr = lr
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.random_state = random_state
        self.init_std = init_std
        self.device = device
        self.dtype = dtype
        self.record_steps = record_steps

    @fit_atomically
    def fit(self, X, y):
        validate_hyperparameters(self)
        X, y = validate_training_data(self, X, y, dtype=[np.float64, np.float32])
        device = check_device(self, self.device)
        dtype = getattr(torch, self.dtype)
        generator = torch_generator(self.random_state)

        # The data set, moved to the device once.
        features = torch.as_tensor(X, dtype=dtype).to(device)
        labels = torch.as_tensor(y, dtype=dtype).reshape(-1, 1).to(device)

        # Initialise the parameters: w ~ N(0, init_std²) (the book's 0.01), b = 0.
        w = torch.normal(0.0, self.init_std, size=(X.shape[1], 1), generator=generator, dtype=dtype).to(device)
        b = torch.zeros(1, dtype=dtype, device=device)
        w.requires_grad_(True)
        b.requires_grad_(True)

        def parameters():
            return torch.cat([w.detach().reshape(-1), b.detach()])

        def training_mse():
            with torch.no_grad():
                return (2 * squared_loss(linreg(features, w, b), labels).mean()).item()

        # Train: one hand-written SGD step per minibatch; after each epoch, the log records the training MSE.
        log = TrainingLog(self, parameters, training_mse(), self.record_steps, -(-len(X) // int(self.batch_size)))
        for _ in range(self.num_epochs):
            with log.epoch(training_mse):
                for X_batch, y_batch in minibatches(features, labels, self.batch_size, generator):
                    l = squared_loss(linreg(X_batch, w, b), y_batch)
                    l.sum().backward()
                    sgd([w, b], float(self.lr), len(X_batch))
                    log.step()
            if log.stopped:
                break
        log.fitted(self)
        return self
