"""Data-parallel minibatch SGD with ``torch.distributed``: what the two torch estimators need for ``distributed=True``.

W processes (ranks) each hold the data and draw the same minibatch order from the same generator. Each
takes its shard of every global minibatch of B examples; their gradients are combined so that every rank
takes the step one process takes with the whole batch. Shards are the batch cut into W contiguous pieces
whose lengths differ by at most one (an uneven last batch too): each rank's loss is weighted by its share
of the batch rather than padded, so the combined gradient is exactly the whole batch's (see ``shard``).
"""

from __future__ import annotations

import torch


def world(estimator) -> tuple[int, int]:
    """(rank, number of ranks) of the default process group when ``estimator.distributed``, else (0, 1)."""
    if not estimator.distributed:
        return 0, 1
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            f"{type(estimator).__name__}(distributed=True) must be fitted in every rank of an initialised "
            "torch.distributed process group: launch with torchrun and call torch.distributed.init_process_group() "
            "first (python -m runner.distributed does both)."
        )
    return dist.get_rank(), dist.get_world_size()


def shared_generator(generator: torch.Generator, world_size: int) -> torch.Generator:
    """``generator`` reseeded with rank 0's seed, so that every rank draws the same weights and batches
    (with an int ``random_state`` they already agree; with None or a RandomState each drew its own)."""
    if world_size == 1:
        return generator
    import torch.distributed as dist

    seed = torch.tensor([generator.initial_seed()], dtype=torch.int64)
    dist.broadcast(seed, src=0)
    return generator.manual_seed(int(seed))


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's contiguous piece of a global minibatch: W pieces of lengths differing by at most one.

    Why weighting, not padding, makes it exact: with a loss summed over each shard, Σ over ranks of the
    shards' gradients is the gradient summed over the whole batch, whatever the shards' lengths; dividing
    by the batch's length gives the mean's. Padding would add examples that are not in the batch.
    """
    return batch if world_size == 1 else batch.tensor_split(world_size)[rank]
