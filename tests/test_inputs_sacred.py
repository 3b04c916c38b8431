"""An output never lands on the user's data: not on a --data file, nor where --data would read it next time.

Each case is refused before any work, in one line with exit status 2, in both entry points, and every
file of the data is left byte for byte as it was.
"""

import os

import numpy as np
import pytest

import linreg_compare.cli
import linreg_compare.distributed
from compare import main


@pytest.fixture
def data_folder(tmp_path, monkeypatch):
    """single.csv, single.parquet and parts/p1.csv, parts/p2.csv in the working directory."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "y": X @ [1.0, 2.0] + 3.0})
    pyarrow.parquet.write_table(table, tmp_path / "single.parquet")
    lines = ["a,b,y", *(",".join(repr(float(v)) for v in row) for row in np.column_stack([X, X @ [1.0, 2.0] + 3.0]))]
    (tmp_path / "single.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "p1.csv").write_text("\n".join(lines[:11]) + "\n")
    (tmp_path / "parts" / "p2.csv").write_text("\n".join(lines[:1] + lines[11:]) + "\n")
    os.link(tmp_path / "single.csv", tmp_path / "hard.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _contents(folder):
    return {path: open(path, "rb").read() for path in sorted(map(str, folder.rglob("*"))) if os.path.isfile(path)}


OVERWRITES = [
    (["--data", "single.csv", "--output", "single.csv"], "--output single.csv is the input file single.csv"),
    (["--data", "single.parquet", "--output", "single.parquet"], "is the input file single.parquet"),
    (["--data", "single.csv", "--output", "./single.csv"], "--output ./single.csv is the input file"),
    (["--data", "single.csv", "--output", "parts/../single.csv"], "is the input file single.csv"),
    (["--data", "single.csv", "--output", "hard.csv"], "--output hard.csv is the input file single.csv"),
    (["--data", "parts", "--output", "parts/p1.csv"], "--output parts/p1.csv is in the --data directory parts"),
    (["--data", "parts", "--output", "parts/new.csv"], "is in the --data directory parts: the next run would read"),
    (["--data", "parts/", "--output", "./parts/new.parquet"], "is in the --data directory parts/"),
    (["--data", ".", "--output", "p2.csv"], "--output p2.csv is in the --data directory ."),
    (["--data", "parts/*.csv", "--output", "parts/report.csv"], "--output parts/report.csv matches --data"),
    (["--data", "parts/*", "--plot", "parts/curves.png"], "--plot parts/curves.png matches --data 'parts/*'"),
    (["--data", "parts/p*.csv", "--output", "parts/p1.csv"], "matches --data 'parts/p*.csv'"),
]


@pytest.mark.parametrize("argv, words", OVERWRITES, ids=[" ".join(argv) for argv, _ in OVERWRITES])
def test_an_output_onto_the_data_is_refused_before_any_work(argv, words, data_folder, capsys, monkeypatch):
    monkeypatch.setattr(linreg_compare.cli, "run_report", lambda *args: pytest.fail("the run started"))
    before = _contents(data_folder)
    assert main([*argv, "--target", "y"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert _contents(data_folder) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["--data", "single.csv", "--output", "report.csv"],  # beside the data, another name
        ["--data", "parts", "--output", "parts/report.json"],  # in the folder, not a data file's suffix
        ["--data", "parts/*.csv", "--output", "parts/report.json"],  # not matched by the glob
        ["--data", "parts/*.csv", "--output", "report.csv"],  # matched by name, in another folder
    ],
)
def test_an_output_beside_the_data_is_written(argv, data_folder):
    before = _contents(data_folder)
    assert (
        main([*argv, "--target", "y", "--impl", "numpy-closed-form", "--repeats", "1", "--scheduler", "threads"]) == 0
    )
    written = os.path.join(data_folder, argv[3])
    assert os.path.getsize(written) > 0
    assert {path: text for path, text in _contents(data_folder).items() if path != written} == before


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--data", "single.csv", "--target", "y", "--output", "single.csv"], "is the input file single.csv"),
        (["--data", "single.csv", "--target", "y", "--output", "./hard.csv"], "is the input file single.csv"),
        (["--output", "missing/fit.json"], "the directory"),
        (["--output", "parts"], "--output parts is a directory"),
        (["--output", "/dev/null"], "is not a regular file"),
    ],
)
def test_the_distributed_entry_checks_its_output_before_any_rank_starts(argv, words, data_folder, capsys, monkeypatch):
    before = _contents(data_folder)
    monkeypatch.setattr("sys.argv", ["linreg_compare.distributed", *argv])
    monkeypatch.setenv("RANK", "0")  # as under torchrun: the checks come before the group is joined
    monkeypatch.setattr(linreg_compare.distributed, "prepare", lambda *a: pytest.fail("the rank started work"))
    assert linreg_compare.distributed.main() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert _contents(data_folder) == before
