"""Where dask computes for the command line: threads here, worker processes on 127.0.0.1, or a running scheduler.

Every wait on a cluster has a deadline of ``timeout`` seconds: the connection and the scheduler's first
answer (asked for before a ``Client`` is made, since a listener that accepts and never answers would
hold ``Client()`` forever), and each computation (``deadline_get``). Nothing started here listens
beyond 127.0.0.1, and the dashboard only when asked for.

Low-level task fusion is switched off on a cluster: fused chains are named after their last task, so the
same key can stand for different tasks in two successive computations of one collection, and the
distributed scheduler, which takes a key to name one task, then fails with a KeyError or hangs (dask
issue #9888). Unfused, every key names one task in every graph; this costs a few tasks per chunk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket

from linreg_compare.checks import UsageError

TIMEOUT = 300.0  # seconds: the default deadline of each wait on a cluster
ADDRESS = re.compile(r"tcp://\S+:\d+")


def check_scheduler(where: str) -> None:
    """threads, processes or tcp://host:port; anything else is one line (tls:// needs certificates that the
    command line does not take: connect a ``distributed.Client`` yourself and use the library)."""
    if where.startswith("tls://"):
        raise UsageError(
            f"--scheduler {where}: tls:// needs certificates the command line does not take; make a "
            "distributed.Client(address, security=...) yourself and call compare() with it active"
        )
    if where not in ("threads", "processes") and not ADDRESS.fullmatch(where):
        raise UsageError(f"--scheduler must be threads, processes or a scheduler's tcp://host:port; got {where!r}")


@contextlib.contextmanager
def dask_scheduler(where: str, timeout: float = TIMEOUT, dashboard: bool = False):
    """Dask's threads in this process, a local cluster of worker processes on 127.0.0.1 (shut down at the
    end), or the running scheduler at a tcp:// address; on a cluster, each computation has ``timeout``."""
    check_scheduler(where)
    try:
        import dask
        import distributed
    except ImportError:
        raise UsageError(
            "--data read with dask needs dask: pip install 'dask[dataframe]' distributed "
            "(or the package's [dask] extra)"
        ) from None
    if where == "threads":
        with dask.config.set(scheduler="threads"):
            yield
        return
    settings = {"optimization.fuse.active": False, "distributed.comm.timeouts.connect": f"{timeout}s"}
    with dask.config.set(settings), contextlib.ExitStack() as stack:
        if where == "processes":
            environment = dict(os.environ)
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    # The scheduler always serves HTTP: on a free loopback port, with the dashboard only if asked.
                    dashboard_address="127.0.0.1:8787" if dashboard else "127.0.0.1:0",
                    scheduler_kwargs={"dashboard": dashboard},
                    silence_logs=logging.ERROR,
                )
            )
            # The nanny leaves its workers' settings (OMP_NUM_THREADS=1, ...) in this process's environment;
            # put it back, so that torch, imported here later, uses the threads it would without a cluster.
            os.environ.clear()
            os.environ.update(environment)
            address = cluster.scheduler_address
        else:
            if dashboard:
                raise UsageError("--dashboard applies to --scheduler processes (a running scheduler has its own)")
            address = where
            probe(address, timeout)
        client = stack.enter_context(distributed.Client(address, timeout=f"{timeout}s"))
        with dask.config.set(scheduler=deadline_get(client, timeout)):
            yield


def probe(address: str, timeout: float) -> None:
    """Ask the scheduler at ``address`` who it is, within ``timeout`` seconds; one line if nothing answers,
    or something that is not a dask scheduler does."""
    import asyncio

    from distributed.comm import connect
    from distributed.comm.addressing import get_address_host_port

    try:  # a closed port is refused at once, where dask's connect would try again until the deadline
        socket.create_connection(get_address_host_port(address), timeout=timeout).close()
    except OSError as exc:
        raise UsageError(f"--scheduler {address}: no dask scheduler answered ({exc.strerror or exc})") from None

    async def identity():
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    try:
        answer = asyncio.run(asyncio.wait_for(identity(), timeout))
    except TimeoutError:
        raise UsageError(
            f"--scheduler {address}: no dask scheduler answered within {timeout:g} s (--timeout)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - garbage from another kind of server can raise anything
        raise UsageError(
            f"--scheduler {address}: what answered is not a dask scheduler ({type(exc).__name__})"
        ) from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise UsageError(f"--scheduler {address}: what answered is not a dask scheduler")


def deadline_get(client, timeout: float):
    """``client.get`` that waits at most ``timeout`` seconds for a computation, then cancels it and raises."""
    import distributed
    from dask.core import flatten

    def get(graph, keys, **kwargs):
        futures = client.get(graph, keys, sync=False, **kwargs)
        flat = list(flatten(futures)) if isinstance(futures, list) else [futures]
        try:
            distributed.wait(flat, timeout=timeout)
        except TimeoutError:
            client.cancel(flat)
            raise TimeoutError(
                f"a computation on the dask cluster took longer than {timeout:g} s (--timeout SECONDS to wait longer)"
            ) from None
        return client.gather(futures)

    return get
