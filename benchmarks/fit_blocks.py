"""Streaming and sparse fits of the closed form, measured: python benchmarks/fit_blocks.py

1. ``fit_blocks`` against ``fit`` on 1,000,000 × 50 well-conditioned data in memory: the median time of each over
   alternated runs (one untimed warm-up each), printed as a ratio (the bar: at most 2).
2. The digits (LRE against the exact answer, as in benchmarks/accuracy.py) of ``fit_blocks`` and ``partial_fit``
   fed 8 rows at a time, beside the in-memory fit's, on every hard design (the bar: the in-memory LRE less one).
3. The peak resident memory of ``fit`` on a 100,000 × 10,000 CSR matrix with 0.1 % non-zeros, in a fresh process,
   beside the 8 GB its dense copy would take.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from impls import NumpyClosedFormRegressor  # noqa: E402

SPARSE_PROBE = """
import resource, sys, time
import numpy as np, scipy.sparse
from impls import NumpyClosedFormRegressor
rows, columns, density = {rows}, {columns}, {density}
per_row = round(columns * density)  # non-zeros per row, in random columns (scipy.sparse.random would draw
rng = np.random.default_rng(0)      # from all rows × columns positions: gigabytes of indices)
indices = rng.integers(0, columns, rows * per_row)
X = scipy.sparse.csr_array((rng.standard_normal(rows * per_row), indices, np.arange(0, rows * per_row + 1, per_row)),
                           shape=(rows, columns))
X.sum_duplicates()
y = X @ np.random.default_rng(1).standard_normal(columns) + 0.1 * np.random.default_rng(2).standard_normal(rows)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
model = NumpyClosedFormRegressor().fit(X, y)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before * 1024, peak * 1024, seconds, model.solver_, X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
"""


def ratio(num_examples: int, num_features: int, block_rows: int, repeats: int) -> dict:
    """Median seconds of fit and fit_blocks on the same well-conditioned data, timed alternately."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((num_examples, num_features))
    y = X @ rng.standard_normal(num_features) + 1.0 + rng.standard_normal(num_examples)

    def fit():
        return NumpyClosedFormRegressor().fit(X, y)

    def fit_blocks():
        blocks = ((X[i : i + block_rows], y[i : i + block_rows]) for i in range(0, num_examples, block_rows))
        return NumpyClosedFormRegressor().fit_blocks(blocks)

    times = {"fit": [], "fit_blocks": []}
    models = {name: run() for name, run in [("fit", fit), ("fit_blocks", fit_blocks)]}  # warm-up
    for _ in range(repeats):
        for name, run in [("fit", fit), ("fit_blocks", fit_blocks)]:
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    difference = np.max(np.abs(models["fit"].coef_ - models["fit_blocks"].coef_) / np.abs(models["fit"].coef_))
    return medians | {
        "ratio": medians["fit_blocks"] / medians["fit"],
        "solver": models["fit_blocks"].solver_,
        "difference": difference,
    }


def digits() -> list[tuple[str, float, float, float]]:
    """(design, in-memory LRE, fit_blocks LRE, partial_fit LRE), 8 rows at a time."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import accuracy

    rows = []
    for name, make in accuracy.DESIGNS.items():
        X, y, _ = make()
        exact = accuracy.exact_lstsq(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # n = d + 1: no degree of freedom
            in_memory = NumpyClosedFormRegressor().fit(X, y)
            blocks = NumpyClosedFormRegressor().fit_blocks((X[i : i + 8], y[i : i + 8]) for i in range(0, len(X), 8))
            pieces = NumpyClosedFormRegressor()
            for i in range(0, len(X), 8):
                pieces.partial_fit(X[i : i + 8], y[i : i + 8])
        lre = [accuracy.lre(np.append(m.intercept_, m.coef_), exact) for m in (in_memory, blocks, pieces)]
        rows.append((name, *lre))
    return rows


def sparse_memory(rows: int, columns: int, density: float) -> dict:
    """Peak RSS of a sparse fit in a fresh process (resource.getrusage: the high-water mark since it started)."""
    code = SPARSE_PROBE.format(rows=rows, columns=columns, density=density)
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    before, peak, seconds, solver, stored = float(output[0]), float(output[1]), float(output[2]), output[3], output[4]
    return {
        "before": before,
        "peak": peak,
        "seconds": seconds,
        "solver": solver,
        "stored": float(stored),
        "dense": rows * columns * 8.0,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--block-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sparse", default="100000x10000x0.001", help="ROWSxCOLUMNSxDENSITY, or 'none'")
    args = parser.parse_args(argv)

    result = ratio(args.examples, args.features, args.block_rows, args.repeats)
    print(
        f"fit_blocks / fit on {args.examples:,} x {args.features} (blocks of {args.block_rows:,} rows, "
        f"median of {args.repeats} alternated runs): {result['ratio']:.2f} "
        f"(fit {result['fit']:.3f} s, fit_blocks {result['fit_blocks']:.3f} s; fit_blocks' solver "
        f"{result['solver']}, largest relative difference in coef_ {result['difference']:.1e})"
    )
    print("\nLRE against the exact answer, blocks of 8 rows (bar: the in-memory LRE less one):")
    print(f"  {'design':55s} {'fit':>5s} {'fit_blocks':>11s} {'partial_fit':>12s}")
    for name, in_memory, blocks, pieces in digits():
        print(f"  {name:55s} {in_memory:5.1f} {blocks:11.1f} {pieces:12.1f}")
    if args.sparse != "none":
        rows, columns, density = args.sparse.split("x")
        memory = sparse_memory(int(rows), int(columns), float(density))
        gib = 2.0**30
        print(
            f"\nsparse fit of {int(rows):,} x {int(columns):,} CSR, density {float(density):g} "
            f"({memory['stored'] / gib:.3f} GiB stored): peak RSS {memory['peak'] / gib:.2f} GiB "
            f"({memory['before'] / gib:.2f} GiB before the fit), {memory['peak'] / memory['dense']:.0%} of the "
            f"{memory['dense'] / gib:.1f} GiB of X dense; {memory['seconds']:.1f} s, solver {memory['solver']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
