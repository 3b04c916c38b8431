"""The closed form's capabilities beyond one dense, unweighted target: sample weights (against statsmodels' WLS and
repeated rows), partial_fit and fit_blocks (against fit on all the rows, and keeping its digits on the hard designs
of benchmarks/accuracy.py fed 8 rows at a time), sparse X (against the dense fit) and several targets (against
scikit-learn's LinearRegression)."""

import os
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.linear_model import LinearRegression
from sklearn.utils import get_tags

from impls import NumpyClosedFormRegressor

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def _data(num_examples=300, num_targets=None, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.5, -1.0, 0.0, 2.0]
    coef = rng.standard_normal((4, num_targets or 1))
    y = X @ coef + rng.standard_normal((1, num_targets or 1)) + 0.3 * rng.standard_normal((num_examples, coef.shape[1]))
    return X, (y[:, 0] if num_targets is None else y)


def _weights(num_examples, seed=6):
    weights = np.random.default_rng(seed).integers(0, 4, num_examples).astype(np.float64)
    weights[:2] = [0.0, 2.5]  # a zero and a fraction among the integers
    return weights


def _parameters(model):
    return np.append(model.intercept_, model.coef_)


# ---------------------------------------------------------------------------------------------------------
# Sample weights


@pytest.mark.parametrize("how", ["fit", "fit_blocks", "partial_fit"])
def test_weighted_fit_matches_statsmodels_wls(how):
    sm = pytest.importorskip("statsmodels.api")
    X, y = _data()
    w = _weights(len(X))
    est = NumpyClosedFormRegressor()
    if how == "fit":
        est.fit(X, y, sample_weight=w)
    elif how == "fit_blocks":
        est.fit_blocks((X[i : i + 64], y[i : i + 64], w[i : i + 64]) for i in range(0, len(X), 64))
    else:
        for i in range(0, len(X), 64):
            est.partial_fit(X[i : i + 64], y[i : i + 64], sample_weight=w[i : i + 64])
    wls = sm.WLS(y, sm.add_constant(X), weights=w).fit()
    np.testing.assert_allclose(_parameters(est), wls.params, rtol=1e-9)
    assert est.sigma2_ == pytest.approx(wls.scale, rel=1e-9)  # zero weights count in n, as in WLS
    np.testing.assert_allclose(np.append(est.intercept_stderr_, est.coef_stderr_), wls.bse, rtol=1e-9)
    assert est.rsquared_ == pytest.approx(wls.rsquared, rel=1e-9)
    assert est.n_samples_fit_ == len(X)


def test_weighted_least_squares_worked_by_hand():
    # (0, 0), (1, 1), (2, 4) with weights 1, 2, 1: x̄ = 1, ȳ = 6/4 = 1.5, Σw(x − x̄)(y − ȳ) = 1.5 + 0 + 2.5 = 4 and
    # Σw(x − x̄)² = 2, so w = 2 and b = 1.5 − 2 = −0.5.
    est = NumpyClosedFormRegressor().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 4.0], sample_weight=[1.0, 2.0, 1.0])
    assert est.coef_[0] == pytest.approx(2.0, abs=1e-14) and est.intercept_ == pytest.approx(-0.5, abs=1e-14)


@pytest.mark.parametrize("design", ["easy", "Filip-like"])
def test_integer_weights_are_repeated_rows_and_zero_weights_removed_rows(design):
    import accuracy

    if design == "easy":
        X, y = _data()
    else:
        X, y, _ = accuracy.DESIGNS["polynomial, degree 10, x in [-8.8, -3.1] (Filip-like)"]()
    w = np.random.default_rng(1).integers(0, 4, len(X))
    weighted = NumpyClosedFormRegressor().fit(X, y, sample_weight=w)
    repeated = NumpyClosedFormRegressor().fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert weighted.solver_ == ("normal-equations" if design == "easy" else "qr")
    np.testing.assert_allclose(_parameters(weighted), _parameters(repeated), rtol=1e-12)
    assert weighted.rsquared_ == pytest.approx(repeated.rsquared_, rel=1e-12)


