"""Checks of the runner's settings and arrays, made before any work, each failure naming what was given.

Flags are named as on the command line (``--lr``); the library's ``compare()`` takes the same names
with underscores. numpy integer and float scalars are accepted wherever Python ones are.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

import impls


class UsageError(ValueError):
    """Bad input to the runner: the command line reports it in one line and exits with status 2."""


class DataError(UsageError):
    """Bad values in the data (a NaN, an infinity, a number too large), found while computing on them."""


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def uses_torch(names) -> bool:
    """Whether any of these implementations trains on a torch device (it has a ``device`` parameter)."""
    return any("device" in impls.implementation(name)().get_params() for name in names)


def check_settings(
    names, num_examples, noise, batch_size, lr, num_epochs, seed, repeats, device, dtype, *, seeds_used=1,
    max_seconds=math.inf, sample=None,
) -> dict:  # fmt: skip
    """The settings as plain Python numbers (−0 noise as 0), or UsageError for the first bad one.

    ``seeds_used``: a command that draws with ``seed`` to ``seed + seeds_used − 1`` needs them all in range.
    """
    unknown = [name for name in names if name not in impls.NAMES]
    if unknown or not names:
        raise UsageError(
            f"--impl must be one of {', '.join(impls.NAMES)}; got {', '.join(map(str, unknown)) or 'none'}"
        )
    top_seed = 2**32 - seeds_used + 1
    seed_rule = (
        "an integer in [0, 2**32)"
        if seeds_used == 1
        else f"an integer in [0, 2**32 - {seeds_used - 1}), as seeds seed to seed + {seeds_used - 1} are used"
    )
    checks = [
        ("--num-examples", num_examples, is_int(num_examples) and num_examples >= 1, "an integer >= 1"),
        ("--noise", noise, is_real(noise) and 0 <= noise < math.inf, "a finite number >= 0"),
        ("--batch-size", batch_size, is_int(batch_size) and batch_size >= 1, "an integer >= 1"),
        ("--lr", lr, is_real(lr) and 0 < lr < math.inf, "a finite number > 0"),
        ("--num-epochs", num_epochs, is_int(num_epochs) and num_epochs >= 0, "an integer >= 0"),
        ("--seed", seed, is_int(seed) and 0 <= seed < top_seed, seed_rule),
        ("--repeats", repeats, is_int(repeats) and repeats >= 1, "an integer >= 1"),
        ("--dtype", dtype, dtype in ("float32", "float64"), "float32 or float64"),
        ("--max-seconds", max_seconds, is_real(max_seconds) and max_seconds > 0, "a number > 0"),
        ("--sample", sample, sample is None or (is_int(sample) and sample >= 1), "an integer >= 1"),
    ]
    for flag, value, ok, rule in checks:
        if not ok:
            raise UsageError(f"{flag} must be {rule}; got {value!r}")
    if uses_torch(names):
        check_device(device)
    return {"num_examples": int(num_examples), "noise": float(noise) + 0.0, "batch_size": int(batch_size),
            "lr": float(lr), "num_epochs": int(num_epochs), "seed": int(seed), "repeats": int(repeats),
            "device": device, "dtype": dtype, "sample": None if sample is None else int(sample)}  # fmt: skip


def check_device(device) -> None:
    """cpu, cuda or cuda:N, and available here; checked only when a torch implementation will use it."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise UsageError(f"--device must be cpu, cuda or cuda:N; got {device!r}")
    from impls._base import check_device as torch_check

    try:
        torch_check(impls.implementation("torch-concise")(), device)
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


def check_arrays(X, y):
    """The user's arrays as float64 (``--dtype`` sets only the torch implementations' arithmetic)."""
    from sklearn.utils.validation import check_X_y

    try:
        return check_X_y(X, y, dtype=np.float64, y_numeric=True)
    except ValueError as exc:
        raise UsageError(f"X and y: {str(exc).splitlines()[0]}") from None
