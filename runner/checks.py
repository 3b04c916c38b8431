"""Checks of the runner's settings and arrays, made before any work, each failure naming what was given."""

from __future__ import annotations

import math

import numpy as np

import impls


class UsageError(ValueError):
    """Bad input to the runner: the command line reports it in one line and exits with status 2."""


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def uses_torch(names) -> bool:
    """Whether any of these implementations trains on a torch device (it has a ``device`` parameter)."""
    return any("device" in impls.implementation(name)().get_params() for name in names)


def check_settings(names, num_examples, noise, batch_size, lr, num_epochs, seed, repeats, device, dtype) -> None:
    unknown = [name for name in names if name not in impls.NAMES]
    if unknown or not names:
        raise UsageError(f"--impl must be one of {', '.join(impls.NAMES)}; got {', '.join(unknown) or 'none'}")
    checks = [
        ("--num-examples", num_examples, is_int(num_examples) and num_examples >= 1, "an integer >= 1"),
        ("--noise", noise, is_real(noise) and 0 <= noise < math.inf, "a finite number >= 0"),
        ("--batch-size", batch_size, is_int(batch_size) and batch_size >= 1, "an integer >= 1"),
        ("--lr", lr, is_real(lr) and 0 < lr < math.inf, "a finite number > 0"),
        ("--num-epochs", num_epochs, is_int(num_epochs) and num_epochs >= 0, "an integer >= 0"),
        ("--seed", seed, is_int(seed) and 0 <= seed < 2**32, "an integer in [0, 2**32)"),
        ("--repeats", repeats, is_int(repeats) and repeats >= 1, "an integer >= 1"),
        ("--dtype", dtype, dtype in ("float32", "float64"), "float32 or float64"),
    ]
    for flag, value, ok, rule in checks:
        if not ok:
            raise UsageError(f"{flag} must be {rule}; got {value!r}")
    if uses_torch(names):
        from impls._base import check_device

        try:
            check_device(impls.implementation("torch-concise")(), device)
        except ValueError:
            raise UsageError(
                f"--device {device!r} is not available here; use cpu (or cuda on a machine with a GPU)"
            ) from None


def check_arrays(X, y):
    """The user's arrays as float64 (``--dtype`` sets only the torch implementations' arithmetic)."""
    from sklearn.utils.validation import check_X_y

    try:
        return check_X_y(X, y, dtype=np.float64, y_numeric=True)
    except ValueError as exc:
        raise UsageError(f"X and y: {str(exc).splitlines()[0]}") from None
