"""Fit the four implementations on the same data and compare what they estimate, the loss they reach and their cost.

    python compare.py                      # the seed's setting, all four, a table
    python compare.py --format json        # the same for programs
    python compare.py equivalences         # the seed's exercise, proved step by step (impls/study.py)
    python compare.py sweep lr-batch       # the book's other exercises (sweep data-size, sweep init)

    from compare import compare
    result = compare()                     # or compare(X=..., y=...) on your own arrays
    print(result.to_table())

Every loss, error and time is computed here, by the same code for every implementation.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

import impls
from impls import DivergenceWarning, synthetic_data

SEED_W, SEED_B = (2.0, -3.4), 4.2
NUM_TEST = 10_000  # held-out examples drawn from the same generator, independently of the training sample
TORCH_NAMES = ("torch-concise", "torch-scratch")


class UsageError(ValueError):
    """Bad input to the runner: the command line reports it in one line and exits with status 2."""


# ----------------------------------------------------------------------------------------------------------
# Reading a user's CSV


def read_csv(path: str, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a CSV with a header row; ``target`` names the column to predict, the other columns are features.

    Every problem raises UsageError naming the file, and for a bad cell its row (as a line number of
    the file, the header being line 1) and column.
    """
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise UsageError(f"cannot read --data {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--data {path} is not UTF-8 text (byte {exc.start}); give a CSV file") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise UsageError(f"--data {path} is not a readable CSV ({exc})") from None
    if not rows:
        raise UsageError(f"--data {path} is empty; it needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    if target not in header:
        raise UsageError(
            f"--target {target!r} is not a column of {path}; its columns are {', '.join(map(repr, header))}"
        )
    if len(header) < 2:
        raise UsageError(f"--data {path} has only the target column; it needs at least one feature column")
    if len(rows) < 2:
        raise UsageError(f"--data {path} has a header but no data rows")
    values = np.empty((len(rows) - 1, len(header)))
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != len(header):
            raise UsageError(f"--data {path} row {line} has {len(row)} fields; the header has {len(header)}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                what = "is empty" if not cell.strip() else f"is {cell.strip()[:20]!r}, not a number"
                raise UsageError(f"--data {path} row {line}, column {header[j]!r} {what}") from None
            if not math.isfinite(values[i, j]):
                raise UsageError(
                    f"--data {path} row {line}, column {header[j]!r} is {cell.strip()}, not a finite number"
                )
    column = header.index(target)
    features = [name for name in header if name != target]
    return np.delete(values, column, axis=1), values[:, column], features


# ----------------------------------------------------------------------------------------------------------
# The comparison


@dataclass
class Comparison:
    """What ``compare`` returns: the settings, the machine, the least-squares reference and one row per implementation.

    ``str(result)`` is the table; ``result.render(fmt)`` gives ``table``, ``markdown``, ``json`` or ``csv``.
    """

    config: dict
    environment: dict
    reference: dict
    results: list[dict]
    curves: dict = field(default_factory=dict, repr=False)  # for plots: loss curves and parameter paths
    data: tuple = field(default=None, repr=False)  # the training (X, y), for plots

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "environment": self.environment,
            "reference": self.reference,
            "results": self.results,
        }

    def to_json(self) -> str:
        return json.dumps(_finite_or_null(self.to_dict()), indent=2, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.results[0]), lineterminator="\n")
        writer.writeheader()
        for row in _finite_or_null(self.results):
            writer.writerow(
                {key: json.dumps(value) if isinstance(value, list) else value for key, value in row.items()}
            )
        return out.getvalue()

    def to_markdown(self) -> str:
        return markdown_table(*self._cells(), self._notes())

    def to_table(self) -> str:
        return text_table(*self._cells(), self._notes())

    def render(self, fmt: str = "table") -> str:
        return {"table": self.to_table, "markdown": self.to_markdown, "json": self.to_json, "csv": self.to_csv}[fmt]()

    def __str__(self) -> str:
        return self.to_table()

    def _repr_markdown_(self) -> str:  # shown by Jupyter
        return self.to_markdown()

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        known_truth = self.config["true_w"] is not None
        header = ["impl", "w", "b"]
        header += ["w error", "b error"] if known_truth else []
        header += [
            "to lstsq",
            "train MSE",
            "excess",
            "test MSE",
            "epochs",
            "fit ms (median [q1, q3])",
            "cold ms",
            "status",
        ]
        rows = []
        for r in self.results:
            cells = [r["impl"], _numbers(r["coef"], "{:.4f}"), _number(r["intercept"], "{:.4f}")]
            if known_truth:
                cells += [_number(r["coef_error"], "{:.1e}"), _number(r["intercept_error"], "{:.1e}")]
            cells += [
                _number(r["param_distance_to_lstsq"], "{:.1e}"),
                _number(r["train_mse"], "{:.3e}"),
                _number(r["excess_train_mse"], "{:+.1e}"),
                _number(r["test_mse"], "{:.3e}"),
                _number(r["epochs"], "{}"),
                f"{_number(_ms(r['fit_seconds']), '{:.2f}')} [{_number(_ms(r['fit_seconds_q1']), '{:.2f}')}, "
                f"{_number(_ms(r['fit_seconds_q3']), '{:.2f}')}]",
                _number(_ms(r["cold_fit_seconds"]), "{:.1f}"),
                r["status"],
            ]
            rows.append(cells)
        return header, rows

    def _notes(self) -> list[str]:
        c, ref, env = self.config, self.reference, self.environment
        notes = [
            f"data: {c['data']}, {c['num_examples']} examples x {c['num_features']} features, {c['data_dtype']} "
            f"(torch arithmetic in {c['dtype']}); "
            f"batch {c['batch_size']}, lr {c['lr']}, {c['num_epochs']} epochs, seed {c['seed']}",
            f"least squares on this sample (numpy.linalg.lstsq): train MSE {ref['train_mse']:.3e}, "
            f"w {_numbers(ref['coef'], '{:.4f}')}, b {ref['intercept']:.4f}",
        ]
        if c["noise"] is not None:
            notes.append(
                f"noise floor sigma^2 = {ref['noise_floor_mse']:.3e}; expected |θ_ls - θ| of least squares "
                f"≈ sigma*sqrt((d+1)/n) = {ref['expected_lstsq_param_error']:.1e}"
            )
        notes.append(
            f"timing: median of {c['repeats']} fits after one untimed warm-up (cold ms: that first fit); "
            f"{env['device']}, {env['threads']} threads; Python {env['python']}, numpy {env['numpy']}, "
            f"torch {env['torch']}, scikit-learn {env['scikit-learn']}"
        )
        return notes


