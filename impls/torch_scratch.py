"""The textbook's from-scratch way: tensors with ``requires_grad``, autograd, and a hand-written minibatch SGD.

Each step: (w, b) ← (w, b) − lr / |B| · ∇ Σ_{i∈B} ½ (x_iᵀw + b − y_i)², with |B| the length of the batch drawn
(with sample weights, each example's term times its weight w_i).
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
    TailAverage,
    TrainingLog,
    check_device,
    fit_context,
)
from impls._distributed import all_reduce_batch_loss
from impls._step_size import check_curvature, learning_rate, step_limit
from impls.data import Minibatches, as_features, resumed_generator, torch_generator


def linreg(X, w, b):
    """The linear regression model."""
    return X @ w + b


def squared_loss(y_hat, y):
    """Half the squared error: the ½ cancels the 2 of the derivative, so the gradient is just the residual."""
    return (y_hat - y) ** 2 / 2


class RunningMean:
    """The mean of the iterates, kept as the textbook running mean: after k updates, mean = (1/k) Σ θ₁…θ_k."""

    def __init__(self, params, mean=None, count: int = 0):
        self.params, self.count = params, count
        self._mean = [param.detach().clone() for param in params] if mean is None else [m.clone() for m in mean]

    def update(self) -> None:
        self.count += 1
        for mean, param in zip(self._mean, self.params):
            mean += (param.detach() - mean) / self.count  # mean_k = mean_{k−1} + (θ_k − mean_{k−1}) / k

    def mean(self) -> list:
        return [m.clone() for m in self._mean]


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
    lr : float or "auto", default=0.03
        Learning rate for the ½-squared loss. The same steps as ``TorchConciseRegressor(lr=a)``
        (whose MSE has no ½) need ``lr=2a`` here. ``"auto"``: ``AUTO_FRACTION`` (½) of ``lr_limit`` at the
        curvature a minibatch of the training data has (``impls._step_size.learning_rate``), kept in ``lr_``.
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
    average : bool, default=False
        Report the tail average of the iterates, a ``RunningMean`` updated after every step, instead of the last one
        (the segments and restarts of ``impls._base.TailAverage``, as ``TorchConciseRegressor``'s ``average``).
    distributed : bool, default=False
        Train data-parallel across the ranks of torch.distributed's default process group (see
        ``python -m linreg_compare.distributed``): every rank calls ``fit`` with the same data, takes its shard of
        every minibatch of ``batch_size``, and ``backward()`` sums the gradients with ``all_reduce``; the steps
        are those of one process with the same ``batch_size``, and every rank ends with the same fitted estimator.

    The data. X may be a scipy.sparse matrix: it stays sparse, and each minibatch's rows are densified as
    they are drawn (the same batches, the same numbers as the dense X). y may have k columns: w is then
    (d, k) and b (k,), and the loss summed over the batch is summed over the targets too, so each target is
    fitted as on its own. ``sample_weight`` multiplies each example's ½ squared error; the step still divides
    by the batch's length, not by its weights: it is then the step ``SGDRegressor`` takes with the same
    weights, a batch of zero weights is a step of zero, and weights of ones give the unweighted fit exactly.

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
        SGD steps taken.
    loss_curve_ : list of float, length n_iter_
        Training MSE (no ½) after each epoch (weighted, Σ wᵢ rᵢ² / Σ wᵢ, with ``sample_weight``; averaged
        over targets).
    diverged_ : bool
        Training was stopped because the loss blew up.
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
        "average": BOOLEAN,
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
        average=False,
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
        self.average = average
        self.distributed = distributed

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # each minibatch densified as it is drawn
        tags.target_tags.multi_output = True
        return tags

    def lr_limit(self, lambda_max: float, num_examples: int | None = None) -> float:
        """The largest stable ``lr`` for full-batch steps on data whose Gram matrix [1, X]ᵀ[1, X]/n has
        top eigenvalue ``lambda_max``.

        The step lr/B · ∇ Σ ½ (x̃ᵢᵀθ − yᵢ)² is lr times the gradient of the mean ½ loss, whose Hessian is G:
        gradient descent is stable for lr · λ < 2, lr < 2/λ, whatever the batch's length (``num_examples``
        is not needed; it is taken for the same call as the other estimators'). A minibatch's curvature is
        noisier than λ: ``lr="auto"`` takes this limit at ``impls._step_size.minibatch_curvature``, which is λ
        for full batches.
        """
        check_curvature(lambda_max)
        return 2.0 / lambda_max

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
        # One local generator: the initial w, then the batches; a partial_fit goes on with the stream.
        generator = torch_generator(self.random_state) if not resume else resumed_generator(self._generator_state)
        lr = self.lr_ if resume and isinstance(self.lr, str) else learning_rate(self, X, sample_weight)

        # The data set, moved to the device once (a sparse X stays sparse), read in shuffled minibatches.
        features = as_features(X, dtype, device)
        labels = torch.as_tensor(y, dtype=dtype).reshape(len(y), -1).to(device)  # (n, k): k targets
        weights = None if sample_weight is None else torch.as_tensor(sample_weight, dtype=dtype).view(-1, 1).to(device)
        data_iter = Minibatches(features, labels, self.batch_size, generator, weights)

        # Initialise the parameters: w ~ N(0, init_std²) (the book's 0.01), b = 0; a partial_fit starts from
        # the parameters where the last call left them.
        if resume:  # from the last iterate (coef_ is the tail average when averaging)
            coef, intercept = getattr(self, "_iterate", (self.coef_, self.intercept_))
            w = torch.as_tensor(np.reshape(coef, (labels.shape[1], -1)).T.copy(), dtype=dtype).to(device)
            b = torch.as_tensor(np.reshape(intercept, -1), dtype=dtype).to(device)
        else:
            size = (X.shape[1], labels.shape[1])
            w = torch.normal(0.0, self.init_std, size=size, generator=generator, dtype=dtype).to(device)
            b = torch.zeros(labels.shape[1], dtype=dtype, device=device)
        w.requires_grad_(True)
        b.requires_grad_(True)

        # The loss of a minibatch, the book's (each example's term times its weight, with sample weights);
        # data-parallel, that of this rank's shard, whose gradients backward() sums over the ranks
        # (impls/_distributed.py).
        def batch_loss(X, y):
            return squared_loss(linreg(X, w, b), y)

        def weighted_batch_loss(X, y, weight):
            return squared_loss(linreg(X, w, b), y) * weight

        if weights is not None:
            batch_loss = weighted_batch_loss
        if self.distributed:
            batch_loss = all_reduce_batch_loss(self, batch_loss, [w, b], generator)

        # Train: one hand-written SGD step per minibatch; after each epoch, the log records the training MSE.
        num_targets = labels.shape[1] if y.ndim == 2 else None  # None: a 1-D y, a 1-D coef_
        model, parameters, average = _averaged(self, w, b, resume)
        log = TrainingLog.of_torch_model(self, model, parameters, features, labels, weights, num_targets, resume)
        if average is not None:
            log.averaged(*average)
        log.below_limit = lambda: lr <= step_limit(self, X, sample_weight)  # checked only if the loss ended up
        for _ in range(num_epochs):
            with log.epoch():
                # w_batch: [the batch's weights] when fit was given sample_weight, else []
                for X_batch, y_batch, *w_batch in data_iter:
                    l = batch_loss(X_batch, y_batch, *w_batch)
                    l.sum().backward()
                    sgd([w, b], lr, len(X_batch))
                    log.step()
            if log.stopped:
                break
        log.finish(self)
        self.lr_, self._generator_state = lr, generator.get_state()
        vars(self).pop("_iterate", None)
        if self.average:
            self._iterate = (w.detach().T.cpu().double().numpy().copy(), b.detach().cpu().double().numpy().copy())
        return self


def _averaged(estimator, w, b, resume: bool):
    """What the log reads: the model of (w, b) and its parameters (coef_ is w transposed, (k, d)), or with
    ``average`` copies that show the tail average (``impls._base.TailAverage``) of ``RunningMean`` segments."""
    if not estimator.average:
        return (lambda X: linreg(X, w, b)), [w.detach().T, b], None
    reported = [w.detach().clone(), b.detach().clone()]
    state = getattr(estimator, "_average_state", None) if resume else None
    average = TailAverage(lambda: RunningMean([w, b]), None if state is None else state[:2])
    resumed = None if state is None else RunningMean([w, b], state[2], state[3])
    return (lambda X: linreg(X, reported[0], reported[1])), [reported[0].T, reported[1]], (average, reported, resumed)
