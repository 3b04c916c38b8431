"""How many digits each least-squares code gets right on hard designs: python benchmarks/accuracy.py

Accuracy is the log relative error, LRE = −log10(|b − c| / |c|), capped at 15, the minimum over the
intercept and coefficients, against the exact least-squares solution of the float64 data (rational
arithmetic: every float64 is an exact fraction, so the oracle's normal equations are solved exactly).
Apart from that, the digits the data themselves allow: the exact answer's LRE against the coefficients the
design was drawn from. The package is compared with three anchors: statsmodels' OLS with method="qr",
numpy.linalg.lstsq on [1, X] and scikit-learn's LinearRegression. tests/test_accuracy.py asserts the bars.
"""

from __future__ import annotations

import sys
import warnings
from fractions import Fraction
from functools import partial

import numpy as np

# The certified coefficients of NIST's "Filip" problem, a degree-10 polynomial on x in [-8.8, -3.1]; the x and
# the noise here are drawn afresh (the original data are not shipped).
FILIP_BETA = [
    -1467.48961422980,
    -2772.17959193342,
    -2316.37108160893,
    -1127.97394098372,
    -354.478233703349,
    -75.1242017393757,
    -10.8753180355343,
    -1.06221498588947,
    -0.0670191154593408,
    -0.00246781078275479,
    -4.02962525080404e-05,
]


# The bars, in correct digits against the exact answer: in memory and through --data, BAR where the centred,
# equilibrated X has a condition number of at most BAR_CONDITION, BAR_BEYOND above; on dask, one digit fewer.
BAR, BAR_BEYOND, BAR_CONDITION, DASK_ALLOWANCE = 12.0, 11.0, 1e10, 1.0
# The largest residual of each large-residual design, by name: from 1e7 (three times the largest y) to none.
RESIDUALS = {"0": 0.0, "1e3": 1e3, "1e5": 1e5, "1e7": 1e7}


def bar(cond: float) -> float:
    """The digits the closed form must keep against the exact answer on a design of this condition number."""
    return BAR if cond <= BAR_CONDITION else BAR_BEYOND


# Every design returns (X, y, truth): truth is (b, w) the data were drawn from, None where y is pure noise.
def _polynomial(low, high, degree, num_examples, noise, seed, beta=None):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(low, high, num_examples))
    X = np.column_stack([x**k for k in range(1, degree + 1)])
    beta = np.ones(degree + 1) if beta is None else np.asarray(beta)
    return X, beta[0] + X @ beta[1:] + noise * rng.standard_normal(num_examples), beta


def _large_residual(size: float):
    """Degree 5 in the integers x = 0..20, y = 1 + x + … + x⁵ (up to 3.4 million) plus residuals of alternating
    sign up to ``size``: three runs of ±(1, −6, 15, −20, 15, −6, 1)·size/20, the stencil of the sixth difference,
    to which every polynomial of degree 5 is orthogonal. Every number is an integer, exact in float64, so the
    exact least-squares answer is the true one, (1, …, 1): the data allow all 15 digits at any residual."""
    x = np.arange(21.0)
    X = np.column_stack([x**k for k in range(1, 6)])
    stencil = np.array([1.0, -6.0, 15.0, -20.0, 15.0, -6.0, 1.0])
    residual = size / 20 * np.concatenate([stencil, -stencil, stencil])
    return X, 1.0 + X.sum(axis=1) + residual, np.ones(6)


def _near_collinear(gap, seed=0, num_examples=200):
    """Four columns, the last one the sum of the first two plus ``gap`` times fresh noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, 4))
    X[:, 3] = X[:, 0] + X[:, 1] + gap * rng.standard_normal(num_examples)
    return X, X @ [1.0, -2.0, 0.5, 3.0] + 0.7 + 0.01 * rng.standard_normal(num_examples), [0.7, 1.0, -2.0, 0.5, 3.0]


def _exact_fit(seed=0):
    """Small integers: y = Xw + b holds exactly in float64, so the least-squares answer is w, b exactly."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-20, 20, size=(100, 5)).astype(np.float64)
    return X, X @ [3.0, -1.0, 2.0, 5.0, -4.0] + 7.0, [7.0, 3.0, -1.0, 2.0, 5.0, -4.0]


def _large_means(seed=0):
    """Columns whose means are 1e6 times their spread."""
    rng = np.random.default_rng(seed)
    X = 1e6 * np.array([1.0, 2.0, 3.0]) + rng.standard_normal((300, 3))
    return X, X @ [0.5, -1.5, 2.0] + 3.0 + 0.1 * rng.standard_normal(300), [3.0, 0.5, -1.5, 2.0]