def compare(
    impl: list[str] | tuple[str, ...] | None = None,
    *,
    X=None,
    y=None,
    true_w=None,
    true_b: float | None = None,
    num_examples: int = 1000,
    noise: float = 0.01,
    batch_size: int = 10,
    lr: float = 0.03,
    num_epochs: int = 3,
    seed: int = 0,
    repeats: int = 5,
    device: str = "cpu",
    dtype: str = "float32",
    record_paths: bool = False,
    progress: bool = False,
    data_name: str | None = None,
) -> Comparison:
    """Fit each implementation in ``impl`` (default: all four) on the same data and score them alike.

    Without ``X`` and ``y`` the data come from ``impls.synthetic_data(true_w, true_b, num_examples,
    noise=noise, random_state=seed)`` (the seed's w = [2, -3.4] and b = 4.2 unless given), and a held-out
    sample of NUM_TEST from the same law, drawn with the independent stream ``random_state=[seed, 1]``.
    With ``X`` and ``y``, there is no held-out sample, and no true parameters unless ``true_w`` and
    ``true_b`` are given.
    ``record_paths`` refits each iterative implementation once more, untimed, to record its parameters
    after every step (for plots). Bad settings raise UsageError (a ValueError) before anything runs.
    """
    names = list(impls.NAMES if impl is None else impl)
    _check_config(names, num_examples, noise, batch_size, lr, num_epochs, seed, repeats, device, dtype)
    np_dtype = np.dtype(dtype)
    if X is None:
        if y is not None:
            raise UsageError("y was given without X; give both, or neither to draw synthetic data")
        true_w = SEED_W if true_w is None else true_w
        true_b = SEED_B if true_b is None else true_b
        if len(true_w) == 0:
            raise UsageError("--true-w needs at least one number")
        X, y = synthetic_data(true_w, true_b, num_examples, noise=noise, random_state=seed, dtype=np_dtype)
        X_test, y_test = synthetic_data(true_w, true_b, NUM_TEST, noise=noise, random_state=[seed, 1], dtype=np_dtype)
        data_name = data_name or "synthetic"
    else:
        X, y = _check_arrays(X, y)  # kept in float64: --dtype sets only the torch implementations' arithmetic
        X_test = y_test = None
        noise = None
        data_name = data_name or "user arrays"
        if true_w is not None and len(true_w) != X.shape[1]:
            raise UsageError(f"--true-w has {len(true_w)} numbers but the data have {X.shape[1]} features")
        if (true_w is None) != (true_b is None):
            raise UsageError("give both --true-w and --true-b for data of your own, or neither")
    config = {
        "impls": names,
        "data": data_name,
        "num_examples": int(X.shape[0]),
        "num_features": int(X.shape[1]),
        "true_w": None if true_w is None else [float(v) for v in true_w],
        "true_b": None if true_b is None else float(true_b),
        "noise": noise,
        "batch_size": batch_size,
        "lr": lr,
        "num_epochs": num_epochs,
        "seed": seed,
        "repeats": repeats,
        "device": device,
        "dtype": dtype,
        "data_dtype": str(X.dtype),
        "num_test": None if X_test is None else NUM_TEST,
    }
    reference = _least_squares_reference(X, y, noise)
    fits = [(name, _build(name, batch_size, lr, num_epochs, seed, device, dtype)) for name in names]
    rows, curves = [], {}
    bar = _progress(len(fits) * (repeats + 1 + record_paths), enabled=progress)
    for name, estimator in fits:
        row, curve = _run_one(name, estimator, X, y, X_test, y_test, config, reference, record_paths, bar)
        rows.append(row)
        curves[name] = curve
    if bar is not None:
        bar.close()
    return Comparison(config, _environment(names, device), reference, rows, curves, (X, y))


