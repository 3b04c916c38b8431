"""compare() as a library: one scoring for all, user arrays, an error or a divergence in one row, reruns."""

import json

import numpy as np
import pytest
from conftest import run_cli

from compare import compare
from impls import NAMES, synthetic_data


@pytest.fixture(scope="module")
def notebook_result():
    return compare(repeats=2)


def test_library_scores_every_implementation_alike(notebook_result):
    rows = {row["impl"]: row for row in notebook_result.results}
    assert list(rows) == list(NAMES)
    X, y = synthetic_data([2, -3.4], 4.2, 1000)
    reference = notebook_result.reference
    oracle = np.linalg.lstsq(np.column_stack([X, np.ones(1000)]).astype(np.float64), y.astype(np.float64), rcond=None)[
        0
    ]
    np.testing.assert_allclose(reference["coef"], oracle[:2], rtol=1e-12)  # the package's least squares is lstsq's
    lstsq = np.append(reference["coef"], reference["intercept"])
    stderr = np.append(reference["coef_stderr"], reference["intercept_stderr"])
    assert reference["solver"] == "numpy-closed-form, normal-equations"
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
        in_se = np.abs(np.append(coef, intercept) - lstsq) / stderr
        assert row["param_distance_to_lstsq_in_se"] == pytest.approx(in_se.max(), rel=1e-9)
        assert row["excess_train_mse"] >= -1e-15  # nothing beats least squares on its own sample
        assert 5e-5 < row["test_mse"] < 2e-4
        assert row["fit_seconds_q1"] <= row["fit_seconds"] <= row["fit_seconds_q3"] and row["cold_fit_seconds"] > 0
    assert rows["numpy-closed-form"]["param_distance_to_lstsq"] < 1e-12  # the reference is the package's own fit
    assert 0.5 < rows["torch-concise"]["param_distance_to_lstsq_in_se"] < 10  # 3 epochs: not yet negligible
    assert notebook_result.reference["noise_floor_mse"] == pytest.approx(1e-4)
    assert notebook_result.environment["torch"] != "not imported" and notebook_result.environment["threads"] >= 1


def test_user_arrays_have_no_truth_but_keep_the_reference():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    y = X @ [1.0, 2.0, 3.0] - 1.0 + 0.1 * rng.standard_normal(300)
    result = compare(X=X, y=y, repeats=1, test_fraction=0, num_epochs=20)
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
    result = compare(["numpy-closed-form", "sklearn-sgd"], repeats=1)
    assert result.results[0]["status"] == "ok"
    assert result.results[1]["status"] == "error: RuntimeError: boom"
    assert result.results[1]["train_mse"] is None and "error: RuntimeError: boom" in result.to_table()


def test_runner_reports_divergence_as_a_status():
    result = compare(["torch-concise", "sklearn-sgd"], lr=50.0, repeats=1)
    for row in result.results:
        assert row["status"] in ("diverged after epoch 1: MSE overflowed (w, b: the epoch before)",) or row[
            "status"
        ].startswith("diverged after epoch 1: MSE ")
    assert "lr 50 is above the limit of torch-concise, sklearn-sgd" in result.step["note"]
    assert "nan" not in result.to_table().lower()


def _results_without_clock(stdout: str) -> str:
    parsed = json.loads(stdout)
    rows = [{key: value for key, value in row.items() if "seconds" not in key} for row in parsed["results"]]
    return json.dumps({"config": parsed["config"], "reference": parsed["reference"], "results": rows}, sort_keys=True)


@pytest.mark.slow
def test_same_flags_same_json_across_fresh_processes_and_seed_changes_it():
    def run(*flags):
        done = run_cli("--format", "json", "--repeats", "1", *flags, check=True)
        return _results_without_clock(done.stdout)

    first, second = run(), run()
    assert first == second
    other = json.loads(run("--seed", "1"))
    assert other["reference"] != json.loads(first)["reference"]  # the data changed


def test_reference_standard_errors_are_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((200, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3 + 0.2 * rng.standard_normal(200)
    reference = compare(["numpy-closed-form"], X=X, y=y, repeats=1, test_fraction=0).reference
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    np.testing.assert_allclose(reference["coef_stderr"], ols.bse[1:], rtol=1e-9)
    assert reference["intercept_stderr"] == pytest.approx(ols.bse[0], rel=1e-9)


def test_scores_in_blocks_equal_the_direct_computation(monkeypatch):
    """Row blocks change nothing but the order of the float64 sums: agreement to 1e-12 relative."""
    from linreg_compare import score

    X, y = synthetic_data([2, -3.4, 0.5], 4.2, 5000)
    coef, intercept = np.array([1.9, -3.3, 0.6]), 4.0
    direct = float(np.mean((X.astype(np.float64) @ coef + intercept - y.astype(np.float64)) ** 2))
    monkeypatch.setattr(score, "SCORE_ROWS", 777)
    assert score.mse(X, y, coef, intercept) == pytest.approx(direct, rel=1e-12)


def test_numpy_scalars_are_accepted_and_serialised_as_plain_numbers():
    result = compare(
        ["numpy-closed-form"],
        num_examples=np.int64(50),
        seed=np.int64(3),
        lr=np.float32(0.1),
        noise=np.float64(0.5),
        repeats=np.int64(1),
    )
    parsed = json.loads(result.to_json())
    assert parsed["config"]["seed"] == 3 and parsed["config"]["num_examples"] == 50
    assert result.results[0]["status"] == "ok"


def test_a_device_is_checked_only_when_a_torch_implementation_uses_it():
    result = compare(["numpy-closed-form", "sklearn-sgd"], device="cuda:7", repeats=1)
    assert [row["status"] for row in result.results] == ["ok", "ok"] and result.environment["device"] == "cpu"


def test_max_seconds_stops_repeating_after_at_least_one_timed_fit(monkeypatch):
    from linreg_compare import fit

    clock = iter(range(0, 10**6, 10))  # every reading of the clock is 10 s later
    monkeypatch.setattr(fit.time, "perf_counter", lambda: next(clock))
    result = compare(["numpy-closed-form"], repeats=5, max_seconds=15)
    assert result.results[0]["fits_timed_within_max_seconds"] == 1
    assert "timing: median of the timed fits (1 of at most 5, within 15 s each)" in result.to_table()


def test_progress_lines_on_long_runs_when_standard_error_is_not_a_terminal(capsys):
    X = np.random.default_rng(0).standard_normal((100_000, 10))
    compare(["numpy-closed-form", "sklearn-sgd"], X=X, y=X.sum(axis=1), repeats=1, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["numpy-closed-form", "sklearn-sgd"]
    assert "1 timed fit," in lines[0] and lines[0].endswith("; ok")
    compare(["numpy-closed-form"], repeats=1, progress=True)  # a short run: silent
    assert capsys.readouterr().err == ""
