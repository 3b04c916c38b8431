"""Every performance figure of the package as a ratio measured in this one run: python benchmarks/run.py

Each ratio times the two sides alternately, `--repeats` times each after a warm-up, and quotes the medians.
Each section runs in a fresh process of its own (see main()); `--only SECTION` runs some of them.
Ratios, not absolute times, are the figures: on a shared machine both sides slow down together.
`--busy` runs every section with one process spinning on one core beside it (a user's machine under load).
`--quick` is a smoke run: small sizes and few repeats, every section run and printed in well under a minute,
ratios printed without their bounds (which hold at full size only); it fails only when something breaks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

RESULTS = []  # (figure, new median s, baseline median s, ratio, bound)
# The small problems of issue #20: the closed form at most LinearRegression at each, and at most lstsq from 1e5 numbers.
SMALL_SIZES = [(100, 2), (1000, 2), (10_000, 10), (100_000, 10), (10_000, 100), (100_000, 40)]
# scikit-learn SGD: (n, d, bound on the wrapper / a bare SGDRegressor with the same settings).
SGD_SIZES = [(100_000, 10, 1.1), (1000, 2, 1.5)]
QUICK = False  # a smoke run: bounds are not applied (set by run_section)
SECTIONS = [
    "sklearn",
    "torch",
    "closed-form",
    "small",
    "runner",
    "csv",
    "memory",
    "processes",
    "scaling",
]  # in the order they run


def alternate(new, *baselines, repeats, settle=0.0):
    """Median seconds of `new` and of each baseline, timed in turns after a warm-up each.

    The order rotates every round (new, a, b; then a, b, new; ...), so that a slow spell of this shared
    machine falls on every side alike; with several baselines, `new` is timed once per round and its
    one median serves every ratio. `settle` seconds of sleep before each timed call let the previous
    call's BLAS threads go idle: numpy and scipy each bring an OpenBLAS whose threads spin for a while
    after a call, and on two cores the threads of one still spinning take a core from the other
    (measured here: +50% on an 85 ms closed-form fit timed right after LinearRegression, whose lstsq
    runs in scipy's OpenBLAS; the row "without the pause").
    """
    functions = [new, *baselines]
    for fn in functions:
        fn()
    times = [[] for _ in functions]
    for round_ in range(repeats):
        for i in range(len(functions)):
            k = (round_ + i) % len(functions)
            time.sleep(settle)
            start = time.perf_counter()
            functions[k]()
            times[k].append(time.perf_counter() - start)
    return tuple(statistics.median(t) for t in times)


def report(figure, new_s, baseline_s, bound=None):
    ratio = new_s / baseline_s
    bound = None if QUICK else bound
    print(f"  {figure:<58} {new_s * 1e3:10.2f} ms / {baseline_s * 1e3:10.2f} ms = {ratio:6.3f}{verdict(ratio, bound)}")
    RESULTS.append(
        {"figure": figure, "new_seconds": new_s, "baseline_seconds": baseline_s, "ratio": ratio, "bound": bound}
    )


def verdict(ratio, bound):
    """The bound and whether the ratio meets it; nothing in a smoke run (--quick), whose toy sizes the bounds,
    set for the full sizes, do not fit."""
    if bound is None or QUICK:
        return ""
    return f"  (bound <= {bound})  " + ("pass" if ratio <= bound else "SHORT")


def issue_data(num_examples, num_features, seed=0):
    """X standard normal, y = Xw + 4.2 + 0.01·noise with w standard normal: R² close to 1, as in issue #20."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, num_features))
    return X, X @ rng.standard_normal(num_features) + 4.2 + 0.01 * rng.standard_normal(num_examples)


def environment(busy, quick):
    """The machine, the versions and the threads; in a smoke run without importing torch and scikit-learn (4 s here)
    to ask theirs, only numpy's BLAS."""
    from importlib.metadata import version

    import threadpoolctl

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}")
    print(
        f"versions: Python {platform.python_version()}, numpy {np.__version__}, torch {version('torch')}, "
        f"scikit-learn {version('scikit-learn')}"
    )
    threads = []
    if not quick:
        import sklearn  # noqa: F401  (its OpenMP and scipy's BLAS are then loaded, and listed below)
        import torch

        threads.append(f"torch {torch.get_num_threads()}")
    threads += [f"{p['internal_api']} {p['num_threads']}" for p in threadpoolctl.threadpool_info()]
    print(f"threads: {', '.join(threads)}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    if busy is not None:
        print(f"busy: one other process spinning on cpu {busy[1]} throughout (pid {busy[0].pid})")


def start_spinner():
    """One process that spins on the last cpu this process may use, pinned there, until killed: the other work of a
    user's machine. The sections are not pinned: the scheduler places them, as on that machine."""
    cpu = max(os.sched_getaffinity(0))
    code = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code]), cpu


