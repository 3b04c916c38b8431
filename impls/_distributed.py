"""Data-parallel minibatch SGD with ``torch.distributed``: what the two torch estimators need for ``distributed=True``.

W processes (ranks) each hold the data. Every rank starts from rank 0's parameters and draws rank 0's
minibatch order, takes its shard of every global minibatch of B examples, and the ranks' gradients are
combined so that every rank takes the step one process takes with the whole batch. Shards are the batch
cut into W contiguous pieces whose lengths differ by at most one (an uneven last batch too): each rank's
loss is weighted by its share of the batch rather than padded, so the combined gradient is exactly the
whole batch's (see ``shard``). Each estimator's ``fit`` chooses its batch loss once, before its loop:
``ddp_batch_loss`` (torch-concise) or ``all_reduce_batch_loss`` (torch-scratch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


def rank_and_world_size(estimator) -> tuple[int, int]:
    """(rank, number of ranks) of the default process group when ``estimator.distributed``, else (0, 1)."""
    if not estimator.distributed:
        return 0, 1
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            f"{type(estimator).__name__}(distributed=True) must be fitted in every rank of an initialised "
            "torch.distributed process group: launch with torchrun and call torch.distributed.init_process_group() "
            "first (python -m linreg_compare.distributed does both)."
        )
    return dist.get_rank(), dist.get_world_size()


def follow_rank_0(generator: torch.Generator, parameters: Iterable[torch.Tensor]) -> None:
    """Give this rank rank 0's parameters and the state of rank 0's generator, so that every rank starts
    where rank 0 does and draws the batches rank 0 draws (with an int ``random_state`` they already agree;
    with None or a RandomState each rank drew its own seed)."""
    import torch.distributed as dist

    parameters = list(parameters)
    with torch.no_grad():
        for parameter in parameters:
            dist.broadcast(parameter, src=0)
    state = generator.get_state().to(parameters[0].device)  # on the device the backend sends (NCCL: a GPU)
    dist.broadcast(state, src=0)
    generator.set_state(state.cpu())


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's contiguous piece of a global minibatch: W pieces of lengths differing by at most one.

    Why weighting, not padding, makes it exact: with a loss summed over each shard, Σ over ranks of the
    shards' gradients is the gradient summed over the whole batch, whatever the shards' lengths; dividing
    by the batch's length gives the mean's. Padding would add examples that are not in the batch.
    """
    return batch if world_size == 1 else batch.tensor_split(world_size)[rank]


def ddp_batch_loss(estimator, net: nn.Module, generator: torch.Generator, weighted: bool = False) -> Callable:
    """The loss of a minibatch for this rank, with ``DistributedDataParallel`` averaging the ranks' gradients.

    Each rank's loss is its shard's squared errors summed and weighted by W / |B| (``reduction="mean"``)
    or W (``"sum"``): DDP's average over the ranks is then the gradient of the whole batch's loss,
    however long the shards are. With k targets the sum is over them too: each target's own MSE, as on one
    process. ``weighted``: the batch loss takes the batch's sample weights w, each squared error times w.
    """
    rank, world_size = rank_and_world_size(estimator)
    follow_rank_0(generator, net.parameters())
    ddp = nn.parallel.DistributedDataParallel(net)
    shard_loss = nn.MSELoss(reduction="sum")

    def batch_loss(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weight = world_size / (len(X) if estimator.reduction == "mean" else 1)
        return shard_loss(ddp(shard(X, rank, world_size)), shard(y, rank, world_size)) * weight

    def weighted_batch_loss(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        weight = world_size / (len(X) if estimator.reduction == "mean" else 1)
        root = shard(w, rank, world_size).sqrt()
        return shard_loss(ddp(shard(X, rank, world_size)) * root, shard(y, rank, world_size) * root) * weight

    return weighted_batch_loss if weighted else batch_loss


def all_reduce_batch_loss(
    estimator, batch_loss: Callable, parameters: list[torch.Tensor], generator: torch.Generator
) -> Callable:
    """The loss of a minibatch for this rank: ``batch_loss`` of its shard, with ``backward()`` then
    summing each parameter's gradient over the ranks (``sum_over_ranks``): what DDP does, written out.

    ``batch_loss`` is summed over the examples before ``backward()``, so the sum over the ranks of the
    shards' gradients is the gradient summed over the whole batch, and the step that divides it by the
    batch's length is the step of one process.
    """
    rank, world_size = rank_and_world_size(estimator)
    follow_rank_0(generator, parameters)
    for parameter in parameters:
        parameter.register_post_accumulate_grad_hook(sum_over_ranks)

    def shard_loss(*batch: torch.Tensor) -> torch.Tensor:  # (X, y), or (X, y, w) with sample weights
        return batch_loss(*(shard(tensor, rank, world_size) for tensor in batch))

    return shard_loss


def sum_over_ranks(parameter: torch.Tensor) -> None:
    """Replace ``parameter.grad`` by its sum over the ranks, the same on each (run by ``backward()`` as soon as
    the gradient is accumulated)."""
    torch.distributed.all_reduce(parameter.grad)