def _check_config(names, num_examples, noise, batch_size, lr, num_epochs, seed, repeats, device, dtype):
    unknown = [name for name in names if name not in impls.NAMES]
    if unknown or not names:
        raise UsageError(f"--impl must be one of {', '.join(impls.NAMES)}; got {', '.join(unknown) or 'none'}")
    checks = [
        ("--num-examples", num_examples, _is_int(num_examples) and num_examples >= 1, "an integer >= 1"),
        ("--noise", noise, _is_real(noise) and 0 <= noise < math.inf, "a finite number >= 0"),
        ("--batch-size", batch_size, _is_int(batch_size) and batch_size >= 1, "an integer >= 1"),
        ("--lr", lr, _is_real(lr) and 0 < lr < math.inf, "a finite number > 0"),
        ("--num-epochs", num_epochs, _is_int(num_epochs) and num_epochs >= 0, "an integer >= 0"),
        ("--seed", seed, _is_int(seed) and 0 <= seed < 2**32, "an integer in [0, 2**32)"),
        ("--repeats", repeats, _is_int(repeats) and repeats >= 1, "an integer >= 1"),
        ("--dtype", dtype, dtype in ("float32", "float64"), "float32 or float64"),
    ]
    for flag, value, ok, rule in checks:
        if not ok:
            raise UsageError(f"{flag} must be {rule}; got {value!r}")
    if any(name in TORCH_NAMES for name in names):
        from impls._base import check_device

        try:
            check_device(impls.implementation("torch-concise")(), device)
        except ValueError:
            raise UsageError(
                f"--device {device!r} is not available here; use cpu (or cuda on a machine with a GPU)"
            ) from None


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_arrays(X, y):
    from sklearn.utils.validation import check_X_y

    try:
        return check_X_y(X, y, dtype=np.float64, y_numeric=True)
    except ValueError as exc:
        raise UsageError(f"X and y: {str(exc).splitlines()[0]}") from None


def _build(name, batch_size, lr, num_epochs, seed, device, dtype):
    cls = impls.implementation(name)
    settings = {"batch_size": batch_size, "lr": lr, "num_epochs": num_epochs, "random_state": seed}
    if name in TORCH_NAMES:
        settings |= {"device": device, "dtype": dtype}
    return cls(**settings) if name != "numpy-closed-form" else cls()


