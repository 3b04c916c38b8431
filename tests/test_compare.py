"""The runner as a library and as a command: scoring, formats, plots, user data."""

import csv
import io
import json
import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

import compare as runner
from impls import NAMES, synthetic_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "compare.py"), *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture(scope="module")
def seed_result():
    return runner.compare(repeats=2)


def test_library_scores_every_implementation_alike(seed_result):
    rows = {row["impl"]: row for row in seed_result.results}
    assert list(rows) == list(NAMES)
    X, y = synthetic_data([2, -3.4], 4.2, 1000)
    lstsq = np.linalg.lstsq(np.column_stack([X, np.ones(1000)]).astype(np.float64), y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(seed_result.reference["coef"], lstsq[:2], rtol=1e-12)
    for row in rows.values():
        assert row["status"] == "ok"
        coef, intercept = np.array(row["coef"]), row["intercept"]
        # the runner's own scoring, recomputed here from the estimates it reports
        assert row["train_mse"] == pytest.approx(np.mean((X.astype(np.float64) @ coef + intercept - y) ** 2), rel=1e-9)
        assert row["coef_error"] == pytest.approx(np.linalg.norm(coef - [2, -3.4]), rel=1e-12)
        assert row["intercept_error"] == pytest.approx(abs(intercept - 4.2), rel=1e-12)
        assert row["param_distance_to_lstsq"] == pytest.approx(
            np.linalg.norm(np.append(coef, intercept) - lstsq), rel=1e-9
        )
        assert row["excess_train_mse"] >= -1e-15  # nothing beats least squares on its own sample
        assert 5e-5 < row["test_mse"] < 2e-4
        assert row["fit_seconds_q1"] <= row["fit_seconds"] <= row["fit_seconds_q3"] and row["cold_fit_seconds"] > 0
    assert rows["numpy-closed-form"]["param_distance_to_lstsq"] < 1e-10
    assert seed_result.reference["noise_floor_mse"] == pytest.approx(1e-4)
    assert seed_result.environment["torch"] != "not imported" and seed_result.environment["threads"] >= 1


def test_json_round_trips_with_the_promised_keys(seed_result):
    parsed = json.loads(seed_result.to_json())
    assert set(parsed) == {"config", "environment", "reference", "results"}
    assert {"coef", "intercept", "train_mse"} <= set(parsed["reference"])
    required = {
        "impl",
        "coef",
        "intercept",
        "coef_error",
        "intercept_error",
        "train_mse",
        "test_mse",
        "fit_seconds",
        "status",
    }
    for row in parsed["results"]:
        assert required <= set(row)
        timing = {key for key, value in row.items() if key.startswith(("fit_", "cold_"))}
        assert all("seconds" in key for key in timing)


def test_csv_round_trips_one_row_per_implementation(seed_result):
    rows = list(csv.DictReader(io.StringIO(seed_result.to_csv())))
    assert [row["impl"] for row in rows] == list(NAMES)
    for row, original in zip(rows, seed_result.results):
        assert json.loads(row["coef"]) == pytest.approx(original["coef"])
        assert float(row["train_mse"]) == pytest.approx(original["train_mse"])


def test_markdown_and_table_show_every_row_and_the_reference_lines(seed_result):
    markdown, table = seed_result.to_markdown(), seed_result.to_table()
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == 5 and "|---|" in markdown
    for name in NAMES:
        assert name in table and name in markdown
    assert "noise floor" in table and "least squares" in table
    assert str(seed_result) == table


def test_non_finite_numbers_are_null_in_json_never_bare_nan():
    result = runner.compare(["torch-scratch", "numpy-closed-form"], lr=50.0, repeats=1)
    assert result.results[0]["status"].startswith("diverged")
    text = result.to_json()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    result.results[0]["train_mse"] = float("nan")
    assert json.loads(result.to_json())["results"][0]["train_mse"] is None


def test_user_arrays_have_no_truth_but_keep_the_reference():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    y = X @ [1.0, 2.0, 3.0] - 1.0 + 0.1 * rng.standard_normal(300)
    result = runner.compare(X=X, y=y, repeats=1)
    for row in result.results:
        assert row["coef_error"] is None and row["test_mse"] is None and row["status"] == "ok"
        assert row["param_distance_to_lstsq"] < 0.2 * np.linalg.norm(result.reference["coef"])  # started at ~0
    assert result.results[2]["param_distance_to_lstsq"] < 1e-10
    assert "w error" not in result.to_table()


def test_an_error_in_one_implementation_leaves_the_others_running(monkeypatch):
    from impls import sklearn_sgd

    def broken_fit(self, X, y):
        raise RuntimeError("boom")

    monkeypatch.setattr(sklearn_sgd.SklearnSGDRegressor, "fit", broken_fit)
    result = runner.compare(["numpy-closed-form", "sklearn-sgd"], repeats=1)
    assert result.results[0]["status"] == "ok"
    assert result.results[1]["status"] == "error: RuntimeError: boom"
    assert result.results[1]["train_mse"] is None and "error: RuntimeError: boom" in result.to_table()


def test_default_command_prints_the_table(tmp_path):
    done = run_cli("--repeats", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("impl") and [line.split()[0] for line in lines[2:6]] == list(NAMES)
    assert all(line.rstrip().endswith("ok") for line in lines[2:6])
    assert done.stderr == ""  # no progress bar when standard error is not a terminal


def test_output_file_and_plot_png(tmp_path):
    out, png = tmp_path / "report.json", tmp_path / "curves.png"
    assert runner.main(["--repeats", "1", "--format", "json", "--output", str(out), "--plot", str(png)]) == 0
    assert json.loads(out.read_text())["results"][0]["impl"] == "torch-concise"
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 400 and image.shape[1] > 1000 and os.path.getsize(png) > 20_000
    assert image[..., :3].std() > 0.05  # something was drawn
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "report.json"]  # no temporary file left behind


def test_user_csv_end_to_end(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 2))
    y = X @ [0.5, -1.5] + 2.0 + 0.01 * rng.standard_normal(200)
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["a", "price", "b"])
        writer.writerows([[x0, target, x1] for (x0, x1), target in zip(X, y)])
    out = tmp_path / "out.csv"
    assert (
        runner.main(
            ["--data", str(path), "--target", "price", "--repeats", "1", "--format", "csv", "--output", str(out)]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out)))
    closed = next(row for row in rows if row["impl"] == "numpy-closed-form")
    np.testing.assert_allclose(json.loads(closed["coef"]), [0.5, -1.5], atol=0.01)
    assert closed["coef_error"] == ""  # no true parameters for user data
    assert runner.main(["--data", str(path), "--target", "price", "--true-w", "0.5", "-1.5", "--true-b", "2",
                        "--repeats", "1", "--format", "json", "--output", str(out)]) == 0  # fmt: skip
    closed = json.loads(out.read_text())["results"][2]
    assert closed["impl"] == "numpy-closed-form" and closed["coef_error"] < 0.01