@pytest.mark.parametrize(
    "weights, words",
    [
        ([1.0, -1.0, 1.0, 1.0], "Negative values in data passed to `sample_weight`"),
        ([1.0, np.nan, 1.0, 1.0], "Input sample_weight contains NaN"),
        ([0.0, 0.0, 0.0, 0.0], "Sample weights must contain at least one non-zero number"),
        ([1.0, 1.0], r"sample_weight.shape == \(2,\), expected \(4,\)"),
    ],
)
def test_bad_weights_are_refused_in_scikit_learns_words(weights, words):
    with pytest.raises(ValueError, match=words):
        NumpyClosedFormRegressor().fit(np.arange(8.0).reshape(4, 2) ** 2, np.arange(4.0), sample_weight=weights)


def test_dask_input_refuses_weights_by_name():
    da = pytest.importorskip("dask.array")
    X, y = _data(40)
    with pytest.raises(ValueError, match="sample_weight"):
        NumpyClosedFormRegressor().fit(da.from_array(X, chunks=20), da.from_array(y, chunks=20), sample_weight=y)


# ---------------------------------------------------------------------------------------------------------
# partial_fit and fit_blocks: fit on all the rows seen, in O(d²) memory


@pytest.mark.parametrize("offset", [0.0, 1e4], ids=["centred (float64 moments)", "off-centre (the factor)"])
def test_partial_fit_in_any_pieces_equals_fit_on_all_rows(offset):
    X, y = _data(500)
    X = X + offset
    whole = NumpyClosedFormRegressor().fit(X, y)
    est = NumpyClosedFormRegressor()
    for start, stop in [(0, 120), (120, 121), (121, 400), (400, 500)]:
        est.partial_fit(X[start:stop], y[start:stop])
    assert est.solver_ == ("normal-equations" if offset == 0 else "qr")
    np.testing.assert_allclose(_parameters(est), _parameters(whole), rtol=1e-12)
    for name in ["sigma2_", "intercept_stderr_", "rsquared_"]:
        assert getattr(est, name) == pytest.approx(getattr(whole, name), rel=1e-10)
    np.testing.assert_allclose(est.coef_stderr_, whole.coef_stderr_, rtol=1e-10)
    assert est.n_samples_fit_ == 500 and est.n_features_in_ == 4


def test_partial_fit_continues_a_fit_and_checks_the_shape_of_what_follows():
    X, y = _data(400)
    est = NumpyClosedFormRegressor().fit(X[:250], y[:250]).partial_fit(X[250:], y[250:])
    np.testing.assert_allclose(_parameters(est), _parameters(NumpyClosedFormRegressor().fit(X, y)), rtol=1e-12)
    with pytest.raises(ValueError, match="X has 3 features, but NumpyClosedFormRegressor is expecting 4"):
        est.partial_fit(X[:10, :3], y[:10])
    with pytest.raises(ValueError, match="y has 2 targets, but the rows seen so far have 1"):
        est.partial_fit(X[:10], np.column_stack([y[:10], y[:10]]))
    assert est.n_samples_fit_ == 400  # the refused blocks left the fit as it was


def test_a_well_conditioned_first_block_before_hard_data_warns():
    X, y = _data(200)
    X[100:, 2] *= 1e3  # the rest of the rows large, and nearly collinear in two columns
    X[100:, 3] = X[100:, 2] + 1e-3 * X[100:, 1]
    est = NumpyClosedFormRegressor().partial_fit(X[:100], y[:100])
    assert est.solver_ == "normal-equations"
    with pytest.warns(UserWarning, match="the data as a whole are not"):
        est.partial_fit(X[100:], y[100:])


