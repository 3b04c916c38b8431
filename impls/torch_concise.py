"""The d2l notebook's concise way: ``nn.Linear``, ``nn.MSELoss`` and ``torch.optim.SGD`` over shuffled minibatches.

Each step: (w, b) ← (w, b) − lr · ∇ MSELoss(reduction)(net(X_batch), y_batch), with sample weights each
squared error times its weight.
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
    TailAverage,
    TrainingLog,
    check_device,
    fit_context,
)
from impls._distributed import ddp_batch_loss
from impls._step_size import check_curvature, learning_rate, step_limit
from impls.data import Minibatches, as_features, resumed_generator, torch_generator


class TorchConciseRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Linear regression with PyTorch's high-level API, as in the d2l notebook.

    Parameters
    ----------
    lr : float or "auto", default=0.03
        Learning rate of ``torch.optim.SGD``; ``"auto"``: ``AUTO_FRACTION`` (½) of ``lr_limit`` at the curvature a
        minibatch of the training data has (``impls._step_size.learning_rate``), kept in ``lr_``.
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
    average : bool, default=False
        Report the tail average of the iterates (``torch.optim.swa_utils.AveragedModel`` updated after every step)
        instead of the last one: the mean over the steps since the restart before last, restarts at epochs 1, 2,
        4, 8, … (``impls._base.TailAverage``), which covers at least the last half of the epochs, in ``fit`` and
        over ``partial_fit`` calls alike. Constant-step SGD settles in a cloud around least squares; the mean of
        the cloud reaches it. With ``record_steps`` the path shows the average as of each epoch's end.
    distributed : bool, default=False
        Train data-parallel with ``DistributedDataParallel`` across the ranks of torch.distributed's
        default process group (see ``python -m linreg_compare.distributed``): every rank calls ``fit`` with the
        same data and takes its shard of every minibatch of ``batch_size``; the steps are those of one
        process with the same ``batch_size``, and every rank ends with the same fitted estimator.

    The data. X may be a scipy.sparse matrix (not with ``use_dataloader``): it stays sparse, and each
    minibatch's rows are densified as they are drawn (the same batches, the same numbers as the dense X). y may
    have k columns: the net is then ``nn.Linear(d, k)``, and since ``nn.MSELoss``'s mean also averages over the
    k columns, the optimiser's step is k · lr, so that each target is fitted with its own MSE at ``lr``, as in
    k separate fits (``reduction="sum"`` already sums per target). ``sample_weight`` multiplies each example's
    squared error (prediction and target are both scaled by √w before ``nn.MSELoss``), and the mean still
    divides by the batch's length, not by its weights: the step is then the one ``SGDRegressor`` takes with the
    same weights (see ``SklearnSGDRegressor``), a batch of zero weights is simply a step of zero, and weights
    of ones give the unweighted fit exactly.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        The fitted weights, in float64 (the last epoch's before any divergence).
    intercept_ : float or ndarray of shape (n_targets,)
        The fitted bias.
    lr_ : float
        The learning rate used: ``lr``, or the one ``"auto"`` set from the data of ``fit`` (or of the first
        ``partial_fit``).
    n_iter_ : int
        Epochs run (over all ``partial_fit`` calls since the last ``fit``).
    n_steps_ : int
        Optimiser steps taken.
    loss_curve_ : list of float, length n_iter_
        Training MSE after each epoch (weighted, Σ wᵢ rᵢ² / Σ wᵢ, with ``sample_weight``; averaged over targets).
    diverged_ : bool
        Training was stopped because the loss blew up (see ``impls.DivergenceWarning``).
    coef_path_ : ndarray of shape (n_steps + 1, n_features) or (n_steps + 1, n_targets, n_features)
        With ``record_steps``: the weights at the start and after every step.
    intercept_path_ : ndarray of shape (n_steps + 1,) or (n_steps + 1, n_targets)
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
        "average": BOOLEAN,
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
        average=False,
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
        self.average = average
        self.distributed = distributed

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The default batches densify a sparse X one minibatch at a time; a DataLoader reads dense tensors.
        tags.input_tags.sparse = not self.use_dataloader
        tags.target_tags.multi_output = True
        return tags

    def lr_limit(self, lambda_max: float, num_examples: int | None = None) -> float:
        """The largest stable ``lr`` for full-batch steps on data whose Gram matrix [1, X]ᵀ[1, X]/n has
        top eigenvalue ``lambda_max``.

        The mean MSE (1/n) Σ (x̃ᵢᵀθ − yᵢ)² has Hessian 2G, so gradient descent is stable for lr · 2λ < 2:
        lr < 1/λ. ``reduction="sum"`` multiplies the loss by the batch's length B (``batch_size``, or
        ``num_examples`` when fewer): lr < 1/(Bλ). A minibatch's curvature is noisier than λ: ``lr="auto"``
        takes this limit at ``impls._step_size.minibatch_curvature``, which is λ for full batches.
        """
        check_curvature(lambda_max)
        if self.reduction == "mean":
            return 1.0 / lambda_max
        batch_length = self.batch_size if num_examples is None else min(self.batch_size, num_examples)
        return 1.0 / (batch_length * lambda_max)

    def _rows_per_step(self, num_examples: int) -> int:
        """The rows behind each step: a batch (all rows when the batch is larger), for ``lr="auto"``."""
        return min(self.batch_size, num_examples)

    @fit_context(dtype=[np.float64, np.float32])
    def fit(self, X, y, sample_weight=None):
        """Train for ``num_epochs`` from the initial parameters drawn from ``random_state``."""
        return self._train(X, y, sample_weight, self.num_epochs, resume=False)

    @fit_context(partial=True, dtype=[np.float64, np.float32])
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over the rows given, continuing from the current parameters and minibatch stream (the
        first call starts as ``fit`` does): k calls on the same data are ``fit`` with ``num_epochs=k``."""
        return self._train(X, y, sample_weight, 1, resume=hasattr(self, "coef_"))

    def _train(self, X, y, sample_weight, num_epochs: int, resume: bool):
        device, dtype = check_device(self, self.device), getattr(torch, self.dtype)
        # One local generator: the initial weights, then the batches; a partial_fit goes on with the stream.
        generator = torch_generator(self.random_state) if not resume else resumed_generator(self._generator_state)
        lr = self.lr_ if resume and isinstance(self.lr, str) else learning_rate(self, X, sample_weight)

        # The data set, moved to the device once (a sparse X stays sparse), and read in shuffled minibatches:
        # by the notebook's DataLoader, or by default the same batches cut from the tensors in memory.
        features = as_features(X, dtype, device)
        labels = torch.as_tensor(y, dtype=dtype).reshape(len(y), -1).to(device)  # (n, k): k targets
        weights = None if sample_weight is None else torch.as_tensor(sample_weight, dtype=dtype).view(-1, 1).to(device)
        if self.use_dataloader:  # X is dense: the tags say so (__sklearn_tags__)
            dataset = data.TensorDataset(*([features, labels] if weights is None else [features, labels, weights]))
            data_iter = data.DataLoader(dataset, int(self.batch_size), shuffle=True, generator=generator)
        else:
            data_iter = Minibatches(features, labels, self.batch_size, generator, weights)

        # The model: one fully connected layer, with N(0, init_std²) weights and a zero bias drawn from our
        # generator (nn.Linear's own initialisation draws from torch's global one: fork_rng puts it back);
        # a partial_fit starts from the parameters where the last call left them.
        with torch.random.fork_rng(devices=[]):
            net = nn.Sequential(nn.Linear(X.shape[1], labels.shape[1], dtype=dtype))
        if resume:  # from the last iterate (coef_ is the tail average when averaging)
            coef, intercept = getattr(self, "_iterate", (self.coef_, self.intercept_))
            with torch.no_grad():
                net[0].weight.copy_(torch.as_tensor(coef).reshape(net[0].weight.shape))
                net[0].bias.copy_(torch.as_tensor(np.reshape(intercept, -1)))  # float64: no float32 rounding
        else:
            nn.init.normal_(net[0].weight, mean=0.0, std=self.init_std, generator=generator)
            nn.init.zeros_(net[0].bias)
        net.to(device)

        # The loss of a minibatch, the notebook's (see the class docstring for k targets and weights);
        # data-parallel, this rank's share of it (impls/_distributed.py).
        loss = nn.MSELoss(reduction=self.reduction)

        def batch_loss(X, y):
            return loss(net(X), y)

        def weighted_batch_loss(X, y, w):  # √w on both sides: each squared error times w
            return loss(net(X) * w.sqrt(), y * w.sqrt())

        if self.distributed:
            batch_loss = ddp_batch_loss(self, net, generator, weighted=weights is not None)
        elif weights is not None:
            batch_loss = weighted_batch_loss
        # With k targets MSELoss's mean also averages over the k columns: a step of k · lr is then each target's
        # step of lr on its own MSE, as in k separate fits (DDP's loss and the sum are summed per target already).
        per_target = labels.shape[1] if self.reduction == "mean" and not self.distributed else 1
        trainer = torch.optim.SGD(net.parameters(), lr=lr * per_target, foreach=False)  # foreach: docs/performance.md

        # Train: one optimiser step per minibatch; after each epoch, the log records the training MSE.
        num_targets = labels.shape[1] if y.ndim == 2 else None  # None: a 1-D y, a 1-D coef_
        model, parameters, average = _averaged(self, net, resume)
        log = TrainingLog.of_torch_model(self, model, parameters, features, labels, weights, num_targets, resume)
        if average is not None:
            log.averaged(*average)
        log.below_limit = lambda: lr <= step_limit(self, X, sample_weight)  # checked only if the loss ended up
        for _ in range(num_epochs):
            with log.epoch():
                # w_batch: [the batch's weights] when fit was given sample_weight, else []
                for X_batch, y_batch, *w_batch in data_iter:
                    l = batch_loss(X_batch, y_batch, *w_batch)
                    trainer.zero_grad()
                    l.backward()
                    trainer.step()
                    log.step()
            if log.stopped:
                break
        log.finish(self)
        self.lr_, self._generator_state = lr, generator.get_state()
        vars(self).pop("_iterate", None)
        if self.average:
            self._iterate = tuple(parameter.detach().cpu().double().numpy().copy() for parameter in net.parameters())
        return self


