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