@pytest.fixture(scope="module")
def hard_designs():
    import accuracy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n = d + 1: no degree of freedom
        return {name: make()[:2] + (accuracy.exact_lstsq(*make()[:2]),) for name, make in accuracy.DESIGNS.items()}


@pytest.mark.parametrize("how", ["fit_blocks", "partial_fit"])
def test_blocks_of_eight_rows_keep_the_in_memory_digits(how, hard_designs):
    """Every design of benchmarks/accuracy.py, 8 rows at a time: the in-memory fit's LRE less at most one digit
    (today both keep all 15: the factor in double-double)."""
    import accuracy

    for name, (X, y, exact) in hard_designs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            in_memory = accuracy.lre(_parameters(NumpyClosedFormRegressor().fit(X, y)), exact)
            est = NumpyClosedFormRegressor()
            if how == "fit_blocks":
                est.fit_blocks((X[i : i + 8], y[i : i + 8]) for i in range(0, len(X), 8))
            else:
                for i in range(0, len(X), 8):
                    est.partial_fit(X[i : i + 8], y[i : i + 8])
        assert accuracy.lre(_parameters(est), exact) >= in_memory - 1, name


def test_the_double_double_factor_worked_by_hand():
    from impls.closed_form.double_double_factor import householder_update

    # Rows (3, 1) and (4, 7): RᵀR = [[25, 31], [31, 50]], so R = [[5, 31/5], [0, √(50 − 31²/25)]] = [[5, 6.2], [0, 3.4]]
    # (up to the signs of its rows).
    zero = np.zeros((2, 2))
    high, low = householder_update((zero, zero), (np.array([[3.0, 1.0], [4.0, 7.0]]), zero))
    np.testing.assert_allclose(np.abs(high), [[5.0, 6.2], [0.0, 3.4]], rtol=1e-15, atol=1e-15)
    assert np.abs(low).max() < 1e-15


# ---------------------------------------------------------------------------------------------------------
# Sparse X


def test_sparse_blocks_through_partial_fit_and_fit_blocks_give_the_dense_fit():
    rng = np.random.default_rng(3)
    dense = rng.standard_normal((300, 5)) * (rng.uniform(size=(300, 5)) < 0.4)
    y = dense @ rng.standard_normal(5) + 2.0 + 0.1 * rng.standard_normal(300)
    expected = NumpyClosedFormRegressor().fit(dense, y)
    blocks = [(scipy.sparse.csr_matrix(dense[i : i + 100]), y[i : i + 100]) for i in range(0, 300, 100)]
    streamed = NumpyClosedFormRegressor()
    for X_block, y_block in blocks:
        streamed.partial_fit(X_block, y_block)
    for fitted in (streamed, NumpyClosedFormRegressor().fit_blocks(blocks)):
        np.testing.assert_allclose(_parameters(fitted), _parameters(expected), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("container", [scipy.sparse.csr_matrix, scipy.sparse.csc_array])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_x_gives_the_dense_fit(container, weighted):
    rng = np.random.default_rng(2)
    dense = rng.standard_normal((400, 30)) * (rng.uniform(size=(400, 30)) < 0.2)
    y = dense @ rng.standard_normal(30) + 1.0 + 0.1 * rng.standard_normal(400)
    w = _weights(400) if weighted else None
    expected = NumpyClosedFormRegressor().fit(dense, y, sample_weight=w)
    fitted = NumpyClosedFormRegressor().fit(container(dense), y, sample_weight=w)
    np.testing.assert_allclose(_parameters(fitted), _parameters(expected), rtol=1e-10, atol=1e-13)
    assert fitted.sigma2_ == pytest.approx(expected.sigma2_, rel=1e-10)
    np.testing.assert_allclose(fitted.predict(container(dense)), expected.predict(dense), rtol=1e-12)


@pytest.mark.parametrize("offset, spread", [(1e4, 1e-4), (1e6, 1.0), (-3e3, 1e-2)])
def test_sparse_x_far_from_the_origin_gives_the_dense_fit(offset, spread):
    # XᵀX − n x̄x̄ᵀ of the unshifted sparse X cancelled: at 1e4 ± 1e-4 the coef was [5.4e3, 0.023], R² 0.18.
    rng = np.random.default_rng(3)
    x, z = rng.standard_normal(200), rng.standard_normal(200) * (rng.uniform(size=200) < 0.3)
    X = np.c_[x * spread + offset, z]
    y = 3 * x + 0.01 * z + 0.01 * rng.standard_normal(200)
    expected = NumpyClosedFormRegressor().fit(X, y)
    fitted = NumpyClosedFormRegressor().fit(scipy.sparse.csr_matrix(X), y)
    np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=1e-9)
    assert fitted.intercept_ == pytest.approx(expected.intercept_, rel=1e-9)
    assert fitted.rsquared_ == pytest.approx(expected.rsquared_, rel=1e-12)
    np.testing.assert_allclose(fitted.coef_stderr_, expected.coef_stderr_, rtol=1e-8)


