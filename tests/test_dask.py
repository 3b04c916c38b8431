"""The closed form on dask arrays and DataFrames: on a LocalCluster bound to 127.0.0.1, without gathering X."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT

from impls import NumpyClosedFormRegressor
from impls.closed_form.refinement import MAX_REFINEMENTS

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


def _data(num_examples=20_000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, 5)) * [1.0, 3.0, 0.5, 2.0, 1.0] + [0.0, 1e6, 3.0, 0.0, -2.0]
    return X, X @ [1.0, 2.0, 3.0, 4.0, 5.0] + 1.0 + rng.standard_normal(num_examples)


def test_dask_arrays_agree_with_the_in_memory_fit(client, no_gathering):
    X, y = _data()
    expected = NumpyClosedFormRegressor().fit(X, y)
    fitted = NumpyClosedFormRegressor().fit(da.from_array(X, chunks=(3000, 5)), da.from_array(y, chunks=3000))
    assert fitted.solver_ == "normal-equations" and isinstance(fitted.coef_, np.ndarray)
    np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=1e-12)
    assert fitted.intercept_ == pytest.approx(expected.intercept_, rel=1e-12)
    for name in ["sigma2_", "rsquared_", "intercept_stderr_"]:
        assert getattr(fitted, name) == pytest.approx(getattr(expected, name), rel=1e-10)
    np.testing.assert_allclose(fitted.coef_stderr_, expected.coef_stderr_, rtol=1e-10)


def test_column_chunks_are_rechunked_and_predict_stays_lazy(client):
    X, y = _data(5000)
    fitted = NumpyClosedFormRegressor().fit(da.from_array(X, chunks=(1000, 2)), da.from_array(y, chunks=700))
    predicted = fitted.predict(da.from_array(X[:100], chunks=(50, 5)))
    assert isinstance(predicted, da.Array)
    np.testing.assert_allclose(predicted.compute(), NumpyClosedFormRegressor().fit(X, y).predict(X[:100]), rtol=1e-12)


def test_dask_dataframes_keep_their_column_names(client):
    pandas = pytest.importorskip("pandas")
    X, y = _data(3000)
    frame = dd.from_pandas(pandas.DataFrame(X, columns=list("abcde")), npartitions=4)
    fitted = NumpyClosedFormRegressor().fit(frame, dd.from_pandas(pandas.Series(y), npartitions=4))
    assert list(fitted.feature_names_in_) == list("abcde")
    np.testing.assert_allclose(fitted.coef_, NumpyClosedFormRegressor().fit(X, y).coef_, rtol=1e-12)


def test_dask_data_keep_the_digits_of_the_exact_answer(client):
    """The bars of tests/test_accuracy.py less one digit, on dask input in three chunks on the in-process
    cluster: the in-memory refinement, one pass over the chunks per step, each chunk's part of [1, X]ᵀr
    summed with the others in double-double; the rule that picks the solver, and the steps, as in memory."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import accuracy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n = d + 1: no degree of freedom
        for name, make in accuracy.DESIGNS.items():
            X, y, _ = make()
            rows = max(2, -(-len(X) // 3))
            fitted = NumpyClosedFormRegressor().fit(
                da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)
            )
            in_memory = NumpyClosedFormRegressor().fit(X, y)
            digits = accuracy.lre(np.append(fitted.intercept_, fitted.coef_), accuracy.exact_lstsq(X, y))
            assert digits >= accuracy.bar(accuracy.condition(X)) - accuracy.DASK_ALLOWANCE, (name, digits)
            assert fitted.solver_ == in_memory.solver_ and 1 <= fitted.n_refinements_ < MAX_REFINEMENTS, name


@pytest.mark.slow
def test_worker_processes_import_the_per_chunk_functions():
    X, y = _data(4000)
    loopback = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **loopback)
    with cluster, distributed.Client(cluster):
        fitted = NumpyClosedFormRegressor().fit(da.from_array(X, chunks=(1000, 5)), da.from_array(y, chunks=1000))
    np.testing.assert_allclose(fitted.coef_, NumpyClosedFormRegressor().fit(X, y).coef_, rtol=1e-12)