def test_closed_form_alone_does_not_import_torch():
    code = (
        "import sys, compare; compare.main(['--impl', 'numpy-closed-form', '--repeats', '1']); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "numpy-closed-form" in done.stdout and "not imported" in done.stdout


def test_console_script_is_declared():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        assert tomllib.load(file)["project"]["scripts"]["linreg-compare"] == "compare:main"


def test_help_explains_every_flag_with_its_default():
    done = run_cli("--help")
    assert done.returncode == 0
    for flag in ["--impl", "--num-examples", "--true-w", "--true-b", "--noise", "--batch-size", "--lr", "--num-epochs",
                 "--seed", "--repeats", "--device", "--dtype", "--data", "--target", "--format", "--output", "--plot"]:  # fmt: skip
        assert flag in done.stdout
    assert "(default: 0.03)" in done.stdout


def test_progress_bar_only_on_a_terminal_and_only_with_tqdm(monkeypatch):
    import types

    made = []
    fake_tqdm = types.ModuleType("tqdm")
    fake_tqdm.tqdm = lambda **kwargs: made.append(kwargs) or "bar"
    monkeypatch.setitem(sys.modules, "tqdm", fake_tqdm)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert runner._progress(10, enabled=True) is None  # not a terminal: silent
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert runner._progress(10, enabled=False) is None  # not asked for
    assert runner._progress(10, enabled=True) == "bar"
    assert made[0]["file"] is sys.stderr and made[0]["total"] == 10 and made[0]["delay"] > 0
    monkeypatch.setitem(sys.modules, "tqdm", None)  # tqdm not installed: silent, no error
    assert runner._progress(10, enabled=True) is None
