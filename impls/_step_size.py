"""The step size from the data: λ_max of G = [1, X]ᵀW[1, X] / Σw, whose size fixes how large a gradient step can be.

For least squares the Hessian of the mean loss is a constant multiple of G, so full-gradient descent is stable only
for a step below 2 / (that multiple · λ_max); each iterative estimator's ``lr_limit`` states it in its own convention.
A minibatch of B rows sees a noisier curvature, ``minibatch_curvature``, at which ``lr="auto"`` takes the limit.
"""

from __future__ import annotations

import numpy as np

from impls.closed_form.moments import BLOCK_ROWS  # rows read at a time: a float64 block of [1, X], never a copy of X

# lr="auto" takes this fraction of the stability limit. Why ½: for a quadratic with curvatures in [μ, L] the
# constant step that contracts the worst direction most is 2 / (L + μ), which is 1 / L, half the limit 2 / L,
# when μ ≪ L (the usual case); at that step the stiffest direction is solved in one full-gradient step. Half
# also leaves a factor of 2 for what the limit only estimates: the minibatch curvature is a mean-square
# approximation (see minibatch_curvature), and power iteration approaches λ_max from below.
AUTO_FRACTION = 0.5

# Up to this size of the (d + 1)² Gram matrix, λ_max is its exact top eigenvalue (eigvalsh); beyond, power
# iteration with products by [1, X] and its transpose, which never form the Gram matrix.
EIGVALSH_MAX_SIZE = 2000
POWER_TOLERANCE = 1e-3  # power iteration stops when λ changes by less than this, relative
POWER_MAX_ITERATIONS = 1000
POWER_SEED = 0


def largest_eigenvalue(X, sample_weight=None) -> float:
    """λ_max of G = [1, X]ᵀ[1, X] / n (with ``sample_weight`` w: [1, X]ᵀ diag(w) [1, X] / Σw), in float64.

    X is a numpy array or a scipy.sparse matrix, read in row blocks (sparse: by sparse products), never copied
    whole. With d + 1 ≤ EIGVALSH_MAX_SIZE the Gram matrix is formed and its top eigenvalue is exact to
    rounding (``np.linalg.eigvalsh``); beyond, power iteration from a seeded start stops when the estimate
    changes by less than POWER_TOLERANCE relative (a Rayleigh quotient, so it approaches λ_max from below).
    G always has λ_max ≥ 1: its corner entry, the mean of the intercept's column of ones squared, is 1.
    """
    import scipy.sparse  # here: scipy is imported by the estimators anyway, and only when a step is asked for

    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    total_weight = X.shape[0] if weights is None else float(weights.sum())
    sparse = scipy.sparse.issparse(X)
    if X.shape[1] + 1 <= EIGVALSH_MAX_SIZE:
        gram = _sparse_gram(X, weights) if sparse else _dense_gram(X, weights)
        return float(np.linalg.eigvalsh(gram / total_weight)[-1])
    product = _sparse_product(X, weights) if sparse else _dense_product(X, weights)
    return _power_iteration(lambda v: product(v) / total_weight, X.shape[1] + 1)


def row_curvature(X, sample_weight=None) -> float:
    """The curvature a one-row step sees, in mean square: Σ cᵢ² / Σ cᵢ with cᵢ = wᵢ (1 + |xᵢ|²), the top (and
    only) eigenvalue of row i's Hessian wᵢ x̃ᵢx̃ᵢᵀ, each weighted by its share of the total curvature.

    It is tr G when every row has the same norm and weight, and more when they vary: a few long rows make
    single-row steps unstable sooner than their mean suggests.
    """
    curvatures = _squared_norms(X)
    if sample_weight is not None:
        curvatures = curvatures * np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    return float(curvatures @ curvatures / curvatures.sum())


def minibatch_curvature(lambda_max: float, row_curvature: float, num_examples: int, batch_length: int) -> float:
    """The curvature κ that bounds a stable step of minibatch SGD with batches of ``batch_length`` of the
    ``num_examples`` rows, in the convention of G (a step η on the mean ½ loss is stable for η · κ < 2).

    A batch's Hessian H_B (its rows' Gram matrix) is G on average, and the step is stable in mean square when
    E[(I − ηH_B)²] ≼ I, that is η · E[H_B²] ≼ 2G. Drawing B of n rows without replacement,
    E[H_B²] = G² + (E[H_1²] − G²) (n − B) / (B (n − 1)), H_1 one row's Hessian; taking E[H_1²] ≈ r · G with r the
    ``row_curvature`` (exact when the rows have equal norms), along the top eigenvector this asks η · κ < 2 with
    κ = λ + (r − λ) (n − B) / (B (n − 1)): λ for full batches, r for single rows (SGDRegressor's steps).
    """
    if batch_length >= num_examples:
        return lambda_max
    spread = (row_curvature - lambda_max) * (num_examples - batch_length) / (batch_length * (num_examples - 1))
    return lambda_max + spread


def _squared_norms(X) -> np.ndarray:
    """1 + |xᵢ|² for every row, over row blocks (sparse: over the stored entries)."""
    if hasattr(X, "toarray"):  # scipy.sparse
        return 1.0 + np.asarray(X.tocsr().astype(np.float64).power(2).sum(axis=1)).reshape(-1)
    norms = np.empty(X.shape[0])
    for start in range(0, X.shape[0], BLOCK_ROWS):
        rows = np.asarray(X[start : start + BLOCK_ROWS], dtype=np.float64)
        norms[start : start + BLOCK_ROWS] = 1.0 + np.einsum("ij,ij->i", rows, rows)
    return norms