def torch_loops(repeats):
    import torch
    from baselines import notebook_loop, textbook_scratch

    from impls import TorchConciseRegressor, TorchScratchRegressor, synthetic_data
    from impls.data import Minibatches, torch_generator

    X, y = synthetic_data([2, -3.4], 4.2, 1000)
    features, labels = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    # Same math: both sides must land on the notebook's answer.
    for fitted in (notebook_loop(features, labels)[0], TorchConciseRegressor().fit(X, y).coef_):
        assert np.allclose(np.asarray(fitted), [2, -3.4], atol=0.01)
    print("\ntorch, the notebook's setting (1000 x 2, batch 10, 3 epochs, full-data loss each epoch):")
    report(
        "torch-concise fit / notebook loop",
        *alternate(lambda: TorchConciseRegressor().fit(X, y), lambda: notebook_loop(features, labels), repeats=repeats),
        bound=0.6,
    )
    in_memory = Minibatches(features, labels, 10, torch_generator(0))  # the batches torch-concise cuts, no wrapper
    report(
        "  reference: the notebook loop on those batches / notebook loop",
        *alternate(
            lambda: notebook_loop(features, labels, batches=in_memory),
            lambda: notebook_loop(features, labels),
            repeats=repeats,
        ),
    )
    report(
        "torch-concise(use_dataloader=True) / notebook loop",
        *alternate(
            lambda: TorchConciseRegressor(use_dataloader=True).fit(X, y),
            lambda: notebook_loop(features, labels),
            repeats=repeats,
        ),
    )
    report(
        "torch-scratch fit / textbook from-scratch loop",
        *alternate(
            lambda: TorchScratchRegressor().fit(X, y), lambda: textbook_scratch(features, labels), repeats=repeats
        ),
        bound=0.85,
    )


