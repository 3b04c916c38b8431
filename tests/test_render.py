"""The comparison rendered as JSON, CSV, markdown and a table."""

import csv
import io
import json

import pytest

from compare import compare
from impls import NAMES


@pytest.fixture(scope="module")
def notebook_result():
    return compare(repeats=1)


def test_json_round_trips_with_the_promised_keys(notebook_result):
    parsed = json.loads(notebook_result.to_json())
    assert set(parsed) == {"config", "environment", "reference", "step_size", "results"}
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


def test_csv_round_trips_one_row_per_implementation(notebook_result):
    rows = list(csv.DictReader(io.StringIO(notebook_result.to_csv())))
    assert [row["impl"] for row in rows] == [*NAMES, "least squares (reference)"]
    assert all(json.loads(row["parameters"]) == ["(intercept)", "x1", "x2"] and row["target"] == "y" for row in rows)
    assert json.loads(rows[-1]["bse"]) == pytest.approx(notebook_result.reference["bse"])
    for row, original in zip(rows, notebook_result.results):
        assert json.loads(row["coef"]) == pytest.approx(original["coef"])
        assert float(row["train_mse"]) == pytest.approx(original["train_mse"])


def test_markdown_and_table_show_every_row_and_the_reference_lines(notebook_result):
    markdown, table = notebook_result.to_markdown(), notebook_result.to_table()
    # three tables: the rows, the parameters by implementation, least squares' summary (a header and 4, 3, 3 rows)
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == 5 + 4 + 4 and markdown.count("\n|---|") == 3
    for name in NAMES:
        assert name in table and name in markdown
    assert "noise floor" in table and "least squares" in table
    assert str(notebook_result) == table


def test_non_finite_numbers_are_null_in_json_never_bare_nan():
    result = compare(["torch-scratch", "numpy-closed-form"], lr=50.0, repeats=1)
    assert result.results[0]["status"].startswith("diverged")
    text = result.to_json()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    result.results[0]["train_mse"] = float("nan")
    assert json.loads(result.to_json())["results"][0]["train_mse"] is None
