"""scikit-learn's ``SGDRegressor`` on the same unpenalised problem: one sample per step, constant step size.

Each step: (w, b) ← (w, b) − η · w_i · ∇ ½ (x_iᵀw + b − y_i)², with η = 2 · lr / batch_size (see the class
docstring) and w_i the sample's weight (1 without sample weights).
"""

from __future__ import annotations

import contextlib
import inspect

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
    TailAverage,
    TrainingLog,
    fit_context,
)
from impls._step_size import check_curvature, learning_rate, step_limit
from impls.closed_form.blas_threads import one_blas_thread

ONE_THREAD_FROM = 2**19  # numbers in X from which the training MSE's BLAS is held to one thread

# SGDRegressor's routine for max_iter epochs on data already checked, which partial_fit calls after checking X, y
# and the weights; private, so called only where its signature is the one below (scikit-learn 1.8 on).
EPOCH_ROUTINE_ARGUMENTS = ["self", "X", "y", "alpha", "loss", "learning_rate", "sample_weight", "max_iter"]
EPOCHS_WITHOUT_CHECKS = (
    hasattr(SGDRegressor, "_fit_regressor")
    and list(inspect.signature(SGDRegressor._fit_regressor).parameters) == EPOCH_ROUTINE_ARGUMENTS
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

    Epochs. ``SGDRegressor`` runs one epoch at a time (one shuffled pass, exactly as ``fit`` with
    ``max_iter=num_epochs, tol=None`` does each epoch) so that the training MSE after each epoch can be
    recorded: the routine its ``partial_fit`` ends in, the data checked once per fit rather than once per
    epoch (``partial_fit`` itself where that routine is not the one known, before scikit-learn 1.8; the
    same numbers either way). The shuffle of each epoch comes from a ``numpy.random.RandomState(random_state)``
    that the epochs share, so the same ``random_state`` gives the same fit and each epoch a new order.

    Weights, sparse X, one target. ``sample_weight`` is passed on to ``SGDRegressor``, which multiplies each
    sample's step by its weight: B such steps are then, to first order, the torch implementations' step on a
    batch loss of weighted terms divided by the batch's length, so the mapping of ``lr`` is unchanged. A
    scipy.sparse X is passed on as it is; note that on sparse data ``SGDRegressor`` moves the intercept 100
    times more slowly than the weights (its ``SPARSE_INTERCEPT_DECAY``, against the oscillation of an intercept
    updated at every sample when most features are zero), so a sparse fit is not the dense one. Like
    ``SGDRegressor``, it fits one target.

    ``ConvergenceWarning`` is not shown because it cannot arise: ``SGDRegressor`` raises it only when
    ``tol`` is set and ``max_iter`` is reached, and here, as in the torch implementations, the number of
    epochs is fixed (``tol=None``). Divergence is reported like the others' instead (``diverged_``).

    Parameters
    ----------
    lr : float or "auto", default=0.03
        The torch implementations' learning rate, mapped to ``eta0 = 2 * lr / batch_size`` above. ``"auto"``:
        ``AUTO_FRACTION`` (½) of ``lr_limit`` at the curvature of one sample's step, the mean of 1 + |xᵢ|² over
        the training rows (``impls._step_size.learning_rate``), kept in ``lr_``.
    batch_size : int, default=10
        The torch implementations' batch size, used only in that mapping.
    num_epochs : int, default=3
        Passes over the data.
    random_state : int, RandomState instance or None, default=0
        Seeds the ``numpy.random.RandomState`` that shuffles every epoch (a RandomState is used as it is).
    record_steps : bool, default=False
        Keep the parameters after every *epoch* in ``coef_path_`` and ``intercept_path_``
        (per-sample steps happen inside scikit-learn's compiled loop and are not visible).
    average : bool, default=False
        Report the tail average of the per-sample iterates, by ``SGDRegressor``'s own ``average`` (restarted by
        setting it to the sample count, at epochs 1, 2, 4, 8, …), combined over the last two segments as
        ``impls._base.TailAverage`` does: at least the last half of the epochs, in ``fit`` and ``partial_fit``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The fitted weights (the last epoch's before any divergence).
    intercept_ : float
        The fitted bias.
    lr_ : float
        The learning rate used: ``lr``, or the one ``"auto"`` set from the data of ``fit`` (or of the first
        ``partial_fit``).
    n_iter_ : int
        Epochs run (over all ``partial_fit`` calls since the last ``fit``).
    n_steps_ : int
        Per-sample steps taken: the rows of each epoch run.
    loss_curve_ : list of float, length n_iter_
        Training MSE after each epoch (weighted, Σ wᵢ rᵢ² / Σ wᵢ, with ``sample_weight``).
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
        "average": BOOLEAN,
    }

    def __init__(self, *, lr=0.03, batch_size=10, num_epochs=3, random_state=0, record_steps=False, average=False):
        self.lr = lr
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.random_state = random_state
        self.record_steps = record_steps
        self.average = average

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # passed on to SGDRegressor
        return tags

    def lr_limit(self, lambda_max: float, num_examples: int | None = None) -> float:
        """The largest stable ``lr`` on data whose Gram matrix [1, X]ᵀ[1, X]/n has top eigenvalue ``lambda_max``.

        A per-sample step of eta0 on ½ (x̃ᵢᵀθ − yᵢ)² has Hessian x̃ᵢx̃ᵢᵀ, whose mean over the samples is G: on
        average a full-gradient step of eta0 on the mean ½ loss, stable for eta0 · λ < 2. With eta0 = 2 lr/B:
        lr < B/λ (B is ``batch_size``, used only in that mapping; ``num_examples`` is not needed). One sample's
        step sees the curvature |x̃ᵢ|² rather than λ, so ``lr="auto"`` takes this limit at their mean-square value
        (``impls._step_size.row_curvature``: tr G when the rows have equal norms).
        """
        check_curvature(lambda_max)
        return self.batch_size / lambda_max

    def _rows_per_step(self, num_examples: int) -> int:
        """The rows behind each step, for ``lr="auto"``: one, since ``SGDRegressor`` steps once per sample."""
        return 1

    @fit_context(dtype=np.float64, order="C", accept_large_sparse=False)
    def fit(self, X, y, sample_weight=None):
        """Train for ``num_epochs`` epochs of a new ``SGDRegressor``, from zeros."""
        return self._train(X, y, sample_weight, self.num_epochs, resume=False)

    @fit_context(partial=True, dtype=np.float64, order="C", accept_large_sparse=False)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over the rows given, continuing from the current parameters and shuffling stream (the
        first call starts as ``fit`` does): k calls on the same data are ``fit`` with ``num_epochs=k``."""
        return self._train(X, y, sample_weight, 1, resume=hasattr(self, "coef_"))

    def _train(self, X, y, sample_weight, num_epochs: int, resume: bool):
        # The training MSE's products on one BLAS thread, so that none is left spinning beside SGDRegressor's loop,
        # which runs on one core (impls._moments.one_blas_thread); below ONE_THREAD_FROM numbers BLAS takes one
        # thread anyway, and the limit itself (about 1 ms) would be the cost.
        with one_blas_thread() if X.shape[0] * X.shape[1] >= ONE_THREAD_FROM else contextlib.nullcontext():
            return self._train_on_one_thread(X, y, sample_weight, num_epochs, resume)

    def _train_on_one_thread(self, X, y, sample_weight, num_epochs: int, resume: bool):
        lr = self.lr_ if resume and isinstance(self.lr, str) else learning_rate(self, X, sample_weight)
        # A partial_fit goes on with the same SGDRegressor and its shuffling stream, from coef_ and intercept_
        # (after a divergence, the last good ones), with lr and batch_size as they are now.
        if resume:  # with averaging, SGDRegressor goes on from its own last iterate (_standard_coef)
            sgd = self._sgd
            sgd.coef_, sgd.intercept_ = self.coef_.copy(), np.array([self.intercept_])
            sgd.eta0 = 2 * lr / self.batch_size
        else:
            sgd = SGDRegressor(
                loss="squared_error",
                penalty=None,
                learning_rate="constant",
                eta0=2 * lr / self.batch_size,
                max_iter=self.num_epochs,
                tol=None,
                average=1 if self.average else False,  # from the first sample on; restarted by AverageSegment
                shuffle=True,
                # A RandomState is used as it is (it advances, as in scikit-learn); an int or None seeds a new one.
                random_state=self.random_state
                if isinstance(self.random_state, np.random.RandomState)
                else np.random.RandomState(self.random_state),
            )
        # The training MSE, weighted by sample_weight when given (Σ wᵢ rᵢ² / Σ wᵢ, the loss being minimised).
        mean_weights = None if sample_weight is None else sample_weight / sample_weight.sum()

        reported = [np.zeros(X.shape[1]), np.zeros(1)]  # with ``average``: the tail average, the log's to fill

        def shown():  # the parameters reported: SGDRegressor's (zeros before its first epoch), or the tail average
            if self.average:
                return reported
            return (sgd.coef_, sgd.intercept_) if hasattr(sgd, "coef_") else (np.zeros(X.shape[1]), np.zeros(1))

        def training_mse():
            coef, intercept = shown()
            residual = X @ coef + intercept[0] - y
            return float(residual @ residual) / len(y) if mean_weights is None else float((residual**2) @ mean_weights)

        def parameters():
            return np.append(*shown())

        # Train: each partial_fit is one shuffled epoch, a step per row; the log records the training MSE.
        # The loss it starts from: that of the zero parameters (a partial_fit goes on from the first call's).
        if resume:
            initial_loss = None
        else:
            initial_loss = float(y @ y) / len(y) if sample_weight is None else float((y * y) @ mean_weights)
        log = TrainingLog(self, parameters, initial_loss, self.record_steps, X.shape[0], training_mse, resume=resume)
        log.below_limit = lambda: lr <= step_limit(self, X, sample_weight)  # checked only if the loss ended up
        if self.average:
            state = getattr(self, "_average_state", None) if resume else None
            average = TailAverage(lambda: AverageSegment(sgd, restart=True), None if state is None else state[:2])
            log.averaged(average, reported, None if state is None else AverageSegment(sgd))
        # One epoch: the routine partial_fit ends in, after it has checked X, y and the weights as fit_context did
        # above (float64, C order, CSR, finite) and, on its first call, set coef_ and intercept_ to zeros. Called
        # directly, the data are checked once per fit rather than once per epoch, which on small data costs as
        # much as the epoch; without it, partial_fit. SGDRegressor raises its own "Floating-point under-/overflow"
        # when it blows up.
        targets = y.astype(np.float64, copy=False)
        weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        direct = EPOCHS_WITHOUT_CHECKS and not self.average  # averaging's arrays are set up by partial_fit
        if direct and not resume:
            sgd.coef_, sgd.intercept_ = np.zeros(X.shape[1]), np.zeros(1)

        def one_epoch():
            if direct:
                sgd._fit_regressor(X, targets, sgd.alpha, sgd.loss, sgd.learning_rate, weights, max_iter=1)
            else:
                sgd.partial_fit(X, y, sample_weight)

        # assume_finite and skip_parameter_validation spare partial_fit a second check of the data and of
        # SGDRegressor's parameters; a blown-up training MSE (an overflow) is the log's to catch, not numpy's to
        # warn about.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            with np.errstate(over="ignore", invalid="ignore"):
                for _ in range(num_epochs):
                    with log.epoch():
                        one_epoch()
                    if log.stopped:
                        break
                    log.step()  # the per-sample steps happen inside scikit-learn's compiled loop: record epoch ends
        log.finish(self)
        self.lr_, self._sgd = lr, sgd
        return self


class AverageSegment:
    """One segment of the tail average: ``SGDRegressor``'s own running mean of its per-sample iterates, from the
    sample where its ``average`` was set to (``restart``: the next one; SGDRegressor averages from sample t on when
    ``average`` = t). ``count`` is the samples averaged so far."""

    def __init__(self, sgd, restart: bool = False):
        self.sgd = sgd
        if restart and hasattr(sgd, "t_"):
            sgd.average = int(sgd.t_)
            # SGDRegressor keeps the mean of the weights lazily, its first sample's weight 1 on the iterate added
            # to the stored mean: a new mean starts from zeros, as at its first sample.
            sgd._average_coef = np.zeros_like(sgd._average_coef)

    @property
    def count(self) -> int:
        return max(0, int(getattr(self.sgd, "t_", 1)) - int(self.sgd.average))

    def update(self) -> None:  # SGDRegressor updates its mean inside its compiled loop
        pass

    def mean(self) -> list:
        sgd = self.sgd
        if not hasattr(sgd, "_average_coef") or self.count == 0:
            return [np.zeros(sgd.n_features_in_ if hasattr(sgd, "n_features_in_") else 0), np.zeros(1)]
        return [sgd._average_coef.copy(), np.atleast_1d(sgd._average_intercept).copy()]
