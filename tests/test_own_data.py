"""The user's own data (issue: a step size from the data, standardised features, a held-out score, the race to
least squares, statuses that say what happened, messy columns), on scikit-learn's diabetes data (442 × 10,
unscaled), where the notebook's defaults diverge."""

import json
import warnings

import numpy as np
import pytest
from conftest import ITERATIVE
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

from compare import compare, main
from impls import NumpyClosedFormRegressor
from linreg_compare.checks import UsageError
from linreg_compare.split import folds, split
from linreg_compare.standardize import in_original_units, standardized
from linreg_compare.step_size import StepSizeWarning, spectrum

FAST = {"repeats": 1, "max_seconds": 0.1}


@pytest.fixture(scope="module")
def diabetes():
    data = load_diabetes(scaled=False)
    return data.data, data.target, list(data.feature_names)


@pytest.fixture(scope="module")
def diabetes_csv(tmp_path_factory, diabetes):
    X, y, names = diabetes
    path = tmp_path_factory.mktemp("data") / "diabetes.csv"
    rows = [",".join([*names, "target"])] + [",".join(map(repr, [*row, t])) for row, t in zip(X.tolist(), y.tolist())]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_with_no_flag_nothing_diverges_every_row_has_a_test_score_and_the_note_says_why(diabetes_csv, capsys):
    assert main(["--data", diabetes_csv, "--target", "target", "--format", "json", "--repeats", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["standardize"] is True and report["config"]["test"] == 0.2
    assert report["config"]["num_examples"] == 353 and report["config"]["num_test"] == 89
    for row in report["results"]:
        assert row["status"] == "ok" and row["test_mse"] > 0 and -1 < row["test_r2"] < 1
        assert len(row["distance_in_se"]) == 11 and row["param_distance_to_lstsq_in_se"] == max(row["distance_in_se"])
    step = report["step_size"]
    assert step["standardized"] and set(step["lr_limit"]) == set(ITERATIVE)
    assert "standardised training X" in step["note"] and "lr 0.03 is below each" in step["note"]


def test_the_stated_largest_eigenvalue_is_that_of_an_independent_eigvalsh(diabetes):
    X = diabetes[0]
    design = np.column_stack([np.ones(len(X)), X])
    assert spectrum(X, False).largest == pytest.approx(np.linalg.eigvalsh(design.T @ design / len(X))[-1], rel=1e-8)
    Z = np.column_stack([np.ones(len(X)), StandardScaler().fit_transform(X)])
    eigenvalues = np.linalg.eigvalsh(Z.T @ Z / len(X))
    seen = spectrum(X, True)
    assert seen.largest == pytest.approx(eigenvalues[-1], rel=1e-8)
    assert seen.condition == pytest.approx(eigenvalues[-1] / eigenvalues[0], rel=1e-6)


def test_an_lr_above_the_limit_is_said_before_fitting_and_the_diverged_rows_claim_no_distance(diabetes):
    X, y, _ = diabetes
    with pytest.warns(StepSizeWarning, match="lr 0.03 is above the stable step.*--standardize or --lr auto"):
        result = compare(X=X, y=y, standardize=False, **FAST)
    assert "is above the limit of torch-concise, torch-scratch, sklearn-sgd" in result.step["note"]
    for row in result.results:
        if row["impl"] in ITERATIVE:
            assert row["status"].startswith("diverged after epoch")
            assert row["param_distance_to_lstsq_in_se"] is None and row["distance_in_se"] is None
            assert row["param_distance_to_lstsq"] is None
    table = result.to_table()
    assert "(w, b: the epoch before)" in table


def test_lr_auto_without_standardising_does_not_diverge_and_reports_each_step(diabetes):
    X, y, _ = diabetes
    with warnings.catch_warnings():
        warnings.simplefilter("error", StepSizeWarning)
        result = compare(X=X, y=y, lr="auto", standardize=False, **FAST)
    # stable, but unstandardised features leave it crawling: not yet at least squares' training MSE, and said so
    statuses = [row["status"] for row in result.results]
    assert statuses[2] == "ok" and all(s == "ok" or s.startswith("not settled after 3 epochs") for s in statuses)
    for name in ITERATIVE:
        assert 0 < result.step["lr_used"][name] < result.step["lr_limit"][name]
    assert "lr auto: torch-concise" in result.step["note"]


def test_the_closed_form_gives_the_same_line_standardised_or_not(diabetes):
    X, y, _ = diabetes
    plain = NumpyClosedFormRegressor().fit(X, y)
    scaled = standardized(NumpyClosedFormRegressor()).fit(X, y)
    coef, intercept = in_original_units(scaled)
    np.testing.assert_allclose(coef, plain.coef_, rtol=1e-9)
    assert intercept == pytest.approx(plain.intercept_, rel=1e-9)


def test_split_and_folds_are_seeded_and_the_same_rows_for_every_implementation(diabetes):
    X, y, _ = diabetes
    first, again, other = split(X, y, 0.2, 0), split(X, y, 0.2, 0), split(X, y, 0.2, 1)
    assert len(first[2]) == 89 and len(first[0]) == 353
    np.testing.assert_array_equal(first[2], again[2])
    assert not np.array_equal(first[2], other[2])
    held_out = np.concatenate([fold[3] for fold in folds(X, y, 5, 0)])
    np.testing.assert_array_equal(np.sort(held_out), np.sort(y))  # every row held out exactly once
    result = compare(X=X, y=y, cv=3, impl=["numpy-closed-form", "sklearn-sgd"], **FAST)
    for row in result.results:
        assert len(row["cv_test_mse"]) == 3 and row["cv_test_mse"][0] == row["test_mse"]
        assert row["cv_test_mse_mean"] == pytest.approx(np.mean(row["cv_test_mse"]))
    assert "cv MSE (mean ± sd)" in result.to_table()


def test_the_race_stops_within_T_or_says_how_far_it_stayed(diabetes):
    # Full batches: gradient descent, which theory predicts from the condition number (here about 1.8).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]]) * [1, 10, 100] + [5, 0, -50]
    y = X @ [1, 0.2, -0.03] + 3 + rng.normal(size=400)
    result = compare(X=X, y=y, until=0.1, num_epochs=300, lr="auto", batch_size=1000, impl=["torch-scratch"])
    race = result.results[0]
    assert (
        race["status"] == f"within 0.1 SE after {race['epochs']} epochs" and race["param_distance_to_lstsq_in_se"] < 0.1
    )
    assert race["epochs"] == len(result.curves["torch-scratch"]["race"]["distances"]) < 300
    assert race["predicted_steps"] == race["predicted_epochs"]  # one step per epoch
    assert race["predicted_epochs"] / 2 <= race["epochs"] <= 2 * race["predicted_epochs"]
    assert "predicted" in result.to_table() and "until 0.1 SE" in result.to_table()
    # Minibatches of 10 at a constant step stall at SGD's noise floor: the row says how far.
    X, y, _ = diabetes
    short = compare(X=X, y=y, until=0.1, num_epochs=2, lr="auto", impl="torch-scratch")
    assert short.results[0]["status"].startswith("stopped after 2 epochs,") and "SE away" in short.results[0]["status"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"test_fraction": 1.0}, "--test-fraction must be a fraction in [0, 1); got 1.0"),
        ({"cv": 1}, "--cv must be an integer >= 2; got 1"),
        ({"until": 0}, "--until must be a finite number of standard errors > 0; got 0"),
        ({"cv": 3, "test_fraction": 0.3}, "--cv and --test-fraction 0.3 both hold rows out"),
        ({"lr": "fast"}, "--lr must be a finite number > 0 or auto"),
    ],
)
def test_bad_settings_name_the_flag(kwargs, words, diabetes):
    X, y, _ = diabetes
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace(")", r"\)").replace("(", r"\(")):
        compare(X=X, y=y, **kwargs)


