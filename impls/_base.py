"""The small pieces the four estimators share: parameter rules, prediction, device and divergence checks."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from impls._warnings import DivergenceWarning

# scikit-learn's own parameter rules, so that a bad value raises its InvalidParameterError (a ValueError)
# with its wording:
# "The 'lr' parameter of TorchConciseRegressor must be a float in the range (0.0, inf). Got -1 instead."
LR = [Interval(Real, 0, None, closed="neither")]
BATCH_SIZE = [Interval(Integral, 1, None, closed="left")]
NUM_EPOCHS = [Interval(Integral, 0, None, closed="left")]
INIT_STD = [Interval(Real, 0, None, closed="left")]
RANDOM_STATE = ["random_state"]  # an int in [0, 2**32 - 1], a numpy RandomState, or None, as scikit-learn's
TORCH_DTYPE = [StrOptions({"float32", "float64"})]
BOOLEAN = ["boolean"]

# Training stops when the loss over the training set grows past this many times its value at the start.
DIVERGENCE_FACTOR = 100.0


def validate_hyperparameters(estimator) -> None:
    """scikit-learn's parameter checks, plus one it lacks: a bool is not taken for an integer (True is not 1 epoch)."""
    estimator._validate_params()
    for name, value in estimator.get_params().items():
        if isinstance(value, bool) and "boolean" not in estimator._parameter_constraints[name]:
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(estimator).__name__} must be an int, not a bool. "
                f"Got {value!r} instead."
            )


def fit_atomically(fit):
    """Make a fit all or nothing: if it raises, the estimator is left exactly as it was before the call.

    The fits compute first and assign at the end, but scikit-learn's ``validate_data`` sets
    ``n_features_in_`` and ``feature_names_in_`` as it checks the input; this restores those too.
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        before = dict(vars(self))
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    return wrapper


def fit_context(**data_rules):
    """Decorate ``fit(self, X, y)`` as scikit-learn's ``_fit_context`` does: the hyperparameters and (X, y)
    are checked before the body runs (X and y by ``validate_training_data`` with ``data_rules``, such as
    ``dtype``), the body gets the checked arrays, and the whole fit is all or nothing (``fit_atomically``).
    """

    def decorate(fit):
        @functools.wraps(fit)
        @fit_atomically
        def wrapper(self, X, y):
            validate_hyperparameters(self)
            X, y = validate_training_data(self, X, y, **data_rules)
            return fit(self, X, y)

        return wrapper

    return decorate


def validate_training_data(estimator, X, y, **kwargs):
    """scikit-learn's ``validate_data`` for (X, y), with a y of strings converted to numbers as
    ``LinearRegression`` does: "1.5" is 1.5, and "abc" a ValueError (could not convert string to float)."""
    if np.asarray(y).dtype.kind in "US":
        y = np.asarray(y).astype(np.float64)
    return validate_data(estimator, X, y, y_numeric=True, **kwargs)


class LinearPredictorMixin:
    """``predict`` for every implementation: the fitted line, X @ coef_ + intercept_, in float64."""

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_ + self.intercept_


def check_device(estimator, device) -> torch.device:  # noqa: F821
    """Turn ``device`` into a torch.device that exists on this machine, or raise in scikit-learn's wording."""
    import torch

    name = type(estimator).__name__
    try:
        torch_device = torch.device(device)
        torch.empty(0, device=torch_device)  # fails when the device type exists but is not available here
    except (RuntimeError, TypeError, AssertionError) as exc:
        available = "'cpu'" + (" or 'cuda'" if torch.cuda.is_available() else " (no GPU is available here)")
        raise ValueError(
            f"The 'device' parameter of {name} must be a torch device available on this machine: "
            f"{available}. Got {device!r} instead ({str(exc).splitlines()[0]})."
        ) from None
    return torch_device


def has_diverged(loss: float, initial_loss: float) -> bool:
    """True when the training loss is non-finite or more than DIVERGENCE_FACTOR times its starting value."""
    return not math.isfinite(loss) or (initial_loss > 0 and loss > DIVERGENCE_FACTOR * initial_loss)


def is_overflow(error: BaseException) -> bool:
    """Whether an error raised while training is the arithmetic blowing up: a float overflow in Python or
    numpy, torch failing to convert a number that overflows its dtype, or SGDRegressor's under-/overflow."""
    if isinstance(error, (OverflowError, FloatingPointError)):
        return True
    return isinstance(error, (RuntimeError, ValueError)) and "overflow" in str(error).lower()


def _as_numpy(parameters) -> np.ndarray:
    """A 1-D float64 copy of (w, b), from a torch tensor on any device or from an array."""
    if hasattr(parameters, "detach"):  # a torch tensor: no torch import needed to recognise it
        parameters = parameters.detach().cpu().numpy()
    return np.array(parameters, dtype=np.float64)


