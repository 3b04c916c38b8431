"""The iterative methods as the minibatch SGD they are: the joint distance in standard errors, statuses that say
what happened, the noise floor against the distance measured, the race's monitor, its time bound and its progress,
and the condition number told apart into scaling and collinearity."""

import io
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from conftest import ITERATIVE

from compare import compare
from impls import DivergenceWarning, NumpyClosedFormRegressor, implementation, synthetic_data
from linreg_compare import noise_floor, race
from linreg_compare.score import Scores, joint_in_se, status
from linreg_compare.step_size import FloorWarning, spectrum


def _reference(X, y):
    fit = NumpyClosedFormRegressor().fit(X, y)
    return {
        "coef": fit.coef_.tolist(),
        "intercept": fit.intercept_,
        "coef_stderr": fit.coef_stderr_.tolist(),
        "intercept_stderr": fit.intercept_stderr_,
        "sigma2": fit.sigma2_,
        "weight_total": float(len(y)),
        "train_mse": float(np.mean((y - X @ fit.coef_ - fit.intercept_) ** 2)),
    }


def _in_se(coef, intercept, reference) -> float:
    stderr = np.append(reference["coef_stderr"], reference["intercept_stderr"])
    lstsq = np.append(reference["coef"], reference["intercept"])
    return float(np.max(np.abs(np.append(coef, intercept) - lstsq) / stderr))


def test_the_joint_distance_is_the_mahalanobis_distance_in_statsmodels_covariance():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3)) @ [[1, 0.9, 0], [0, 0.4, 0], [0, 0, 1]]  # correlated columns
    y = X @ [1.0, -2.0, 0.5] + 3 + rng.standard_normal(50)
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    theta = ols.params + [0.1, -0.2, 0.3, 0.05]
    expected = np.sqrt((theta - ols.params) @ np.linalg.solve(ols.cov_params(), theta - ols.params))
    reference = _reference(X, y)
    train_mse = float(np.mean((y - sm.add_constant(X) @ theta) ** 2))
    assert joint_in_se(train_mse, reference) == pytest.approx(expected, rel=1e-9)


def test_a_correlated_error_cannot_hide_from_the_joint_distance():
    # an error along the direction the two correlated columns share: each parameter moves by about one SE, and
    # jointly the fit is far, since that direction is well determined
    rng = np.random.default_rng(1)
    z = rng.standard_normal(200)
    X = np.column_stack([z + 0.05 * rng.standard_normal(200), z + 0.05 * rng.standard_normal(200)])
    y = X @ [1.0, 1.0] + rng.standard_normal(200)
    reference = _reference(X, y)
    coef = np.asarray(reference["coef"]) + np.asarray(reference["coef_stderr"]) * [1.0, 1.0]
    train_mse = float(np.mean((y - X @ coef - reference["intercept"]) ** 2))
    assert _in_se(coef, reference["intercept"], reference) == pytest.approx(1.0)
    assert joint_in_se(train_mse, reference) > 10


def test_ok_only_within_ten_percent_of_least_squares():
    reference = {"train_mse": 1.0}
    assert status(Scores(train_mse=1.09, epochs=3, loss_curve=[1.0]), reference, False) == "ok"
    unsettled = status(Scores(train_mse=1.35, epochs=3, loss_curve=[1.0]), reference, False)
    assert unsettled == "not settled after 3 epochs: train MSE 35 % above least squares'"
    far = status(Scores(train_mse=60.0, epochs=3, loss_curve=[1.0]), reference, False)
    assert far == "not settled after 3 epochs: train MSE 60 times least squares'"
    spiked = status(Scores(train_mse=2.0, epochs=4, loss_curve=[3.0, 6e10]), reference, True)
    assert spiked == "diverged after epoch 2: MSE 6e+10 (w, b: the epoch before)"


def test_no_row_says_ok_far_above_least_squares():
    # 300 rows, 3 epochs of batches of 10: the iterative methods are not there yet, and say so
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    y = X @ [1.0, 2.0, 3.0] - 1.0 + 0.1 * rng.standard_normal(300)
    result = compare(X=X, y=y, repeats=1, test_fraction=0)
    for row in result.results:
        settled = row["train_mse"] <= 1.1 * result.reference["train_mse"]
        assert (row["status"] == "ok") == settled
        assert row["joint_distance_in_se"] is not None


