"""The runner on data read by dask: a directory or glob of Parquet or CSV files, on a cluster or in threads.

The closed form, the reference and the scores are computed where the data live; the iterative
implementations fit the data gathered, a sample, or are skipped when the data would not fit in memory.
"""

import contextlib
import io
import json

import numpy as np
import pytest
from conftest import run_cli

from compare import compare, main
from impls import NumpyClosedFormRegressor, synthetic_data
from linreg_compare import scale

da = pytest.importorskip("dask.array")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pacsv = pytest.importorskip("pyarrow.csv")

TRUE_W, TRUE_B = [2.0, -3.4, 1.5], 4.2


def _write_parts(folder, X, y, parts, kind="parquet"):
    """X and y split into ``parts`` files of columns a, b, c and y."""
    folder.mkdir(exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(X)), parts)):
        columns = {name: X[rows, j] for j, name in enumerate("abc"[: X.shape[1]])} | {"y": y[rows]}
        if kind == "parquet":
            pq.write_table(pa.table(columns), folder / f"part{i}.parquet")
        else:
            pacsv.write_csv(pa.table(columns), folder / f"part{i}.csv")
    return folder


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory):
    X, y = synthetic_data(TRUE_W, TRUE_B, 6000, random_state=5, dtype="float64")
    return _write_parts(tmp_path_factory.mktemp("parquet"), X, y, 4), X, y


def _json(*argv):
    done = run_cli(*argv, "--format", "json", "--repeats", "1")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_parquet_directory_on_worker_processes_agrees_with_the_in_memory_run(parquet_dir):
    folder, X, y = parquet_dir
    on_cluster = _json(
        "--data", str(folder), "--target", "y", "--scheduler", "processes", "--num-epochs", "1", "--test-fraction", "0"
    )
    in_memory = compare(X=X, y=y, repeats=1, num_epochs=1, feature_names=["a", "b", "c"], test_fraction=0)
    assert on_cluster["config"]["data"] == f"{folder} (4 files, dask processes)" and on_cluster["config"]["dask"]
    assert on_cluster["config"]["num_examples"] == 6000 and on_cluster["config"]["feature_names"] == ["a", "b", "c"]
    # Sums in another order (by file, then a tree): the same numbers to rounding.
    for key in ["coef", "coef_stderr", "train_mse"]:
        np.testing.assert_allclose(on_cluster["reference"][key], in_memory.reference[key], rtol=1e-10)
    for row, expected in zip(on_cluster["results"], in_memory.results, strict=True):
        assert row["status"] == "ok" and row["impl"] == expected["impl"]
        np.testing.assert_allclose(row["coef"], expected["coef"], rtol=1e-10)
        assert row["train_mse"] == pytest.approx(expected["train_mse"], rel=1e-10)


@pytest.mark.slow
def test_a_sample_fits_the_iterative_ones_on_n_rows_and_scores_them_on_all(tmp_path):
    X, y = synthetic_data(TRUE_W[:2], TRUE_B, 3000, random_state=2, dtype="float64")
    folder = _write_parts(tmp_path / "csv", X, y, 3, kind="csv")
    result = _json(
        "--data",
        str(folder / "*.csv"),
        "--target",
        "y",
        "--sample",
        "500",
        "--impl",
        "torch-scratch",
        "--impl",
        "numpy-closed-form",
        "--seed",
        "4",
        "--test-fraction",
        "0",
    )
    scratch, closed = result["results"]
    # 3 epochs of 50 steps: not yet at least squares' training MSE, which the status says, with where it trained
    assert scratch["status"].endswith("(on a uniform sample of 500 of the 3000 rows)") and closed["status"] == "ok"
    assert scratch["status"].startswith(("ok", "not settled after 3 epochs"))
    assert result["config"]["sample"] == 500
    # Trained on 500 rows, scored on all 3000, as the in-memory scoring of the same line.
    line = np.asarray(scratch["coef"]) @ X.T + scratch["intercept"]
    assert scratch["train_mse"] == pytest.approx(np.mean((line - y) ** 2), rel=1e-10)
    again = _json(
        *("--data", str(folder / "*.csv"), "--target", "y", "--sample", "500", "--impl", "torch-scratch"),
        *("--seed", "4", "--test-fraction", "0"),
    )
    assert again["results"][0]["coef"] == scratch["coef"]  # the same seed draws the same rows


