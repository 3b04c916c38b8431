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
from sklearn.utils import get_tags
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from impls._warnings import DivergenceWarning

# scikit-learn's own parameter rules, so that a bad value raises its InvalidParameterError (a ValueError)
# with its wording:
# "The 'lr' parameter of TorchConciseRegressor must be a float in the range (0.0, inf) or a str among {'auto'}. ..."
LR = [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})]  # "auto": impls/_step_size.py
BATCH_SIZE = [Interval(Integral, 1, None, closed="left")]
NUM_EPOCHS = [Interval(Integral, 0, None, closed="left")]
INIT_STD = [Interval(Real, 0, None, closed="left")]
RANDOM_STATE = ["random_state"]  # an int in [0, 2**32 - 1], a numpy RandomState, or None, as scikit-learn's
TORCH_DTYPE = [StrOptions({"float32", "float64"})]
BOOLEAN = ["boolean"]

# Training stops when the loss over the training set grows past this many times its value at the start.
DIVERGENCE_FACTOR = 100.0
# The training MSE of sparse (or weighted) data is summed over blocks of rows of about this many entries of X,
# so that a sparse X is densified a block of 4 MiB (float32) at a time, however many features it has.
TRAINING_MSE_BLOCK_ENTRIES = 1 << 20


def validate_hyperparameters(estimator) -> None:
    """scikit-learn's parameter checks, plus one it lacks: a bool is not taken for an integer (True is not 1 epoch)."""
    estimator._validate_params()
    for name, rules in estimator._parameter_constraints.items():  # every parameter has its rules
        value = getattr(estimator, name)
        if isinstance(value, bool) and "boolean" not in rules:
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


def fit_context(*, partial: bool = False, **data_rules):
    """Decorate ``fit(self, X, y, sample_weight=None)`` (or ``partial_fit``) as scikit-learn's ``_fit_context``
    does: the hyperparameters, (X, y) and the weights are checked before the body runs, the body gets the
    checked arrays, and the whole call is all or nothing (``fit_atomically``).

    X and y are checked by ``validate_training_data`` with ``data_rules`` (such as ``dtype``) and with what the
    estimator's tags declare: a sparse X is taken as CSR when ``input_tags.sparse``, a 2-D y kept when
    ``target_tags.multi_output``. The weights, when given, by scikit-learn's ``_check_sample_weight`` (float64,
    non-negative, not all zero). With ``partial``, a call on an estimator already fitted checks that X has the
    features it was fitted on, as ``SGDRegressor.partial_fit`` does.

    ``monitor``, as ``GradientBoostingRegressor.fit``'s: a callable ``monitor(epoch, coef, intercept)`` called
    after every epoch that did not diverge, with the parameters then (the tail average with ``average``); when it
    returns True, training stops there (``TrainingLog``).
    """

    def decorate(fit):
        @functools.wraps(fit)
        @fit_atomically
        def wrapper(self, X, y, sample_weight=None, monitor=None):
            if monitor is not None:  # read by the TrainingLog of this call only
                self._monitor = monitor
            try:
                return checked(self, X, y, sample_weight)
            finally:
                vars(self).pop("_monitor", None)

        def checked(self, X, y, sample_weight):
            validate_hyperparameters(self)
            tags = get_tags(self)
            X, y = validate_training_data(
                self,
                X,
                y,
                reset=not (partial and hasattr(self, "coef_")),
                accept_sparse="csr" if tags.input_tags.sparse else False,
                multi_output=tags.target_tags.multi_output,
                **data_rules,
            )
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            return fit(self, X, y, sample_weight)

        return wrapper

    return decorate


def validate_training_data(estimator, X, y, **kwargs):
    """scikit-learn's ``validate_data`` for (X, y), with a y of strings converted to numbers as
    ``LinearRegression`` does: "1.5" is 1.5, and "abc" a ValueError (could not convert string to float)."""
    if np.asarray(y).dtype.kind in "US":
        y = np.asarray(y).astype(np.float64)
    return validate_data(estimator, X, y, y_numeric=True, **kwargs)


