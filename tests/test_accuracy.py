"""The closed form keeps the digits the data allow: LRE against the exact answer of the float64 data.

The designs, the rational-arithmetic oracle, the LRE and the bars are those of benchmarks/accuracy.py, whose
table is in docs/performance.md: at least 12 digits where the centred, equilibrated X has a condition number
of at most 1e10, 11 beyond, in memory and through ``compare.py --data`` (tests/test_dask.py: one fewer on dask).
"""

import contextlib
import io
import json
import os
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT

from impls import NumpyClosedFormRegressor
from impls.closed_form.prepare import prepare
from impls.closed_form.refinement import MAX_REFINEMENTS
from impls.numpy_closed_form import textbook_solution

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import accuracy  # noqa: E402

pytest.importorskip("statsmodels")

LARGE_RESIDUAL = [name for name in accuracy.DESIGNS if "x in 0..20" in name]


@pytest.fixture(scope="module")
def table():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n = d + 1 leaves no degree of freedom: sigma2_ is NaN, with a warning
        return {row["design"]: row for row in accuracy.table()}


@pytest.mark.parametrize("design", list(accuracy.DESIGNS))
def test_closed_form_keeps_the_digits_of_the_exact_answer(design, table):
    row = table[design]
    assert row["numpy-closed-form"] >= accuracy.bar(row["cond"]), row
    assert 1 <= row["numpy-closed-form steps"] < MAX_REFINEMENTS, row  # refined, and converged before the cap
    for anchor in accuracy.anchors():  # never behind statsmodels, lstsq or LinearRegression
        assert row["numpy-closed-form"] >= row[anchor], (anchor, row)


@pytest.mark.parametrize(
    "name, cholesky_fails",
    [
        ("polynomial, degree 10, x in [-8.8, -3.1] (Filip-like)", True),
        ("polynomial, degree 5, x in 0..20, residual 1e7", False),
    ],
)
def test_the_machinery_keeps_digits_that_the_textbook_solution_loses(name, cholesky_fails):
    """The textbook solution (``textbook_solution`` on the centred normal equations, unrefined) falls short of the bar
    where the package's refinement (on the normal equations, for the large residual) or its QR (for Filip) reaches it:
    what impls/closed_form/solvers.py is for. On Filip, X̃ᵀX̃ rounds to a matrix that is not even positive definite."""
    X, y, _ = accuracy.DESIGNS[name]()
    exact, needed = accuracy.exact_lstsq(X, y), accuracy.bar(accuracy.condition(X))
    system = prepare(NumpyClosedFormRegressor(), X, y).systems[0]
    if cholesky_fails:
        with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
            textbook_solution(system)
    else:
        coef, intercept = textbook_solution(system)
        assert accuracy.lre(np.append(intercept, coef), exact) < needed - 4
    fitted = NumpyClosedFormRegressor().fit(X, y)
    assert accuracy.lre(np.append(fitted.intercept_, fitted.coef_), exact) >= needed


def test_the_bar_is_twelve_digits_up_to_cond_1e10_and_eleven_beyond():
    assert accuracy.bar(1.0) == accuracy.bar(1e10) == 12 and accuracy.bar(1.1e10) == accuracy.bar(1e12) == 11


def test_the_table_covers_both_bars_and_the_hard_cases(table):
    """The designs are what their names say: the bars are tested on both sides of 1e10, and where the peers fail."""
    assert max(row["cond"] for row in table.values()) > accuracy.BAR_CONDITION
    filip = table["polynomial, degree 10, x in [-8.8, -3.1] (Filip-like)"]
    assert 1e9 < filip["cond"] <= accuracy.BAR_CONDITION and filip["LinearRegression"] < 1  # lstsq's cut-off drops it
    for name in LARGE_RESIDUAL:  # the large residuals cost the peers digits that the data do not
        assert table[name]["data"] == 15 and table[name]["statsmodels qr"] < 10, name


@pytest.mark.parametrize("name", LARGE_RESIDUAL)
def test_large_residual_designs_are_exact_in_float64_with_the_true_answer(name):
    """Integers in x = 0..20, residuals of alternating sign up to their size, orthogonal to every polynomial of
    degree 5: the exact least-squares answer of the float64 data is the true (1, …, 1), and the normal equations
    are still chosen (the residual's size does not enter the rule), refined to the last digit."""
    X, y, truth = accuracy.DESIGNS[name]()
    size = accuracy.RESIDUALS[name.rsplit(" ", 1)[1]]
    residual = y - truth[0] - X @ truth[1:]
    assert np.all(y == np.round(y)) and np.abs(y).max() < 2**53  # exact in float64
    assert np.abs(residual).max() == size and (size == 0 or np.all(residual[:-1] * residual[1:] < 0))
    np.testing.assert_array_equal(accuracy.exact_lstsq(X, y), truth)
    fitted = NumpyClosedFormRegressor().fit(X, y)
    assert fitted.solver_ == "normal-equations"
    np.testing.assert_array_equal(np.append(fitted.intercept_, fitted.coef_), truth)


def test_the_oracle_and_lre_on_a_case_worked_by_hand():
    # y = 2x + 1 through (0, 1), (1, 3), (2, 5) exactly; then (0, 1), (1, 3), (2, 6): w = 2.5, b = 5/6.
    np.testing.assert_array_equal(
        accuracy.exact_lstsq(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0])), [1, 2]
    )
    exact = accuracy.exact_lstsq(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 6.0]))
    np.testing.assert_allclose(exact, [5 / 6, 2.5], rtol=1e-16)
    assert accuracy.lre([1.0, 2.0], [1.0, 2.0]) == 15
    assert accuracy.lre([1.001, 2.0], [1.0, 2.0]) == pytest.approx(3.0, abs=1e-6)


@pytest.mark.parametrize(
    "name", ["polynomial, degree 10, x in [-8.8, -3.1] (Filip-like)", "polynomial, degree 5, x in 0..20, residual 1e7"]
)
def test_the_command_line_keeps_the_librarys_digits(name, tmp_path):
    """compare.py --data on the design written as a CSV with every digit (repr): the same coefficients, bit for
    bit, as the library's fit on the arrays, and so the same digits against the exact answer."""
    import compare

    X, y, _ = accuracy.DESIGNS[name]()
    path = tmp_path / "design.csv"
    header = ",".join([f"x{j}" for j in range(1, X.shape[1] + 1)] + ["y"])
    path.write_text("\n".join([header] + [",".join(repr(float(v)) for v in (*row, t)) for row, t in zip(X, y)]) + "\n")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = compare.main(
            [
                "--data",
                str(path),
                "--target",
                "y",
                "--impl",
                "numpy-closed-form",
                "--format",
                "json",
                "--test-fraction",
                "0",
            ]
        )
    assert status == 0
    result = json.loads(output.getvalue())["results"][0]
    through_data = np.append(result["intercept"], result["coef"])
    fitted = NumpyClosedFormRegressor().fit(X, y)
    np.testing.assert_array_equal(through_data, np.append(fitted.intercept_, fitted.coef_))
    assert accuracy.lre(through_data, accuracy.exact_lstsq(X, y)) >= accuracy.bar(accuracy.condition(X))
