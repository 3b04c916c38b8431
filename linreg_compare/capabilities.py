"""What an implementation can do, asked of its estimator (its parameters and scikit-learn tags), never of its name.

Each question instantiates the estimator class with its defaults, which is cheap; the torch classes are
imported by the first question about them.
"""

from __future__ import annotations

import impls


def _parameters(name: str) -> dict:
    return impls.implementation(name)().get_params()


def fits_dask_in_place(name: str) -> bool:
    """Whether it fits dask collections where they live (its input tags say ``dask``), never gathering X."""
    from sklearn.utils import get_tags

    return getattr(get_tags(impls.implementation(name)()).input_tags, "dask", False)


def trains_data_parallel(name: str) -> bool:
    """Whether it trains across the ranks of a torch.distributed group (it has a ``distributed`` parameter)."""
    return "distributed" in _parameters(name)


def has_learning_rate(name: str) -> bool:
    """Whether it is an iterative method with a step size (it has an ``lr`` parameter)."""
    return "lr" in _parameters(name)


def trains_on_a_torch_device(name: str) -> bool:
    """Whether it trains with torch on a device (it has a ``device`` parameter)."""
    return "device" in _parameters(name)


def names_that(capability) -> list[str]:
    """The implementations, in ``impls.NAMES`` order, of which ``capability(name)`` holds."""
    return [name for name in impls.NAMES if capability(name)]