class LinearPredictorMixin:
    """``predict`` for every implementation: the fitted line, X @ coef_ᵀ + intercept_, in float64.

    A sparse X is taken when the estimator's tags say so (``input_tags.sparse``): the product is sparse's own.
    With k targets ``coef_`` is (k, d) and the prediction (n, k), as ``LinearRegression``'s.
    """

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        accept_sparse = ["csr", "csc"] if get_tags(self).input_tags.sparse else False
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], accept_sparse=accept_sparse)
        return X @ self.coef_.T + self.intercept_


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

    ``parameters()`` returns the current (w, b) as one flat tensor or array: the weights of ``coef_`` row by
    row, then the intercepts. Each epoch runs inside ``with log.epoch():``, which then records the training
    MSE (of ``training_mse()``, given here or to ``epoch``); ``log.stopped`` says whether training must end.
    ``step()`` counts a step and, when ``record_steps`` is set, records the parameters after it. The rule of
    divergence: training has diverged when the loss is not finite, when the arithmetic overflows
    (``is_overflow``), or when the loss grows past DIVERGENCE_FACTOR times its starting value (then training
    stops at once and the parameters of the last good epoch are kept), or when after the last epoch the loss
    is above where it started with a step above the stability limit of the data (``below_limit()``, when
    the estimator sets it, says whether the step is below it: then a loss that ended above its start is the
    noise of constant-step SGD on data whose line explains little, not a divergence). Each case gives one
    DivergenceWarning. ``finish(estimator)`` sets ``coef_``,
    ``intercept_``, ``loss_curve_``, ``diverged_``, ``n_iter_``, ``n_steps_`` and, when recording,
    ``coef_path_`` and ``intercept_path_``, all at once at the end of the fit. ``n_steps_`` is the steps
    counted, or the epochs times ``steps_per_epoch`` when that is given (steps taken inside a library's
    compiled loop). ``num_targets`` is None for a 1-D y (``coef_`` of shape (d,), ``intercept_`` a float),
    else k (``coef_`` (k, d), ``intercept_`` (k,)).

    With ``resume`` (a ``partial_fit`` after another fit), the log continues the estimator's: the loss it
    started from is the first call's (kept in ``_initial_loss``), epochs are numbered on from ``n_iter_``, and
    ``finish`` appends to ``loss_curve_``, the paths, ``n_iter_`` and ``n_steps_``; ``diverged_`` stays True
    once a call has diverged.
    ``TrainingLog.of_torch_model`` makes the log of a torch model.
    """

    def __init__(
        self,
        estimator,
        parameters,
        initial_loss: float,
        record_steps: bool,
        steps_per_epoch=None,
        training_mse=None,
        num_targets=None,
        resume: bool = False,
    ):
        self.estimator, self.parameters, self.resume = estimator, parameters, resume
        self.initial_loss = estimator._initial_loss if resume else initial_loss
        self.epochs_before = estimator.n_iter_ if resume else 0
        self.steps_per_epoch, self.training_mse, self.num_targets = steps_per_epoch, training_mse, num_targets
        self.kept = parameters()
        self.path = [self.kept] if record_steps else None
        self.loss_curve, self.steps, self.stopped = [], 0, False
        self.below_limit = None  # () -> bool: whether the step is below the stability limit of the data
        self.average, self.reported = None, None  # with averaging: a TailAverage, and the tensors it is shown in
        self.monitor = getattr(estimator, "_monitor", None)  # fit's monitor(epoch, coef, intercept) -> stop
        self.stopped_by_monitor = False

    @classmethod
    def of_torch_model(
        cls, estimator, model, parameters, features, labels, weights=None, num_targets=None, resume=False
    ) -> TrainingLog:
        """The log of a torch fit: ``parameters`` are the tensors (w, b), w of shape (k, d); the training MSE
        is that of ``model(features)`` against ``labels`` (n, k), without the ½ and outside autograd, averaged
        over the examples (weighted by ``weights`` (n, 1) when given: Σ wᵢ rᵢ² / Σ wᵢ, the loss a weighted fit
        minimises) and the k targets. ``features`` is a tensor or ``impls.data.SparseRows``; the MSE of sparse
        or weighted data is summed over row blocks, that of a dense unweighted tensor is ``mse_loss``'s."""
        import torch

        parameters = list(parameters)

        def flat_parameters():
            return torch.cat([parameter.detach().reshape(-1) for parameter in parameters])

        def training_mse():
            with torch.no_grad():
                return torch.nn.functional.mse_loss(model(features), labels).item()

        total_weight = len(labels) if weights is None else weights.double().sum().item()

        def row_weights(rows):
            return 1.0 if weights is None else weights[rows]

        block_rows = max(1, TRAINING_MSE_BLOCK_ENTRIES // features.shape[1])

        def blockwise_training_mse():
            total = 0.0
            with torch.no_grad():
                for start in range(0, len(labels), block_rows):
                    rows = slice(start, start + block_rows)
                    squared_errors = (model(features[rows]) - labels[rows]) ** 2
                    total += (squared_errors * row_weights(rows)).sum().item()
            return total / (labels.shape[1] * total_weight)

        if weights is not None or not isinstance(features, torch.Tensor):
            training_mse = blockwise_training_mse
        return cls(
            estimator,
            flat_parameters,
            None if resume else training_mse(),  # a partial_fit goes on from the first call's
            estimator.record_steps,
            training_mse=training_mse,
            num_targets=num_targets,
            resume=resume,
        )

    def averaged(self, average: TailAverage, reported: list, resumed_segment=None) -> TrainingLog:
        """Report the tail average of the iterates rather than the last one: ``average`` is updated after every step
        and, at each epoch's end, its value copied into ``reported`` (the tensors or arrays that ``parameters()`` and
        the training MSE read)."""
        self.average, self.reported, self._resumed_segment = average, reported, resumed_segment
        return self

    def step(self) -> None:
        self.steps += 1
        if self.average is not None:
            self.average.segment.update()
        if self.path is not None:
            self.path.append(self.parameters())

    @contextlib.contextmanager
    def epoch(self, training_mse=None):
        """Run one epoch's steps in the block; then record its training MSE (inf when it overflowed)."""
        if self.average is not None:
            self.average.start_epoch(self.epochs_before + len(self.loss_curve), self._resumed_segment)
        try:
            yield
            if self.average is not None:
                for reported, value in zip(self.reported, self.average.value()):
                    reported[...] = value
            loss = (training_mse or self.training_mse)()
        except Exception as error:  # noqa: BLE001 - only an overflow is a divergence; anything else is raised
            if not is_overflow(error):
                raise
            loss = math.inf
        self.loss_curve.append(loss)
        if has_diverged(loss, self.initial_loss):
            self.stopped = True
            self._warn(
                f"after epoch {self.epochs_before + len(self.loss_curve)}: the training MSE reached {loss:.3g}. "
                "Training stopped; coef_ and intercept_ hold the parameters of the last epoch before that"
            )
        else:
            self.kept = self.parameters()
            if self.monitor is not None:
                coef, intercept = self._coef_and_intercept(_as_numpy(self.kept))
                self.stopped = bool(self.monitor(self.epochs_before + len(self.loss_curve), coef, intercept))
                self.stopped_by_monitor = self.stopped

    def finish(self, estimator) -> None:
        final = self.loss_curve[-1] if self.loss_curve else self.initial_loss
        if self.stopped_by_monitor:  # a stop asked for is not a divergence
            self.stopped = False
        ended_above = not self.stopped and self.initial_loss > 0 and final > self.initial_loss
        if ended_above and (self.below_limit is None or not self.below_limit()):  # the limit costs a pass: only here
            self.stopped = True
            self._warn(
                f"after epoch {self.epochs_before + len(self.loss_curve)}: the training MSE ended at {final:.3g}, "
                f"above the {self.initial_loss:.3g} it started from"
            )
        resume = self.resume
        coef, intercept = self._coef_and_intercept(_as_numpy(self.kept))
        estimator.coef_, estimator.intercept_ = coef, (float(intercept) if self.num_targets is None else intercept)
        steps = self.steps if self.steps_per_epoch is None else len(self.loss_curve) * self.steps_per_epoch
        if resume:
            estimator.loss_curve_ = estimator.loss_curve_ + self.loss_curve
            estimator.diverged_, estimator.n_steps_ = estimator.diverged_ or self.stopped, estimator.n_steps_ + steps
        else:
            estimator.loss_curve_, estimator.diverged_, estimator.n_steps_ = self.loss_curve, self.stopped, steps
        estimator.n_iter_ = len(estimator.loss_curve_)
        estimator._initial_loss = self.initial_loss
        if self.average is not None and self.average.segment is not None:  # for a partial_fit to go on averaging
            segment = self.average.segment
            estimator._average_state = (*self.average.state(), segment.mean(), segment.count)
        if self.path is not None:
            path = np.array([_as_numpy(point) for point in self.path])
            coef_path, intercept_path = self._coef_and_intercept(path)
            if resume and hasattr(estimator, "coef_path_"):  # the first point is where the last call ended
                coef_path = np.concatenate([estimator.coef_path_, coef_path[1:]])
                intercept_path = np.concatenate([estimator.intercept_path_, intercept_path[1:]])
            estimator.coef_path_, estimator.intercept_path_ = coef_path, intercept_path

    def _coef_and_intercept(self, flat: np.ndarray):
        """(coef, intercept) from flat parameters along the last axis (one point, or a path of them)."""
        if self.num_targets is None:
            return flat[..., :-1], flat[..., -1]
        k = self.num_targets
        return flat[..., :-k].reshape(*flat.shape[:-1], k, -1), flat[..., -k:]

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


def restarts_average(epoch: int) -> bool:
    """Whether the tail average starts a new segment at the start of ``epoch`` (counted from 0 over ``fit`` and the
    ``partial_fit`` calls after it): at epochs 1, 2, 4, 8, … (see ``TailAverage``)."""
    return epoch >= 1 and epoch & (epoch - 1) == 0


class TailAverage:
    """The mean of the iterates over the tail of training (Polyak & Juditsky 1992; Jain et al., JMLR 2018, for
    minibatches): constant-step SGD settles in a cloud around least squares, and the mean of the cloud is far
    closer to its centre than any one iterate.

    The horizon is not known to ``partial_fit``, so the mean is kept in segments that restart at epochs 1, 2, 4,
    8, … (``restarts_average``), and the one reported, ``value()``, is over every step since the restart before
    last: at least the last half of the epochs run and at most the last three quarters (all of them before epoch
    2). ``fit`` follows the same rule, so that k ``partial_fit`` calls are ``fit(num_epochs=k)``. A segment is any
    object with ``update()``, ``mean()`` (a list of arrays or tensors) and ``count``; ``combine`` is the mean of
    two segments' means weighted by their counts; the state (``state()``) is kept between ``partial_fit`` calls."""

    def __init__(self, new_segment, state=None):
        self.new_segment = new_segment
        self.previous, self.previous_count = (None, 0) if state is None else state
        self.segment = None

    def start_epoch(self, epoch: int, resumed_segment=None) -> None:
        if self.segment is None and resumed_segment is not None:  # a partial_fit goes on with the last segment
            self.segment = resumed_segment
        if self.segment is None:
            self.segment = self.new_segment()
        elif restarts_average(epoch):
            self.previous, self.previous_count = self.segment.mean(), self.segment.count
            self.segment = self.new_segment()

    def value(self) -> list:
        """The mean of the iterates since the restart before last."""
        current, count = self.segment.mean(), self.segment.count
        if self.previous is None or count == 0:
            return current
        total = self.previous_count + count
        return [(self.previous_count * p + count * c) / total for p, c in zip(self.previous, current)]

    def state(self):
        return self.previous, self.previous_count