def closed_form(num_examples, num_features, repeats, settle):
    from sklearn.linear_model import LinearRegression

    from impls import NumpyClosedFormRegressor

    X, y = issue_data(num_examples, num_features)
    rng = np.random.default_rng(1)
    print(
        f"\nclosed form, {num_examples:,} x {num_features} float64, well-conditioned, y = Xw + 4.2 + 0.01 noise "
        "(R² close to 1):"
    )
    ours = NumpyClosedFormRegressor().fit(X, y)
    lstsq = np.linalg.lstsq(np.column_stack([X, np.ones(num_examples)]), y, rcond=None)[0]
    theirs = np.append(ours.coef_, ours.intercept_)
    print(
        f"  agreement with lstsq: max relative difference {np.max(np.abs(theirs - lstsq)) / np.max(np.abs(lstsq)):.1e}"
        f" (bound 1e-8), solver {ours.solver_}, R² = 1 - {1 - ours.rsquared_:.1e}, "
        f"X read {1 + ours.n_refinements_} time(s)"
    )
    fit = lambda: NumpyClosedFormRegressor().fit(X, y)  # noqa: E731
    # One rotation for both baselines: the fit is timed between them, and its one median serves both ratios.
    fit_s, linear_regression_s, lstsq_s = alternate(
        fit,
        lambda: LinearRegression().fit(X, y),
        lambda: np.linalg.lstsq(np.column_stack([X, np.ones(num_examples)]), y, rcond=None),
        repeats=repeats,
        settle=settle,
    )
    report("numpy-closed-form / LinearRegression", fit_s, linear_regression_s, bound=0.1)
    report("numpy-closed-form / numpy.linalg.lstsq on [X, 1]", fit_s, lstsq_s, bound=0.1)
    report(
        "  the same without the pause between calls (see alternate())",
        *alternate(fit, lambda: LinearRegression().fit(X, y), repeats=repeats),
    )
    fit_s, gram_s = alternate(fit, lambda: X.T @ X, repeats=repeats, settle=settle)
    print(
        f"  GEMM rate of the fit: {gram_s / fit_s:.0%} of this machine's X.T @ X rate "
        f"({gram_s * 1e3:.1f} ms for X.T @ X alone)"
    )

    # An ill-conditioned and a rank-deficient design: the QR path, and the SVD path's minimum-norm answer.
    for label, column in [
        ("ill-conditioned (cond ~1e7)", X[:, 0] + 1e-7 * rng.standard_normal(num_examples)),
        ("rank-deficient", X[:, 0] - X[:, 1]),
    ]:
        bad = X[: num_examples // 10].copy()
        bad[:, -1] = column[: len(bad)]
        target = y[: len(bad)]
        est = NumpyClosedFormRegressor().fit(bad, target)
        reference = np.linalg.lstsq(bad - bad.mean(axis=0), target - target.mean(), rcond=None)[0]
        print(
            f"  {label} at {len(bad):,} x {num_features}: solver {est.solver_}, max relative difference to lstsq "
            f"{np.max(np.abs(est.coef_ - reference)) / np.max(np.abs(reference)):.1e}"
        )
        report(
            f"  {label}: numpy-closed-form / lstsq on [X, 1]",
            *alternate(
                lambda: NumpyClosedFormRegressor().fit(bad, target),
                lambda: np.linalg.lstsq(np.column_stack([bad, np.ones(len(bad))]), target, rcond=None),
                repeats=repeats,
                settle=settle,
            ),
        )


def small_problems(sizes, repeats, settle, numbers=2_000_000):
    """The closed form against LinearRegression at every size, and against lstsq on [1, X] where input validation is
    not the whole cost (from 10,000 x 10 up; below, scikit-learn's checks of X and y alone cost more than lstsq)."""
    from sklearn.linear_model import LinearRegression

    from impls import NumpyClosedFormRegressor

    print("\nsmall problems: numpy-closed-form, LinearRegression and numpy.linalg.lstsq on [1, X]")
    print(f"  (y = Xw + 4.2 + 0.01 noise; a timed call fits the same data up to 200 times, {numbers:.0e} numbers)")
    for num_examples, num_features in sizes:
        X, y = issue_data(num_examples, num_features)
        calls = max(1, min(200, numbers // (num_examples * num_features)))

        def batch(fit):
            return lambda: [fit() for _ in range(calls)]

        ours, linear_regression, lstsq = (
            seconds / calls
            for seconds in alternate(
                batch(lambda: NumpyClosedFormRegressor().fit(X, y)),
                batch(lambda: LinearRegression().fit(X, y)),
                batch(lambda: np.linalg.lstsq(np.column_stack([np.ones(num_examples), X]), y, rcond=None)),
                repeats=repeats,
                settle=settle,
            )
        )
        size = f"{num_examples:,} x {num_features}"
        report(f"numpy-closed-form / LinearRegression at {size}", ours, linear_regression, bound=1.0)
        bound = 1.0 if num_examples * num_features >= 100_000 else None
        report(f"numpy-closed-form / lstsq on [1, X] at {size}", ours, lstsq, bound=bound)


def runner_phases(num_examples, num_features):
    """The phases of one real compare() call with the closed form only, timed by cProfile inside it."""
    import cProfile
    import pstats

    from compare import compare
    from linreg_compare.render import FORMATS

    print(
        f"\nthe runner around the closed form: one compare() at {num_examples:,} x {num_features} float32, 3 timed fits"
    )
    true_w = list(np.linspace(-1, 1, num_features))
    compare(["numpy-closed-form"], num_examples=1000, true_w=true_w, true_b=1.0, repeats=1)  # imports, first calls
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    result = compare(["numpy-closed-form"], num_examples=num_examples, true_w=true_w, true_b=1.0, repeats=3)
    for fmt in FORMATS:
        result.render(fmt)
    profile.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profile).stats  # (file, line, function) -> (calls, ..., own time, cumulative time, callers)

    def seconds(path, function):
        return sum(row[3] for (file, _, name), row in stats.items() if file.endswith(path) and name == function)

    phases = {
        "data generation (train and test)": seconds("impls/data.py", "synthetic_data"),
        "least-squares reference": seconds("linreg_compare/score.py", "least_squares_reference"),
        "fits (warm-up and 3 timed)": seconds("linreg_compare/fit.py", "fit_and_time"),
        "scoring": seconds("linreg_compare/score.py", "score"),
        "rendering (4 formats)": seconds("linreg_compare/render.py", "render"),
    }
    for phase, phase_s in phases.items():
        print(f"  {phase:<36} {phase_s:8.3f} s")
    fits_s, generation_s = phases["fits (warm-up and 3 timed)"], phases["data generation (train and test)"]
    print(f"  {'whole call':<36} {total:8.3f} s")
    report("  everything but fits and generation / fits", total - fits_s - generation_s, fits_s, bound=1.0)
    probe = subprocess.run(
        [sys.executable, os.path.join(HERE, "memory_probe.py"), "runner", str(num_examples), str(num_features)],
        capture_output=True,
        text=True,
        check=True,
    )
    memory_mb = json.loads(probe.stdout)
    print(
        f"  peak memory beyond the data, in a fresh process: {memory_mb['extra_mb']:.1f} MB "
        f"(the data: {memory_mb['data_mb']:.0f} MB)"
    )
    ratio = memory_mb["extra_mb"] / memory_mb["data_mb"]
    RESULTS.append(
        {
            "figure": "runner: memory beyond the data / the data",
            "new_mb": memory_mb["extra_mb"],
            "baseline_mb": memory_mb["data_mb"],
            "ratio": ratio,
            "bound": None if QUICK else 0.1,
        }
    )
    print(f"  runner: memory beyond the data / the data {ratio:39.3f}{verdict(ratio, 0.1)}")


def csv_reading(num_examples, num_features, repeats):
    """The package's CSV reader (float64 X and y, every check) against a bare pyarrow.csv.read_csv of the file."""
    import pyarrow as pa
    import pyarrow.csv

    from linreg_compare.read import read_csv

    rng = np.random.default_rng(0)
    columns = {f"x{j}": rng.standard_normal(num_examples) for j in range(1, num_features + 1)}
    columns["y"] = sum(columns.values()) + rng.standard_normal(num_examples)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "data.csv")
        pyarrow.csv.write_csv(pa.table(columns), path)
        size_mb = os.path.getsize(path) / 2**20
        print(f"\nreading a CSV of {num_examples:,} x {num_features} floats and y ({size_mb:.0f} MB):")
        report(
            "read_csv (X, y in float64, checked) / pyarrow.csv.read_csv",
            *alternate(lambda: read_csv(path, "y"), lambda: pyarrow.csv.read_csv(path), repeats=repeats),
            bound=1.5,
        )
        peaks = {}
        for reader in ("package", "pyarrow"):
            done = subprocess.run(
                [sys.executable, os.path.join(HERE, "memory_probe.py"), "csv", reader, path],
                capture_output=True,
                text=True,
                check=True,
            )
            peaks[reader] = json.loads(done.stdout)["extra_mb"]
    ratio = peaks["package"] / peaks["pyarrow"]
    print(
        f"  peak memory, each in a fresh process: read_csv {peaks['package']:.0f} MB, pyarrow {peaks['pyarrow']:.0f} MB"
    )
    print(f"  {'read_csv peak memory / pyarrow.csv.read_csv peak memory':<58} {ratio:39.3f}{verdict(ratio, 2.0)}")
    RESULTS.append(
        {
            "figure": "read_csv peak memory / pyarrow.csv.read_csv peak memory",
            "new_mb": peaks["package"],
            "baseline_mb": peaks["pyarrow"],
            "ratio": ratio,
            "bound": None if QUICK else 2.0,
        }
    )


def memory(num_examples, num_features, chunk_sizes, methods=("numpy-closed-form", "LinearRegression", "lstsq")):
    print(f"\npeak memory beyond X and y ({num_examples:,} x {num_features} float64, each in a fresh process):")
    size_mb = num_examples * (num_features + 1) * 8 / 2**20
    for method in methods:
        extra = _probe(method, num_examples, num_features)["extra_mb"]
        print(f"  {method:<20} {extra:8.1f} MB  ({extra / size_mb:.2f} x the data's {size_mb:.0f} MB)")
    print("  fit_blocks on a stream of 16384-row blocks, 20 features, noise 0.1 (memory stays flat as n grows):")
    for n in chunk_sizes:
        probe = _probe("blocks", n, 20)
        print(f"    n = {n:>11,}: {probe['extra_mb']:6.1f} MB beyond the start, {probe['seconds']:.2f} s")
    probe = _probe("exact-blocks", chunk_sizes[0], 20)
    print(
        f"    an exact fit (no noise: the double-double factor), n = {chunk_sizes[0]:,}: "
        f"{probe['extra_mb']:.1f} MB beyond the start, {probe['seconds']:.2f} s"
    )


def _probe(method, num_examples, num_features):
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "memory_probe.py"), method, str(num_examples), str(num_features)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def sklearn_wrapper(repeats, sizes, settle=0.05, rounds=6):
    from sklearn.linear_model import SGDRegressor

    from impls import SklearnSGDRegressor, synthetic_data

    print(
        "\nscikit-learn SGD, the wrapper (loss curve included) against a bare SGDRegressor with the same settings\n"
        "  (6x the repeats: a fit is ~12 ms and the spread between runs is as large as the bound's margin):"
    )
    for num_examples, num_features, bound in sizes:
        X, y = synthetic_data(np.linspace(-2, 2, num_features), 4.2, num_examples, dtype=np.float64)
        bare = SGDRegressor(penalty=None, learning_rate="constant", eta0=0.006, max_iter=3, tol=None, random_state=0)
        report(
            f"sklearn-sgd / bare SGDRegressor.fit at {num_examples:,} x {num_features}",
            *alternate(
                lambda: SklearnSGDRegressor().fit(X, y), lambda: bare.fit(X, y), repeats=rounds * repeats, settle=settle
            ),
            bound=bound,
        )
        if num_features == 10:  # the floor of recording a curve: one partial_fit per epoch, no wrapper at all

            def three_partial_fits():
                per_epoch = SGDRegressor(**(bare.get_params() | {"random_state": np.random.RandomState(0)}))
                for _ in range(3):
                    per_epoch.partial_fit(X, y)

            report(
                "  reference: 3 bare partial_fit / bare fit(max_iter=3)",
                *alternate(three_partial_fits, lambda: bare.fit(X, y), repeats=rounds * repeats, settle=settle),
            )