def _dense_gram(X, weights) -> np.ndarray:
    """[1, X]ᵀ diag(w) [1, X], summed over row blocks of X cast to float64."""
    d = X.shape[1]
    gram = np.zeros((d + 1, d + 1))
    for start in range(0, X.shape[0], BLOCK_ROWS):
        rows = np.asarray(X[start : start + BLOCK_ROWS], dtype=np.float64)
        block = np.column_stack([np.ones(len(rows)), rows])
        weighted = block if weights is None else block * weights[start : start + BLOCK_ROWS, None]
        gram += weighted.T @ block
    return gram


def _sparse_gram(X, weights) -> np.ndarray:
    """[1, X]ᵀ diag(w) [1, X] from sparse products: XᵀWX (sparse, then dense, d + 1 being moderate), Xᵀw and Σw."""
    X = X.tocsr().astype(np.float64)  # the sparse entries only: O(nnz), never n × d
    w = np.ones(X.shape[0]) if weights is None else weights
    weighted_X = X.multiply(w[:, None]).tocsr()
    gram = np.empty((X.shape[1] + 1, X.shape[1] + 1))
    gram[0, 0] = w.sum()
    gram[0, 1:] = gram[1:, 0] = np.asarray(weighted_X.sum(axis=0)).reshape(-1)
    gram[1:, 1:] = (X.T @ weighted_X).toarray()
    return gram


def _dense_product(X, weights):
    """v ↦ [1, X]ᵀ diag(w) [1, X] v, one pass over X's row blocks."""

    def product(v: np.ndarray) -> np.ndarray:
        result = np.zeros_like(v)
        for start in range(0, X.shape[0], BLOCK_ROWS):
            block = np.asarray(X[start : start + BLOCK_ROWS], dtype=np.float64)
            fitted = block @ v[1:] + v[0]
            if weights is not None:
                fitted *= weights[start : start + BLOCK_ROWS]
            result[0] += fitted.sum()
            result[1:] += block.T @ fitted
        return result

    return product


def _sparse_product(X, weights):
    """v ↦ [1, X]ᵀ diag(w) [1, X] v by two sparse matrix-vector products."""
    X = X.tocsr().astype(np.float64)

    def product(v: np.ndarray) -> np.ndarray:
        fitted = X @ v[1:] + v[0]
        if weights is not None:
            fitted = fitted * weights
        return np.concatenate([[fitted.sum()], X.T @ fitted])

    return product


def _power_iteration(product, size: int) -> float:
    """The top eigenvalue of the symmetric positive semi-definite operator ``product``, by power iteration."""
    vector = np.random.default_rng(POWER_SEED).standard_normal(size)
    vector /= np.linalg.norm(vector)
    estimate = 0.0
    for _ in range(POWER_MAX_ITERATIONS):
        image = product(vector)
        previous, estimate = estimate, float(vector @ image)  # the Rayleigh quotient of a unit vector
        vector = image / np.linalg.norm(image)
        if abs(estimate - previous) <= POWER_TOLERANCE * estimate:
            break
    return estimate


def check_curvature(lambda_max) -> None:
    """``lr_limit``'s argument: a curvature, a finite number > 0 (a Gram matrix of [1, X] has λ_max ≥ 1)."""
    if not (isinstance(lambda_max, (int, float, np.integer, np.floating)) and 0 < lambda_max < np.inf):
        raise ValueError(f"lambda_max must be a finite number > 0 (the top eigenvalue of G); got {lambda_max!r}")


def learning_rate(estimator, X, sample_weight=None) -> float:
    """The learning rate ``estimator`` trains with on (X, sample_weight): its ``lr``, or for ``lr="auto"``
    AUTO_FRACTION of its ``lr_limit`` at the curvature its steps see, ``minibatch_curvature`` for the rows it
    takes per step (``estimator._rows_per_step``), which is λ_max for full batches.

    With weights the batch loss is Σ wᵢ ℓᵢ over the batch's length, so its Hessian is mean(w) times that of
    the weighted Gram matrix G over Σw: λ_max is mean(w) times that of G (``row_curvature`` has the weights in).
    """
    if not (isinstance(estimator.lr, str) and estimator.lr == "auto"):
        return float(estimator.lr)
    return AUTO_FRACTION * step_limit(estimator, X, sample_weight)


def step_limit(estimator, X, sample_weight=None) -> float:
    """The largest stable lr of ``estimator``'s minibatch steps on (X, sample_weight), in its convention: its
    ``lr_limit`` at the ``minibatch_curvature`` of the rows it takes per step (see ``learning_rate``)."""
    num_examples = X.shape[0]
    lambda_max = largest_eigenvalue(X, sample_weight) * (1.0 if sample_weight is None else np.mean(sample_weight))
    rows = estimator._rows_per_step(num_examples)
    curvature = minibatch_curvature(lambda_max, row_curvature(X, sample_weight), num_examples, rows)
    return estimator.lr_limit(float(curvature), num_examples=num_examples)