def test_the_condition_note_tells_scaling_from_collinearity():
    rng = np.random.default_rng(2)
    scaled = rng.standard_normal((100, 2)) * [1.0, 1e4]  # orthogonal columns of very different scales
    seen = spectrum(scaled, False)
    assert seen.condition_as_given > 1e6 and seen.condition_standardized < 2
    result = compare(X=scaled, y=scaled @ [1.0, 1e-4], repeats=1, standardize=False, impl=["torch-scratch"])
    assert "the columns' scales, not collinearity" in result.step["note"]
    z = rng.standard_normal(100)
    collinear = np.column_stack([z, z + 1e-4 * rng.standard_normal(100)])
    result = compare(X=collinear, y=z, repeats=1, impl=["torch-scratch"])
    assert "collinearity, strong" in result.step["note"]


# ---------------------------------------------------------------------------------------------------------
# The noise floor


def test_full_batches_have_no_noise_floor():
    X, y = synthetic_data([2, -3.4], 4.2, 200, random_state=0, dtype="float64")
    reference = _reference(X, y)
    theta = np.append(reference["intercept"], reference["coef"])
    noise = noise_floor.epoch_noise(X, y, theta, 0.5, 200)
    mean, covariance = noise_floor.stationary(noise)
    np.testing.assert_allclose(noise.ends, 0.0, atol=1e-12)  # every row once, Σ x̃ᵢrᵢ = 0: no noise at all
    assert np.abs(covariance).max() < 1e-20 and np.abs(mean).max() < 1e-12


@pytest.mark.parametrize("name", ITERATIVE)
def test_the_predicted_floor_is_the_distance_sgd_settles_at_on_the_notebooks_data(name):
    X, y = synthetic_data([2, -3.4], 4.2, 1000, random_state=0, dtype="float64")
    reference = _reference(X, y)
    estimator, distances = implementation(name)(), []
    for _ in range(40):
        estimator.partial_fit(X, y)
        distances.append(_in_se(estimator.coef_, estimator.intercept_, reference))
    predicted = noise_floor.for_row(estimator, X, y, reference)["noise_floor_in_se"]
    assert 0.5 < np.mean(distances[-20:]) / predicted < 2  # measured 0.9 to 1.1 (benchmarks/noise_floor.py)


def test_the_report_gives_the_floor_of_each_iterative_row_and_says_it():
    result = compare(repeats=1)
    floors = {row["impl"]: row.get("noise_floor_in_se") for row in result.results}
    assert floors["numpy-closed-form"] is None and all(floors[name] > 0.5 for name in ITERATIVE)
    assert any(note.startswith("where SGD settles:") for note in result.notes())


# ---------------------------------------------------------------------------------------------------------
# The race: fit's monitor, the time bound, the progress, what it can reach


@pytest.mark.parametrize("name", ITERATIVE)
def test_a_monitor_sees_every_epoch_and_stopping_it_is_fit_with_fewer_epochs(name):
    X, y = synthetic_data([2, -3.4], 4.2, 200, random_state=1)
    seen = []

    def monitor(epoch, coef, intercept):
        seen.append((epoch, coef.copy(), intercept))
        return epoch == 3

    stopped = implementation(name)(num_epochs=10, average=True).fit(X, y, monitor=monitor)
    fewer = implementation(name)(num_epochs=3, average=True).fit(X, y)
    assert [epoch for epoch, *_ in seen] == [1, 2, 3]
    np.testing.assert_array_equal(stopped.coef_, fewer.coef_)
    np.testing.assert_array_equal(seen[-1][1], fewer.coef_)
    assert stopped.n_iter_ == 3 and not stopped.diverged_ and not hasattr(stopped, "_monitor")


def test_a_race_stops_for_time_and_says_so():
    X, y = synthetic_data([2, -3.4], 4.2, 1000, random_state=0)
    estimator = implementation("torch-scratch")()
    ran = race.run(estimator, X, y, lambda coef, intercept: 5.0, 0.1, 50, max_seconds=1e-9)
    assert ran.out_of_time and ran.epochs == 1
    assert race.status(ran, 0.1) == "stopped for time after 1 epochs (1e-09 s, --max-seconds), 5 SE away"


