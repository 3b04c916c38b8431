"""Fit the four implementations on the same data and compare what they estimate, the loss they reach and their cost.

    python compare.py                      # the d2l notebook's setting, all four, a table
    python compare.py --format json        # the same for programs
    python compare.py equivalences         # the notebook's exercise, proved step by step
    python compare.py sweep lr-batch       # the book's other exercises (sweep data-size, sweep init)

    from compare import compare
    result = compare()                     # or compare(X=..., y=...) on your own arrays
    print(result.to_table())

The flow is data -> fit -> score -> render; each step is a module of ``linreg_compare/``, and every loss, error
and time is computed there by the same code for every implementation.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

import impls
from impls import NOTEBOOK_B, NOTEBOOK_W, synthetic_data
from impls._collections import is_dask
from linreg_compare import cli, noise_floor, race, step_size
from linreg_compare.capabilities import fits_dask_in_place, has_learning_rate
from linreg_compare.checks import (
    Settings,
    UsageError,
    check_arrays,
    check_device_available,
    check_memory,
    check_names,
    check_truth,
    redundant_columns,
)
from linreg_compare.fit import Progress, Timing, build, environment, fit_and_time, recorded_paths
from linreg_compare.report import Comparison
from linreg_compare.scale import dask_arrays, gathered_for_one_process
from linreg_compare.score import (
    Data,
    Scores,
    cross_validated,
    in_se,
    largest,
    least_squares_reference,
    score,
)
from linreg_compare.score import status as row_status
from linreg_compare.split import folds, split
from linreg_compare.standardize import final_estimator, standardized

__all__ = ["Comparison", "UsageError", "compare", "main"]

NUM_TEST = 10_000  # held-out examples drawn from the same generator, independently of the training sample


def compare(
    impl: list[str] | tuple[str, ...] | None = None,
    *,
    X=None,
    y=None,
    sample_weight=None,
    true_w=None,
    true_b: float | None = None,
    num_examples: int = 1000,
    noise: float = 0.01,
    batch_size: int = 10,
    lr: float | str = 0.03,
    num_epochs: int = 3,
    seed: int = 0,
    repeats: int = 5,
    max_seconds: float = 10.0,
    device: str = "cpu",
    dtype: str = "float32",
    record_paths: bool = False,
    progress: bool = False,
    data_name: str | None = None,
    feature_names: list[str] | None = None,
    target_name: str | None = None,
    sample: int | None = None,
    standardize: bool | None = None,
    test_fraction: float | None = None,
    cv: int | None = None,
    until: float | None = None,
    average: bool = False,
) -> Comparison:
    """Fit each implementation in ``impl`` (default: all four) on the same data and score them alike.

    Without ``X`` and ``y`` the data come from ``impls.synthetic_data(true_w, true_b, num_examples,
    noise=noise, random_state=seed)`` (the notebook's w = [2, -3.4] and b = 4.2 unless given), and a held-out
    sample of NUM_TEST from the same law, drawn with the independent stream ``random_state=[seed, 1]``.
    ``sample_weight`` (with in-memory X and y) weights every fit, the reference (weighted least squares) and
    every MSE.
    With ``X`` and ``y`` (the user's data), ``test_fraction`` of the rows (default 0.2) are held out by a seeded
    random split, or ``cv`` folds are made (the table's fit from the first, the cross-validated test MSE from
    all); the iterative implementations are fitted on standardised features (``standardize``, default True for
    the user's data, their line reported in the data's units); there are no true parameters unless ``true_w``
    and ``true_b`` are given; ``feature_names`` (default: X's columns, if it has them) name w's entries,
    ``target_name`` (default: y's name, or "y") the target. ``lr`` may be "auto": each iterative implementation
    sets its step from the training data. ``until`` (in standard
    errors) makes each iterative implementation train epoch by epoch, ``num_epochs`` at most, until it is that
    close to least squares, and times that. ``average`` makes each report the tail average of its iterates.
    X and y may be dask arrays or DataFrames (``linreg_compare.scale``):
    the closed form, the reference and the scores are then computed where the data live, and the iterative
    implementations fit the data gathered in memory, or ``sample`` rows of it, or are skipped.
    ``record_paths`` refits each iterative implementation once more, untimed, to record its parameters after
    every step (for plots). Bad settings raise UsageError (a ValueError) before anything runs.
    """
    names = check_names([impl] if isinstance(impl, str) else list(impls.NAMES if impl is None else impl))
    settings = Settings(
        num_examples=num_examples,
        noise=noise,
        batch_size=batch_size,
        lr=lr,
        num_epochs=num_epochs,
        seed=seed,
        repeats=repeats,
        max_seconds=max_seconds,
        device=device,
        dtype=dtype,
        sample=sample,
        standardize=standardize,
        test_fraction=test_fraction,
        cv=cv,
        until=until,
        average=average,
    )
    check_device_available(settings.device, names)
    if settings.until is not None and not any(has_learning_rate(name) for name in names):
        raise UsageError("--until races the iterative implementations to least squares; --impl names none of them")
    seed, repeats = settings.seed, settings.repeats
    own_data = X is not None
    if not own_data and (settings.test_fraction or settings.cv):
        raise UsageError("--test-fraction and --cv hold out rows of --data; the synthetic data have a test sample")
    standardize = own_data if settings.standardize is None else settings.standardize
    test_fraction = settings.test_fraction
    if test_fraction is None:
        test_fraction = 0.2 if own_data and settings.cv is None else 0.0

    # Data: the notebook's generator, or the user's arrays split into training and held-out rows.
    feature_names = feature_names or (None if X is None else [str(c) for c in getattr(X, "columns", [])] or None)
    data, noise, data_name = _data(
        names, X, y, true_w, true_b, settings.num_examples, settings.noise, seed, dtype, data_name
    )
    on_dask, long_run = is_dask(data.X), data.X.size >= 10**6
    if sample is not None and not on_dask:
        raise UsageError("--sample applies to data in dask arrays or DataFrames (--data DIR, or --scheduler)")
    data.weights = _weights(sample_weight, data.X, on_dask)
    other_folds = []
    if settings.cv:
        first, *other_folds = folds(data.X, data.y, settings.cv, seed, data.weights)
        data = _held_out(first, data)
    elif test_fraction:
        data = _held_out(split(data.X, data.y, test_fraction, seed, data.weights), data)
    for weights, rows in [(data.weights, "training"), (data.weights_test, "held-out")]:
        if weights is not None and not weights.sum() > 0:
            raise UsageError(
                f"the weights (--weights) of the {rows} rows are all 0: no fit or score can use them; "
                "another --seed or --test-fraction splits the rows otherwise"
            )
    reference = least_squares_reference(data, noise)
    if settings.until is not None and in_se(reference["coef"], reference["intercept"], reference) is None:
        raise UsageError(
            "--until measures the distance to least squares in its standard errors, and these data give it none "
            f"({data.X.shape[0]} training rows for {data.X.shape[1]} features, or a y that a line fits exactly)"
        )
    # Dask data: the closed form fits them where they live; the others in one process, if at all.
    local = (
        gathered_for_one_process(names, data.X, data.y, settings.sample, seed, dtype)
        if on_dask
        else (data.X, data.y, None)
    )
    in_place = {name: fits_dask_in_place(name) for name in names}

    # The step size the data allow, said before any fit (impls/_step_size.py, linreg_compare/step_size.py).
    estimators = {name: build(name, **settings.estimator_params()) for name in names}
    stepping = {name: estimator for name, estimator in estimators.items() if has_learning_rate(name)}
    seen = None if local[0] is None or not stepping else step_size.spectrum(local[0], standardize, data.weights)
    stable = (
        {} if seen is None else step_size.limits(stepping, step_size.as_fitted(local[0], standardize), data.weights)
    )
    if (message := step_size.warning(settings.lr, stable, standardize)) is not None:
        warnings.warn(message, step_size.StepSizeWarning, stacklevel=2)

    # Fit and time each implementation, then score it; an error in one is its row's status.
    rows, curves, races, used_lr, ahead = [], {}, {}, {}, {}
    monitor = Progress(len(names) * (repeats + 1 + record_paths), progress, long_run=long_run)
    for name in names:
        estimator, curves[name] = estimators[name], {}
        if standardize and name in stepping:
            estimator = standardized(estimator)
        X_fit, y_fit, where = (data.X, data.y, None) if in_place[name] else local
        if X_fit is None:
            rows.append({"impl": name, **vars(Scores()), **vars(Timing()), "status": f"skipped: {where}"})
            monitor.done(name, rows[-1])
            continue
        try:
            racing = settings.until is not None and name in stepping
            if racing:
                ahead[name] = _said_before_racing(name, estimator, X_fit, y_fit, reference, data.weights, settings)
            timing, diverged, races[name] = _fit(
                estimator, X_fit, y_fit, data.weights, settings, racing, reference, monitor
            )
            if record_paths and "record_steps" in final_estimator(estimator).get_params():
                curves[name] = recorded_paths(estimator, X_fit, y_fit, data.weights)
                monitor.tick()
        except Exception as exc:  # noqa: BLE001 - one implementation's failure is reported in its row
            message = str(exc).splitlines()[0] if str(exc) else ""
            rows.append(
                {"impl": name, **vars(Scores()), **vars(Timing()), "status": f"error: {type(exc).__name__}: {message}"}
            )
        else:
            scores = score(estimator, data, reference, diverged)
            used_lr[name] = getattr(final_estimator(estimator), "lr_", None)
            if races[name] is not None:
                status = race.status(races[name], settings.until)
            else:
                status = row_status(scores, reference, diverged)
            status += f" ({where})" if where else ""
            row = {"impl": name, **vars(scores), **vars(timing), "status": status}
            if name in stepping and not diverged and X_fit is local[0]:
                row.update(noise_floor.for_row(estimator, X_fit, y_fit, reference, data.weights))
                row.update(ahead.get(name, {}))
            if other_folds:
                gathered = (
                    (lambda X, y, name=name: gathered_for_one_process([name], X, y, settings.sample, seed, dtype)[:2])
                    if on_dask and not in_place[name]
                    else (lambda X, y: (X, y))
                )
                row.update(cross_validated(estimator, scores.test_mse, other_folds, gathered))
            rows.append(row)
            curves[name]["loss_curve"] = scores.loss_curve
            if races[name] is not None:
                curves[name]["race"] = vars(races[name])
        monitor.done(name, rows[-1])
    monitor.close()

    # Render: the Comparison gives the table, markdown, JSON and CSV.
    config_names = feature_names or [f"x{j}" for j in range(1, data.X.shape[1] + 1)]
    config = {
        "impls": names,
        "data": data_name,
        "num_examples": int(data.X.shape[0]),
        "num_features": int(data.X.shape[1]),
        "feature_names": config_names,
        "target": target_name or (str(y.name) if getattr(y, "name", None) is not None else "y"),
        "true_w": data.true_w,
        "true_b": data.true_b,
        "noise": noise,
        "batch_size": settings.batch_size,
        "lr": settings.lr,
        "num_epochs": settings.num_epochs,
        "seed": seed,
        "repeats": repeats,
        "max_seconds": settings.max_seconds,
        "device": device,
        "dtype": dtype,
        "data_dtype": str(data.X.dtype),
        "num_test": None if data.X_test is None else int(data.X_test.shape[0]),
        "test": "independent sample"
        if not own_data
        else (f"{settings.cv}-fold" if settings.cv else test_fraction or None),
        "standardize": standardize,
        "weighted": data.weights is not None,
        "until": settings.until,
        "average": settings.average,
        "dask": on_dask,
        "sample": sample,
        "redundant_columns": None if on_dask or not own_data else redundant_columns(data.X, config_names),
    }
    step = None if seen is None else step_size.summary(settings.lr, stable, used_lr, seen, data.weights is not None)
    for row in rows:
        if races.get(row["impl"]) is not None and seen is not None:
            row.update(_predicted(estimators[row["impl"]], seen, reference, settings.until, len(local[0])))
            row["until"] = settings.until
    return Comparison(config, environment(names, device), reference, rows, curves, (data.X, data.y), step)


def _data(names, X, y, true_w, true_b, num_examples, noise, seed, dtype, data_name) -> tuple[Data, float | None, str]:
    if X is None:
        if y is not None:
            raise UsageError("y was given without X; give both, or neither to draw synthetic data")
        true_w, true_b = check_truth(
            NOTEBOOK_W if true_w is None else true_w, NOTEBOOK_B if true_b is None else true_b, noise, dtype
        )
        check_memory(num_examples, len(true_w), NUM_TEST, dtype, names)
        X, y = synthetic_data(true_w, true_b, num_examples, noise=noise, random_state=seed, dtype=dtype)
        X_test, y_test = synthetic_data(true_w, true_b, NUM_TEST, noise=noise, random_state=[seed, 1], dtype=dtype)
        return Data(X, y, X_test, y_test, true_w, true_b), noise, data_name or "synthetic"
    X, y = dask_arrays(X, y)[:2] if is_dask(X, y) else check_arrays(X, y)
    if (true_w is None) != (true_b is None):
        raise UsageError("give both --true-w and --true-b for data of your own, or neither")
    if true_w is not None and len(true_w) != X.shape[1]:
        raise UsageError(f"--true-w has {len(true_w)} numbers but the data have {X.shape[1]} features")
    truth = (None, None) if true_w is None else check_truth(true_w, true_b, 0.0, "float64")
    return Data(X, y, None, None, *truth), None, data_name or "user arrays"


def _fit(estimator, X, y, weights, settings: Settings, racing: bool, reference: dict, monitor: Progress):
    """(timing, whether it diverged, the race or None): ``fit`` timed ``settings.repeats`` times, or with
    ``racing`` trained epoch by epoch until ``settings.until`` standard errors from least squares."""
    if not racing:
        timing, diverged = fit_and_time(estimator, X, y, settings.repeats, settings.max_seconds, monitor.tick, weights)
        return timing, diverged, None
    distance = lambda coef, intercept: largest(in_se(coef, intercept, reference)) or np.inf  # noqa: E731
    name = impls.CLASSES.get(type(final_estimator(estimator)).__name__, "")
    progress = race.RaceProgress(name, settings.num_epochs) if monitor.enabled else None
    try:
        ran = race.run(
            estimator, X, y, distance, settings.until, settings.num_epochs, weights, settings.max_seconds, progress
        )
    finally:
        if progress is not None:
            progress.close()
    return race.timing(ran), ran.diverged, ran


def _said_before_racing(name, estimator, X, y, reference: dict, weights, settings: Settings) -> dict:
    """What the race can reach, said before it runs: a constant step's noise floor above the bar is a warning with
    the ways out; with averaging, the epochs its bias and variance terms predict (``linreg_compare.noise_floor``)."""
    predicted = noise_floor.before_training(estimator, X, y, reference, weights, settings.until)
    floor = predicted["noise_floor_in_se"]
    if not settings.average and floor is not None and floor > settings.until:
        warnings.warn(
            f"{name}'s constant steps settle about {floor:.2g} SE from least squares, above --until "
            f"{settings.until:g}: it will not get there; --average (the tail average), a larger --batch-size or "
            "a smaller --lr does",
            step_size.FloorWarning,
            stacklevel=3,
        )
    return {"predicted_average_epochs": predicted.get("predicted_average_epochs")} if settings.average else {}


def _weights(sample_weight, X, on_dask: bool):
    """The sample weights as a float64 array of X's length, finite and >= 0; None without them."""
    if sample_weight is None:
        return None
    if on_dask:
        raise UsageError("sample weights apply to data in memory, not to dask collections")
    weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if len(weights) != len(X):
        got = f"{len(weights)} numbers"
    elif not np.all(np.isfinite(weights)):
        got = "a number that is not finite"
    elif (weights < 0).any():
        got = "a negative number"
    elif not weights.sum() > 0:
        got = "only zeros"
    else:
        return weights
    raise UsageError(f"sample_weight (--weights) must be {len(X)} finite numbers >= 0, not all 0; got {got}")


def _held_out(parts, data: Data) -> Data:
    """``data`` split into training and held-out rows by ``parts`` (``linreg_compare.split``)."""
    X, y, X_test, y_test, weights, weights_test = parts
    return Data(X, y, X_test, y_test, data.true_w, data.true_b, weights, weights_test)


def _predicted(estimator, seen, reference: dict, until: float, num_examples: int) -> dict:
    """What theory predicts for a race: full-gradient steps of the estimator's own step from the zero line (where
    the iterative methods start, to init_std) to ``until`` standard errors, and the epochs they make."""
    start = largest(in_se(np.zeros(len(reference["coef"])), 0.0, reference))
    if start is None or not getattr(estimator, "n_iter_", 0):
        return {"predicted_steps": None, "predicted_epochs": None}
    # The step on the mean half squared error (Hessian G) that the estimator's lr stands for: 2/λ at its limit.
    step = 2 * estimator.lr_ / (seen.largest * estimator.lr_limit(seen.largest, num_examples=num_examples))
    steps = step_size.predicted_steps(step, seen, start, until)
    steps_per_epoch = estimator.n_steps_ / estimator.n_iter_
    return {"predicted_steps": steps, "predicted_epochs": None if steps is None else steps / steps_per_epoch}


def main(argv=None) -> int:
    """``python compare.py``: the flags as ``compare()``'s keywords (``--help`` lists them), and the studies."""
    return cli.main(argv, compare)


if __name__ == "__main__":
    sys.exit(main())
