"""How many digits each least-squares code gets right on hard designs: python benchmarks/accuracy.py

Accuracy is the log relative error, LRE = −log10(|b − c| / |c|), capped at 15, the minimum over the
intercept and coefficients, against the exact least-squares solution of the float64 data (rational
arithmetic: every float64 is an exact fraction, so the oracle's normal equations are solved exactly).
The package is compared with three anchors: statsmodels' OLS with method="qr", numpy.linalg.lstsq on
[1, X] and scikit-learn's LinearRegression. tests/test_accuracy.py asserts the bars on the same designs.
"""

from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np

# The certified coefficients of NIST's "Filip" problem, a degree-10 polynomial on x in [-8.8, -3.1]; the x and
# the noise here are drawn afresh (the original data are not shipped).
FILIP_BETA = [-1467.48961422980, -2772.17959193342, -2316.37108160893, -1127.97394098372, -354.478233703349,
              -75.1242017393757, -10.8753180355343, -1.06221498588947, -0.0670191154593408,
              -0.00246781078275479, -4.02962525080404e-05]  # fmt: skip


def _polynomial(low, high, degree, num_examples, noise, seed, beta=None):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(low, high, num_examples))
    X = np.column_stack([x**k for k in range(1, degree + 1)])
    beta = np.ones(degree + 1) if beta is None else np.asarray(beta)
    return X, beta[0] + X @ beta[1:] + noise * rng.standard_normal(num_examples)


def _near_collinear(gap, seed=0, num_examples=200):
    """Four columns, the last one the sum of the first two plus ``gap`` times fresh noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, 4))
    X[:, 3] = X[:, 0] + X[:, 1] + gap * rng.standard_normal(num_examples)
    return X, X @ [1.0, -2.0, 0.5, 3.0] + 0.7 + 0.01 * rng.standard_normal(num_examples)


def _exact_fit(seed=0):
    """Small integers: y = Xw + b holds exactly in float64, so the least-squares answer is w, b exactly."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-20, 20, size=(100, 5)).astype(np.float64)
    return X, X @ [3.0, -1.0, 2.0, 5.0, -4.0] + 7.0


def _large_means(seed=0):
    """Columns whose means are 1e6 times their spread."""
    rng = np.random.default_rng(seed)
    X = 1e6 * np.array([1.0, 2.0, 3.0]) + rng.standard_normal((300, 3))
    return X, X @ [0.5, -1.5, 2.0] + 3.0 + 0.1 * rng.standard_normal(300)


def _square(seed=0):
    """n = d + 1: as many equations as unknowns, so the fit interpolates."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 5))
    return X, rng.standard_normal(6)


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
}


def exact_lstsq(X, y) -> np.ndarray:
    """(b, w) minimising ‖y − b − Xw‖ exactly: the normal equations of [1, X] solved in rational arithmetic."""
    rows = [[Fraction(1)] + [Fraction(value) for value in row] for row in X.tolist()]
    targets = [Fraction(value) for value in y.tolist()]
    k = len(rows[0])
    system = [[sum(row[p] * row[q] for row in rows) for q in range(k)] + [sum(row[p] * t for row, t in zip(rows, targets))]
              for p in range(k)]  # fmt: skip
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


def solvers() -> dict:
    """Each code as a function of (X, y) returning (b, w...)."""
    import statsmodels.api as sm
    from sklearn.linear_model import LinearRegression

    from impls import NumpyClosedFormRegressor

    def package(X, y):
        model = NumpyClosedFormRegressor().fit(X, y)
        return np.append(model.intercept_, model.coef_)

    def package_on_dask(X, y):  # three chunks of rows, dask's synchronous scheduler
        import dask
        import dask.array as da

        rows = max(2, -(-len(X) // 3))
        with dask.config.set(scheduler="sync"):
            model = NumpyClosedFormRegressor().fit(
                da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)
            )
        return np.append(model.intercept_, model.coef_)

    def linear_regression(X, y):
        model = LinearRegression().fit(X, y)
        return np.append(model.intercept_, model.coef_)

    return {
        "numpy-closed-form": package,
        "on dask, 3 chunks": package_on_dask,
        "statsmodels qr": lambda X, y: sm.OLS(y, sm.add_constant(X, has_constant="add")).fit(method="qr").params,
        "lstsq [1, X]": lambda X, y: np.linalg.lstsq(np.column_stack([np.ones(len(X)), X]), y, rcond=None)[0],
        "LinearRegression": linear_regression,
    }


def table() -> list[dict]:
    rows = []
    codes = solvers()
    for name, make in DESIGNS.items():
        X, y = make()
        centred = X - X.mean(axis=0)
        exact = exact_lstsq(X, y)
        row = {"design": name, "cond": float(np.linalg.cond(centred / np.linalg.norm(centred, axis=0)))}
        row |= {code: lre(solve(X, y), exact) for code, solve in codes.items()}
        rows.append(row)
    return rows


def main() -> int:
    rows = table()
    names = list(rows[0])[2:]
    print("LRE (correct digits, at most 15) against the exact least-squares solution; cond: centred, scaled X")
    print(f"  {'design':48s} {'cond':>8s}" + "".join(f"{name:>19s}" for name in names))
    for row in rows:
        print(f"  {row['design']:48s} {row['cond']:8.1e}" + "".join(f"{row[name]:19.1f}" for name in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
