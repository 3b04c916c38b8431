"""Checks of the runner's settings and arrays, made before any work, each failure naming what was given.

Flags are named as on the command line (``--lr``); the library's ``compare()`` takes the same names
with underscores. numpy integer and float scalars are accepted wherever Python ones are.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields

import numpy as np

import impls
from linreg_compare.capabilities import trains_on_a_torch_device


class UsageError(ValueError):
    """Bad input to the runner: the command line reports it in one line and exits with status 2."""


class DataError(UsageError):
    """Bad values in the data (a NaN, an infinity, a number too large), found while computing on them."""


LR_RULE = "a finite number > 0 or auto"


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def uses_torch(names) -> bool:
    """Whether any of these implementations trains on a torch device (it has a ``device`` parameter)."""
    return any(trains_on_a_torch_device(name) for name in names)


def check_names(names) -> list[str]:
    """The implementations asked for, each one of ``impls.NAMES``."""
    unknown = [name for name in names if name not in impls.NAMES]
    if unknown or not names:
        raise UsageError(
            f"--impl must be one of {', '.join(impls.NAMES)}; got {', '.join(map(str, unknown)) or 'none'}"
        )
    return list(dict.fromkeys(names))  # each once, in the order first named


@dataclass(frozen=True)
class Settings:
    """The run's settings, checked when made (UsageError for the first bad one, named as its flag) and held
    as plain Python numbers (numpy scalars accepted, −0 noise as 0).

    ``seeds_used``: a command that draws with ``seed`` to ``seed + seeds_used − 1`` needs them all in range.
    """

    num_examples: int = 1000
    noise: float = 0.01
    batch_size: int = 10
    lr: float | str = 0.03
    num_epochs: int = 3
    seed: int = 0
    repeats: int = 5
    max_seconds: float = 10.0
    device: str = "cpu"
    dtype: str = "float32"
    sample: int | None = None
    standardize: bool | None = None
    test_fraction: float | None = None
    cv: int | None = None
    until: float | None = None
    average: bool = False
    seeds_used: int = 1

    def __post_init__(self):
        top_seed = 2**32 - self.seeds_used + 1
        seed_rule = "an integer in [0, 2**32)"
        if self.seeds_used > 1:
            last = self.seeds_used - 1
            seed_rule = f"an integer in [0, 2**32 - {last}), as seeds seed to seed + {last} are used"
        checks = [
            (
                "--num-examples",
                self.num_examples,
                is_int(self.num_examples) and self.num_examples >= 1,
                "an integer >= 1",
            ),
            ("--noise", self.noise, is_real(self.noise) and 0 <= self.noise < math.inf, "a finite number >= 0"),
            ("--batch-size", self.batch_size, is_int(self.batch_size) and self.batch_size >= 1, "an integer >= 1"),
            ("--lr", self.lr, self.lr == "auto" or (is_real(self.lr) and 0 < self.lr < math.inf), LR_RULE),
            ("--num-epochs", self.num_epochs, is_int(self.num_epochs) and self.num_epochs >= 0, "an integer >= 0"),
            ("--seed", self.seed, is_int(self.seed) and 0 <= self.seed < top_seed, seed_rule),
            ("--repeats", self.repeats, is_int(self.repeats) and self.repeats >= 1, "an integer >= 1"),
            ("--dtype", self.dtype, self.dtype in ("float32", "float64"), "float32 or float64"),
            ("--max-seconds", self.max_seconds, is_real(self.max_seconds) and self.max_seconds > 0, "a number > 0"),
            (
                "--sample",
                self.sample,
                self.sample is None or (is_int(self.sample) and self.sample >= 1),
                "an integer >= 1",
            ),
            (
                "--test-fraction",
                self.test_fraction,
                self.test_fraction is None or (is_real(self.test_fraction) and 0 <= self.test_fraction < 1),
                "a fraction in [0, 1)",
            ),
            ("--cv", self.cv, self.cv is None or (is_int(self.cv) and self.cv >= 2), "an integer >= 2"),
            (
                "--until",
                self.until,
                self.until is None or (is_real(self.until) and 0 < self.until < math.inf),
                "a finite number of standard errors > 0",
            ),
            (
                "--device",
                self.device,
                isinstance(self.device, str) and re.fullmatch(r"cpu|cuda(:\d+)?", self.device),
                "cpu, cuda or cuda:N",
            ),
        ]
        for flag, value, ok, rule in checks:
            if not ok:
                raise UsageError(f"{flag} must be {rule}; got {value!r}")
        if self.until is not None and self.num_epochs == 0:
            raise UsageError("--until races for at most --num-epochs epochs; give --num-epochs >= 1, not 0")
        if self.cv is not None and self.test_fraction not in (None, 0):
            raise UsageError(f"--cv and --test-fraction {self.test_fraction} both hold rows out; give one of them")
        # Plain Python numbers (+ 0 turns −0.0 into 0.0); None (a setting not given) and lr "auto" stay as they are.
        for name, kind in [
            ("num_examples", int),
            ("noise", float),
            ("batch_size", int),
            ("lr", float),
            ("num_epochs", int),
            ("seed", int),
            ("repeats", int),
            ("max_seconds", float),
            ("sample", int),
            ("test_fraction", float),
            ("cv", int),
            ("until", float),
        ]:
            value = getattr(self, name)
            if value is not None and value != "auto":
                object.__setattr__(self, name, kind(value) + kind(0))

    def estimator_params(self) -> dict:
        """The settings an iterative estimator takes, by their parameter names."""
        return {
            "batch_size": self.batch_size,
            "lr": self.lr,
            "num_epochs": self.num_epochs,
            "random_state": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "average": self.average,
        }


def settings_of(args) -> dict:
    """The fields of ``Settings`` that the parsed flags ``args`` have, by name (the others keep their defaults)."""
    return {field.name: getattr(args, field.name) for field in fields(Settings) if hasattr(args, field.name)}


def check_device_available(device: str, names) -> None:
    """``device`` available here, checked only when one of ``names`` trains on a torch device."""
    torch_names = [name for name in names if trains_on_a_torch_device(name)]
    if not torch_names:
        return
    from impls._base import check_device as torch_check

    try:
        torch_check(impls.implementation(torch_names[0])(), device)
    except ValueError:
        raise UsageError(
            f"--device {device!r} is not available here; use cpu (or cuda on a machine with a GPU)"
        ) from None


def check_truth(true_w, true_b, noise: float, dtype: str) -> tuple[list[float], float]:
    """True parameters that are finite numbers and small enough that y fits ``dtype`` and its squares float64.

    The typical size of y is |b| + 10·(Σ|w| + noise) (ten standard deviations of X and of the noise);
    it must stay below the square root of the dtype's largest number.
    """
    try:
        weights, bias = [float(v) for v in true_w], float(true_b)
    except (TypeError, ValueError):
        raise UsageError(f"--true-w and --true-b must be numbers; got {true_w!r} and {true_b!r}") from None
    if not weights:
        raise UsageError("--true-w needs at least one number")
    if not all(math.isfinite(v) for v in [*weights, bias]):
        raise UsageError(f"--true-w and --true-b must be finite numbers; got {weights} and {bias}")
    limit = math.sqrt(np.finfo(dtype).max)
    size = abs(bias) + 10 * (sum(abs(v) for v in weights) + noise)  # inf, not an error, when it overflows
    if not size < limit:
        raise UsageError(
            f"--true-w, --true-b and --noise make y too large for {dtype}: |b| + 10(Σ|w| + noise) = {size:.3g} "
            f"must be below {limit:.2g}"
        )
    return weights, bias


def memory_needed(num_examples: int, num_features: int, num_test: int, dtype: str, names, torch_dtype=None) -> int:
    """Bytes the runner holds in one process: the arrays in ``dtype`` (training and held-out samples), plus,
    where torch trains, the data as tensors in ``torch_dtype`` (default ``dtype``) and one shuffled copy per epoch."""
    itemsize = np.dtype(dtype).itemsize
    needed = (num_examples + num_test) * (num_features + 1) * itemsize + 8 * num_examples
    if uses_torch(names):
        tensors = 1 if torch_dtype in (None, dtype) else 2  # as_tensor shares the arrays' memory when dtypes agree
        needed += tensors * num_examples * (num_features + 1) * np.dtype(torch_dtype or dtype).itemsize
    return needed


def check_memory(
    num_examples: int, num_features: int, num_test: int, dtype: str, names, ranks: int = 1, rank_memory: int = 0
) -> None:
    """Refuse data that cannot fit: the arrays, plus one shuffled copy per epoch where torch trains; with
    ``ranks`` processes, each holding the data and ``rank_memory`` bytes of its own."""
    needed = ranks * (memory_needed(num_examples, num_features, num_test, dtype, names) + rank_memory)
    what = f" on {ranks} ranks" if ranks > 1 else ""
    available = available_memory()
    if available is not None and needed > available:
        raise UsageError(
            f"--num-examples {num_examples} with {num_features} features{what} needs about "
            f"{needed / 2**30:.1f} GiB of memory; {available / 2**30:.1f} GiB is available here"
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable on Linux), or None where unknown."""
    try:
        with open("/proc/meminfo") as file:
            line = next(line for line in file if line.startswith("MemAvailable:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None


def redundant_columns(X, names: list[str]) -> list[str]:
    """What makes X rank-deficient at a glance: its constant columns and its columns equal to an earlier one
    (in-memory X; a rank below the number of features has other causes too, which the rank itself reports)."""
    found, seen = [], {}
    for j, name in enumerate(names):
        column = np.ascontiguousarray(X[:, j])
        if column.size and np.all(column == column[0]):
            found.append(f"{name!r} is constant")
            continue
        key = column.tobytes()
        if key in seen:
            found.append(f"{name!r} repeats {seen[key]!r}")
        else:
            seen[key] = name
    return found


def check_arrays(X, y):
    """The user's arrays as float64 (``--dtype`` sets only the torch implementations' arithmetic)."""
    import scipy.sparse
    from sklearn.utils.validation import check_X_y

    if scipy.sparse.issparse(X):
        raise UsageError("X is a sparse matrix, which compare() does not take; the estimators in impls do (fit them)")
    try:
        return check_X_y(X, y, dtype=np.float64, y_numeric=True)
    except ValueError as exc:
        raise UsageError(f"X and y: {str(exc).splitlines()[0]}") from None
