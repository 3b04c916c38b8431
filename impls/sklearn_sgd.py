"""scikit-learn's ``SGDRegressor`` on the same unpenalised problem: one sample per step, constant step size.

Each step: (w, b) ← (w, b) − η · ∇ ½ (x_iᵀw + b − y_i)², with η = 2 · lr / batch_size (see the class docstring).
"""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import SGDRegressor
from sklearn.utils.validation import validate_data

from impls._base import (
    BATCH_SIZE,
    BOOLEAN,
    LR,
    NUM_EPOCHS,
    RANDOM_STATE,
    LinearPredictorMixin,
    has_diverged,
    validate_hyperparameters,
    warn_diverged,
)


class SklearnSGDRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Linear regression with ``sklearn.linear_model.SGDRegressor``, its settings mapped from the seed's.

    The learning-rate mapping. ``SGDRegressor`` steps once per *sample* on the half squared loss
    ½(ŷ − y)², with step size ``eta0``. ``TorchConciseRegressor(lr=a)`` steps once per *batch* of B
    samples on the mean squared error (no ½), which is a step of a·(2/B)·Σ_batch (ŷ − y)x; B per-sample
    steps of ``eta0`` move, to first order in the step, by eta0·Σ_batch (ŷ − y)x. So the same ``lr`` and
    ``batch_size`` as the torch implementations give ``eta0 = 2 * lr / batch_size`` (0.006 at the seed's
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
    lr, batch_size : the torch implementations' learning rate and batch size, mapped to ``eta0`` above.
    num_epochs, random_state : as for ``TorchConciseRegressor``.
    record_steps : keep the parameters after every *epoch* in ``coef_path_`` and ``intercept_path_``
        (per-sample steps happen inside scikit-learn's compiled loop and are not visible).
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

    def fit(self, X, y):
        validate_hyperparameters(self)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64, order="C")

        sgd = SGDRegressor(
            loss="squared_error",
            penalty=None,
            learning_rate="constant",
            eta0=2 * self.lr / self.batch_size,
            max_iter=self.num_epochs,
            tol=None,
            shuffle=True,
            random_state=np.random.RandomState(self.random_state),
        )

        def training_mse(coef, intercept):
            residual = X @ coef + intercept - y
            return float(residual @ residual) / len(y)

        # SGDRegressor starts from zeros.
        coef, intercept = np.zeros(X.shape[1]), 0.0
        initial_loss = float(y @ y) / len(y)
        path = [np.append(coef, intercept)]
        loss_curve, diverged = [], False
        for epoch in range(1, self.num_epochs + 1):
            try:
                # X and y were checked once above; assume_finite spares each epoch a pass to check them again.
                with sklearn.config_context(assume_finite=True):
                    sgd.partial_fit(X, y)
                with np.errstate(over="ignore", invalid="ignore"):  # a blown-up fit is caught just below
                    epoch_loss = training_mse(sgd.coef_, sgd.intercept_[0])
            except (ValueError, FloatingPointError):  # SGDRegressor's "Floating-point under-/overflow"
                epoch_loss = float("inf")
            loss_curve.append(epoch_loss)
            if has_diverged(epoch_loss, initial_loss):
                diverged = True
                warn_diverged(self, epoch, epoch_loss)
                break
            coef, intercept = sgd.coef_.copy(), float(sgd.intercept_[0])
            path.append(np.append(coef, intercept))

        self.coef_, self.intercept_ = coef, intercept
        self.loss_curve_, self.diverged_, self.n_iter_ = loss_curve, diverged, len(loss_curve)
        if self.record_steps:
            path = np.array(path)
            self.coef_path_, self.intercept_path_ = path[:, :-1], path[:, -1]
        return self
