"""BLAS's threads, and the closed form's own: ``in_threads`` shares blocks of work out among as many threads as BLAS
would use, with BLAS on one thread meanwhile; ``one_blas_thread`` and ``blas_threads`` control and read BLAS's threads
through threadpoolctl (the SGD wrapper uses them too).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence


def in_threads(function: Callable, items: Sequence) -> list:
    """``[function(item) for item in items]``, the items shared out among as many threads as BLAS would use, BLAS
    limited to one thread meanwhile (scikit-learn's KMeans does the same around its own threads).

    A thread takes the next item when it is done with one, so that a core busy with other work slows only the items
    its thread takes: BLAS's own threads split each call evenly and wait for the slowest, on every call. One item,
    or BLAS on one thread, runs here, in this thread.
    """
    workers = 1 if len(items) <= 1 else min(len(items), blas_threads())
    if workers <= 1:
        return [function(item) for item in items]
    with _blas_controller().limit(limits=1):
        return list(_pool(workers).map(function, items))


_POOLS = {}  # (process id, threads) -> a ThreadPoolExecutor, kept between fits rather than started for each


def _pool(workers: int):
    """A pool of ``workers`` threads, made once per process (a forked child gets its own: its parent's threads are
    not there), idle between fits."""
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), workers)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix="closed-form-moments")
    return _POOLS[key]


@functools.cache
def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded (numpy's among them), found once per process."""
    import threadpoolctl

    return threadpoolctl.ThreadpoolController().select(user_api="blas")


def one_blas_thread():
    """A context in which numpy's BLAS runs on one thread. After a call on two, OpenBLAS's second thread spins for
    a while on the core it ran on: with the other core busy, that is the core of the next compiled loop too."""
    return _blas_controller().limit(limits=1)


def blas_threads() -> int:
    """The threads numpy's BLAS would use now: the user's limits and OPENBLAS_NUM_THREADS respected."""
    return max((library.num_threads for library in _blas_controller().lib_controllers), default=1)
