"""How fast each iterative method reaches least squares (``--until T``): it trains by its own ``fit``, with a
``monitor`` that, after every epoch, measures the distance to the least-squares solution in its standard errors and
stops the training once every parameter is within T of it, once the training has taken ``--max-seconds``, or when
the epochs run out. Only the training is timed; the monitor's own time is taken off the clock.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from impls import DivergenceWarning
from linreg_compare.standardize import final_estimator, fit_keywords

WARM_UP_ROWS = 32


@dataclass
class Race:
    """One implementation's race: its distance to least squares in standard errors after each epoch, the
    training seconds spent by then, and how it ended."""

    distances: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    reached: bool = False
    diverged: bool = False
    out_of_time: bool = False
    max_seconds: float | None = None
    total_seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.distances)


def run(
    estimator,
    X,
    y,
    distance_in_se,
    until: float,
    max_epochs: int,
    sample_weight=None,
    max_seconds: float = math.inf,
    progress=None,
) -> Race:
    """Train ``estimator`` (a plain estimator or a standardising pipeline, not yet fitted, with ``num_epochs`` of
    ``max_epochs``) on (X, y) until ``distance_in_se(coef, intercept)`` (in the data's units) is below ``until``,
    ``max_epochs`` have run or the training has taken ``max_seconds``; the pipeline's scaler is fitted first, its
    time counted with the first epoch. A copy first trains one untimed epoch on a few rows, so that one-time costs
    (a library's first call) do not count as the first epoch's. ``progress(race)``, when given, is called after
    every epoch."""
    from sklearn.base import clone

    race, learner = Race(max_seconds=None if math.isinf(max_seconds) else max_seconds), final_estimator(estimator)
    learner.set_params(num_epochs=max_epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clone(learner).partial_fit(X[:WARM_UP_ROWS], y[:WARM_UP_ROWS])
    off_clock, start = 0.0, time.perf_counter()

    def monitor(epoch: int, coef, intercept) -> bool:
        nonlocal off_clock
        now = time.perf_counter()
        race.seconds.append(now - start - off_clock)
        if learner is not estimator:  # the line of the standardised features, in the data's units
            scaler = estimator[0]
            coef = coef / scaler.scale_
            intercept = intercept - coef @ scaler.mean_
        race.distances.append(distance_in_se(coef, float(intercept)))
        if progress is not None:
            progress(race)
        race.reached = race.distances[-1] < until
        race.out_of_time = not race.reached and race.seconds[-1] >= max_seconds and race.epochs < max_epochs
        off_clock += time.perf_counter() - now
        return race.reached or race.out_of_time

    fit_params = fit_keywords(estimator, sample_weight=sample_weight, monitor=monitor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)  # the row's status says it: diverged_ is set with it
        estimator.fit(X, y, **fit_params)
    race.total_seconds = time.perf_counter() - start - off_clock
    race.diverged = bool(learner.diverged_)
    return race


def status(race: Race, until: float) -> str:
    """The row's status: within T SE after N epochs, stopped after N epochs x SE away, or diverged."""
    if race.diverged:
        return f"diverged after epoch {race.epochs + 1}"
    if race.reached:
        return f"within {until:g} SE after {race.epochs} epoch{'s' * (race.epochs != 1)}"
    last = race.distances[-1] if race.distances else np.nan
    if race.out_of_time:
        seconds = f"{race.max_seconds:g} s, --max-seconds"
        return f"stopped for time after {race.epochs} epochs ({seconds}), {last:.2g} SE away"
    return f"stopped after {race.epochs} epochs, {last:.2g} SE away"


# A race that has run this long shows its progress on standard error.
PROGRESS_AFTER_SECONDS = 10.0
PLAIN_LINE_EVERY_SECONDS = 10.0


class RaceProgress:
    """Signs of life of a long race on standard error: after PROGRESS_AFTER_SECONDS, a tqdm bar over the epochs on
    a terminal where tqdm is installed (``pip install tqdm``, or the ``progress`` extra), else a plain line every
    PLAIN_LINE_EVERY_SECONDS; each line or the bar gives the epoch and the distance in SE."""

    def __init__(self, name: str, max_epochs: int, stream=None):
        import sys

        self.name, self.max_epochs, self.stream = name, max_epochs, stream or sys.stderr
        self.start, self.bar, self.last_line = time.perf_counter(), None, None

    def __call__(self, race: Race) -> None:
        elapsed = time.perf_counter() - self.start
        if elapsed < PROGRESS_AFTER_SECONDS:
            return
        if self.bar is None and self.stream.isatty():
            self.bar = _tqdm(self.max_epochs, self.name, self.stream)
            if self.bar is not None:
                self.bar.update(race.epochs)
        if self.bar is not None and self.bar is not False:
            self.bar.n = race.epochs
            self.bar.set_postfix_str(f"{race.distances[-1]:.2g} SE", refresh=True)
            return
        self.bar = False  # no terminal or no tqdm: plain lines
        if self.last_line is None or elapsed - self.last_line >= PLAIN_LINE_EVERY_SECONDS:
            self.last_line = elapsed
            print(
                f"compare.py: {self.name} racing: epoch {race.epochs} of at most {self.max_epochs}, "
                f"{race.distances[-1]:.2g} SE away, {elapsed:.0f} s",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar:
            self.bar.close()


def _tqdm(total: int, name: str, stream):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"{name} racing", unit="epoch", file=stream, leave=False)


def timing(race: Race):
    """The race's training time as the row's timing: one run, no warm-up."""
    from linreg_compare.fit import Timing

    seconds = race.total_seconds
    return Timing(seconds, seconds, seconds, seconds, seconds, None, 1)