def test_held_out_rows_of_the_synthetic_data_are_refused():
    with pytest.raises(UsageError, match="--test-fraction and --cv hold out rows of --data"):
        compare(test_fraction=0.2)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--lr", "0.1", "sweep", "init"], "--lr applies to the comparison, not to 'sweep init'"),
        (["--data", "{csv}", "--target", "target", "equivalences"], "--data applies to the comparison"),
        (["--lr", "fast"], "argument --lr: must be a number > 0 or auto; got 'fast'"),
        (["--data", "{csv}", "--target", "target", "--cv", "1"], "--cv must be an integer >= 2"),
        (["--data", "{csv}", "--target", "target", "--test-fraction", "-0.5"], "--test-fraction must be a fraction"),
        (["--dropna"], "--dropna drops rows of --data"),
    ],
)
def test_bad_command_lines_are_one_line_and_exit_2(argv, words, diabetes_csv, capsys):
    assert main([arg.replace("{csv}", diabetes_csv) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_the_lr_batch_sweep_runs_on_the_users_data(diabetes_csv, capsys):
    argv = ["--data", diabetes_csv, "--target", "target", "sweep", "lr-batch", "--format", "json"]
    assert main(argv) == 0
    study = json.loads(capsys.readouterr().out)
    assert study["config"]["data"] == diabetes_csv and study["config"]["standardize"] is True
    assert study["config"]["num_examples"] == 442
    rows = {(row["batch_size"], row["lr"]): row for row in study["rows"]}
    assert rows[10, 0.03]["status"] == "ok" and rows[10, 0.03]["final_train_mse"] < 3.5e3  # least squares: 2.86e3
    data = load_diabetes(scaled=False)
    limit = compare("torch-concise", X=data.data, y=data.target, test_fraction=0, **FAST).step
    above = [row for row in study["rows"] if row["lr"] > 2 * limit["lr_limit"]["torch-concise"]]
    assert above and all(row["status"].startswith("diverged") for row in above)


def test_missing_values_are_named_and_dropna_drops_them(tmp_path, capsys):
    path = tmp_path / "messy.csv"
    rng = np.random.default_rng(0)
    lines = ["a,b,c,y"] + [f"{x},{2 * x},1,{3 * x + 1 + rng.normal()}" for x in rng.integers(-9, 9, size=40)]
    lines[3], lines[7] = "0.5,,1,2.5", "NA,1.0,1,2.0"
    path.write_text("\n".join(lines) + "\n")
    assert main(["--data", str(path), "--target", "y"]) == 2
    assert "has missing values: 'a' in 1 row, 'b' in 1 row; --dropna drops the 2 rows" in capsys.readouterr().err
    assert main(["--data", str(path), "--target", "y", "--dropna", "--repeats", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the notes as one line: a long one is wrapped
    assert "(2 rows with a missing value dropped, --dropna)" in out
    assert "rank: X has rank 1 for 3 features ('c' is constant; columns that combine others)" in out  # b = 2a


@pytest.mark.parametrize("kind", ["csv", "parquet", "dask"])
def test_cv_and_test_fraction_on_csv_parquet_and_a_dask_directory(kind, diabetes, tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    X, y, names = diabetes
    table = pa.table({**{name: X[:, j] for j, name in enumerate(names)}, "target": y})
    if kind == "csv":
        path = str(tmp_path / "d.csv")
        pa.csv.write_csv(table, path) if hasattr(pa, "csv") else None
        import pyarrow.csv

        pyarrow.csv.write_csv(table, path)
    elif kind == "parquet":
        path = str(tmp_path / "d.parquet")
        pq.write_table(table, path)
    else:
        pytest.importorskip("dask")
        path = str(tmp_path / "parts")
        (tmp_path / "parts").mkdir()
        pq.write_table(table.slice(0, 200), f"{path}/a.parquet")
        pq.write_table(table.slice(200), f"{path}/b.parquet")
    base = ["--data", path, "--target", "target", "--format", "json", "--repeats", "1", "--impl", "numpy-closed-form"]
    base += ["--impl", "sklearn-sgd"]
    assert main([*base, "--cv", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert all(len(row["cv_test_mse"]) == 3 and row["test_mse"] > 0 for row in rows)
    assert main([*base, "--test-fraction", "0.3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["num_examples"] + report["config"]["num_test"] == 442
    assert abs(report["config"]["num_test"] - 0.3 * 442) < (30 if kind == "dask" else 1.01)
    assert all(row["test_r2"] is not None for row in report["results"])


def test_weights_from_a_column_weight_every_fit_the_reference_and_every_mse(tmp_path, capsys):
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 2)) * [1, 5] + [10, 0]
    weights = rng.integers(1, 4, size=300).astype(float)
    y = X @ [1.5, -0.2] + 2 + rng.normal(size=300) / np.sqrt(weights)
    path = tmp_path / "weighted.csv"
    lines = ["a,w,b,y"] + [f"{a!r},{w!r},{b!r},{t!r}" for (a, b), w, t in zip(X.tolist(), weights.tolist(), y.tolist())]
    path.write_text("\n".join(lines) + "\n")
    argv = ["--data", str(path), "--target", "y", "--weights", "w", "--test-fraction", "0", "--format", "json"]
    assert main([*argv, "--repeats", "1", "--lr", "auto"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["feature_names"] == ["a", "b"] and report["config"]["weighted"] is True
    wls = sm.WLS(y, sm.add_constant(X), weights=weights).fit()
    np.testing.assert_allclose(report["reference"]["coef"], wls.params[1:], rtol=1e-9)
    np.testing.assert_allclose(report["reference"]["coef_stderr"], wls.bse[1:], rtol=1e-9)
    assert report["reference"]["train_mse"] == pytest.approx(np.sum(weights * wls.resid**2) / weights.sum())
    assert all(not row["status"].startswith("diverged") and row["excess_train_mse"] >= 0 for row in report["results"])
    # The step size: the curvature of Σwᵢℓᵢ/|B|, [1, Z]ᵀW[1, Z]/n for the standardised Z.
    Z = np.column_stack([np.ones(300), StandardScaler().fit_transform(X)])
    expected = np.linalg.eigvalsh((Z * weights[:, None]).T @ Z / 300)[-1]
    assert report["step_size"]["lambda_max"] == pytest.approx(expected, rel=1e-8)
    assert main(["--data", str(path), "--target", "y", "--weights", "zz"]) == 2
    assert "--weights 'zz' is not a column" in capsys.readouterr().err
    for column, words in [(-weights, "must be numbers >= 0; "), (0 * weights, "must have a number > 0; every weight")]:
        bad = tmp_path / "bad_weights.csv"
        bad.write_text(
            "\n".join(
                ["a,w,y"] + [f"{a!r},{w!r},{t!r}" for a, w, t in zip(X[:, 0].tolist(), column.tolist(), y.tolist())]
            )
            + "\n"
        )
        assert main(["--data", str(bad), "--target", "y", "--weights", "w"]) == 2
        assert f"--weights 'w' {words}" in capsys.readouterr().err
    assert main(["--data", str(path), "--target", "y", "--weights", "a", "--features", "a,b"]) == 2
    assert "is the target or a feature" in capsys.readouterr().err


def test_the_measured_divergence_boundary_is_at_most_three_times_above_the_stated_limit():
    """benchmarks/step_size.py's measurement, on one small real data set (stackloss, 21 × 3, as given)."""
    import importlib.util
    import os

    from conftest import ROOT

    from impls import implementation
    from impls._step_size import step_limit

    spec = importlib.util.spec_from_file_location("step_size_bench", os.path.join(ROOT, "benchmarks", "step_size.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    X, y = bench.data_sets(quick=True)["stackloss (statsmodels), as given"]
    for name in ITERATIVE:
        limit = step_limit(implementation(name)(batch_size=10), X)
        stable, diverging = bench.boundary(name, X, y, limit, 10)
        assert limit <= diverging and stable <= 3 * limit


def test_dropna_on_a_dask_directory_counts_and_drops_the_rows(tmp_path, capsys):
    pytest.importorskip("dask")
    folder = tmp_path / "parts"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for part in range(2):
        lines = ["a,b,y"] + [f"{a},{b},{a - b + rng.normal()}" for a, b in rng.normal(size=(50, 2))]
        lines[5 + part] = "1.0,,2.0"
        (folder / f"p{part}.csv").write_text("\n".join(lines) + "\n")
    argv = ["--data", str(folder), "--target", "y", "--impl", "numpy-closed-form", "--test-fraction", "0"]
    assert main(argv) == 2
    assert "p0.csv has missing values: 'b' in 1 row" in capsys.readouterr().err
    assert main([*argv, "--dropna", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["num_examples"] == 98 and "(2 rows with a missing value dropped" in report["config"]["data"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"until": 0.5, "num_epochs": 0}, "--until races for at most --num-epochs epochs"),
        ({"until": 0.5, "impl": "numpy-closed-form"}, "--until races the iterative implementations"),
        ({"until": 0.5, "X_rows": 8}, "--until measures the distance to least squares in its standard errors"),
        ({"sample_weight": "held-out zero"}, "the weights (--weights) of the held-out rows are all 0"),
        ({"sample_weight": "negative"}, "must be 40 finite numbers >= 0, not all 0; got a negative number"),
        ({"sample_weight": "zeros"}, "must be 40 finite numbers >= 0, not all 0; got only zeros"),
        ({"sample_weight": "short"}, "must be 40 finite numbers >= 0, not all 0; got 39 numbers"),
        ({"sample_weight": "nan"}, "must be 40 finite numbers >= 0, not all 0; got a number that is not finite"),
        ({"sparse": True}, "X is a sparse matrix, which compare() does not take"),
    ],
)
def test_settings_that_cannot_give_a_true_answer_are_refused_before_any_fit(kwargs, words):
    rng = np.random.default_rng(5)
    rows = kwargs.pop("X_rows", 40)
    X = rng.normal(size=(rows, 10 if rows < 10 else 3))
    y = X[:, 0] + rng.normal(size=rows)
    if kwargs.get("sample_weight") == "held-out zero":
        held_out = split(X, y, 0.2, 0, np.arange(rows, dtype=float))[5]  # the held-out rows' own weights
        weights = np.ones(rows)
        weights[np.isin(np.arange(rows, dtype=float), held_out)] = 0
        kwargs["sample_weight"] = weights
    elif kwargs.get("sample_weight") in ("negative", "zeros", "short", "nan"):
        kwargs["sample_weight"] = {
            "negative": -np.ones(rows),
            "zeros": np.zeros(rows),
            "short": np.ones(rows - 1),
            "nan": np.r_[np.nan, np.ones(rows - 1)],
        }[kwargs["sample_weight"]]
    if kwargs.pop("sparse", False):
        import scipy.sparse

        X = scipy.sparse.csr_matrix(X)
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        compare(X=X, y=y, **FAST, **kwargs)


def test_a_constant_column_leaves_the_distance_measured_on_the_parameters_that_have_an_error():
    rng = np.random.default_rng(6)
    X = np.column_stack([rng.normal(size=(60, 2)), np.full(60, 7.0)])
    y = X[:, 0] - X[:, 1] + rng.normal(size=60)
    result = compare(X=X, y=y, until=0.5, num_epochs=60, impl=["sklearn-sgd", "numpy-closed-form"], **FAST)
    race = result.results[0]
    assert race["distance_in_se"][2] is None and race["param_distance_to_lstsq_in_se"] is not None
    assert race["status"].startswith("within 0.5 SE after")
    assert "'x3' is constant" in result.to_table()


def test_a_dask_split_that_leaves_a_file_with_no_held_out_row_scores_all_the_same(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pytest.importorskip("dask")
    folder = tmp_path / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 2))
    y = X @ [1.0, 2.0] + 0.1 * rng.normal(size=3)
    pq.write_table(pa.table({"a": X[:2, 0], "b": X[:2, 1], "y": y[:2]}), folder / "p0.parquet")
    pq.write_table(pa.table({"a": X[2:, 0], "b": X[2:, 1], "y": y[2:]}), folder / "p1.parquet")
    assert main(["--data", str(folder), "--target", "y", "--impl", "numpy-closed-form", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["num_test"] + report["config"]["num_examples"] == 3
    assert main(["--data", str(folder), "--target", "y", "--test-fraction", "0.01"]) == 2
    assert "--test-fraction 0.01 holds out none of the 3 rows; hold out more" in capsys.readouterr().err


def test_flags_of_the_comparison_after_a_subcommand_say_where_they_go(capsys, diabetes_csv):
    assert main(["sweep", "lr-batch", "--data", diabetes_csv, "--target", "target"]) == 2
    assert "compare.py's own flags go before a subcommand" in capsys.readouterr().err
    argv = ["--data", diabetes_csv, "--target", "target", "--no-standardize", "sweep", "lr-batch", "--format", "json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["config"]["standardize"] is False


def test_the_step_size_warning_is_one_line_before_the_table(diabetes_csv, capsys):
    argv = ["--data", diabetes_csv, "--target", "target", "--no-standardize", "--impl", "sklearn-sgd"]
    assert main([*argv, "--repeats", "1"]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert warning == [line for line in warning if line.startswith("compare.py: warning: lr 0.03 is above")]
    assert len(warning) == 1 and "--standardize or --lr auto sets a step from the data" in warning[0]


def test_the_plot_of_a_race_draws_it_against_epochs_and_seconds(diabetes_csv, tmp_path):
    pytest.importorskip("matplotlib")
    from linreg_compare import plot

    X, y = load_diabetes(scaled=False, return_X_y=True)
    result = compare(X=X, y=y, until=0.5, num_epochs=5, impl=["torch-scratch", "numpy-closed-form"], **FAST)
    figure = plot.draw_comparison(result)
    titles = [axis.get_title() for axis in figure.axes]
    assert "The race to least squares, in standard errors" in titles and "The same race against the clock" in titles
    race_axis = figure.axes[titles.index("The race to least squares, in standard errors")]
    np.testing.assert_allclose(
        race_axis.lines[0].get_ydata(), result.curves["torch-scratch"]["race"]["distances"], rtol=1e-12
    )
    out = tmp_path / "race.png"
    argv = ["--data", diabetes_csv, "--target", "target", "--until", "0.5", "--num-epochs", "3", "--plot", str(out)]
    assert main([*argv, "--impl", "torch-scratch"]) == 0 and out.read_bytes()[:4] == b"\x89PNG"
