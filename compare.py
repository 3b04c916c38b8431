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

import impls
from impls import NOTEBOOK_B, NOTEBOOK_W, synthetic_data
from impls._collections import is_dask
from linreg_compare import cli
from linreg_compare.capabilities import fits_dask_in_place
from linreg_compare.checks import (
    Settings,
    UsageError,
    check_arrays,
    check_device_available,
    check_memory,
    check_names,
    check_truth,
)
from linreg_compare.fit import Progress, Timing, build, environment, fit_and_time, recorded_paths
from linreg_compare.report import Comparison
from linreg_compare.scale import dask_arrays, gathered_for_one_process
from linreg_compare.score import Data, Scores, least_squares_reference, score

__all__ = ["Comparison", "UsageError", "compare", "main"]

NUM_TEST = 10_000  # held-out examples drawn from the same generator, independently of the training sample


def compare(
    impl: list[str] | tuple[str, ...] | None = None,
    *,
    X=None,
    y=None,
    true_w=None,
    true_b: float | None = None,
    num_examples: int = 1000,
    noise: float = 0.01,
    batch_size: int = 10,
    lr: float = 0.03,
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
    sample: int | None = None,
) -> Comparison:
    """Fit each implementation in ``impl`` (default: all four) on the same data and score them alike.

    Without ``X`` and ``y`` the data come from ``impls.synthetic_data(true_w, true_b, num_examples,
    noise=noise, random_state=seed)`` (the notebook's w = [2, -3.4] and b = 4.2 unless given), and a held-out
    sample of NUM_TEST from the same law, drawn with the independent stream ``random_state=[seed, 1]``.
    With ``X`` and ``y``, there is no held-out sample, and no true parameters unless ``true_w`` and
    ``true_b`` are given; ``feature_names`` (default: X's columns, if it has them) name w's entries in the
    report. X and y may be dask arrays or DataFrames (``linreg_compare.scale``): the closed form, the reference and
    the scores are then computed where the data live, and the iterative implementations fit the data
    gathered in memory, or ``sample`` rows of it, or are skipped. ``record_paths`` refits each iterative
    implementation once more, untimed, to record its parameters after every step (for plots). Bad settings
    raise UsageError (a ValueError)
    before anything runs.
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
    )
    check_device_available(settings.device, names)
    num_examples, noise, seed, repeats, sample = (
        settings.num_examples,
        settings.noise,
        settings.seed,
        settings.repeats,
        settings.sample,
    )

    # Data: the notebook's generator, or the user's arrays.
    feature_names = feature_names or (None if X is None else [str(c) for c in getattr(X, "columns", [])] or None)
    data, noise, data_name = _data(names, X, y, true_w, true_b, num_examples, noise, seed, dtype, data_name)
    on_dask = is_dask(data.X)
    if sample is not None and not on_dask:
        raise UsageError("--sample applies to data in dask arrays or DataFrames (--data DIR, or --scheduler)")
    reference = least_squares_reference(data, noise)
    # Dask data: the closed form fits them where they live; the others in one process, if at all.
    local = gathered_for_one_process(names, data.X, data.y, sample, seed, dtype) if on_dask else (data.X, data.y, None)
    in_place = {name: fits_dask_in_place(name) for name in names}

    # Fit and time each implementation, then score it; an error in one is its row's status.
    rows, curves = [], {}
    monitor = Progress(len(names) * (repeats + 1 + record_paths), progress, long_run=data.X.size >= 10**6)
    for name in names:
        estimator, curves[name] = build(name, **settings.estimator_params()), {}
        X_fit, y_fit, where = (data.X, data.y, None) if in_place[name] else local
        if X_fit is None:
            rows.append({"impl": name, **vars(Scores()), **vars(Timing()), "status": f"skipped: {where}"})
            monitor.done(name, rows[-1])
            continue
        try:
            timing, diverged = fit_and_time(estimator, X_fit, y_fit, repeats, settings.max_seconds, monitor.tick)
            if record_paths and "record_steps" in estimator.get_params():
                curves[name] = recorded_paths(estimator, X_fit, y_fit)
                monitor.tick()
        except Exception as exc:  # noqa: BLE001 - one implementation's failure is reported in its row
            message = str(exc).splitlines()[0] if str(exc) else ""
            rows.append(
                {"impl": name, **vars(Scores()), **vars(Timing()), "status": f"error: {type(exc).__name__}: {message}"}
            )
        else:
            scores = score(estimator, data, reference)
            status = f"diverged after epoch {estimator.n_iter_}" if diverged else "ok"
            status += f" ({where})" if where else ""
            rows.append({"impl": name, **vars(scores), **vars(timing), "status": status})
            curves[name]["loss_curve"] = scores.loss_curve
        monitor.done(name, rows[-1])
    monitor.close()

    # Render: the Comparison gives the table, markdown, JSON and CSV.
    config = {
        "impls": names,
        "data": data_name,
        "num_examples": int(data.X.shape[0]),
        "num_features": int(data.X.shape[1]),
        "feature_names": feature_names or [f"x{j}" for j in range(1, data.X.shape[1] + 1)],
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
        "num_test": None if data.X_test is None else NUM_TEST,
        "dask": on_dask,
        "sample": sample,
    }
    return Comparison(config, environment(names, device), reference, rows, curves, (data.X, data.y))


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


def main(argv=None) -> int:
    """``python compare.py``: the flags as ``compare()``'s keywords (``--help`` lists them), and the studies."""
    return cli.main(argv, compare)


if __name__ == "__main__":
    sys.exit(main())
