"""Reading a user's CSV: every problem is one clear error naming the file, the line and the column."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linreg_compare.checks import UsageError
from linreg_compare.read import read_csv


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | st.text(alphabet=',\n\r"x1y2.e-naif \t', max_size=200).map(str.encode))
def test_the_csv_reader_fails_only_with_its_own_clear_error(content, tmp_path):
    path = tmp_path / "random.csv"
    path.write_bytes(content)
    try:
        X, y, names, *_ = read_csv(str(path), "y")
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert X.shape == (len(y), len(names)) and np.isfinite(X).all() and np.isfinite(y).all()


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text, words",
    [
        ("x1,y,x2,y\n1,2,3,4\n", "names the column(s) 'y' more than once"),
        (",x1,y\n0,1,2\n1,2,3\n", "column 1 has an empty name (an index written by pandas.to_csv?"),
        ("x1,x1,y\n1,2,3\n", "names the column(s) 'x1' more than once"),
        ("x1,x2,y\n1,2,3\n\n\n4,abc,6\n", "line 5, column 'x2' is 'abc', not a number"),  # blank lines counted
        ("x1,x2,y\n1,1_000,3\n", "line 2, column 'x2' is '1_000', not a number"),
        ("x1,x2,y\n1,2,NA\n", "has missing values: 'y' in 1 row; --dropna drops the 1 row that has one"),
        ("x1,x2,y\n1,2,-inf\n", "line 2, column 'y' is -inf, not a finite number"),
    ],
)
def test_bad_csv_files_are_one_error_naming_the_line_and_column(text, words, tmp_path):
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        read_csv(path, "y")
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_line_numbers_count_the_lines_of_quoted_fields_that_span_several(tmp_path):
    path = _write(tmp_path, 'note,x1,y\n"two\nlines",1,2\n"three\n\nlines",xyz,3\n"x",abc,4\n')
    with pytest.raises(UsageError, match="line 6, column 'x1' is 'xyz'"):  # the record starts on line 4
        read_csv(path, "y", ["x1"])
    path = _write(tmp_path, 'note,x1,y\n"two\nlines",1,2\n"x",abc,4\n')
    with pytest.raises(UsageError, match="line 4, column 'x1' is 'abc', not a number"):
        read_csv(path, "y", ["x1"])


def test_features_pick_columns_and_default_to_all_but_the_target(tmp_path):
    path = _write(tmp_path, "a,name,b,y\n1,alice,2,3\n4,bob,5,6\n7,carol,8,10\n")
    X, y, names, *_ = read_csv(path, "y", ["b", "a"])  # a text column is fine when it is not used
    assert names == ["b", "a"] and X.tolist() == [[2, 1], [5, 4], [8, 7]] and y.tolist() == [3, 6, 10]
    with pytest.raises(UsageError, match="line 2, column 'name' is 'alice', not a number.*numeric here: a,b"):
        read_csv(path, "y")
    for features, words in [
        (["a", "zz"], "--features 'zz' not a column"),
        (["a", "y"], "includes the target"),
        (["a", "a"], "distinct columns"),
    ]:
        with pytest.raises(UsageError, match=words):
            read_csv(path, "y", features)


def test_a_good_csv_gives_float64_arrays_with_a_bom_and_spaces(tmp_path):
    path = _write(tmp_path, "\ufeffx1, x2 ,y\n1, 2.5 ,3\n\n-4e1,5,6\n")
    X, y, names, *_ = read_csv(path, "y")
    assert names == ["x1", "x2"] and X.dtype == y.dtype == np.float64
    assert X.tolist() == [[1, 2.5], [-40, 5]] and y.tolist() == [3, 6]


def test_parquet_files_are_read_and_checked(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from linreg_compare.read import read_data

    good = str(tmp_path / "good.parquet")
    pq.write_table(pa.table({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "y": [1.0, 2.0, 4.0]}), good)
    X, y, names, *_ = read_data(good, "y")
    assert names == ["a", "b"] and X.tolist() == [[1, 0.5], [2, 1.5], [3, 2.5]] and y.tolist() == [1, 2, 4]
    bad = str(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "s": ["x", "y", "z"], "y": [1.0, 2.0, 4.0]}), bad)
    with pytest.raises(UsageError, match="has missing values: 'a' in 1 row"):
        read_data(bad, "y", ["a"])
    X, y, names, dropped, _ = read_data(bad, "y", ["a"], dropna=True)
    assert X.tolist() == [[1.0], [3.0]] and y.tolist() == [1.0, 4.0] and dropped == 1
    with pytest.raises(UsageError, match="column 's' holds string, not numbers"):
        read_data(bad, "y", ["s"])
    with pytest.raises(UsageError, match="cannot read --data .* as Parquet"):
        read_data(_write(tmp_path, "not parquet", "fake.parquet"), "y")


def test_blank_lines_before_the_header_and_a_header_over_two_lines(tmp_path):
    X, y, names, *_ = read_csv(_write(tmp_path, "\n\nx1,x2,y\n1,2,3\n4,5,7\n"), "y")
    assert names == ["x1", "x2"] and X.tolist() == [[1, 2], [4, 5]] and y.tolist() == [3, 7]
    X, y, names, *_ = read_csv(_write(tmp_path, '"first\nfeature",x2,y\n1,2,3\n'), "y")
    assert names == ["first\nfeature", "x2"] and X.tolist() == [[1, 2]]


def test_missing_values_are_counted_by_column_and_dropped_on_request(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,,3\n4,NaN,6\n7,8,\n,NA,1\n5,6,7\n")
    with pytest.raises(UsageError) as caught:
        read_csv(path, "y")
    message = str(caught.value)
    assert "'a' in 1 row, 'b' in 3 rows, 'y' in 1 row" in message and "--dropna drops the 4 rows" in message
    X, y, names, dropped, _ = read_csv(path, "y", dropna=True)
    assert X.tolist() == [[5, 6]] and y.tolist() == [7] and dropped == 4
    with pytest.raises(UsageError, match="every row has a missing value"):
        read_csv(_write(tmp_path, "a,y\n,1\n2,\n"), "y", dropna=True)


def test_text_columns_are_listed_in_one_line_pointing_to_features(tmp_path):
    path = _write(tmp_path, "city,a,day,b,y\nParis,1,mon,2,3\nRome,4,tue,5,6\n")
    with pytest.raises(UsageError) as caught:
        read_csv(path, "y")
    message = str(caught.value)
    assert "line 2, column 'city' is 'Paris', not a number" in message and "\n" not in message
    assert "the columns that hold text are 'city', 'day'" in message and "(numeric here: a,b)" in message
