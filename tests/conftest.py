"""Fixtures and helpers shared by the test files."""

import os
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
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:  # fmt: skip
        yield client


@pytest.fixture
def no_gathering(monkeypatch):
    """Fail if anything turns a whole dask array into a numpy one."""
    da = pytest.importorskip("dask.array")

    def refuse(self, *args, **kwargs):
        raise AssertionError("X was gathered into one process")

    monkeypatch.setattr(da.Array, "__array__", refuse)