@settings(max_examples=60, deadline=None)
@given(
    offsets=hnp.arrays(np.float64, 3, elements=st.floats(-1e7, 1e7)),
    log_scales=hnp.arrays(np.float64, 3, elements=st.floats(-4, 3)),
    density=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
)
def test_sparse_x_gives_the_dense_fit_at_any_offset_and_scale(offsets, log_scales, density, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((120, 3))
    X = Z * 10.0**log_scales + offsets
    X[:, 0] *= rng.uniform(size=120) < density  # one column truly sparse, whatever its offset
    y = Z @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(120)
    expected = NumpyClosedFormRegressor().fit(X, y)
    fitted = NumpyClosedFormRegressor().fit(scipy.sparse.csr_matrix(X), y)
    # in units of the standard errors, which is where an error would mislead
    distance = np.abs(fitted.coef_ - expected.coef_) / expected.coef_stderr_
    assert distance.max() < 1e-6
    assert fitted.rsquared_ == pytest.approx(expected.rsquared_, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("how", ["fit", "partial_fit", "fit_blocks"])
@pytest.mark.parametrize("scale", [5e-324, 1e-310, 1e-300, 1e300])
def test_equal_weights_of_any_size_give_the_unweighted_fit(scale, how):
    # All 5e-324 gave coef [0.9468, −1.9149] and NaN standard errors; all 1e-310 infinite ones.
    X, y = _data(60)
    expected = NumpyClosedFormRegressor().fit(X, y)
    weights = np.full(60, scale)
    model = NumpyClosedFormRegressor()
    if how == "fit":
        model.fit(X, y, weights)
    elif how == "partial_fit":
        model.partial_fit(X[:30], y[:30], weights[:30]).partial_fit(X[30:], y[30:], weights[30:])
    else:
        model.fit_blocks([(X[:30], y[:30], weights[:30]), (X[30:], y[30:], weights[30:])])
    np.testing.assert_allclose(_parameters(model), _parameters(expected), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.coef_stderr_, expected.coef_stderr_, rtol=1e-10)
    assert model.intercept_stderr_ == pytest.approx(expected.intercept_stderr_, rel=1e-10)
    assert model.rsquared_ == pytest.approx(expected.rsquared_, rel=1e-12)
    assert model.sigma2_ == pytest.approx(expected.sigma2_ * scale, rel=1e-10, abs=0)  # WLS's scale: Σwr²/dof


@settings(max_examples=40, deadline=None)
@given(log2_scale=st.integers(-1070, 1000))
def test_weights_times_a_power_of_two_change_nothing_but_sigma2(log2_scale):
    X, y = _data(80)
    weights = _weights(80)
    expected = NumpyClosedFormRegressor().fit(X, y, weights)
    scaled = NumpyClosedFormRegressor().fit(X, y, np.ldexp(weights, log2_scale))
    np.testing.assert_array_equal(_parameters(scaled), _parameters(expected))
    np.testing.assert_array_equal(scaled.coef_stderr_, expected.coef_stderr_)
    assert scaled.sigma2_ == np.ldexp(expected.sigma2_, log2_scale)


def test_ill_conditioned_sparse_x_is_copied_dense_for_the_qr_only_where_it_fits(monkeypatch):
    from impls.closed_form import solvers

    dense = np.zeros((60, 4))
    dense[np.arange(60), np.arange(60) % 4] = 1.0  # one-hot: with the intercept, the columns are rank-deficient
    y = np.arange(60) % 4 * 2.0 + 0.01 * np.sin(np.arange(60))
    expected = NumpyClosedFormRegressor().fit(dense, y)
    fitted = NumpyClosedFormRegressor().fit(scipy.sparse.csr_array(dense), y)
    assert fitted.solver_ == expected.solver_ == "svd"
    np.testing.assert_allclose(_parameters(fitted), _parameters(expected), rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(solvers, "dense_fits", lambda shape: False)
    with pytest.warns(UserWarning, match="sparse X too large to copy dense"):
        fallback = NumpyClosedFormRegressor().fit(scipy.sparse.csr_array(dense), y)
    assert fallback.solver_ == "eigh"
    np.testing.assert_allclose(fallback.predict(dense), expected.predict(dense), rtol=1e-8)


# ---------------------------------------------------------------------------------------------------------
# Several targets


@pytest.mark.parametrize("num_targets", [1, 3])
@pytest.mark.parametrize("sparse", [False, True])
def test_several_targets_match_linear_regression(num_targets, sparse):
    X, Y = _data(num_targets=num_targets)
    data = scipy.sparse.csr_array(X) if sparse else X
    est = NumpyClosedFormRegressor().fit(data, Y)
    oracle = LinearRegression().fit(X, Y)
    assert est.coef_.shape == oracle.coef_.shape == (num_targets, 4)
    assert est.intercept_.shape == oracle.intercept_.shape == (num_targets,)
    np.testing.assert_allclose(est.coef_, oracle.coef_, rtol=1e-10)
    np.testing.assert_allclose(est.intercept_, oracle.intercept_, rtol=1e-10)
    assert est.predict(data).shape == (len(X), num_targets)
    for j in range(num_targets):  # each target's statistics are those of its own fit
        alone = NumpyClosedFormRegressor().fit(X, Y[:, j])
        for name in ["sigma2_", "intercept_stderr_", "rsquared_"]:
            assert getattr(est, name)[j] == pytest.approx(getattr(alone, name), rel=1e-10)
        np.testing.assert_allclose(est.coef_stderr_[j], alone.coef_stderr_, rtol=1e-10)


@pytest.mark.parametrize("offset", [0.0, 1e4], ids=["float64 moments", "the factor"])
def test_several_targets_in_pieces_and_with_weights(offset):
    X, Y = _data(num_targets=2)
    X = X + offset
    w = _weights(len(X))
    whole = NumpyClosedFormRegressor().fit(X, Y, sample_weight=w)
    est = NumpyClosedFormRegressor()
    for i in range(0, len(X), 100):
        est.partial_fit(X[i : i + 100], Y[i : i + 100], sample_weight=w[i : i + 100])
    np.testing.assert_allclose(est.coef_, whole.coef_, rtol=1e-12)
    np.testing.assert_allclose(est.intercept_, whole.intercept_, rtol=1e-12)
    np.testing.assert_allclose(est.sigma2_, whole.sigma2_, rtol=1e-10)


def test_tags_declare_sparse_input_and_several_targets():
    tags = get_tags(NumpyClosedFormRegressor())
    assert tags.input_tags.sparse and tags.target_tags.multi_output and tags.target_tags.single_output
    assert tags.input_tags.dask
