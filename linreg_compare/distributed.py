"""Fit one torch implementation data-parallel across W processes with ``torch.distributed``.

On one machine with two processes, every socket on 127.0.0.1 (gloo on CPU; nccl, one GPU per process,
with ``--device cuda``):

    python -m linreg_compare.distributed --nproc-per-node 2 --impl torch-scratch

and across machines the same module under torchrun (docs/scale-out.md says what torchrun opens).

Every rank builds the same data (the notebook's generator, or ``--data FILE --target COLUMN``), fits the
estimator with ``distributed=True`` (each rank takes its shard of every global minibatch of
``--batch-size``), and rank 0 prints the fit and writes ``--output`` as JSON. ``spawn(argv, world_size)``
runs the same from Python without torchrun: the ranks are spawned processes meeting at a store on
127.0.0.1 and a free port (``compare.py equivalences --distributed`` and the tests use it).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import socket
import sys
import tempfile
import time

from impls import NOTEBOOK_B, NOTEBOOK_W
from linreg_compare.capabilities import names_that, trains_data_parallel
from linreg_compare.checks import Settings, UsageError
from linreg_compare.files import check_not_input, check_output

DEFAULT = Settings()  # the defaults of the settings compare.py shares, defined once
TIMEOUT = 30.0  # seconds a rank waits for the others (to join, or at a collective) before giving up
RANK_MEMORY = 400 * 2**20  # bytes a rank takes besides its data: a Python process with torch imported


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: UsageError, which ``main`` prints."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="python -m linreg_compare.distributed",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = top.add_argument
    data_parallel = names_that(trains_data_parallel)
    add("--impl", default=data_parallel[0], choices=data_parallel, help="the implementation to fit")
    add(
        "--num-examples",
        type=int,
        default=DEFAULT.num_examples,
        help="training examples drawn from the notebook's generator",
    )
    add("--true-w", type=float, nargs="+", default=list(NOTEBOOK_W), metavar="W", help="true weights of the generator")
    add("--true-b", type=float, default=NOTEBOOK_B, help="true bias of the generator")
    add("--noise", type=float, default=DEFAULT.noise, help="standard deviation of the generator's noise")
    add("--data", metavar="FILE", help="fit this CSV or Parquet file instead (every rank reads it); needs --target")
    add("--target", metavar="COLUMN", help="the column of --data to predict")
    add(
        "--batch-size", type=int, default=DEFAULT.batch_size, help="the global minibatch, split into one shard per rank"
    )
    add("--lr", type=float, default=DEFAULT.lr, help="learning rate, as for one process with the same batch")
    add("--num-epochs", type=int, default=DEFAULT.num_epochs, help="passes over the data")
    add("--reduction", default="mean", choices=["mean", "sum"], help="the loss's reduction, where it has one")
    add("--seed", type=int, default=DEFAULT.seed, help="seeds the data, the initial weights and the minibatch order")
    add("--dtype", default=DEFAULT.dtype, choices=["float32", "float64"], help="torch's arithmetic")
    add("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: one GPU per rank, by its local rank")
    add("--warm-up", action="store_true", help="fit once untimed first, so that the time is not of first-call costs")
    add("--record-steps", action="store_true", help="also write the parameters after every step to --output")
    add("--output", metavar="PATH.json", help="rank 0 writes the fit here as JSON")
    add(
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help="how long a rank waits for the others (to join, or at each step) before it stops with an error",
    )
    add(
        "--nproc-per-node",
        type=int,
        metavar="W",
        help="start W ranks on this machine yourself (no torchrun), every socket on 127.0.0.1",
    )
    return top


def checked_args(argv):
    """The flags, with the checks that need no data: ``--data`` with ``--target``, and ``--output`` checked as
    compare.py checks it (a regular file we can replace, never an input)."""
    from linreg_compare.checks import check_device_available, check_memory, check_truth, settings_of

    args = parser().parse_args(argv)
    if (args.data is None) != (args.target is None):
        parser().error("--data and --target go together")
    Settings(**settings_of(args))
    check_device_available(args.device, [args.impl])
    if not 0 < args.timeout < math.inf:
        raise UsageError(f"--timeout must be a number of seconds > 0; got {args.timeout!r}")
    world_size = int(os.environ.get("LOCAL_WORLD_SIZE", 1)) if args.nproc_per_node is None else args.nproc_per_node
    if not 1 <= world_size <= 64:
        raise UsageError(f"--nproc-per-node must be a number of ranks from 1 to 64; got {world_size}")
    if args.data is None:
        check_truth(args.true_w, args.true_b, args.noise, args.dtype)
        # Every rank of this machine holds the whole data set and a Python process with torch.
        check_memory(args.num_examples, len(args.true_w), 0, args.dtype, [args.impl], world_size, RANK_MEMORY)
    check_output(args.output, "--output")
    check_not_input(args.output, "--output", args.data)
    return args


def prepare(args, local_rank: int):
    """The data and the estimator, ``distributed=True``, its settings checked: before joining the group,
    so that a bad setting or file is one error in every rank, not a rank waiting for the others."""
    from impls import implementation, synthetic_data
    from impls._base import validate_hyperparameters

    if args.data is not None:
        from linreg_compare.read import read_data

        X, y = read_data(args.data, args.target)[:2]
    else:
        X, y = synthetic_data(args.true_w, args.true_b, args.num_examples, noise=args.noise, random_state=args.seed)
    params = {
        "lr": args.lr,
        "batch_size": args.batch_size,
        "num_epochs": args.num_epochs,
        "random_state": args.seed,
        "dtype": args.dtype,
        "record_steps": args.record_steps,
        "distributed": True,
        "device": "cpu" if args.device == "cpu" else f"cuda:{local_rank}",
    }
    estimator = implementation(args.impl)(**params)
    if "reduction" in estimator.get_params():
        estimator.set_params(reduction=args.reduction)
    validate_hyperparameters(estimator)
    return estimator, X, y


def fit_on_rank(args, estimator, X, y, rank: int, world_size: int) -> dict | None:
    """Fit ``estimator`` in this rank (after an untimed fit with ``--warm-up``); rank 0 returns the fit as a dict."""
    import torch.distributed as dist

    if args.warm_up:
        estimator.fit(X, y)
    dist.barrier()
    start = time.perf_counter()
    estimator.fit(X, y)
    dist.barrier()
    seconds = time.perf_counter() - start
    if rank != 0:
        return None
    result = {
        "impl": args.impl,
        "world_size": world_size,
        "backend": dist.get_backend(),
        "num_examples": len(X),
        "batch_size": args.batch_size,
        "shard_sizes": shard_sizes(min(args.batch_size, len(X)), world_size),
        "coef": estimator.coef_.tolist(),
        "intercept": estimator.intercept_,
        "loss_curve": estimator.loss_curve_,
        "n_iter": estimator.n_iter_,
        "n_steps": estimator.n_steps_,
        "diverged": estimator.diverged_,
        "fit_seconds": seconds,
        "seconds_per_epoch": seconds / max(estimator.n_iter_, 1),
    }
    if args.record_steps:
        result["coef_path"] = estimator.coef_path_.tolist()
        result["intercept_path"] = estimator.intercept_path_.tolist()
    return result


def shard_sizes(batch_size: int, world_size: int) -> list[int]:
    """The lengths of the W shards of a batch of ``batch_size`` examples, as ``impls._distributed.shard`` cuts it."""
    return [batch_size // world_size + (rank < batch_size % world_size) for rank in range(world_size)]


def _summary(result: dict) -> str:
    coef = ", ".join(f"{value:.6f}" for value in result["coef"])
    return (
        f"{result['impl']} on {result['world_size']} ranks ({result['backend']}), global batch "
        f"{result['batch_size']} in shards of {'/'.join(map(str, result['shard_sizes']))}: w = [{coef}], "
        f"b = {result['intercept']:.6f}, training MSE by epoch "
        f"{', '.join(f'{loss:.3g}' for loss in result['loss_curve'])}; {result['seconds_per_epoch']:.3f} s per epoch"
    )


def run(argv, rank: int, world_size: int, local_rank: int, store=None, show: bool = True) -> dict | None:
    """Join the process group (torchrun's environment, or ``store``), fit, and on rank 0 report the fit
    (printed unless not ``show``, and written to ``--output``)."""
    import torch.distributed as dist

    args = checked_args(argv)
    estimator, X, y = prepare(args, local_rank)
    backend = "nccl" if args.device == "cuda" else "gloo"
    if args.device == "cuda":
        import torch

        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        backend,
        store=store,
        rank=rank if store else -1,
        world_size=world_size if store else -1,
        timeout=datetime.timedelta(seconds=args.timeout),
    )
    try:
        result = fit_on_rank(args, estimator, X, y, rank, world_size)
    finally:
        # The estimator's DDP wrapper holds the group's communication threads: free it before the group
        # goes, not at interpreter exit, where tearing them down in the wrong order aborts the process.
        del estimator
        gc.collect()
        dist.destroy_process_group()
    if result is not None:
        if show:
            print(_summary(result), flush=True)
        if args.output is not None:
            from linreg_compare.files import write_text

            write_text(args.output, json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    """The entry: ``--nproc-per-node W`` starts W ranks here; under torchrun, rank, world size and rendezvous
    come from its environment."""
    environ, argv = os.environ, sys.argv[1:] if argv is None else list(argv)
    try:
        args = checked_args(argv)  # --help, a bad flag, setting or output, before any rank starts
    except ValueError as exc:
        print(f"python -m linreg_compare.distributed: error: {exc}", file=sys.stderr)
        return 2
    if args.nproc_per_node is not None and "RANK" not in environ:
        try:
            result = spawn(argv, args.nproc_per_node)
        except Exception as exc:  # noqa: BLE001 - a rank's failure, in one line
            print(f"python -m linreg_compare.distributed: error: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
            return 1
        print(_summary(result), flush=True)
        if args.output is not None:
            from linreg_compare.files import write_text

            write_text(args.output, json.dumps(result, indent=1))
        return 0
    if "RANK" not in environ:
        print(
            "python -m linreg_compare.distributed: error: give --nproc-per-node W to start W ranks here, or run it "
            "under torchrun (torchrun --nproc-per-node 2 -m linreg_compare.distributed ...)",
            file=sys.stderr,
        )
        return 2
    try:
        run(argv, int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", 0)))
    except ValueError as exc:  # a bad setting or file, which every rank meets alike: one line, from rank 0
        if environ["RANK"] == "0":
            print(f"python -m linreg_compare.distributed: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - another rank stopped, or did not come, within --timeout
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"python -m linreg_compare.distributed: rank {environ['RANK']}: error: {message}", file=sys.stderr)
        return 1
    return 0


def _spawned(rank: int, argv, world_size: int, port: int, timeout: float) -> None:
    """One spawned rank: the store's client on 127.0.0.1, then ``run``."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))  # the ranks share the machine's cores
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo" if sys.platform.startswith("linux") else "lo0")
    store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=datetime.timedelta(seconds=timeout))
    run(argv, rank, world_size, rank, store=store, show=False)


def spawn(argv, world_size: int = 2) -> dict:
    """Run ``python -m linreg_compare.distributed argv`` on ``world_size`` spawned processes of this machine and
    return rank 0's fit. Everything binds to 127.0.0.1: the store listens on a port the system picks free."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    timeout = datetime.timedelta(seconds=checked_args(argv).timeout)
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "fit.json")
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        # The store takes the listening socket over (and closes it when it goes).
        store = dist.TCPStore(
            "127.0.0.1",
            port,
            world_size,
            is_master=True,
            master_listen_fd=listener.detach(),
            wait_for_workers=False,
            timeout=timeout,
        )
        mp.start_processes(
            _spawned,
            args=([*argv, "--output", output], world_size, port, timeout.total_seconds()),
            nprocs=world_size,
            start_method="spawn",
        )
        del store
        with open(output, encoding="utf-8") as file:
            return json.load(file)


if __name__ == "__main__":
    sys.exit(main())
