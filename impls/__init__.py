"""One linear regression, fitted four ways behind scikit-learn's estimator interface.

``IMPLEMENTATIONS`` maps each implementation's name to its class. Importing torch takes seconds and
scikit-learn more than one, so every estimator class (and with them ``IMPLEMENTATIONS``) is imported on
first use: ``import impls`` costs only numpy, and the numpy and scikit-learn paths never pay for torch.
"""

from impls._warnings import DivergenceWarning
from impls.data import NOTEBOOK_B, NOTEBOOK_W, synthetic_data

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
        from impls.numpy_closed_form import NumpyClosedFormRegressor

        return NumpyClosedFormRegressor
    if name == "sklearn-sgd":
        from impls.sklearn_sgd import SklearnSGDRegressor

        return SklearnSGDRegressor
    raise ValueError(f"The implementation must be one of {', '.join(NAMES)}. Got {name!r} instead.")


CLASSES = {
    "TorchConciseRegressor": "torch-concise",
    "TorchScratchRegressor": "torch-scratch",
    "NumpyClosedFormRegressor": "numpy-closed-form",
    "SklearnSGDRegressor": "sklearn-sgd",
}


def __getattr__(attribute: str):
    if attribute == "IMPLEMENTATIONS":
        return {name: implementation(name) for name in NAMES}
    if attribute in CLASSES:
        return implementation(CLASSES[attribute])
    raise AttributeError(f"module 'impls' has no attribute {attribute!r}")
