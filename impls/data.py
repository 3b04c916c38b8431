"""The one data generator, y = Xw + b + N(0, noise²), and the one minibatch order, shared by all implementations.

The minibatch order is drawn exactly as ``DataLoader(shuffle=True, generator=g)`` draws it, so the
fast path (cutting batches from tensors already in memory) and the notebook's ``DataLoader`` see the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported only by the code that trains with it
    import torch

GENERATION_ROWS = 16384  # rows drawn at a time by synthetic_data
# The notebook's true parameters: y = 2·x1 − 3.4·x2 + 4.2 + noise. Defined here once; imported wherever used.
NOTEBOOK_W, NOTEBOOK_B = (2.0, -3.4), 4.2


def synthetic_data(
    w,
    b: float,
    num_examples: int,
    *,
    noise: float = 0.01,
    random_state: int | None = 0,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``X ~ N(0, 1)`` of shape ``(num_examples, len(w))`` and ``y = X @ w + b + N(0, noise²)``.

    Same arguments, same arrays, bit for bit: the draws come from a local generator seeded with
    ``random_state``, first all of X row by row, then the noise, made in float64 before the cast to
    ``dtype``. They are drawn in row blocks (a generator's stream does not depend on how it is cut), so
    the scratch memory beyond the returned arrays is one float64 block and y in float64, never a copy of X.
    """
    true_w = np.asarray(w, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(random_state)
    X = np.empty((num_examples, true_w.size), dtype=dtype)
    y = np.empty(num_examples, dtype=np.float64)
    for start in range(0, num_examples, GENERATION_ROWS):
        block = rng.standard_normal((min(GENERATION_ROWS, num_examples - start), true_w.size))
        X[start : start + len(block)] = block
        y[start : start + len(block)] = block @ true_w + b
    for start in range(0, num_examples, GENERATION_ROWS):
        y[start : start + GENERATION_ROWS] += rng.normal(0.0, noise, min(GENERATION_ROWS, num_examples - start))
    return X, y.astype(dtype, copy=False)


def torch_generator(random_state) -> torch.Generator:
    """A local torch generator seeded with ``random_state``: an int as it is, a ``numpy.random.RandomState``
    by one draw from it (so it advances, and the next fit differs), None from fresh entropy."""
    import torch  # here, not at the top: the numpy-only paths never pay for importing torch

    if random_state is None:
        return torch.Generator().manual_seed(int(np.random.default_rng().integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return torch.Generator().manual_seed(int(random_state.randint(np.iinfo(np.int32).max)))
    return torch.Generator().manual_seed(int(random_state))


def resumed_generator(state: torch.Tensor) -> torch.Generator:
    """A torch generator in ``state`` (``Generator.get_state()``): a partial_fit goes on where the last call ended."""
    import torch

    return torch.Generator().set_state(state)


def shuffled_order(num_examples: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch's order of the examples, consuming ``generator`` exactly as one pass of a DataLoader does."""
    import torch

    # A DataLoader iterator first draws a base seed for its workers, even with none ...
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(num_examples, generator=generator)
    # ... and its RandomSampler draws one more permutation for the remainder when the epoch ends.
    torch.randperm(num_examples, generator=generator)
    return order


def as_features(X, dtype: torch.dtype, device: torch.device) -> torch.Tensor | SparseRows:
    """The features on the device: a tensor, moved there once; a scipy.sparse X stays sparse (``SparseRows``)."""
    import scipy.sparse
    import torch

    return SparseRows(X, dtype, device) if scipy.sparse.issparse(X) else torch.as_tensor(X, dtype=dtype).to(device)


class SparseRows:
    """A scipy.sparse matrix read as torch tensors a few rows at a time: ``rows[indices]`` (a tensor of indices
    or a slice) densifies those rows only, so the dense n × d matrix is never made."""

    def __init__(self, matrix, dtype: torch.dtype, device: torch.device):
        self.matrix, self.dtype, self.device = matrix.tocsr(), dtype, device  # CSR: rows are cheap to gather

    def __len__(self) -> int:
        return self.matrix.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def __getitem__(self, rows) -> torch.Tensor:
        import torch

        rows = rows.cpu().numpy() if isinstance(rows, torch.Tensor) else rows
        return torch.as_tensor(self.matrix[rows].toarray(), dtype=self.dtype).to(self.device)


def minibatches(
    features: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    weights: torch.Tensor | None = None,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """One epoch of minibatches of in-memory tensors, the same batches a shuffling DataLoader yields: (X, y),
    or (X, y, w) with ``weights``.

    The whole epoch is gathered once (one indexing per tensor) and then split into views, instead of
    indexing and collating every batch, which is where a DataLoader over in-memory tensors spends its time.
    """
    order = shuffled_order(len(features), generator).to(features.device)
    tensors = (features, labels) if weights is None else (features, labels, weights)
    return zip(*(tensor[order].split(int(batch_size)) for tensor in tensors))  # int: numpy ints too


def sparse_minibatches(
    features: SparseRows,
    labels: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    weights: torch.Tensor | None = None,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """The batches of ``minibatches`` (the same order, the same numbers) from sparse features, each batch's
    rows gathered from the CSR matrix and densified as it is drawn."""
    order = shuffled_order(len(features), generator)  # drawn now, as minibatches draws it
    dense = (labels,) if weights is None else (labels, weights)
    return (
        (features[batch], *(tensor[batch.to(labels.device)] for tensor in dense))
        for batch in order.split(int(batch_size))
    )


class Minibatches:
    """The batches of ``DataLoader(TensorDataset(features, labels), batch_size, shuffle=True, generator=generator)``,
    cut from the tensors by ``minibatches`` (or from ``SparseRows`` by ``sparse_minibatches``): like a DataLoader,
    each pass over it is one epoch in a new order. With ``weights``, each batch is (X, y, w)."""

    def __init__(
        self,
        features: torch.Tensor | SparseRows,
        labels: torch.Tensor,
        batch_size: int,
        generator: torch.Generator,
        weights: torch.Tensor | None = None,
    ):
        self.features, self.labels, self.batch_size, self.generator = features, labels, batch_size, generator
        self.weights = weights
        self.epoch = sparse_minibatches if isinstance(features, SparseRows) else minibatches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return iter(self.epoch(self.features, self.labels, self.batch_size, self.generator, self.weights))
