"""scikit-learn's ``SGDRegressor`` on the same unpenalised problem: one sample per step, constant step size.

Each step: (w, b) ← (w, b) − η · ∇ ½ (x_iᵀw + b − y_i)², with η = 2 · lr / batch_size (see the class docstring).
"""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import SGDRegressor

from impls._base import (
    BATCH_SIZE,
    BOOLEAN,
    LR,
    NUM_EPOCHS,
    RANDOM_STATE,
    LinearPredictorMixin,
    TrainingLog,
    fit_atomically,
    validate_hyperparameters,
    validate_training_data,
)


class SklearnSGDRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Linear regression with ``sklearn.linear_model.SGDRegressor``, its settings mapped from the notebook's.

    The learning-rate mapping. ``SGDRegressor`` steps once per *sample* on the half squared loss
    ½(ŷ − y)², with step size ``eta0``. ``TorchConciseRegressor(lr=a)`` steps once per *batch* of B
    samples on the mean squared error (no ½), which is a step of a·(2/B)·Σ_batch (ŷ − y)x; B per-sample
    steps of ``eta0`` move, to first order in the step, by eta0·Σ_batch (ŷ − y)x. So the same ``lr`` and
    ``batch_size`` as the torch implementations give ``eta0 = 2 * lr / batch_size`` (0.006 at the notebook's
    setting): the same distance per epoch, though not the same path (per-sample steps see fresher parameters).
    ``TorchScratchRegressor``, whose loss has the ½, matches with its ``lr = 2a``, i.e. ``eta0 = lr_scratch / B``.

    Epochs. ``partial_fit`` is called once per epoch (one shuffled pass, exactly as ``fit`` with
    ``max_iter=num_epochs, tol=None`` does each epoch) so that the training MSE after each epoch can be
    recorded. The shuffle of each epoch comes from a ``numpy.random.RandomState(random_state)`` that the
    calls share, so the same ``random_state`` gives the same fit and each epoch a new order.

    ``ConvergenceWarning`` is not shown because it cannot arise: ``SGDRegressor`` raises it only when
    ``tol`` is set and ``max_iter`` is reached, and here, as in the torch implementations, the number of
    epochs is fixed (``tol=None``). Divergence is reported like the others' instead (``diverged_``).

    Parameters
    ----------
    lr : float, default=0.03
        The torch implementations' learning rate, mapped to ``eta0 = 2 * lr / batch_size`` above.
    batch_size : int, default=10
        The torch implementations' batch size, used only in that mapping.
    num_epochs : int, default=3
        Passes over the data.
    random_state : int, RandomState instance or None, default=0
        Seeds the ``numpy.random.RandomState`` that shuffles every epoch (a RandomState is used as it is).
    record_steps : bool, default=False
        Keep the parameters after every *epoch* in ``coef_path_`` and ``intercept_path_``
        (per-sample steps happen inside scikit-learn's compiled loop and are not visible).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The fitted weights (the last epoch's before any divergence).
    intercept_ : float
        The fitted bias.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float, length n_iter_
        Training MSE after each epoch.
    diverged_ : bool
        Training was stopped because the loss blew up.
    coef_path_ : ndarray of shape (n_iter_ + 1, n_features)
        With ``record_steps``: the weights at the start and after every epoch.
    intercept_path_ : ndarray of shape (n_iter_ + 1,)
        With ``record_steps``: the bias at the start and after every epoch.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X had string column names.

    Examples
    --------
    >>> from impls import SklearnSGDRegressor, synthetic_data
    >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, random_state=0)
    >>> model = SklearnSGDRegressor().fit(X, y)
    >>> model.coef_.round(2), round(model.intercept_, 2)
    (array([ 2. , -3.4]), 4.2)
    """

    _parameter_constraints = {
        "lr": LR,
        "batch_size": BATCH_SIZE,
        "num_epochs": NUM_EPOCHS,
        "random_state": RANDOM_STATE,
        "record_steps": BOOLEAN,
    }

    def __init__(self, *, lr=0.03, batch_size=10, num_epochs=3, random_state=0, record_steps=False):
        self.lr = lr
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.random_state = random_state
        self.record_steps = record_steps

    @fit_atomically
    def fit(self, X, y):
        validate_hyperparameters(self)
        X, y = validate_training_data(self, X, y, dtype=np.float64, order="C")

        sgd = SGDRegressor(
            loss="squared_error",
            penalty=None,
            learning_rate="constant",
            eta0=2 * self.lr / self.batch_size,
            max_iter=self.num_epochs,
            tol=None,
            shuffle=True,
            # A RandomState is used as it is (it advances, as in scikit-learn); an int or None seeds a new one.
            random_state=self.random_state
            if isinstance(self.random_state, np.random.RandomState)
            else np.random.RandomState(self.random_state),
        )

        def training_mse(coef, intercept):
            with np.errstate(over="ignore", invalid="ignore"):  # a blown-up fit is caught by the log
                residual = X @ coef + intercept - y
                return float(residual @ residual) / len(y)

        def parameters():  # SGDRegressor starts from zeros
            return np.append(sgd.coef_, sgd.intercept_) if hasattr(sgd, "coef_") else np.zeros(X.shape[1] + 1)

        # Train: each partial_fit is one shuffled epoch of len(X) per-sample steps; the log records the training MSE.
        log = TrainingLog(self, parameters, float(y @ y) / len(y), self.record_steps, len(X))
        for _ in range(self.num_epochs):
            with log.epoch(lambda: training_mse(sgd.coef_, sgd.intercept_[0])):
                # X and y were checked once above; assume_finite spares each epoch a pass to check them again.
                with sklearn.config_context(assume_finite=True):
                    sgd.partial_fit(X, y)  # raises its own "Floating-point under-/overflow" when it blows up
            if log.stopped:
                break
            log.step()  # the per-sample steps happen inside scikit-learn's compiled loop: record epoch ends
        log.finish(self)
        return self
