"""One fresh process for one memory measurement (peak RSS only grows, so each figure needs its own process).

    python memory_probe.py METHOD N D          # extra peak memory of one fit beyond X and y
    python memory_probe.py scaling NAME D N... # seconds per epoch and extra memory for growing n
    python memory_probe.py runner N D           # one compare() with the closed form: memory beyond its data
    python memory_probe.py csv READER PATH      # peak memory of reading a CSV (READER: package or pyarrow)
Prints JSON on standard output.
"""

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def current_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> float:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS, and return that RSS in MB."""
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")  # Linux >= 4.0: "5" resets the peak resident set size
    return current_mb()


def peak_mb() -> float:
    with open("/proc/self/status") as file:
        line = next(line for line in file if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024  # kB


def data(num_examples, num_features):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((num_examples, num_features))
    return X, X @ np.linspace(-1, 1, num_features) + 1.0 + 0.1 * rng.standard_normal(num_examples)


def one_fit(method, num_examples, num_features):
    from sklearn.linear_model import LinearRegression

    from impls import NumpyClosedFormRegressor

    if method in ("blocks", "exact-blocks"):  # a stream of blocks made on the fly: only one block exists at a time
        noise = 0.0 if method == "exact-blocks" else 0.1  # an exact fit streams through the double-double factor

        def blocks():
            rng = np.random.default_rng(0)
            for start in range(0, num_examples, 16384):
                X = rng.standard_normal((min(16384, num_examples - start), num_features))
                yield X, X @ np.linspace(-1, 1, num_features) + 1.0 + noise * rng.standard_normal(len(X))

        before = reset_peak()
        start = time.perf_counter()
        NumpyClosedFormRegressor().fit_blocks(blocks())
        return {"extra_mb": peak_mb() - before, "seconds": time.perf_counter() - start}
    X, y = data(num_examples, num_features)
    before = reset_peak()
    start = time.perf_counter()
    if method == "numpy-closed-form":
        NumpyClosedFormRegressor().fit(X, y)
    elif method == "LinearRegression":
        LinearRegression().fit(X, y)
    elif method == "lstsq":
        np.linalg.lstsq(np.column_stack([X, np.ones(num_examples)]), y, rcond=None)
    return {"extra_mb": max(0.0, peak_mb() - before), "seconds": time.perf_counter() - start}


def scaling(name, num_features, sizes):
    from impls import implementation

    cls = implementation(name)
    settings = {} if name == "numpy-closed-form" else {"num_epochs": 1}
    cls(**settings).fit(*data(100, num_features))  # warm-up: imports and first-call costs
    rows = []
    for num_examples in sizes:
        X, y = data(num_examples, num_features)
        X, y = X.astype(np.float32), y.astype(np.float32)  # the package's default dtype
        before = reset_peak()
        start = time.perf_counter()
        cls(**settings).fit(X, y)
        rows.append(
            {"n": num_examples, "seconds": time.perf_counter() - start, "extra_mb": max(0.0, peak_mb() - before)}
        )
        del X, y
    return rows


def runner(num_examples, num_features):
    """Peak memory of one compare() at float32 (the closed form only) beyond the arrays it draws."""
    from compare import NUM_TEST, compare

    true_w = list(np.linspace(-1, 1, num_features))
    compare(["numpy-closed-form"], num_examples=1000, true_w=true_w, true_b=1.0, repeats=1)  # imports, first calls
    before = reset_peak()
    result = compare(["numpy-closed-form"], num_examples=num_examples, true_w=true_w, true_b=1.0, repeats=3)
    for fmt in ("table", "markdown", "json", "csv"):
        result.render(fmt)
    data_mb = (num_examples + NUM_TEST) * (num_features + 1) * 4 / 2**20  # train and test X and y, float32
    return {"extra_mb": peak_mb() - before - data_mb, "data_mb": data_mb}


def read(reader, path):
    """Peak memory of reading the CSV at ``path`` with the package's reader or pyarrow's, from after the imports."""
    import pyarrow.csv

    from linreg_compare.read import read_csv

    before = reset_peak()
    if reader == "package":
        read_csv(path, "y")
    else:
        pyarrow.csv.read_csv(path)
    return {"extra_mb": peak_mb() - before}


if __name__ == "__main__":
    if sys.argv[1] == "csv":
        print(json.dumps(read(sys.argv[2], sys.argv[3])))
    elif sys.argv[1] == "runner":
        print(json.dumps(runner(int(sys.argv[2]), int(sys.argv[3]))))
    elif sys.argv[1] == "scaling":
        print(json.dumps(scaling(sys.argv[2], int(sys.argv[3]), [int(n) for n in sys.argv[4:]])))
    else:
        print(json.dumps(one_fit(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
