"""Fixtures and helpers shared by the test files, and the guard of the ``slow`` mark.

``slow`` marks exactly the tests that start processes (a subprocess, spawned torch.distributed ranks, dask
worker processes, the tour's kernel), so that ``pytest -m "not slow"`` starts none. The hooks below hold
every test without the mark to that: starting a process in its setup, body or teardown fails the test,
even where the code that tried swallows the error (dask starts its workers from a thread).
"""

import multiprocessing.process
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from impls import synthetic_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_W, NOTEBOOK_B = np.array([2.0, -3.4]), 4.2
ITERATIVE = ["torch-concise", "torch-scratch", "sklearn-sgd"]
TORCH = ["torch-concise", "torch-scratch"]


def run_cli(*args, cwd=ROOT, **kwargs):
    """``python compare.py ARGS`` in a real process."""
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "compare.py"), *args], capture_output=True, text=True, cwd=cwd, **kwargs
    )


@pytest.fixture(scope="session")
def notebook_data():
    """The notebook's training set: 1000 examples of y = 2 x1 - 3.4 x2 + 4.2 + N(0, 0.01²), float32."""
    return synthetic_data(NOTEBOOK_W, NOTEBOOK_B, 1000)


@pytest.fixture(scope="session")
def client():
    """Two in-process dask workers (no sockets: dask's in-process transport), shut down at the end of the session."""
    distributed = pytest.importorskip("distributed")
    # Each worker reports platform.uname().processor, which Python learns by running `uname -p`, a process:
    # blank instead, what Python reports where `uname -p` says "unknown" (this report is all it is used for).
    platform.uname().__dict__.setdefault("processor", "")
    # In-process workers still serve HTTP, on every interface unless told: on a free loopback port.
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def no_gathering(monkeypatch):
    """Fail if anything turns a whole dask array into a numpy one."""
    da = pytest.importorskip("dask.array")

    def refuse(self, *args, **kwargs):
        raise AssertionError("X was gathered into one process")

    monkeypatch.setattr(da.Array, "__array__", refuse)


# Every way a test could start a process: subprocess (and os.popen, asyncio's subprocesses, jupyter kernels),
# multiprocessing (torch.multiprocessing's spawn, dask's worker processes, process pools), fork and exec.
STARTERS = [(subprocess.Popen, "_execute_child"), (multiprocessing.process.BaseProcess, "start")] + [
    (os, name) for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system") if hasattr(os, name)
]
ATTEMPTS = pytest.StashKey[list]()  # the processes a test without the mark tried to start


def _refusing(item, starter):
    def start(*args, **kwargs):
        item.stash[ATTEMPTS].append(starter)
        raise AssertionError(f"{item.nodeid} starts a process ({starter}) but is not marked slow")

    return start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test without the ``slow`` mark may start no process, in its fixtures' setup (a session's dask
    cluster included), its body or its teardown: each attempt raises, and fails the test."""
    if item.get_closest_marker("slow") is not None:
        yield
        return
    item.stash[ATTEMPTS] = []
    with pytest.MonkeyPatch.context() as patch:
        for owner, name in STARTERS:
            patch.setattr(owner, name, _refusing(item, f"{owner.__name__}.{name}"))
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """An attempt fails the phase it was made in, even where the error was caught (dask starts its worker
    processes from a thread, and logs the error)."""
    report = (yield).get_result()
    attempts = item.stash.get(ATTEMPTS, [])
    if attempts and report.passed:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} starts a process ({', '.join(attempts)}) but is not marked slow"
    attempts.clear()


@pytest.fixture
def process_attempts(request):
    """The processes this test (not marked slow) tried to start, each refused; a test of the guard empties it."""
    return request.node.stash[ATTEMPTS]
