"""Does racing cost more than fitting? python benchmarks/race_overhead.py

The race (``--until``) trains by ``fit`` with a monitor that checks the distance after every epoch, off the
clock. Its training seconds per epoch, against ``fit(num_epochs=EPOCHS)``'s seconds per epoch, for each iterative
implementation on the notebook's data (1,000 × 2) and on 50,000 × 10; the median of REPEATS runs of each, measured
in one run. The bound is 1.2.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from impls import implementation, synthetic_data  # noqa: E402
from linreg_compare import race  # noqa: E402

EPOCHS, REPEATS, BOUND = 20, 5, 1.2
ITERATIVE = ("torch-concise", "torch-scratch", "sklearn-sgd")


def fit_seconds(name, X, y) -> float:
    estimator = implementation(name)(num_epochs=EPOCHS)
    start = time.perf_counter()
    estimator.fit(X, y)
    return (time.perf_counter() - start) / EPOCHS


def race_seconds(name, X, y) -> float:
    ran = race.run(implementation(name)(num_epochs=EPOCHS), X, y, lambda coef, intercept: 1.0, 0.0, EPOCHS)
    return ran.seconds[-1] / ran.epochs


def main() -> int:
    print("| data | implementation | fit s/epoch | race s/epoch | race / fit |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for shape in [(1000, 2), (50_000, 10)]:
        X, y = synthetic_data(np.linspace(-2, 2, shape[1]), 4.2, shape[0], random_state=0)
        for name in ITERATIVE:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_seconds(name, X, y)  # warm-up
                fits = [fit_seconds(name, X, y) for _ in range(REPEATS)]
                races = [race_seconds(name, X, y) for _ in range(REPEATS)]
            ratio = statistics.median(races) / statistics.median(fits)
            worst = max(worst, ratio)
            print(
                f"| {shape[0]} × {shape[1]} | {name} | {statistics.median(fits):.3g} | {statistics.median(races):.3g} "
                f"| {ratio:.2f}{'' if ratio <= BOUND else f' (above {BOUND})'} |"
            )
    print(f"\nThe largest ratio is {worst:.2f} (bound {BOUND}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
