"""How fast each iterative method reaches least squares (``--until T``): it trains one epoch at a time, by its
own ``partial_fit``, until every parameter is within T standard errors of the least-squares solution, or the
epochs run out. Only the training is timed; the distance is checked between epochs, off the clock.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from impls import DivergenceWarning
from linreg_compare.standardize import final_estimator

WARM_UP_ROWS = 32


@dataclass
class Race:
    """One implementation's race: its distance to least squares in standard errors after each epoch, the
    training seconds spent by then, and how it ended."""

    distances: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    reached: bool = False
    diverged: bool = False

    @property
    def epochs(self) -> int:
        return len(self.distances)


def run(estimator, X, y, distance_in_se, until: float, max_epochs: int, sample_weight=None) -> Race:
    """Train ``estimator`` (a plain estimator or a standardising pipeline, not yet fitted) epoch by epoch on
    (X, y) until ``distance_in_se(fitted)`` is below ``until`` or ``max_epochs`` have run; the pipeline's scaler is
    fitted once, first, and its time counted with the first epoch. A copy first trains one untimed epoch on a few
    rows, so that one-time costs (a library's first call) do not count as the first epoch's."""
    from sklearn.base import clone

    race, learner = Race(), final_estimator(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clone(learner).partial_fit(X[:WARM_UP_ROWS], y[:WARM_UP_ROWS])
    start = time.perf_counter()
    features = estimator[0].fit_transform(X) if learner is not estimator else X
    spent = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)  # the row's status says it: diverged_ is set with it
        for _ in range(max_epochs):
            start = time.perf_counter()
            learner.partial_fit(features, y, sample_weight=sample_weight)
            spent += time.perf_counter() - start
            race.seconds.append(spent)
            race.distances.append(distance_in_se(estimator))
            if learner.diverged_:
                race.diverged = True
                break
            if race.distances[-1] < until:
                race.reached = True
                break
    return race


def status(race: Race, until: float) -> str:
    """The row's status: within T SE after N epochs, stopped after N epochs x SE away, or diverged."""
    if race.diverged:
        return f"diverged after epoch {race.epochs}"
    if race.reached:
        return f"within {until:g} SE after {race.epochs} epoch{'s' * (race.epochs != 1)}"
    last = race.distances[-1] if race.distances else np.nan
    return f"stopped after {race.epochs} epochs, {last:.2g} SE away"


def timing(race: Race):
    """The race's training time as the row's timing: one run, no warm-up."""
    from linreg_compare.fit import Timing

    seconds = race.seconds[-1] if race.seconds else 0.0
    return Timing(seconds, seconds, seconds, seconds, seconds, None, 1)
