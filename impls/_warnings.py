"""The warning the iterative estimators give when training diverges (light to import: no scikit-learn, no torch)."""


class DivergenceWarning(UserWarning):
    """Training was stopped because the loss became non-finite or grew far past where it started."""
