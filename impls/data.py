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


def shuffled_order(num_examples: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch's order of the examples, consuming ``generator`` exactly as one pass of a DataLoader does."""
    import torch

    # A DataLoader iterator first draws a base seed for its workers, even with none ...
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(num_examples, generator=generator)
    # ... and its RandomSampler draws one more permutation for the remainder when the epoch ends.
    torch.randperm(num_examples, generator=generator)
    return order


def minibatches(
    features: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of minibatches of in-memory tensors, the same batches a shuffling DataLoader yields.

    The whole epoch is gathered once (one indexing per tensor) and then split into views, instead of
    indexing and collating every batch, which is where a DataLoader over in-memory tensors spends its time.
    """
    order = shuffled_order(len(features), generator).to(features.device)
    return zip(features[order].split(int(batch_size)), labels[order].split(int(batch_size)))  # int: numpy ints too


class Minibatches:
    """The batches of ``DataLoader(TensorDataset(features, labels), batch_size, shuffle=True, generator=generator)``,
    cut from the tensors by ``minibatches``: like a DataLoader, each pass over it is one epoch in a new order."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.features, self.labels, self.batch_size, self.generator = features, labels, batch_size, generator

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(minibatches(self.features, self.labels, self.batch_size, self.generator))