def _square(seed=0):
    """n = d + 1: as many equations as unknowns, so the fit interpolates."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 5))
    return X, rng.standard_normal(6), None


DESIGNS = {
    "polynomial, degree 2, x in [10, 11]": lambda: _polynomial(10, 11, 2, 60, 0.01, seed=0),
    "polynomial, degree 5, x in [1, 2]": lambda: _polynomial(1, 2, 5, 80, 0.01, seed=0),
    "polynomial, degree 10, x in [-8.8, -3.1] (Filip-like)": lambda: _polynomial(
        -8.8, -3.1, 10, 82, 0.0034, 0, FILIP_BETA
    ),
    "near-collinear, cond ~1e8": lambda: _near_collinear(3e-8),
    "near-collinear, cond ~1e12": lambda: _near_collinear(3e-12),
    "exact fit (zero residual)": _exact_fit,
    "means 1e6 times the spread": _large_means,
    "n = d + 1": _square,
} | {
    f"polynomial, degree 5, x in 0..20, residual {name}": partial(_large_residual, size)
    for name, size in RESIDUALS.items()
}


def exact_lstsq(X, y) -> np.ndarray:
    """(b, w) minimising ‖y − b − Xw‖ exactly: the normal equations of [1, X] solved in rational arithmetic."""
    rows = [[Fraction(1)] + [Fraction(value) for value in row] for row in X.tolist()]
    targets = [Fraction(value) for value in y.tolist()]
    k = len(rows[0])
    # The augmented normal equations [AᵀA | Aᵀy] of A = [1, X], row p after row p.
    system = [[sum(row[p] * row[q] for row in rows) for q in range(k)] for p in range(k)]
    for p in range(k):
        system[p].append(sum(row[p] * t for row, t in zip(rows, targets)))
    for column in range(k):  # Gauss-Jordan elimination, exact
        pivot = next(i for i in range(column, k) if system[i][column] != 0)
        system[column], system[pivot] = system[pivot], system[column]
        for i in range(k):
            if i != column and system[i][column] != 0:
                factor = system[i][column] / system[column][column]
                system[i] = [a - factor * b for a, b in zip(system[i], system[column])]
    return np.array([float(system[i][k] / system[i][i]) for i in range(k)])


def lre(estimate, exact) -> float:
    """min over the parameters of −log10(|estimate − exact| / |exact|), capped at 15 (exact: 15)."""
    estimate, exact = np.asarray(estimate, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    with np.errstate(divide="ignore"):
        digits = -np.log10(np.abs(estimate - exact) / np.abs(exact))
    return float(np.clip(np.nan_to_num(digits, posinf=15.0), None, 15.0).min())


def fit_package(X, y, on_dask: bool = False):
    """The package's fit, in memory or on dask (three chunks of rows, dask's synchronous scheduler)."""
    from impls import NumpyClosedFormRegressor

    if not on_dask:
        return NumpyClosedFormRegressor().fit(X, y)
    import dask
    import dask.array as da

    rows = max(2, -(-len(X) // 3))
    with dask.config.set(scheduler="sync"):
        return NumpyClosedFormRegressor().fit(
            da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)
        )


def anchors() -> dict:
    """The other codes, each as a function of (X, y) returning (b, w...)."""
    import statsmodels.api as sm
    from sklearn.linear_model import LinearRegression

    def linear_regression(X, y):
        model = LinearRegression().fit(X, y)
        return np.append(model.intercept_, model.coef_)

    return {
        "statsmodels qr": lambda X, y: sm.OLS(y, sm.add_constant(X, has_constant="add")).fit(method="qr").params,
        "lstsq [1, X]": lambda X, y: np.linalg.lstsq(np.column_stack([np.ones(len(X)), X]), y, rcond=None)[0],
        "LinearRegression": linear_regression,
    }


def condition(X) -> float:
    """The condition number of X centred, its columns scaled to unit norm."""
    centred = X - X.mean(axis=0)
    return float(np.linalg.cond(centred / np.linalg.norm(centred, axis=0)))


def table() -> list[dict]:
    """One row per design: cond, the bar, the digits the data allow, then each code's digits against the exact
    answer, with the package's steps of refinement in memory and on dask."""
    rows = []
    others = anchors()
    for name, make in DESIGNS.items():
        X, y, truth = make()
        exact, cond = exact_lstsq(X, y), condition(X)
        row = {"design": name, "cond": cond, "bar": bar(cond), "data": None if truth is None else lre(exact, truth)}
        for code, on_dask in [("numpy-closed-form", False), ("on dask, 3 chunks", True)]:
            model = fit_package(X, y, on_dask)
            row[code], row[f"{code} steps"] = lre(np.append(model.intercept_, model.coef_), exact), model.n_refinements_
        row |= {code: lre(solve(X, y), exact) for code, solve in others.items()}
        rows.append(row)
    return rows


def main() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n = d + 1 leaves no degree of freedom: sigma2_ is NaN
        rows = table()
    print("LRE (correct digits, at most 15) against the exact least-squares solution of the float64 data;")
    print("data: the exact solution against the coefficients the design was drawn from (what the data allow);")
    print("cond: centred, scaled X; bar: the closed form's (on dask one fewer); (n): its steps of refinement")
    codes = ["numpy-closed-form", "on dask, 3 chunks", *anchors()]
    print(f"  {'design':53s} {'cond':>8s} {'bar':>4s} {'data':>5s}" + "".join(f"{code:>19s}" for code in codes))
    for row in rows:
        data = "-" if row["data"] is None else f"{row['data']:.1f}"
        cells = [
            f"{row[code]:.1f} ({row[code + ' steps']})" if code + " steps" in row else f"{row[code]:.1f}"
            for code in codes
        ]
        print(
            f"  {row['design']:53s} {row['cond']:8.1e} {row['bar']:4.0f} {data:>5s}"
            + "".join(f"{c:>19s}" for c in cells)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