def _least_squares_reference(X, y, noise) -> dict:
    design = np.column_stack([X.astype(np.float64), np.ones(len(X))])
    solution = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
    num_examples, num_features = X.shape
    return {
        "coef": solution[:-1].tolist(),
        "intercept": float(solution[-1]),
        "train_mse": _mse(X, y, solution[:-1], solution[-1]),
        "noise_floor_mse": None if noise is None else noise**2,
        "expected_lstsq_param_error": None if noise is None else noise * math.sqrt((num_features + 1) / num_examples),
    }


def _mse(X, y, coef, intercept) -> float:
    with np.errstate(all="ignore"):
        return float(np.mean((X.astype(np.float64) @ np.asarray(coef) + intercept - y.astype(np.float64)) ** 2))


def _run_one(name, estimator, X, y, X_test, y_test, config, reference, record_paths, bar):
    """Time and score one implementation; any error in it becomes its status, not the end of the run."""
    from sklearn.base import clone

    row = {"impl": name}
    curve = {}
    try:
        cold, diverged = _timed_fit(estimator, X, y, config["device"])  # the warm-up, and the cold figure
        times = []
        for _ in range(config["repeats"]):
            bar is not None and bar.update()
            times.append(_timed_fit(estimator, X, y, config["device"])[0])
        bar is not None and bar.update()
        if record_paths and hasattr(estimator, "loss_curve_"):
            traced = clone(estimator).set_params(record_steps=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DivergenceWarning)
                traced.fit(X, y)
            curve = {"coef_path": traced.coef_path_, "intercept_path": traced.intercept_path_}
            bar is not None and bar.update()
    except Exception as exc:  # noqa: BLE001 - one implementation's failure is reported in its row
        message = str(exc).splitlines()[0] if str(exc) else ""
        return row | _empty_row() | {"status": f"error: {type(exc).__name__}: {message}"}, curve

    coef, intercept = np.asarray(estimator.coef_, dtype=np.float64), float(estimator.intercept_)
    lstsq = np.append(reference["coef"], reference["intercept"])
    train_mse = _mse(X, y, coef, intercept)
    row |= {
        "coef": coef.tolist(),
        "intercept": intercept,
        "coef_error": None if config["true_w"] is None else float(np.linalg.norm(coef - config["true_w"])),
        "intercept_error": None if config["true_b"] is None else abs(intercept - config["true_b"]),
        "param_distance_to_lstsq": float(np.linalg.norm(np.append(coef, intercept) - lstsq)),
        "train_mse": train_mse,
        "excess_train_mse": train_mse - reference["train_mse"],
        "test_mse": None if X_test is None else _mse(X_test, y_test, coef, intercept),
        "epochs": int(estimator.n_iter_),
        "loss_curve": [float(v) for v in getattr(estimator, "loss_curve_", [])],
        "fit_seconds": statistics.median(times),
        "fit_seconds_q1": float(np.percentile(times, 25)),
        "fit_seconds_q3": float(np.percentile(times, 75)),
        "fit_seconds_min": min(times),
        "fit_seconds_max": max(times),
        "cold_fit_seconds": cold,
        "status": f"diverged after epoch {estimator.n_iter_}" if diverged else "ok",
    }
    curve |= {"loss_curve": row["loss_curve"]}
    return row, curve


def _empty_row() -> dict:
    keys = ["coef", "intercept", "coef_error", "intercept_error", "param_distance_to_lstsq", "train_mse",
            "excess_train_mse", "test_mse", "epochs", "loss_curve", "fit_seconds", "fit_seconds_q1",
            "fit_seconds_q3", "fit_seconds_min", "fit_seconds_max", "cold_fit_seconds"]  # fmt: skip
    return dict.fromkeys(keys)


def _timed_fit(estimator, X, y, device) -> tuple[float, bool]:
    """Seconds taken by ``fit`` alone, and whether it reported divergence."""
    synchronize = _cuda_synchronize if device.startswith("cuda") else (lambda: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        synchronize()
        start = time.perf_counter()
        estimator.fit(X, y)
        synchronize()
        seconds = time.perf_counter() - start
    return seconds, any(issubclass(w.category, DivergenceWarning) for w in caught)


def _cuda_synchronize():
    import torch

    torch.cuda.synchronize()


def _environment(names, device) -> dict:
    import sklearn
    import threadpoolctl

    blas_threads = max((pool["num_threads"] for pool in threadpoolctl.threadpool_info()), default=1)
    torch_module = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_module.__version__ if torch_module else "not imported",
        "scikit-learn": sklearn.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch_module.get_num_threads() if torch_module else blas_threads,
        "blas_threads": blas_threads,
        "device": device if any(name in TORCH_NAMES for name in names) else "cpu",
    }


