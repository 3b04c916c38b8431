"""Every bad input gets a clear answer; divergence is reported; results are reproducible and never half-written."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

import compare as runner
from impls import IMPLEMENTATIONS, NAMES, DivergenceWarning, NumpyClosedFormRegressor, synthetic_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ITERATIVE = ["torch-concise", "torch-scratch", "sklearn-sgd"]
GOOD_X, GOOD_Y = np.ones((4, 2)), np.arange(4.0)

# ---------------------------------------------------------------------------------------------------------
# Arrays, through the library: scikit-learn's rules and messages, the same for all four.

BAD_ARRAYS = [
    ("X not 2-D", np.ones(4), GOOD_Y, ValueError, "Expected 2D array"),
    ("y not 1-D", GOOD_X, np.ones((4, 2)), ValueError, "y should be a 1d array"),
    ("lengths differ", GOOD_X, np.ones(3), ValueError, "inconsistent numbers of samples"),
    ("zero rows", np.ones((0, 2)), np.ones(0), ValueError, "0 sample(s)"),
    ("zero features", np.ones((4, 0)), GOOD_Y, ValueError, "0 feature(s)"),
    ("NaN in X", np.array([[1.0, np.nan]] * 4), GOOD_Y, ValueError, "Input X contains NaN"),
    ("inf in X", np.array([[1.0, np.inf]] * 4), GOOD_Y, ValueError, "Input X contains infinity"),
    ("NaN in y", GOOD_X, np.array([1.0, np.nan, 1, 1]), ValueError, "Input y contains NaN"),
    ("strings", np.array([["a", "b"]] * 4), GOOD_Y, ValueError, "could not convert string to float"),
    ("complex", GOOD_X + 1j, GOOD_Y, ValueError, "Complex data not supported"),
    ("sparse", scipy.sparse.csr_matrix(GOOD_X), GOOD_Y, TypeError, "Sparse data was passed"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case, X, y, error, words", BAD_ARRAYS, ids=[case[0] for case in BAD_ARRAYS])
def test_bad_arrays_are_refused_with_scikit_learns_message(name, case, X, y, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        IMPLEMENTATIONS[name]().fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_column_y_integer_and_float64_input_are_accepted(name):
    X, y = synthetic_data([2, -3.4], 4.2, 200, dtype=np.float64)
    with pytest.warns(Warning, match="column-vector y"):
        column = IMPLEMENTATIONS[name]().fit(X, y.reshape(-1, 1))
    np.testing.assert_array_equal(column.coef_, IMPLEMENTATIONS[name]().fit(X, y).coef_)
    integers = IMPLEMENTATIONS[name]().fit(np.arange(20).reshape(10, 2) % 3, np.arange(10) % 4)
    assert integers.coef_.dtype == np.float64 and integers.predict(np.ones((1, 2))).dtype == np.float64


@pytest.mark.parametrize("name", ["torch-concise", "torch-scratch"])
def test_torch_ones_compute_in_their_dtype(name):
    X, y = synthetic_data([2, -3.4], 4.2, 100, dtype=np.float64)
    single = IMPLEMENTATIONS[name]().fit(X, y)  # float64 input, float32 arithmetic (the default)
    double = IMPLEMENTATIONS[name](dtype="float64").fit(X, y)
    assert np.all(single.coef_ == single.coef_.astype(np.float32))  # values representable in float32
    assert not np.all(double.coef_ == double.coef_.astype(np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_predict_checks_its_input(name):
    est = IMPLEMENTATIONS[name]()
    with pytest.raises(NotFittedError):
        est.predict(GOOD_X)
    est.fit(*synthetic_data([2, -3.4], 4.2, 50))
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 2 features"):
        est.predict(np.ones((2, 3)))


# ---------------------------------------------------------------------------------------------------------
# Hyperparameters: checked at fit, in scikit-learn's wording (parameter, allowed range, value).

BAD_PARAMETERS = [
    ("lr", -1, "must be a float in the range (0.0, inf). Got -1 instead"),
    ("lr", 0.0, "must be a float in the range (0.0, inf). Got 0.0 instead"),
    ("lr", float("inf"), "must be a float in the range (0.0, inf). Got inf instead"),
    ("lr", float("nan"), "must be a float in the range (0.0, inf). Got nan instead"),
    ("lr", "fast", "must be a float in the range (0.0, inf). Got 'fast' instead"),
    ("batch_size", 0, "must be an int in the range [1, inf). Got 0 instead"),
    ("batch_size", 2.5, "must be an int in the range [1, inf). Got 2.5 instead"),
    ("batch_size", True, "must be an int, not a bool. Got True instead"),
    ("num_epochs", -1, "must be an int in the range [0, inf). Got -1 instead"),
    ("num_epochs", 1.5, "must be an int in the range [0, inf). Got 1.5 instead"),
    ("random_state", -3, "'random_state' parameter"),
]


@pytest.mark.parametrize("name", ITERATIVE)
@pytest.mark.parametrize("parameter, value, words", BAD_PARAMETERS, ids=[f"{p}={v!r}" for p, v, _ in BAD_PARAMETERS])
def test_bad_hyperparameters_raise_at_fit_naming_parameter_range_and_value(name, parameter, value, words):
    est = IMPLEMENTATIONS[name](**{parameter: value})  # accepted unchanged by __init__
    assert est.get_params()[parameter] is value
    with pytest.raises(ValueError) as caught:
        est.fit(GOOD_X, GOOD_Y)
    assert f"The '{parameter}' parameter of {type(est).__name__}" in str(caught.value)
    assert words in str(caught.value)


def test_unknown_reduction():
    with pytest.raises(
        ValueError, match=r"'reduction' parameter of TorchConciseRegressor must be a str among .*Got 'max'"
    ):
        IMPLEMENTATIONS["torch-concise"](reduction="max").fit(GOOD_X, GOOD_Y)


@pytest.mark.parametrize("name", ["torch-concise", "torch-scratch"])
@pytest.mark.parametrize("device", ["gpu", "cuda:99"] + ([] if __import__("torch").cuda.is_available() else ["cuda"]))
def test_unknown_or_unavailable_device(name, device):
    with pytest.raises(
        ValueError, match=rf"'device' parameter of .* must be a torch device available on this machine.*Got '{device}'"
    ):
        IMPLEMENTATIONS[name](device=device).fit(GOOD_X, GOOD_Y)


@pytest.mark.parametrize("name", ITERATIVE)
def test_batch_larger_than_the_data_is_one_batch(name):
    X, y = synthetic_data([2, -3.4], 4.2, 30)
    est = IMPLEMENTATIONS[name](batch_size=1000, num_epochs=2).fit(X, y)
    assert est.n_iter_ == 2 and np.isfinite(est.coef_).all()
    if name != "sklearn-sgd":
        assert len(est.set_params(record_steps=True).fit(X, y).coef_path_) == 3  # one step per epoch


# ---------------------------------------------------------------------------------------------------------
# Divergence


@pytest.mark.parametrize("name", ITERATIVE)
def test_divergence_stops_training_warns_once_and_keeps_finite_parameters(name):
    X, y = synthetic_data([2, -3.4], 4.2, 1000)
    lr = 5.0 if name != "sklearn-sgd" else 50.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = IMPLEMENTATIONS[name](lr=lr, num_epochs=5).fit(X, y)
    divergence = [w for w in caught if issubclass(w.category, DivergenceWarning)]
    assert len(divergence) == 1 and "diverged after epoch 1" in str(divergence[0].message)
    assert est.diverged_ and est.n_iter_ == 1 and len(est.loss_curve_) == 1
    assert np.isfinite(est.coef_).all() and np.isfinite(est.intercept_)
    assert np.isfinite(est.predict(X)).all()


def test_a_stable_run_is_not_flagged():
    est = IMPLEMENTATIONS["torch-scratch"](num_epochs=5).fit(*synthetic_data([2, -3.4], 4.2, 1000))
    assert not est.diverged_ and est.n_iter_ == 5


def test_runner_reports_divergence_as_a_status():
    result = runner.compare(["torch-concise", "sklearn-sgd"], lr=50.0, repeats=1)
    assert [row["status"] for row in result.results] == ["diverged after epoch 1"] * 2
    assert "nan" not in result.to_table().lower()


# ---------------------------------------------------------------------------------------------------------
# The command line: exit status 2, one line on standard error, what is wrong and what would be right.


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


BAD_COMMANDS = [
    (["--impl", "nope"], "--impl must be one of torch-concise"),
    (["--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["--lr", "-1"], "--lr must be a finite number > 0; got -1.0"),
    (["--lr", "nan"], "--lr must be a finite number > 0; got nan"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1; got 0"),
    (["--batch-size", "2.5"], "argument --batch-size: invalid int value: '2.5'"),
    (["--num-epochs", "-1"], "--num-epochs must be an integer >= 0; got -1"),
    (["--num-examples", "0"], "--num-examples must be an integer >= 1; got 0"),
    (["--noise", "-0.1"], "--noise must be a finite number >= 0"),
    (["--repeats", "0"], "--repeats must be an integer >= 1"),
    (["--seed", "-1"], "--seed must be an integer in [0, 2**32)"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["--device", "gpu"], "--device 'gpu' is not available here; use cpu"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--plot", "curves.jpg"], "--plot must name a .png file"),
    (["--data", "{missing}"], "--data and --target go together"),
    (["--data", "{missing}", "--target", "y"], "cannot read --data"),
    (["--data", "{empty}", "--target", "y"], "is empty; it needs a header row"),
    (["--data", "{header_only}", "--target", "y"], "has a header but no data rows"),
    (["--data", "{good}", "--target", "price"], "--target 'price' is not a column of"),
    (
        ["--data", "{good}", "--target", "y", "--true-w", "1", "2", "3", "--true-b", "0"],
        "--true-w has 3 numbers but the data have 2 features",
    ),
    (["--data", "{good}", "--target", "y", "--true-w", "1", "2"], "give both --true-w and --true-b"),
    (["--data", "{blank_cell}", "--target", "y"], "row 3, column 'x2' is empty"),
    (["--data", "{word_cell}", "--target", "y"], "row 2, column 'x1' is 'abc', not a number"),
    (["--data", "{nan_cell}", "--target", "y"], "row 2, column 'y' is nan, not a finite number"),
    (["--data", "{ragged}", "--target", "y"], "row 3 has 2 fields; the header has 3"),
    (["--data", "{binary}", "--target", "y"], "is not UTF-8 text"),
]


@pytest.fixture
def csv_files(tmp_path):
    return {
        "missing": str(tmp_path / "missing.csv"),
        "empty": _csv(tmp_path, "", "empty.csv"),
        "header_only": _csv(tmp_path, "x1,x2,y\n", "header.csv"),
        "good": _csv(tmp_path, "x1,x2,y\n1,2,3\n4,5,6\n7,8,10\n", "good.csv"),
        "blank_cell": _csv(tmp_path, "x1,x2,y\n1,2,3\n4,,6\n", "blank.csv"),
        "word_cell": _csv(tmp_path, "x1,x2,y\nabc,2,3\n", "word.csv"),
        "nan_cell": _csv(tmp_path, "x1,x2,y\n1,2,nan\n", "nan.csv"),
        "ragged": _csv(tmp_path, "x1,x2,y\n1,2,3\n4,5\n", "ragged.csv"),
        "binary": _csv(tmp_path, b"\xff\xfe\x00\x81garbage", "binary.csv"),
    }


@pytest.mark.parametrize("argv, words", BAD_COMMANDS, ids=[" ".join(argv) for argv, _ in BAD_COMMANDS])
def test_bad_command_lines_exit_2_with_one_line(argv, words, csv_files, capsys):
    argv = [arg.format(**csv_files) for arg in argv]
    assert runner.main(argv + ["--repeats", "1"] if "--repeats" not in argv else argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("compare.py: error: ")
    assert words in lines[0]


def test_a_real_process_exits_2_with_one_line_and_no_traceback():
    done = subprocess.run([sys.executable, "compare.py", "--lr", "abc"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_debug_shows_the_traceback():
    with pytest.raises(runner.UsageError):
        runner.main(["--lr", "-1", "--debug"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | st.text(alphabet=',\n\r"x1y2.e-naif \t', max_size=200).map(str.encode))
def test_the_csv_reader_fails_only_with_its_own_clear_error(content, tmp_path):
    path = tmp_path / "random.csv"
    path.write_bytes(content)
    try:
        X, y, names = runner.read_csv(str(path), "y")
    except runner.UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert X.shape == (len(y), len(names)) and np.isfinite(X).all() and np.isfinite(y).all()


# ---------------------------------------------------------------------------------------------------------
# Nothing half-written


@pytest.mark.parametrize("keep_old", [True, False])
def test_a_failed_write_leaves_the_old_file_or_none(tmp_path, keep_old):
    target = tmp_path / "report.json"
    if keep_old:
        target.write_text("old report")

    def write_half_then_fail(temporary):
        with open(temporary, "w") as file:
            file.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.write_atomically(str(target), write_half_then_fail)
    assert os.listdir(tmp_path) == (["report.json"] if keep_old else [])
    if keep_old:
        assert target.read_text() == "old report"


def test_a_failing_plot_leaves_the_old_png(tmp_path, monkeypatch):
    png = tmp_path / "curves.png"
    png.write_bytes(b"old picture")
    import matplotlib.figure

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as file:
            file.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    assert (
        runner.main(
            ["--impl", "numpy-closed-form", "--repeats", "1", "--plot", str(png), "--output", str(tmp_path / "r.txt")]
        )
        == 1
    )
    assert png.read_bytes() == b"old picture" and sorted(os.listdir(tmp_path)) == ["curves.png", "r.txt"]


# ---------------------------------------------------------------------------------------------------------
# Reproducible


def _results_without_clock(stdout: str) -> str:
    parsed = json.loads(stdout)
    rows = [{key: value for key, value in row.items() if "seconds" not in key} for row in parsed["results"]]
    return json.dumps({"config": parsed["config"], "reference": parsed["reference"], "results": rows}, sort_keys=True)


def test_same_flags_same_json_across_fresh_processes_and_seed_changes_it():
    def run(*flags):
        done = subprocess.run([sys.executable, "compare.py", "--format", "json", "--repeats", "1", *flags],
                              capture_output=True, text=True, cwd=ROOT, check=True)  # fmt: skip
        return _results_without_clock(done.stdout)

    first, second = run(), run()
    assert first == second
    other = json.loads(run("--seed", "1"))
    assert other["reference"] != json.loads(first)["reference"]  # the data changed


def test_seed_changes_the_minibatch_order_on_the_same_data():
    X, y = synthetic_data([2, -3.4], 4.2, 1000)
    a = IMPLEMENTATIONS["torch-scratch"](random_state=0, record_steps=True).fit(X, y)
    b = IMPLEMENTATIONS["torch-scratch"](random_state=1, record_steps=True).fit(X, y)
    assert not np.array_equal(a.coef_path_[1:], b.coef_path_[1:])


# ---------------------------------------------------------------------------------------------------------
# Properties on random well-conditioned problems


@settings(max_examples=30, deadline=None)
@given(
    num_examples=st.integers(10, 200),
    num_features=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    offset=st.floats(-100, 100),
)
def test_closed_form_matches_lstsq_on_random_problems(num_examples, num_features, seed, offset):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_examples, num_features)) + offset
    y = X @ rng.standard_normal(num_features) + rng.standard_normal() + rng.standard_normal(num_examples)
    est = NumpyClosedFormRegressor().fit(X, y)
    solution = np.linalg.lstsq(np.column_stack([X, np.ones(num_examples)]), y, rcond=None)[0]
    fitted = X @ est.coef_ + est.intercept_
    np.testing.assert_allclose(fitted, np.column_stack([X, np.ones(num_examples)]) @ solution, rtol=1e-8, atol=1e-8)


@settings(max_examples=10, deadline=None)
@given(num_features=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), name=st.sampled_from(ITERATIVE))
def test_iterative_ones_approach_least_squares_as_epochs_grow(num_features, seed, name):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, num_features))
    y = X @ rng.uniform(-3, 3, num_features) + rng.uniform(-3, 3) + 0.1 * rng.standard_normal(300)
    solution = np.linalg.lstsq(np.column_stack([X, np.ones(300)]), y, rcond=None)[0]

    def distance(epochs):
        est = IMPLEMENTATIONS[name](lr=0.03, num_epochs=epochs, random_state=seed % 1000).fit(X, y)
        return np.linalg.norm(np.append(est.coef_, est.intercept_) - solution)

    start, one, ten = np.linalg.norm(solution), distance(1), distance(10)
    assert one < start and ten < one and ten < 0.05 * start