class AveragedSegment:
    """One segment of the tail average: ``AveragedModel``'s running mean of the net's parameters since it was made
    (resumed from a ``mean`` over ``count`` steps)."""

    def __init__(self, net, mean=None, count: int = 0):
        from torch.optim.swa_utils import AveragedModel

        self.net, self.model = net, AveragedModel(net)
        if mean is not None:
            with torch.no_grad():
                for parameter, value in zip(self.model.module.parameters(), mean):
                    parameter.copy_(value)
            self.model.n_averaged.fill_(count)

    @property
    def count(self) -> int:
        return int(self.model.n_averaged)

    def update(self) -> None:
        self.model.update_parameters(self.net)

    def mean(self) -> list:
        return [parameter.detach().clone() for parameter in self.model.module.parameters()]


def _averaged(estimator, net, resume: bool):
    """What the log reads: the net itself, or with ``average`` copies of its parameters that show the tail average
    (``impls._base.TailAverage``), the model of those copies, and the average with its resumed segment."""
    if not estimator.average:
        return net, net.parameters(), None
    reported = [parameter.detach().clone() for parameter in net.parameters()]
    state = getattr(estimator, "_average_state", None) if resume else None
    average = TailAverage(lambda: AveragedSegment(net), None if state is None else state[:2])
    resumed = None if state is None else AveragedSegment(net, state[2], state[3])

    def model(X):
        return X @ reported[0].T + reported[1]

    return model, reported, (average, reported, resumed)
