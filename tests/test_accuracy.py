"""The closed form keeps the digits on hard designs: LRE against an exact oracle, beside three anchors.

The designs, the rational-arithmetic oracle and the LRE are those of benchmarks/accuracy.py, whose
table is in docs/performance.md. Bars per design: the package's LRE is at least statsmodels' QR
minus 0.3, at least numpy.linalg.lstsq's on [1, X] and LinearRegression's, and 7 on the degree-10 design.
"""

import os
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import accuracy  # noqa: E402

pytest.importorskip("statsmodels")


@pytest.fixture(scope="module")
def table():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n = d + 1 leaves no degree of freedom: sigma2_ is NaN, with a warning
        return {row["design"]: row for row in accuracy.table()}


@pytest.mark.parametrize("design", list(accuracy.DESIGNS))
def test_closed_form_is_as_accurate_as_the_best_anchor(design, table):
    row = table[design]
    assert row["numpy-closed-form"] >= row["statsmodels qr"] - 0.3
    assert row["numpy-closed-form"] >= row["lstsq [1, X]"]
    assert row["numpy-closed-form"] >= row["LinearRegression"]


def test_degree_10_polynomial_keeps_seven_digits(table):
    row = table["polynomial, degree 10, x in [-8.8, -3.1] (Filip-like)"]
    assert row["cond"] > 1e9 and row["numpy-closed-form"] >= 7  # where lstsq and LinearRegression keep none
    assert row["LinearRegression"] < 1


def test_the_oracle_and_lre_on_a_case_worked_by_hand():
    # y = 2x + 1 through (0, 1), (1, 3), (2, 5) exactly; then (0, 1), (1, 3), (2, 6): w = 2.5, b = 5/6.
    np.testing.assert_array_equal(
        accuracy.exact_lstsq(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0])), [1, 2]
    )
    np.testing.assert_allclose(accuracy.exact_lstsq(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 6.0])),
                               [5 / 6, 2.5], rtol=1e-16)  # fmt: skip
    assert accuracy.lre([1.0, 2.0], [1.0, 2.0]) == 15
    assert accuracy.lre([1.001, 2.0], [1.0, 2.0]) == pytest.approx(3.0, abs=1e-6)


def test_the_command_line_gives_the_librarys_digits(tmp_path):
    """--data parses the CSV into float64 and fits the same numbers: the same coefficients, bit for bit."""
    from impls import NumpyClosedFormRegressor
    from runner.read import read_csv

    X, y = accuracy.DESIGNS["polynomial, degree 10, x in [-8.8, -3.1] (Filip-like)"]()
    path = tmp_path / "filip.csv"
    lines = ["x1,x2,x3,x4,x5,x6,x7,x8,x9,x10,y"] + [",".join(repr(float(v)) for v in (*row, t)) for row, t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    X_read, y_read, _ = read_csv(str(path), "y")
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(
        NumpyClosedFormRegressor().fit(X_read, y_read).coef_, NumpyClosedFormRegressor().fit(X, y).coef_
    )