def _progress(total: int, enabled: bool):
    """A progress bar on standard error when it is a terminal and the run lasts over a second; else None."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=sys.stderr, delay=1.0, unit="fit", leave=False)


# ----------------------------------------------------------------------------------------------------------
# Formatting and writing


def text_table(header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    """Columns padded to their widest cell, a rule under the header, then the notes."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines + [""] + notes) + "\n"


def markdown_table(header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    escaped = [[cell.replace("|", "\\|") for cell in row] for row in [header, *rows]]
    lines = ["| " + " | ".join(row) + " |" for row in escaped]
    lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
    return "\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n"


def _finite_or_null(value):
    """Non-finite floats become None (null in JSON, an empty cell in CSV), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


def _number(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return fmt.format(value)


def _numbers(values, fmt: str) -> str:
    if values is None:
        return "-"
    return "[" + ", ".join(_number(v, fmt) for v in values) + "]"


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def write_atomically(path: str, write) -> None:
    """Call ``write(temporary_path)``, then rename the result onto ``path``: a failure leaves the old file."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_text(path: str | None, text: str) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        return

    def write(temporary):
        with open(temporary, "w", encoding="utf-8", newline="") as file:
            file.write(text)

    write_atomically(path, write)


def plot_comparison(result: Comparison, path: str) -> None:
    """Training MSE at every step (log scale, noise floor drawn) and the paths of (w1, w2) over the loss contours."""
    from impls.study import path_mse, pyplot

    plt = pyplot()
    fig, (loss_axis, path_axis) = plt.subplots(1, 2, figsize=(12, 5))
    X, y = result.data
    keep = slice(None, None, max(1, len(X) // 5000))  # losses for the picture need only a sample of the rows
    X, y = X[keep].astype(np.float64), y[keep].astype(np.float64)
    paths = {
        name: np.column_stack([c["coef_path"], c["intercept_path"]])
        for name, c in result.curves.items()
        if "coef_path" in c
    }
    for name, trail in paths.items():
        epochs = np.linspace(0, len(result.curves[name]["loss_curve"]), len(trail))
        stride = max(1, len(trail) // 2000)
        per_step = len(trail) > len(result.curves[name]["loss_curve"]) + 1
        loss_axis.plot(epochs[::stride], path_mse(X, y, trail[::stride]), marker=None if per_step else "o",
                       label=name + (" (every step)" if per_step else " (every epoch)"))  # fmt: skip
    if result.reference["noise_floor_mse"] is not None:
        loss_axis.axhline(result.reference["noise_floor_mse"], color="grey", linestyle="--", label="noise floor σ²")
    loss_axis.axhline(result.reference["train_mse"], color="black", linestyle=":", label="least squares")
    loss_axis.set(yscale="log", xlabel="epoch", ylabel="training MSE", title="Training loss along the way")
    loss_axis.legend()

    coef = np.array(result.reference["coef"])
    # Axes: (w1, w2) with the other parameters at the optimum, or (w1, b) when there is a single feature.
    axes = (0, 1)
    optimum = np.append(coef, result.reference["intercept"])
    points = np.vstack([optimum] + [p for p in paths.values()])
    low, high = points[:, axes].min(axis=0), points[:, axes].max(axis=0)
    pad = 0.1 * (high - low) + 1e-3
    grid_a, grid_b = np.meshgrid(
        np.linspace(low[0] - pad[0], high[0] + pad[0], 120), np.linspace(low[1] - pad[1], high[1] + pad[1], 120)
    )
    theta = np.tile(optimum, (grid_a.size, 1))
    theta[:, axes[0]], theta[:, axes[1]] = grid_a.ravel(), grid_b.ravel()
    losses = path_mse(X, y, theta).reshape(grid_a.shape)
    path_axis.contour(grid_a, grid_b, np.log10(losses), levels=20, cmap="viridis", linewidths=0.7)
    for name, trail in paths.items():
        path_axis.plot(
            trail[:, axes[0]], trail[:, axes[1]], marker="." if len(trail) < 50 else None, linewidth=1, label=name
        )
    path_axis.plot(
        *optimum[list(axes)], marker="*", markersize=14, color="red", linestyle="none", label="least squares"
    )
    labels = ("w1", "w2") if len(coef) >= 2 else ("w1", "b")
    path_axis.set(xlabel=labels[0], ylabel=labels[1], title="Parameter paths over log10 training-loss contours")
    path_axis.legend()
    fig.tight_layout()
    save_figure(fig, path)


# ----------------------------------------------------------------------------------------------------------
# The command line


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show (the help says what happens then)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on standard error and exit status 2."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="compare.py",
        description="Fit linear regression four ways on the same data and compare estimates, losses and times. "
        "Defaults reproduce the seed notebook: y = Xw + b + noise, w = [2, -3.4], b = 4.2, 1000 examples, "
        "noise 0.01, minibatches of 10, lr 0.03, 3 epochs.",
        formatter_class=_HelpFormatter,
    )
    add = parser.add_argument
    add(
        "--impl",
        action="append",
        metavar="NAME",
        help=f"implementation to run, repeatable: {', '.join(impls.NAMES)} (default: all)",
    )
    add("--num-examples", type=int, default=1000, help="training examples drawn from the generator")
    add(
        "--true-w",
        type=float,
        nargs="+",
        metavar="W",
        help="true weights, one per feature (default: 2 -3.4; none for --data)",
    )
    add("--true-b", type=float, help="true bias (default: 4.2; none for --data)")
    add("--noise", type=float, default=0.01, help="standard deviation of the Gaussian noise added to y")
    add("--batch-size", type=int, default=10, help="minibatch size of the iterative implementations")
    add("--lr", type=float, default=0.03, help="learning rate (the seed's convention: MSE averaged over the batch)")
    add("--num-epochs", type=int, default=3, help="passes over the data of the iterative implementations")
    add("--seed", type=int, default=0, help="seeds the data, the initial weights and the minibatch order")
    add("--repeats", type=int, default=5, help="timed fits per implementation, after one untimed warm-up")
    add("--device", default="cpu", help="torch device of the torch implementations (cpu, cuda)")
    add(
        "--dtype",
        default="float32",
        choices=["float32", "float64"],
        help="dtype of the synthetic data and of torch's arithmetic",
    )
    add("--data", metavar="FILE.csv", help="fit your own CSV (header row) instead of synthetic data; needs --target")
    add("--target", metavar="COLUMN", help="the CSV column to predict; the other columns are features")
    add("--format", default="table", choices=["table", "markdown", "json", "csv"], help="output format")
    add("--output", metavar="PATH", help="write the report to PATH (whole or not at all) instead of standard output")
    add(
        "--plot",
        metavar="PATH.png",
        help="also draw the loss curves and parameter paths to this PNG (needs matplotlib)",
    )
    add("--debug", action="store_true", help="show the traceback of an error instead of one line")
    return parser


def run_report(argv) -> int:
    args = _parser().parse_args(argv)
    if (args.data is None) != (args.target is None):
        raise UsageError("--data and --target go together: give the CSV file and the column to predict")
    if args.plot:
        _check_can_plot(args.plot)
    settings = dict(
        num_examples=args.num_examples, noise=args.noise, batch_size=args.batch_size, lr=args.lr,
        num_epochs=args.num_epochs, seed=args.seed, repeats=args.repeats, device=args.device, dtype=args.dtype,
        record_paths=bool(args.plot), progress=True,
    )  # fmt: skip
    if args.data is not None:
        X, y, _ = read_csv(args.data, args.target)
        result = compare(args.impl, X=X, y=y, true_w=args.true_w, true_b=args.true_b, data_name=args.data, **settings)
    else:
        result = compare(args.impl, true_w=args.true_w, true_b=args.true_b, **settings)
    write_text(args.output, result.render(args.format))
    if args.plot:
        plot_comparison(result, args.plot)
    return 0


def render_study(study: dict, fmt: str) -> str:
    """A study from impls.study as a table, markdown, JSON or CSV; keys starting with '_' hold plot data only."""
    public = {key: value for key, value in study.items() if not key.startswith("_")}
    records = [
        {key: value for key, value in row.items() if not key.startswith("_")}
        for row in study.get("pairs", study.get("rows"))
    ]
    if fmt == "json":
        payload = public | {"pairs" if "pairs" in study else "rows": records}
        return json.dumps(_finite_or_null(payload), indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(_finite_or_null(records))
        return out.getvalue()
    explained = "why" in records[0]
    header = [key for key in records[0] if key != "why"]
    if explained:
        header = ["#"] + header
    rows = [
        ([str(i)] if explained else []) + [_cell(record[key]) for key in header if key != "#"]
        for i, record in enumerate(records, 1)
    ]
    config = ", ".join(f"{key} {value}" for key, value in study["config"].items())
    notes = [f"{study['study']}: {config}"]
    notes += [f"#{i} {record['why']}" for i, record in enumerate(records, 1)] if explained else []
    return (markdown_table if fmt == "markdown" else text_table)(header, rows, notes)


def _cell(value) -> str:
    if isinstance(value, float):
        return "0" if value == 0 else (f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 else f"{value:.2e}")
    return "-" if value is None else str(value)


def run_study(argv) -> int:
    from impls import study

    parser = _Parser(prog=f"compare.py {argv[0]}", formatter_class=_HelpFormatter,
                     description="The seed's exercise (equivalences) and the book's other exercises (sweep KIND).")  # fmt: skip
    add = parser.add_argument
    if argv[0] == "equivalences":
        add("--num-examples", type=int, default=1000, help="examples; the uneven pairs use this plus half a batch")
        add("--batch-size", type=int, default=10, help="minibatch size B")
        add("--lr", type=float, default=0.03, help="the seed's learning rate a (MSE averaged over the batch)")
        add("--num-epochs", type=int, default=3, help="passes over the data")
    else:
        add("kind", choices=["lr-batch", "data-size", "init"], help="which sweep")
        add("--impl", default="torch-concise", choices=["torch-concise", "torch-scratch", "sklearn-sgd"],
            help="implementation of the lr-batch sweep")  # fmt: skip
    add("--seed", type=int, default=0, help="seeds the data, the initial weights and the minibatch order")
    add("--format", default="table", choices=["table", "markdown", "json", "csv"], help="output format")
    add("--output", metavar="PATH", help="write the report to PATH (whole or not at all) instead of standard output")
    add("--plot", metavar="PATH.png", help="also draw the study's picture to this PNG (needs matplotlib)")
    add("--debug", action="store_true", help="show the traceback of an error instead of one line")
    args = parser.parse_args(argv[1:])
    if args.plot:
        _check_can_plot(args.plot)
    if not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed must be an integer in [0, 2**32); got {args.seed}")
    if argv[0] == "equivalences":
        _check_config(
            ["numpy-closed-form"],
            args.num_examples,
            0.01,
            args.batch_size,
            args.lr,
            args.num_epochs,
            args.seed,
            1,
            "cpu",
            "float32",
        )
        result = study.equivalences(num_examples=args.num_examples, batch_size=args.batch_size, lr=args.lr,
                                    num_epochs=args.num_epochs, seed=args.seed)  # fmt: skip
        draw = study.plot_equivalences
    elif args.kind == "lr-batch":
        result, draw = study.sweep_lr_batch(impl=args.impl, seed=args.seed), study.plot_lr_batch
    elif args.kind == "data-size":
        result, draw = study.sweep_data_size(seeds=tuple(range(args.seed, args.seed + 5))), study.plot_data_size
    else:
        result, draw = study.sweep_init(seed=args.seed), study.plot_init
    write_text(args.output, render_study(result, args.format))
    if args.plot:
        save_figure(draw(result), args.plot)
    return 0


def save_figure(fig, path: str) -> None:
    write_atomically(path, lambda temporary: fig.savefig(temporary, format="png", dpi=110))
    from impls.study import pyplot

    pyplot().close(fig)


def _check_can_plot(path: str) -> None:
    if not path.lower().endswith(".png"):
        raise UsageError(f"--plot must name a .png file; got {path!r}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install matplotlib (or the package's [plot] extra)") from None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        if argv[:1] in (["equivalences"], ["sweep"]):
            return run_study(argv)
        return run_report(argv)
    except UsageError as exc:
        if debug:
            raise
        print(f"compare.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("compare.py: interrupted; no output file was left half-written", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command line promises one line, not a traceback
        if debug:
            raise
        print(f"compare.py: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
