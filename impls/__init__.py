"""One linear regression, fitted four ways behind scikit-learn's estimator interface.

``IMPLEMENTATIONS`` maps each implementation's name to its class. Importing torch takes about two
seconds, so the two torch classes (and with them ``IMPLEMENTATIONS``) are imported on first use:
``import impls`` and the numpy and scikit-learn paths never pay for torch.
"""

from impls._base import DivergenceWarning
from impls.data import NOTEBOOK_B, NOTEBOOK_W, synthetic_data
from impls.numpy_closed_form import NumpyClosedFormRegressor
from impls.sklearn_sgd import SklearnSGDRegressor

NAMES = ("torch-concise", "torch-scratch", "numpy-closed-form", "sklearn-sgd")

__all__ = [
    "IMPLEMENTATIONS",
    "NAMES",
    "NOTEBOOK_B",
    "NOTEBOOK_W",
    "DivergenceWarning",
    "NumpyClosedFormRegressor",
    "SklearnSGDRegressor",
    "TorchConciseRegressor",
    "TorchScratchRegressor",
    "implementation",
    "synthetic_data",
]


def implementation(name: str) -> type:
    """The estimator class called ``name`` in ``IMPLEMENTATIONS``, importing torch only for the torch ones."""
    if name == "torch-concise":
        from impls.torch_concise import TorchConciseRegressor

        return TorchConciseRegressor
    if name == "torch-scratch":
        from impls.torch_scratch import TorchScratchRegressor

        return TorchScratchRegressor
    if name == "numpy-closed-form":
        return NumpyClosedFormRegressor
    if name == "sklearn-sgd":
        return SklearnSGDRegressor
    raise ValueError(f"The implementation must be one of {', '.join(NAMES)}. Got {name!r} instead.")


def __getattr__(attribute: str):
    if attribute == "IMPLEMENTATIONS":
        return {name: implementation(name) for name in NAMES}
    if attribute == "TorchConciseRegressor":
        return implementation("torch-concise")
    if attribute == "TorchScratchRegressor":
        return implementation("torch-scratch")
    raise AttributeError(f"module 'impls' has no attribute {attribute!r}")