def test_data_larger_than_memory_skip_the_iterative_ones_with_the_reason(monkeypatch, client, capsys):
    X, y = synthetic_data(TRUE_W, TRUE_B, 4000, random_state=1, dtype="float64")
    monkeypatch.setattr(scale, "available_memory", lambda: 10_000)
    result = compare(X=da.from_array(X, chunks=(1000, 3)), y=da.from_array(y, chunks=1000), repeats=1)
    rows = {row["impl"]: row for row in result.results}
    assert rows["numpy-closed-form"]["status"] == "ok"
    for name in ["torch-concise", "torch-scratch", "sklearn-sgd"]:
        assert rows[name]["status"].startswith("skipped: data larger than memory (")
        assert "--sample N" in rows[name]["status"] and rows[name]["coef"] is None
    assert "skipped: data larger than memory" in result.to_table()


def test_the_library_scores_dask_arrays_without_gathering_them(client, no_gathering):
    X, y = synthetic_data(TRUE_W, TRUE_B, 5000, random_state=3, dtype="float64")
    result = compare(
        "numpy-closed-form",
        X=da.from_array(X, chunks=(700, 3)),
        y=da.from_array(y, chunks=700),
        repeats=1,
        test_fraction=0,
    )
    expected = compare("numpy-closed-form", X=X, y=y, repeats=1, test_fraction=0)
    np.testing.assert_allclose(result.results[0]["coef"], expected.results[0]["coef"], rtol=1e-12)
    assert result.reference["train_mse"] == pytest.approx(expected.reference["train_mse"], rel=1e-12)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--data", "{good}", "--target", "y", "--sample", "5"], "--scheduler and --sample apply to --data read with"),
        (["--data", "{folder}", "--target", "y", "--sample", "0"], "--sample must be an integer >= 1; got 0"),
        (["--data", "{folder}", "--target", "y", "--scheduler", "gpu"], "--scheduler must be threads, processes or"),
        (["--data", "{empty}", "--target", "y"], "names no file"),
        (["--data", "{mixed}", "--target", "y"], "mixes Parquet and CSV files"),
        (["--data", "{folder}", "--target", "z"], "--target 'z' is not a column of"),
        (
            ["--data", "{holes}", "--target", "y", "--impl", "numpy-closed-form"],
            "part0.parquet has missing values: 'b' in 1 row; --dropna drops the 1 row",
        ),
    ],
)
def test_bad_dask_command_lines_exit_2_with_one_line(argv, words, tmp_path, capsys):
    X, y = synthetic_data(TRUE_W, TRUE_B, 60, dtype="float64")
    folders = {name: tmp_path / name for name in ["folder", "empty", "mixed", "holes"]}
    _write_parts(folders["folder"], X, y, 2)
    folders["empty"].mkdir()
    _write_parts(_write_parts(folders["mixed"], X, y, 2), X, y, 2, kind="csv")
    X[7, 1] = np.nan
    _write_parts(folders["holes"], X, y, 2)
    good = _write_parts(tmp_path / "one", X[:10], y[:10], 1) / "part0.parquet"
    argv = [arg.format(good=good, **folders) for arg in argv]
    assert main([*argv, "--repeats", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and words in captured.err


def test_the_library_refuses_a_sample_of_data_already_in_memory():
    X, y = synthetic_data(TRUE_W, TRUE_B, 50, dtype="float64")
    with pytest.raises(ValueError, match="--sample applies to data in dask arrays"):
        compare("numpy-closed-form", X=X, y=y, sample=10)


def test_the_plot_of_dask_data_reads_the_moments_where_the_data_live(client, monkeypatch):
    pytest.importorskip("matplotlib")
    from linreg_compare import plot

    X, y = synthetic_data(TRUE_W[:2], TRUE_B, 3000, random_state=6, dtype="float64")
    result = compare(
        ["torch-scratch", "numpy-closed-form"],
        X=da.from_array(X, chunks=(700, 2)),
        y=da.from_array(y, chunks=700),
        repeats=1,
        record_paths=True,
        test_fraction=0,
    )
    monkeypatch.setattr(da.Array, "__array__", lambda self, *args, **kwargs: pytest.fail("X was gathered"))
    figure = plot.draw_comparison(result)
    in_memory = plot.draw_comparison(
        compare(["torch-scratch", "numpy-closed-form"], X=X, y=y, repeats=1, record_paths=True, test_fraction=0)
    )
    loss_lines = [figure.axes[0].lines[0].get_ydata(), in_memory.axes[0].lines[0].get_ydata()]
    np.testing.assert_allclose(*loss_lines, rtol=1e-9)


def test_a_scheduler_address_where_none_answers_exits_2_with_one_line(parquet_dir, capsys):
    import socket

    with socket.socket() as probe:  # a port free on 127.0.0.1, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    assert main(["--data", str(parquet_dir[0]), "--target", "y", "--scheduler", address, "--repeats", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert f"--scheduler {address}: no dask scheduler answered" in captured.err


# ---------------------------------------------------------------------------------------------------------
# Files of a directory are matched by column name; empty files add nothing


def main_output(argv) -> str:
    """What ``compare.py ARGV --format json --repeats 1`` prints, run in this process."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main([*argv, "--format", "json", "--repeats", "1"]) == 0
    return out.getvalue()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_files_listing_their_columns_in_another_order_are_read_by_name(kind, tmp_path):
    X, y = synthetic_data(TRUE_W, TRUE_B, 90, random_state=3, dtype="float64")
    folder = _write_parts(tmp_path / "parts", X, y, 3, kind=kind)
    reordered = pa.table({"y": y[30:60], "c": X[30:60, 2], "a": X[30:60, 0], "b": X[30:60, 1]})
    (pq.write_table if kind == "parquet" else pacsv.write_csv)(reordered, folder / f"part1.{kind}")
    empty = pa.table({name: pa.array([], pa.float64()) for name in "abcy"})
    (pq.write_table if kind == "parquet" else pacsv.write_csv)(empty, folder / f"part0b.{kind}")  # zero rows
    memory = compare("numpy-closed-form", X=X, y=y, repeats=1, test_fraction=0).results[0]
    argv = ["--data", str(folder), "--target", "y", "--impl", "numpy-closed-form", "--test-fraction", "0"]
    report = json.loads(main_output(argv))
    assert report["config"]["num_examples"] == 90 and report["config"]["feature_names"] == ["a", "b", "c"]
    np.testing.assert_allclose(report["results"][0]["coef"], memory["coef"], rtol=1e-10)


@pytest.mark.parametrize(
    "columns, words",
    [
        ({"a": [1.0], "b": [2.0], "y": [3.0]}, "lacks 'c'"),
        ({**dict.fromkeys("abcy", [1.0]), "e": [5.0]}, "has 'e' too"),
    ],
)
def test_a_file_without_the_first_files_columns_is_one_line_naming_it(columns, words, tmp_path, capsys):
    X, y = synthetic_data(TRUE_W, TRUE_B, 60, dtype="float64")
    folder = _write_parts(tmp_path / "parts", X, y, 2, kind="csv")
    pacsv.write_csv(pa.table(columns), folder / "part9.csv")
    assert main(["--data", str(folder), "--target", "y", "--repeats", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"part9.csv {words}; every file needs the columns of" in err, err


def test_predict_checks_a_dask_dataframes_column_names_as_pandas_ones():
    pandas = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, y = synthetic_data(TRUE_W, TRUE_B, 60, dtype="float64")
    frame = pandas.DataFrame(X, columns=list("abc"))
    model = NumpyClosedFormRegressor().fit(dd.from_pandas(frame, npartitions=2), y)
    np.testing.assert_allclose(model.predict(dd.from_pandas(frame, npartitions=3)).compute(), model.predict(frame))
    for other in [frame[["c", "a", "b"]], frame.rename(columns={"a": "z"})]:
        with pytest.raises(ValueError, match="feature names should match") as from_pandas:
            model.predict(other)
        with pytest.raises(ValueError, match="feature names should match") as from_dask:
            model.predict(dd.from_pandas(other, npartitions=2))
        assert str(from_dask.value) == str(from_pandas.value)


LATER_FILE_PROBLEMS = [
    ("a,b,c,y\n1,2,3,4\n5,abc,7,8\n", "part9.csv line 3, column 'b' is 'abc', not a number"),
    ("a,b,c,y\n1,2,3,4\n5,,7,8\n", "part9.csv has missing values: 'b' in 1 row"),
    ("a,b,c,y\n1,2,3,4\n5,6,7\n", "part9.csv line 3 has 3 fields; the header has 4"),
    ("a,b,c,y\n1,2,3,4\n5,6,7,inf\n", "part9.csv line 3, column 'y' is inf, not a finite number"),
]


@pytest.mark.parametrize("text, words", LATER_FILE_PROBLEMS, ids=[words for _, words in LATER_FILE_PROBLEMS])
def test_a_bad_value_in_a_later_csv_file_is_one_line_naming_the_file_and_line(text, words, tmp_path, capsys):
    X, y = synthetic_data(TRUE_W, TRUE_B, 60, dtype="float64")
    folder = _write_parts(tmp_path / "parts", X, y, 2, kind="csv")
    (folder / "part9.csv").write_text(text)
    assert main(["--data", str(folder), "--target", "y", "--repeats", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize(
    "write, words",
    [
        (lambda path: path.write_bytes(b""), "cannot read {path} (--data) as Parquet"),
        (lambda path: path.write_bytes(b"PAR1 not really"), "cannot read {path} (--data) as Parquet"),
        (lambda path: pq.write_table(pa.table({"a": ["x"], "b": [1.0], "c": [1.0], "y": [1.0]}), path), "holds string"),
        (
            lambda path: pq.write_table(
                pa.table({"a": [None, 1.0], "b": [1.0] * 2, "c": [1.0] * 2, "y": [1.0] * 2}), path
            ),
            "{path} has missing values: 'a' in 1 row",
        ),
    ],
    ids=["empty", "corrupt", "strings", "missing"],
)
def test_a_bad_later_parquet_file_is_one_line_naming_it(write, words, tmp_path, capsys):
    X, y = synthetic_data(TRUE_W, TRUE_B, 60, dtype="float64")
    folder = _write_parts(tmp_path / "parts", X, y, 2)
    write(folder / "part9.parquet")
    assert main(["--data", str(folder), "--target", "y", "--repeats", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words.format(path=folder / "part9.parquet") in err, err


def test_a_file_whose_name_has_glob_characters_is_that_file(tmp_path, monkeypatch):
    X, y = synthetic_data(TRUE_W, TRUE_B, 40, dtype="float64")
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}), tmp_path / "data[1].parquet")
    monkeypatch.chdir(tmp_path)
    argv = ["--data", "data[1].parquet", "--target", "y", "--impl", "numpy-closed-form", "--test-fraction", "0"]
    report = json.loads(main_output(argv))
    assert report["config"]["num_examples"] == 40 and report["config"]["dask"] is False