def processes(repeats, probe_torch=True):
    print("\nwhole fresh processes (imports included), " + ("alternated:" if repeats else "once each:"))
    notebook = [sys.executable, os.path.join(HERE, "notebook.py")]
    compare_all = [sys.executable, os.path.join(ROOT, "compare.py")]
    compare_numpy = compare_all + ["--impl", "numpy-closed-form"]
    # What no runner of these implementations can go below: the notebook script with scikit-learn's SGDRegressor
    # imported first, and the import of scikit-learn's BaseEstimator, on which every estimator here is built.
    import_first = "import sys, runpy, sklearn.linear_model; runpy.run_path(sys.argv[1])"
    notebook_and_sklearn = [sys.executable, "-c", import_first, notebook[1]]
    sklearn_base = [sys.executable, "-c", "import sklearn.base"]
    commands = (compare_all, notebook, compare_numpy, notebook_and_sklearn, sklearn_base)

    def runner(command):
        return lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    if repeats:
        compare_s, notebook_s, numpy_s, floor_all_s, floor_numpy_s = alternate(
            *(runner(command) for command in commands), repeats=repeats
        )
    else:  # a smoke run: each once, no warm-up, no floors
        compare_s, notebook_s, numpy_s = (once(runner(command)) for command in commands[:3])
    report("python compare.py (4 implementations) / notebook script", compare_s, notebook_s, bound=1.2)
    if repeats:
        report("  floor: notebook script importing scikit-learn's SGD first", floor_all_s, notebook_s)
    report("python compare.py --impl numpy-closed-form / notebook script", numpy_s, notebook_s, bound=0.3)
    if repeats:
        report("  floor: python -c 'import sklearn.base' / notebook script", floor_numpy_s, notebook_s)
    if not probe_torch:
        return
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, compare; compare.main(['--impl', 'numpy-closed-form', '--repeats', '1']);"
            "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"  with --impl numpy-closed-form, {probe.stderr.strip()}")