def test_a_long_race_shows_progress_as_plain_lines_off_a_terminal(monkeypatch):
    monkeypatch.setattr(race, "PROGRESS_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(race, "PLAIN_LINE_EVERY_SECONDS", 0.0)
    stream = io.StringIO()
    progress = race.RaceProgress("torch-scratch", 3, stream)
    X, y = synthetic_data([2, -3.4], 4.2, 100, random_state=0)
    race.run(implementation("torch-scratch")(), X, y, lambda coef, intercept: 5.0, 0.1, 3, progress=progress)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("compare.py: torch-scratch racing: epoch 1 of at most 3, 5 SE away") and len(lines) == 3


def test_a_race_whose_floor_is_above_the_bar_says_so_before_it_runs():
    with pytest.warns(FloorWarning, match="constant steps settle about .* SE from least squares, above --until 0.1"):
        result = compare(["torch-scratch"], until=0.1, num_epochs=5, repeats=1)
    assert result.results[0]["noise_floor_in_se"] > 0.1
    assert "never (floor" in result.to_table()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FloorWarning)
        warnings.simplefilter("ignore", DivergenceWarning)
        averaged = compare(["torch-scratch"], until=0.1, num_epochs=40, repeats=1, average=True)
    row = averaged.results[0]
    assert row["status"].startswith("within 0.1 SE after") and row["predicted_average_epochs"] is not None


# ---------------------------------------------------------------------------------------------------------
# The report a practitioner reads (issue #30)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_reference_is_statsmodels_summary_under_its_own_names(weighted):
    from statsmodels import datasets

    frame = datasets.grunfeld.load_pandas().data.select_dtypes("number").dropna()
    X, y = np.array(frame.drop(columns=["invest"]), dtype=float), np.array(frame["invest"], dtype=float)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    reference = compare(["numpy-closed-form"], X=X, y=y, sample_weight=w, test_fraction=0, repeats=1).reference
    fit = (sm.WLS(y, sm.add_constant(X), weights=w) if weighted else sm.OLS(y, sm.add_constant(X))).fit()
    for name in ["params", "bse", "tvalues", "conf_int", "rsquared", "rsquared_adj", "fvalue"]:
        expected = fit.conf_int() if name == "conf_int" else getattr(fit, name)
        np.testing.assert_allclose(reference[name], expected, rtol=1e-8, err_msg=name)
    np.testing.assert_allclose(reference["pvalues"], fit.pvalues, rtol=1e-9, atol=1e-300)
    assert reference["f_pvalue"] == pytest.approx(fit.f_pvalue, rel=1e-9, abs=1e-300)
    assert reference["df_resid"] == fit.df_resid and reference["df_model"] == fit.df_model


def test_the_target_is_named_and_given_once(tmp_path, capsys):
    from compare import main

    path = tmp_path / "prices.csv"
    rng = np.random.default_rng(0)
    rows = [f"{a},{b},{2 * a - b + rng.normal()}" for a, b in rng.normal(size=(30, 2))]
    path.write_text("a,b,price\n" + "\n".join(rows) + "\n")
    argv = ["--data", str(path), "--impl", "numpy-closed-form", "--repeats", "1"]
    assert main([*argv, "--target", "price", "--format", "json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["config"]["target"] == "price"
    assert main([*argv, "--target", "a", "--target", "price"]) == 2
    assert "--target was given twice ('a', then 'price')" in capsys.readouterr().err
    assert main([*argv, "--target", "a,price"]) == 2
    assert "The library fits several targets at once" in capsys.readouterr().err


def test_an_implementation_named_twice_runs_once():
    result = compare(["numpy-closed-form", "numpy-closed-form"], repeats=1)
    assert [row["impl"] for row in result.results] == ["numpy-closed-form"]


def test_the_average_flag_reaches_the_estimators_and_the_report(capsys):
    import json

    from compare import main

    argv = ["--average", "--impl", "torch-scratch", "--num-epochs", "4", "--repeats", "1", "--format", "json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["average"] is True and report["results"][0]["predicted_in_se"] is not None