@pytest.mark.slow
def test_dask_arrays_with_query_planning_fit_predict_and_score():
    """dask's array query planning (array-expr) is chosen when dask.array is first imported: a fresh process."""
    script = (
        "import dask.array as da, numpy as np\n"
        "from compare import compare; from impls import NumpyClosedFormRegressor\n"
        "assert 'array_expr' in type(da.ones(2)).__module__\n"
        "rng = np.random.default_rng(0); X = rng.standard_normal((3000, 3)); y = X @ [1.0, 2.0, 3.0] + 1.0\n"
        "X_d, y_d = da.from_array(X, chunks=(700, 3)), da.from_array(y, chunks=700)\n"
        "fitted = NumpyClosedFormRegressor().fit(X_d, y_d)\n"
        "np.testing.assert_allclose(fitted.coef_, NumpyClosedFormRegressor().fit(X, y).coef_, rtol=1e-12)\n"
        "np.testing.assert_allclose(fitted.predict(X_d).compute(), X @ fitted.coef_ + fitted.intercept_, rtol=1e-12)\n"
        "assert compare('numpy-closed-form', X=X_d, y=y_d, repeats=1).results[0]['status'] == 'ok'\n"
    )
    env = {**os.environ, "DASK_ARRAY__QUERY_PLANNING": "True"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------------------------------
# Dask answers equal memory answers, whatever the design and the chunking

DESIGNS = ["full-rank", "duplicated", "sum of two", "near-collinear", "constant", "zero column", "n <= d"]


def _design(kind, seed):
    """(X, y, row chunks) of one kind, drawn from ``seed``: the chunks include empty ones at random."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    n = int(rng.integers(1, d + 1)) if kind == "n <= d" else int(rng.integers(d + 3, 80))
    X = rng.standard_normal((n, d)) * rng.uniform(0.1, 10, d) + rng.uniform(-5, 5, d) * rng.integers(0, 2, d)
    extra = {
        "duplicated": X[:, :1],
        "sum of two": X[:, :1] + X[:, -1:],
        "near-collinear": X[:, :1] + 10 ** rng.uniform(-10, -4) * rng.standard_normal((n, 1)),
        "constant": np.full((n, 1), rng.choice([0.1, 0.3, 1.0, -7.7, 1e5 + 0.1])),
        "zero column": np.zeros((n, 1)),
    }.get(kind)
    if extra is not None:
        X = np.insert(X, int(rng.integers(0, d + 1)), extra[:, 0], axis=1)
    y = X @ rng.uniform(-3, 3, X.shape[1]) + 2.0 + 0.1 * rng.standard_normal(n)
    cuts = np.sort(rng.integers(0, n + 1, int(rng.integers(0, 5))))
    chunks = tuple(int(c) for c in np.diff(np.concatenate([[0], cuts, [n]])))
    return X, y, chunks


@pytest.mark.parametrize("kind", DESIGNS)
def test_dask_and_memory_fits_agree_on_rank_solver_and_predictions(kind):
    """A property test over random designs and chunkings (empty chunks included), on dask's synchronous
    scheduler: the same rank, the same solver and the same predictions to 1e-8 as the in-memory fit."""
    import dask

    for seed in range(25):
        X, y, chunks = _design(kind, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n <= rank + 1: no degree of freedom
            expected = NumpyClosedFormRegressor().fit(X, y)
            with dask.config.set(scheduler="synchronous"):
                X_d = da.from_array(X, chunks=(chunks, X.shape[1]))
                fitted = NumpyClosedFormRegressor().fit(X_d, da.from_array(y, chunks=(chunks,)))
                predicted = fitted.predict(X_d).compute()
        case = f"{kind}, seed {seed}, {X.shape}, chunks {chunks}"
        assert (fitted.rank_, fitted.solver_) == (expected.rank_, expected.solver_), case
        scale = np.max(np.abs(expected.predict(X)))
        np.testing.assert_allclose(predicted, expected.predict(X), rtol=1e-8, atol=1e-8 * scale, err_msg=case)
        if kind in ("duplicated", "sum of two", "constant", "zero column", "n <= d"):
            assert expected.solver_ == "svd" and expected.rank_ < X.shape[1], case  # the design is what it says
            np.testing.assert_allclose(
                fitted.coef_, expected.coef_, rtol=1e-8, atol=1e-8 * np.abs(expected.coef_).max()
            )