def once(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def scaling(sizes, dims, names=("torch-concise", "torch-scratch", "numpy-closed-form", "sklearn-sgd")):
    print(
        "\nscaling: seconds per epoch (iterative, batch 10) or per fit (closed form), and peak memory beyond the data"
    )
    print("  (each implementation and d in a fresh process; n grows by 10x, so linear cost grows by 10x)")
    print(f"  {'implementation':<18} {'d':>4} " + " ".join(f"{'n=' + format(n, ','):>22}" for n in sizes))
    for name in names:
        for d in dims:
            done = subprocess.run(
                [sys.executable, os.path.join(HERE, "memory_probe.py"), "scaling", name, str(d), *map(str, sizes)],
                capture_output=True,
                text=True,
                check=True,
            )
            cells = [f"{row['seconds']:9.4f} s {row['extra_mb']:7.1f} MB" for row in json.loads(done.stdout)]
            print(f"  {name:<18} {d:>4} " + " ".join(f"{cell:>22}" for cell in cells))


def run_section(name, quick, repeats):
    """Time one section in this process, adding its figures to RESULTS. A smoke run (``quick``) makes every size small
    and the pauses short, and applies no bound."""
    global QUICK
    QUICK = quick
    n = 20_000 if quick else 1_000_000
    settle = 0.02 if quick else 0.3
    small = [(100, 2), (1000, 2), (10_000, 10)] if quick else SMALL_SIZES
    sections = {
        "sklearn": lambda: (
            sklearn_wrapper(repeats, [(10_000, 10, 1.1), (1000, 2, 1.5)], settle=0.005, rounds=1)
            if quick
            else sklearn_wrapper(repeats, SGD_SIZES)
        ),
        "torch": lambda: torch_loops(repeats),
        "closed-form": lambda: closed_form(n, 50, repeats, settle),
        "small": lambda: small_problems(small, repeats, settle=0.02, numbers=200_000 if quick else 2_000_000),
        "runner": lambda: runner_phases(n, 50),
        "csv": lambda: csv_reading(n, 10, max(3, repeats // 3)),
        "memory": lambda: (
            memory(n, 50, [10**4], methods=["numpy-closed-form"]) if quick else memory(n, 50, [10**5, 10**6, 10**7])
        ),
        "processes": lambda: processes(0, probe_torch=False) if quick else processes(5),
        "scaling": lambda: (
            scaling([10**3], [2], names=["torch-scratch", "numpy-closed-form"])
            if quick
            else scaling([10**3, 10**4, 10**5, 10**6], [2, 10, 100])
        ),
    }
    sections[name]()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: small sizes, few repeats, no bounds applied; under a minute"
    )
    parser.add_argument("--busy", action="store_true", help="with one other process spinning on one core throughout")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs of each side (default 15; 3 with --quick)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the ratios to this JSON file")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    parser.add_argument("--in-this-process", action="store_true", help=argparse.SUPPRESS)  # one section's child
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 15)
    if args.in_this_process:
        for name in args.only:
            run_section(name, args.quick, repeats)
        with open(args.json, "w") as file:
            json.dump(RESULTS, file)
        return 0

    # Each section runs in a fresh process of its own. In one process, what a section leaves behind slows
    # the next: after the torch section, the closed-form fit took 136 ms instead of 87 (torch's thread
    # pool; torch.set_num_threads(1) gave the 87 ms back), and the ~12 ms sklearn figure swung from 0.90
    # to 1.30 between runs when timed after the torch and closed-form sections.
    busy = start_spinner() if args.busy else None
    try:
        environment(busy, args.quick)
        run_sections(args, repeats)
    finally:
        if busy is not None:
            busy[0].kill()
            busy[0].wait()
    if args.json:
        with open(args.json, "w") as file:
            json.dump(RESULTS, file, indent=2)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if args.quick:
        print(f"\nsmoke run: {len(RESULTS)} figures printed; the bounds apply to the full sizes only")
        print(f"(peak RSS of the largest section's process: {peak:.0f} MB)")
        return 0
    short = [r["figure"] for r in RESULTS if r["bound"] is not None and r["ratio"] > r["bound"]]
    bounds = sum(r["bound"] is not None for r in RESULTS)
    print(f"\n{bounds - len(short)} of {bounds} bounds hold" + (f"; short: {', '.join(short)}" if short else ""))
    print(f"(peak RSS of the largest section's process: {peak:.0f} MB)")
    return 1 if short else 0


def run_sections(args, repeats):
    """Each section asked for, in a fresh process of its own, its figures collected into RESULTS: one after the
    other, or in a smoke run all at once (their timings are not figures), each one's output printed in order."""
    names = [name for name in SECTIONS if args.only is None or name in args.only]
    with tempfile.TemporaryDirectory() as folder:
        commands = [
            [sys.executable, os.path.abspath(__file__), "--in-this-process", "--only", name]
            + ["--json", os.path.join(folder, f"{name}.json"), "--repeats", str(repeats)]
            + (["--quick"] if args.quick else [])
            for name in names
        ]
        sys.stdout.flush()  # what this process printed so far comes before the sections' output
        if args.quick:
            started = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for command in commands]
            for command, process in zip(commands, started):
                output, _ = process.communicate()
                print(output, end="", flush=True)
                if process.returncode:
                    raise subprocess.CalledProcessError(process.returncode, command)
        else:
            for command in commands:
                subprocess.run(command, check=True)
        for name in names:
            with open(os.path.join(folder, f"{name}.json")) as file:
                RESULTS.extend(json.load(file))


if __name__ == "__main__":
    sys.exit(main())
