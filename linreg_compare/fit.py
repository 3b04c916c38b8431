"""Building, fitting and timing the implementations, the same way for each; and the machine the times come from."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

import impls
from impls import DivergenceWarning
from linreg_compare.checks import uses_torch
from linreg_compare.standardize import final_estimator, weighted


@dataclass
class Timing:
    """Seconds taken by ``fit`` alone: median, quartiles and extremes of the timed fits, and the cold first one."""

    fit_seconds: float | None = None
    fit_seconds_q1: float | None = None
    fit_seconds_q3: float | None = None
    fit_seconds_min: float | None = None
    fit_seconds_max: float | None = None
    cold_fit_seconds: float | None = None
    fits_timed_within_max_seconds: int | None = None  # depends on the clock, like every key with "seconds"


def build(name: str, **settings):
    """The estimator ``name`` with those of ``settings`` it takes (the closed form takes none of them)."""
    cls = impls.implementation(name)
    accepted = cls().get_params()
    return cls(**{key: value for key, value in settings.items() if key in accepted})


def timed_fit(estimator, X, y, sample_weight=None) -> tuple[float, bool]:
    """Seconds taken by ``fit`` alone (the estimator's device synchronised around it), and whether it diverged."""
    device = estimator.get_params().get("device", "cpu")
    synchronize = _cuda_synchronize if device.startswith("cuda") else (lambda: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        synchronize()
        start = time.perf_counter()
        estimator.fit(X, y, **weighted(estimator, sample_weight))
        synchronize()
        seconds = time.perf_counter() - start
    return seconds, any(issubclass(w.category, DivergenceWarning) for w in caught)


def _cuda_synchronize():
    import torch

    torch.cuda.synchronize()


def fit_and_time(estimator, X, y, repeats: int, max_seconds: float = math.inf, tick=lambda: None, sample_weight=None):
    """One untimed warm-up fit (the cold figure), then timed fits: ``repeats`` at most, and no more once
    ``max_seconds`` have been spent on this estimator (at least one, as timeit's autorange; the warm-up
    itself when it alone took that long). Returns (Timing, whether the fit diverged)."""
    start = time.perf_counter()
    cold, diverged = timed_fit(estimator, X, y, sample_weight)
    # A warm-up that alone takes longer than max_seconds is the one measurement: first-call costs are
    # then negligible next to the fit, and a second fit would double a long run for little.
    times = [cold] if cold >= max_seconds else []
    while len(times) < repeats and (not times or time.perf_counter() - start < max_seconds):
        tick()
        times.append(timed_fit(estimator, X, y, sample_weight)[0])
    tick()
    timing = Timing(
        fit_seconds=statistics.median(times),
        fit_seconds_q1=float(np.percentile(times, 25)),
        fit_seconds_q3=float(np.percentile(times, 75)),
        fit_seconds_min=min(times),
        fit_seconds_max=max(times),
        cold_fit_seconds=cold,
        fits_timed_within_max_seconds=len(times),
    )
    return timing, diverged


def recorded_paths(estimator, X, y, sample_weight=None) -> dict:
    """The parameters after every step (every epoch for sklearn-sgd) of a copy of ``estimator`` (or of a
    standardising pipeline, its path taken back to the data's units), for plots."""
    from sklearn.base import clone

    traced = clone(estimator)
    final_estimator(traced).set_params(record_steps=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        traced.fit(X, y, **weighted(traced, sample_weight))
    learner = final_estimator(traced)
    coef_path, intercept_path = learner.coef_path_, learner.intercept_path_
    if learner is not traced:  # w = w_z/s, b = b_z − wᵀμ
        scaler = traced[0]
        coef_path = coef_path / scaler.scale_
        intercept_path = intercept_path - coef_path @ scaler.mean_
    return {"coef_path": coef_path, "intercept_path": intercept_path}


def environment(names, device: str) -> dict:
    import sklearn
    import threadpoolctl

    blas_threads = max((pool["num_threads"] for pool in threadpoolctl.threadpool_info()), default=1)
    torch_module = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_module.__version__ if torch_module else "not imported",
        "scikit-learn": sklearn.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch_module.get_num_threads() if torch_module else blas_threads,
        "blas_threads": blas_threads,
        "device": device if uses_torch(names) else "cpu",
    }


class Progress:
    """Signs of life on standard error: a tqdm bar on a terminal (if tqdm is installed); elsewhere, on long
    runs (``long_run``), one line per implementation as it finishes. Silent when not ``enabled``."""

    def __init__(self, total: int, enabled: bool, long_run: bool):
        self.bar = progress_bar(total, enabled)
        self.enabled = enabled
        self.lines = enabled and long_run and not sys.stderr.isatty()
        self.start = time.perf_counter()

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.update()

    def done(self, name: str, row: dict) -> None:
        if self.lines:
            timed = row["fits_timed_within_max_seconds"]
            what = "not timed" if timed is None else f"{timed} timed fit{'' if timed == 1 else 's'}"
            print(
                f"compare.py: {name}: {what}, {time.perf_counter() - self.start:.1f} s so far; {row['status']}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar(total: int, enabled: bool):
    """A progress bar on standard error when it is a terminal and the run lasts over a second; else None."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=sys.stderr, delay=1.0, unit="fit", leave=False)
