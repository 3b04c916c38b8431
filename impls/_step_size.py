"""The step size from the data: how large a minibatch SGD step on least squares can be before it diverges.

A step of η on the mean ½ loss of a batch B moves the error e = θ − θ_ls by e ← (I − ηH_B)e + ηg_B, H_B the batch's
Gram matrix (1/|B|) Σ_{i∈B} wᵢx̃ᵢx̃ᵢᵀ, x̃ = [1, x]. Full batches (H_B = G) are stable for η·λ_max(G) < 2; minibatches
are stable in mean square when the second moment S = E[eeᵀ] shrinks under S ↦ E[(I − ηH_B)S(I − ηH_B)]
(``mean_square_curvature``): the limit that each iterative estimator's ``lr_limit`` states in its own convention,
and that ``lr="auto"``, the runner's note and warning, ``sweep lr-batch`` and the divergence check all use
(``step_limit``).
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


# The mean-square operator is applied to at most this many rows (its cost is rows × (d + 1)² a power iteration): the
# heaviest HEAVY_ROWS rows exactly, the others by a seeded uniform sample, each standing for its share of the rest.
MEAN_SQUARE_ROWS = 2**15
HEAVY_ROWS = 1024
# Beyond this many unknowns the operator (d + 1)² × (d + 1)² is not iterated on: ``minibatch_curvature``'s estimate.
MEAN_SQUARE_MAX_UNKNOWNS = 64
MEAN_SQUARE_TOLERANCE = 1e-6
MEAN_SQUARE_MAX_ITERATIONS = 500


def mean_square_curvature(X, sample_weight=None, batch_length: int = 1) -> float:
    """κ_B: minibatch SGD with batches of ``batch_length`` rows drawn without replacement, steps of η on the
    batch's mean ½ loss Σ_{i∈B} wᵢ ½(x̃ᵢᵀθ − yᵢ)² / |B|, is stable in mean square exactly when η·κ_B < 2.

    Derivation (the second-moment recursion of SGD on a quadratic; Ma, Bassily & Belkin, ICML 2018, §3, give its
    single-direction form η*(m) = m/(β + (m − 1)λ₁)). With Aᵢ = wᵢx̃ᵢx̃ᵢᵀ and G = (1/n) Σ Aᵢ, the error's second
    moment S = E[eeᵀ] obeys, apart from the additive noise, S ↦ S − η(GS + SG) + η²E[H_B S H_B]. A batch of B of the
    n rows drawn without replacement has P(i ∈ B) = B/n and P(i, j ∈ B) = B(B − 1)/(n(n − 1)), so
        E[H_B S H_B] = a·M(S) + c·GSG,  M(S) = (1/n) Σ (x̃ᵢᵀS x̃ᵢ) wᵢ² x̃ᵢx̃ᵢᵀ,
        a = (n − B)/(B(n − 1)),  c = n(B − 1)/(B(n − 1))
    (a = 0, c = 1 for full batches; a = 1, c = 0 for single rows). The map is positive, so its spectral radius
    crosses 1 at a positive semi-definite S with η·Q(S) = L(S), Q = aM + c·G·G and L(S) = GS + SG: the stable steps
    are η < 1/ν, ν the largest eigenvalue of the symmetric-definite pencil (Q, L), found by power iteration on
    L⁻¹Q in the eigenbasis of G (where L⁻¹ divides entry (j, k) by λⱼ + λₖ). κ_B = 2ν: λ_max for full batches.
    Rare heavy rows enter M through (x̃ᵢᵀS x̃ᵢ)², so they lower the limit as much as they should, and no more.

    The sampling within an epoch is taken as independent batches (its marginal law); n·(d + 1)² work per
    iteration on at most MEAN_SQUARE_ROWS rows (the heaviest always among them). Beyond MEAN_SQUARE_MAX_UNKNOWNS
    unknowns, ``minibatch_curvature``'s approximation E[H₁²] ≈ r·G instead.
    """
    n, p = X.shape[0], X.shape[1] + 1
    batch_length = min(int(batch_length), n)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if p > MEAN_SQUARE_MAX_UNKNOWNS:
        lambda_max = largest_eigenvalue(X, weights) * (1.0 if weights is None else float(np.mean(weights)))
        return minibatch_curvature(lambda_max, row_curvature(X, weights), n, batch_length)
    gram = _dense_gram(X.toarray() if hasattr(X, "toarray") else X, weights) / n  # G = (1/n) Σ wᵢx̃ᵢx̃ᵢᵀ
    eigenvalues, basis = np.linalg.eigh(gram)
    eigenvalues = np.maximum(eigenvalues, 0.0)
    if batch_length >= n or n == 1:
        return float(eigenvalues[-1])
    a = (n - batch_length) / (batch_length * (n - 1))
    c = n * (batch_length - 1) / (batch_length * (n - 1))
    rows, row_weights = _operator_rows(X, weights)
    Z = rows @ basis  # the rows in G's eigenbasis, times √wᵢ; row_weights: how many rows each stands for
    sums = eigenvalues[:, None] + eigenvalues[None, :]
    inverse_sums = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)

    def Q(S):
        quadratic = np.einsum("ij,jk,ik->i", Z, S, Z) * row_weights
        return a * (Z.T @ (Z * quadratic[:, None])) / n + c * (eigenvalues[:, None] * S * eigenvalues[None, :])

    S, nu = np.diag(inverse_sums.diagonal()), 0.0
    for _ in range(MEAN_SQUARE_MAX_ITERATIONS):
        image = Q(S)
        previous, nu = nu, float(np.sum(S * image) / np.sum(S * sums * S))  # Rayleigh quotient ⟨S, QS⟩/⟨S, LS⟩
        S = image * inverse_sums
        S /= np.linalg.norm(S)
        if abs(nu - previous) <= MEAN_SQUARE_TOLERANCE * nu:
            break
    return 2.0 * nu


def _operator_rows(X, weights) -> tuple[np.ndarray, np.ndarray]:
    """√wᵢ·[1, xᵢ] for the rows the mean-square operator sums over, and how many rows each stands for: all of them
    (each for 1) up to MEAN_SQUARE_ROWS; else the HEAVY_ROWS heaviest and a seeded uniform sample of the rest."""
    n = X.shape[0]
    norms = _squared_norms(X) * (1.0 if weights is None else weights)
    if n <= MEAN_SQUARE_ROWS:
        chosen, stand_for = np.arange(n), np.ones(n)
    else:
        heavy = np.argpartition(norms, n - HEAVY_ROWS)[n - HEAVY_ROWS :]
        is_rest = np.ones(n, dtype=bool)
        is_rest[heavy] = False
        rest = np.flatnonzero(is_rest)
        sample = rest[np.random.default_rng(POWER_SEED).choice(len(rest), MEAN_SQUARE_ROWS - HEAVY_ROWS, replace=False)]
        chosen = np.concatenate([heavy, np.sort(sample)])
        stand_for = np.concatenate([np.ones(HEAVY_ROWS), np.full(len(sample), len(rest) / len(sample))])
    block = X[chosen]
    block = np.asarray(block.toarray() if hasattr(block, "toarray") else block, dtype=np.float64)
    rows = np.column_stack([np.ones(len(chosen)), block])
    if weights is not None:
        rows *= np.sqrt(weights[chosen])[:, None]
    return rows, stand_for


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
    """``lr_limit``'s argument: a curvature, a finite number > 0 whose reciprocal is finite (not a bool)."""
    is_number = isinstance(lambda_max, (int, float, np.integer, np.floating)) and not isinstance(lambda_max, bool)
    if not (is_number and 0 < lambda_max < np.inf and np.isfinite(1.0 / lambda_max)):
        raise ValueError(
            f"lambda_max must be a finite number > 0 with a finite reciprocal (a curvature of the steps, "
            f"impls._step_size.mean_square_curvature); got {lambda_max!r}"
        )


def learning_rate(estimator, X, sample_weight=None) -> float:
    """The learning rate ``estimator`` trains with on (X, sample_weight): its ``lr``, or for ``lr="auto"``
    AUTO_FRACTION of ``step_limit``, the limit of its own steps (the batch loss Σ wᵢℓᵢ over the batch's length:
    the weights are in the curvature)."""
    if not (isinstance(estimator.lr, str) and estimator.lr == "auto"):
        return float(estimator.lr)
    return AUTO_FRACTION * step_limit(estimator, X, sample_weight)


def step_limit(estimator, X, sample_weight=None) -> float:
    """The largest stable lr of ``estimator``'s minibatch steps on (X, sample_weight), in its convention: its
    ``lr_limit`` at the ``mean_square_curvature`` of the rows it takes per step (``estimator._rows_per_step``)."""
    num_examples = X.shape[0]
    curvature = mean_square_curvature(X, sample_weight, estimator._rows_per_step(num_examples))
    return estimator.lr_limit(float(curvature), num_examples=num_examples)
