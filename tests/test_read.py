"""Reading a user's CSV: every problem is one clear error naming the file, the line and the column."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.checks import UsageError
from runner.read import read_csv


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | st.text(alphabet=',\n\r"x1y2.e-naif \t', max_size=200).map(str.encode))
def test_the_csv_reader_fails_only_with_its_own_clear_error(content, tmp_path):
    path = tmp_path / "random.csv"
    path.write_bytes(content)
    try:
        X, y, names = read_csv(str(path), "y")
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert X.shape == (len(y), len(names)) and np.isfinite(X).all() and np.isfinite(y).all()
