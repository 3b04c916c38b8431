"""Is the stated step-size limit the real one? python benchmarks/step_size.py

For each real data set (as given, not standardised) and each iterative implementation: lr doubled from 2^-10.5 of
the stated limit until the fit diverges (minibatches of 10, 20 epochs, seed 0), then the bracket halved BISECTIONS
times (geometrically), and the measured boundary compared with the limit the implementation states from the data
(``lr_limit`` of λ_max of [1, X]ᵀ[1, X]/n). The claim holds where the boundary lies within a factor of 2 of it.
Prints a markdown table (docs/learn.md holds its output).
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from impls import NAMES, DivergenceWarning, implementation
from impls._step_size import largest_eigenvalue
from linreg_compare.capabilities import has_learning_rate

EPOCHS, BATCH_SIZE, START, BISECTIONS = 20, 10, 2.0**-10.5, 5  # START: a multiple of the stated limit


def data_sets() -> dict:
    """Real data shipped with scikit-learn and statsmodels (no download): name -> (X, y)."""
    from sklearn.datasets import load_diabetes
    from statsmodels import datasets

    found = {"diabetes (sklearn, unscaled)": load_diabetes(scaled=False, return_X_y=True)}
    for name, target, drop in [
        ("longley", "TOTEMP", []),
        ("stackloss", "STACKLOSS", []),
        ("statecrime", "murder", []),
        ("ccard", "AVGEXP", []),
        ("fair", "affairs", []),
    ]:
        frame = getattr(datasets, name).load_pandas().data.drop(columns=drop)
        numeric = frame.select_dtypes("number")
        found[f"{name} (statsmodels)"] = (
            np.array(numeric.drop(columns=[target]), dtype=float),
            np.array(numeric[target], dtype=float),
        )
    return found


def diverges(name: str, X, y, lr: float) -> bool:
    est = implementation(name)(lr=lr, batch_size=BATCH_SIZE, num_epochs=EPOCHS, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        est.fit(X, y)
    return est.diverged_


def boundary(name: str, X, y, limit: float) -> tuple[float, float]:
    """(last stable lr, first diverging lr) of ``name``: doubled from START times ``limit``, then bisected."""
    stable, lr = 0.0, START * limit
    while not diverges(name, X, y, lr):
        stable, lr = lr, 2 * lr
        if lr > 1e6 * limit:
            return stable, np.inf
    for _ in range(BISECTIONS if stable else 0):
        middle = np.sqrt(stable * lr)
        stable, lr = (stable, middle) if diverges(name, X, y, middle) else (middle, lr)
    return stable, lr


def main() -> int:
    stepping = [name for name in NAMES if has_learning_rate(name)]
    print("| data (n × d) | λ_max | implementation | stated limit | last stable | first diverging | boundary / limit |")
    print("|---|---|---|---|---|---|---|")
    held = total = 0
    for data_name, (X, y) in data_sets().items():
        lam = largest_eigenvalue(X)
        for name in stepping:
            limit = implementation(name)(batch_size=BATCH_SIZE).lr_limit(lam, num_examples=len(X))
            stable, diverging = boundary(name, X, y, limit)
            within = limit / 2 <= diverging and stable <= 2 * limit
            held, total = held + within, total + 1
            print(
                f"| {data_name} ({X.shape[0]} × {X.shape[1]}) | {lam:.3g} | {name} | {limit:.3g} | "
                f"{stable:.3g} | {diverging:.3g} | {np.sqrt(stable * diverging) / limit:.2f}"
                f"{'' if within else ' (outside 2×)'} |"
            )
    print(f"\nThe boundary lies within a factor of 2 of the stated limit in {held} of {total} cases.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
