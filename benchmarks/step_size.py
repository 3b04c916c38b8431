"""Is the stated step-size limit the real one? python benchmarks/step_size.py [--quick]

For each data set (the notebook's; real data shipped with scikit-learn and statsmodels, as given and standardised as
the runner fits them; and synthetic data with a few heavy rows), each batch size in BATCH_SIZES and each iterative
implementation: lr doubled from 1/8 of the stated limit until the fit diverges (EPOCHS epochs, seed 0), then the
bracket halved BISECTIONS times (geometrically). The stated limit is ``impls._step_size.step_limit``: the
implementation's ``lr_limit`` at the mean-square curvature of its own steps. "Diverges" is the package's rule without
the limit in it: the training MSE not finite or above DIVERGENCE_FACTOR times its start. The claim holds where the
boundary is at or above the limit and at most 3 times it (safe, and not absurdly conservative). Prints a markdown
table (docs/learn.md holds its output).
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from impls import NAMES, implementation, synthetic_data
from impls._base import DIVERGENCE_FACTOR
from impls._step_size import step_limit
from linreg_compare.capabilities import has_learning_rate

EPOCHS, START, BISECTIONS = 20, 1 / 8, 5  # START: a multiple of the stated limit
BATCH_SIZES = (1, 10, 100)


def heavy_rows(num_examples=2000, num_heavy=4, seed=0):
    """Standard normal features but for a few rows scaled up 30 times (|x̃|² up to ~2000 against a mean of 6)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, 5))
    X[:num_heavy] *= 30.0
    y = X @ rng.standard_normal(5) + 1.0 + rng.standard_normal(num_examples)
    return X, y


def data_sets(quick: bool = False) -> dict:
    """name -> (X, y): no download."""
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler
    from statsmodels import datasets

    found = {"notebook (synthetic)": synthetic_data([2, -3.4], 4.2, 1000, random_state=0)}
    found["heavy rows (synthetic, 4 of 2000 ×30)"] = heavy_rows()
    real = {"diabetes (sklearn)": load_diabetes(scaled=False, return_X_y=True)}
    for name, target in [
        ("stackloss", "STACKLOSS"),
        ("statecrime", "murder"),
        ("ccard", "AVGEXP"),
        ("fair", "affairs"),
    ]:
        frame = getattr(datasets, name).load_pandas().data.select_dtypes("number")
        real[f"{name} (statsmodels)"] = (
            np.array(frame.drop(columns=[target]), dtype=float),
            np.array(frame[target], dtype=float),
        )
    for name, (X, y) in list(real.items())[:2] if quick else real.items():
        found[f"{name}, standardised"] = (StandardScaler().fit_transform(X), y)
        found[f"{name}, as given"] = (X, y)
    return found


def diverges(name: str, X, y, lr: float, batch_size: int) -> bool:
    est = implementation(name)(lr=lr, batch_size=batch_size, num_epochs=EPOCHS, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    curve = np.asarray(est.loss_curve_)
    return bool(not np.isfinite(curve).all() or curve.max() > DIVERGENCE_FACTOR * est._initial_loss)


def boundary(name: str, X, y, limit: float, batch_size: int) -> tuple[float, float]:
    """(last stable lr, first diverging lr) of ``name``: doubled from START times ``limit``, then bisected."""
    stable, lr = 0.0, START * limit
    while not diverges(name, X, y, lr, batch_size):
        stable, lr = lr, 2 * lr
        if lr > 1e4 * limit:
            return stable, np.inf
    for _ in range(BISECTIONS if stable else 0):
        middle = np.sqrt(stable * lr)
        stable, lr = (stable, middle) if diverges(name, X, y, middle, batch_size) else (middle, lr)
    return stable, lr


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    stepping = [name for name in NAMES if has_learning_rate(name)]
    print("| data (n × d) | B | implementation | stated limit | last stable | first diverging | boundary / limit |")
    print("|---|---|---|---|---|---|---|")
    held = total = 0
    ratios = []
    for data_name, (X, y) in data_sets(quick).items():
        for batch_size in BATCH_SIZES[1:2] if quick else BATCH_SIZES:
            for name in stepping:
                limit = step_limit(implementation(name)(batch_size=batch_size), X)
                stable, diverging = boundary(name, X, y, limit, batch_size)
                ratio = np.sqrt(stable * diverging) / limit if stable else diverging / limit
                within = stable >= limit * (1 - 1e-9) or diverging > limit
                within = within and diverging <= 3 * limit * (1 + 2.0**-BISECTIONS)
                held, total = held + within, total + 1
                ratios.append(ratio)
                print(
                    f"| {data_name} ({X.shape[0]} × {X.shape[1]}) | {batch_size} | {name} | {limit:.3g} | "
                    f"{stable:.3g} | {diverging:.3g} | {ratio:.2f}{'' if within else ' (outside [1, 3])'} |"
                )
    print(
        f"\nThe boundary lies between 1 and 3 times the stated limit in {held} of {total} cases "
        f"(boundary / limit from {min(ratios):.2f} to {max(ratios):.2f})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