class TrainingLog:
    """The bookkeeping of an iterative fit, kept apart from its training step.

    ``parameters()`` returns the current (w, b) as one flat tensor or array. Each epoch runs inside
    ``with log.epoch():``, which then records the training MSE (of ``training_mse()``, given here or to
    ``epoch``); ``log.stopped`` says whether training must end. ``step()`` counts a step and, when
    ``record_steps`` is set, records the parameters after it. The rule of divergence: training has
    diverged when the loss is not finite, when the arithmetic overflows (``is_overflow``), or when the
    loss grows past DIVERGENCE_FACTOR times its starting value (then training stops at once and the
    parameters of the last good epoch are kept), or when after the last epoch the loss is above where it
    started. Each case gives one DivergenceWarning. ``fitted(estimator)`` sets ``coef_``, ``intercept_``,
    ``loss_curve_``, ``diverged_``, ``n_iter_``, ``n_steps_`` and, when recording, ``coef_path_`` and
    ``intercept_path_``, all at once at the end of the fit. ``n_steps_`` is the steps counted, or
    ``n_iter_ * steps_per_epoch`` when that is given (steps taken inside a library's compiled loop).
    ``TrainingLog.of_torch_model`` makes the log of a torch model.
    """

    def __init__(
        self, estimator, parameters, initial_loss: float, record_steps: bool, steps_per_epoch=None, training_mse=None
    ):
        self.estimator, self.parameters, self.initial_loss = estimator, parameters, initial_loss
        self.steps_per_epoch, self.training_mse = steps_per_epoch, training_mse
        self.kept = parameters()
        self.path = [self.kept] if record_steps else None
        self.loss_curve, self.steps, self.stopped = [], 0, False

    @classmethod
    def of_torch_model(cls, estimator, model, parameters, features, labels) -> TrainingLog:
        """The log of a torch fit: ``parameters`` are the tensors (w, b); the training MSE is that of
        ``model(features)`` against ``labels``, without the ½ and outside autograd."""
        import torch

        parameters = list(parameters)

        def flat_parameters():
            return torch.cat([parameter.detach().reshape(-1) for parameter in parameters])

        def training_mse():
            with torch.no_grad():
                return torch.nn.functional.mse_loss(model(features), labels).item()

        return cls(estimator, flat_parameters, training_mse(), estimator.record_steps, training_mse=training_mse)

    def step(self) -> None:
        self.steps += 1
        if self.path is not None:
            self.path.append(self.parameters())

    @contextlib.contextmanager
    def epoch(self, training_mse=None):
        """Run one epoch's steps in the block; then record its training MSE (inf when it overflowed)."""
        try:
            yield
            loss = (training_mse or self.training_mse)()
        except Exception as error:  # noqa: BLE001 - only an overflow is a divergence; anything else is raised
            if not is_overflow(error):
                raise
            loss = math.inf
        self.loss_curve.append(loss)
        if has_diverged(loss, self.initial_loss):
            self.stopped = True
            self._warn(
                f"after epoch {len(self.loss_curve)}: the training MSE reached {loss:.3g}. Training stopped; "
                "coef_ and intercept_ hold the parameters of the last epoch before that"
            )
        else:
            self.kept = self.parameters()

    def finish(self, estimator) -> None:
        final = self.loss_curve[-1] if self.loss_curve else self.initial_loss
        if not self.stopped and self.initial_loss > 0 and final > self.initial_loss:
            self.stopped = True
            self._warn(
                f"after epoch {len(self.loss_curve)}: the training MSE ended at {final:.3g}, above the "
                f"{self.initial_loss:.3g} it started from"
            )
        kept = _as_numpy(self.kept)
        estimator.coef_, estimator.intercept_ = kept[:-1], float(kept[-1])
        estimator.loss_curve_, estimator.diverged_ = self.loss_curve, self.stopped
        estimator.n_iter_ = len(self.loss_curve)
        estimator.n_steps_ = self.steps if self.steps_per_epoch is None else estimator.n_iter_ * self.steps_per_epoch
        if self.path is not None:
            path = np.array([_as_numpy(point) for point in self.path])
            estimator.coef_path_, estimator.intercept_path_ = path[:, :-1], path[:, -1]

    def _warn(self, what: str) -> None:
        name = type(self.estimator).__name__
        warnings.warn(f"{name} diverged {what} (lower lr to fix it).", DivergenceWarning, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """The stacklevel of the first caller outside this package (and contextlib), for warnings."""
    here, level, frame = os.path.dirname(os.path.abspath(__file__)), 2, sys._getframe(2)
    while frame is not None and (
        frame.f_code.co_filename.startswith(here) or frame.f_code.co_filename == contextlib.__file__
    ):
        frame, level = frame.f_back, level + 1
    return level
