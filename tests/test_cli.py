"""The command line: flags, outputs, plots, user files, one-line errors with exit status 2, nothing half-written."""

import csv
import json
import os
import stat
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
from conftest import ROOT, run_cli

from compare import main
from impls import NAMES
from linreg_compare.checks import UsageError
from linreg_compare.files import write_atomically
from linreg_compare.fit import progress_bar


@pytest.mark.slow
def test_default_command_prints_the_table(tmp_path):
    done = run_cli("--repeats", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("impl") and [line.split()[0] for line in lines[2:6]] == list(NAMES)
    assert all(line.rstrip().endswith("ok") for line in lines[2:6])
    assert done.stderr == ""  # no progress bar when standard error is not a terminal


def test_output_file_and_plot_png(tmp_path):
    out, png = tmp_path / "report.json", tmp_path / "curves.png"
    assert main(["--repeats", "1", "--format", "json", "--output", str(out), "--plot", str(png)]) == 0
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
        main(["--data", str(path), "--target", "price", "--repeats", "1", "--format", "csv", "--output", str(out)]) == 0
    )
    rows = list(csv.DictReader(open(out)))
    closed = next(row for row in rows if row["impl"] == "numpy-closed-form")
    np.testing.assert_allclose(json.loads(closed["coef"]), [0.5, -1.5], atol=0.01)
    assert closed["coef_error"] == ""  # no true parameters for user data
    assert (
        main(
            [
                "--data",
                str(path),
                "--target",
                "price",
                "--true-w",
                "0.5",
                "-1.5",
                "--true-b",
                "2",
                "--repeats",
                "1",
                "--format",
                "json",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    closed = json.loads(out.read_text())["results"][2]
    assert closed["impl"] == "numpy-closed-form" and closed["coef_error"] < 0.01


@pytest.mark.slow
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


@pytest.mark.slow
def test_help_explains_every_flag_with_its_default():
    done = run_cli("--help")
    assert done.returncode == 0
    for flag in [
        "--impl",
        "--num-examples",
        "--true-w",
        "--true-b",
        "--noise",
        "--batch-size",
        "--lr",
        "--num-epochs",
        "--seed",
        "--repeats",
        "--device",
        "--dtype",
        "--data",
        "--target",
        "--format",
        "--output",
        "--plot",
    ]:
        assert flag in done.stdout
    assert "(default: 0.03)" in done.stdout


def test_progress_bar_only_on_a_terminal_and_only_with_tqdm(monkeypatch):
    import types

    made = []
    fake_tqdm = types.ModuleType("tqdm")
    fake_tqdm.tqdm = lambda **kwargs: made.append(kwargs) or "bar"
    monkeypatch.setitem(sys.modules, "tqdm", fake_tqdm)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_bar(10, enabled=True) is None  # not a terminal: silent
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress_bar(10, enabled=False) is None  # not asked for
    assert progress_bar(10, enabled=True) == "bar"
    assert made[0]["file"] is sys.stderr and made[0]["total"] == 10 and made[0]["delay"] > 0
    monkeypatch.setitem(sys.modules, "tqdm", None)  # tqdm not installed: silent, no error
    assert progress_bar(10, enabled=True) is None


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


BAD_COMMANDS = [
    (["--impl", "nope"], "--impl must be one of torch-concise"),
    (["--lr", "abc"], "argument --lr: must be a number > 0 or auto; got 'abc'"),
    (["--lr", "-1"], "--lr must be a finite number > 0 or auto; got -1.0"),
    (["--lr", "nan"], "--lr must be a finite number > 0 or auto; got nan"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1; got 0"),
    (["--batch-size", "2.5"], "argument --batch-size: invalid int value: '2.5'"),
    (["--num-epochs", "-1"], "--num-epochs must be an integer >= 0; got -1"),
    (["--num-examples", "0"], "--num-examples must be an integer >= 1; got 0"),
    (["--noise", "-0.1"], "--noise must be a finite number >= 0"),
    (["--repeats", "0"], "--repeats must be an integer >= 1"),
    (["--seed", "-1"], "--seed must be an integer in [0, 2**32)"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["--max-seconds", "0"], "--max-seconds must be a number > 0; got 0.0"),
    (["--features", "a,b"], "--features picks columns of --data; give --data and --target too"),
    (["--data", "{good}", "--target", "y", "--features", "x1,zz"], "--features 'zz' not a column of"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["--device", "gpu"], "--device must be cpu, cuda or cuda:N; got 'gpu'"),
    (["--device", "cuda:99"], "--device 'cuda:99' is not available here; use cpu"),
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
    (["--data", "{blank_cell}", "--target", "y"], "has missing values: 'x2' in 1 row; --dropna drops the 1 row"),
    (["--data", "{word_cell}", "--target", "y"], "line 2, column 'x1' is 'abc', not a number"),
    (["--data", "{nan_cell}", "--target", "y"], "has missing values: 'y' in 1 row"),
    (["--data", "{ragged}", "--target", "y"], "line 3 has 2 fields; the header has 3"),
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
    assert main(argv + ["--repeats", "1"] if "--repeats" not in argv else argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("compare.py: error: ")
    assert words in lines[0]


@pytest.mark.slow
def test_a_real_process_exits_2_with_one_line_and_no_traceback():
    done = subprocess.run([sys.executable, "compare.py", "--lr", "abc"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_debug_shows_the_traceback():
    with pytest.raises(UsageError):
        main(["--lr", "-1", "--debug"])


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
        write_atomically(str(target), write_half_then_fail)
    assert os.listdir(tmp_path) == (["report.json"] if keep_old else [])
    if keep_old:
        assert target.read_text() == "old report"


def test_a_failing_plot_leaves_every_output_as_it_was(tmp_path, monkeypatch):
    png, report = tmp_path / "curves.png", tmp_path / "r.txt"
    png.write_bytes(b"old picture")
    report.write_text("old report")
    import matplotlib.figure

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as file:
            file.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    assert main(["--impl", "numpy-closed-form", "--repeats", "1", "--plot", str(png), "--output", str(report)]) == 1
    assert png.read_bytes() == b"old picture" and report.read_text() == "old report"
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "r.txt"]  # no temporary file left behind


def test_help_lists_the_subcommands_and_sweep_help_its_kinds(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "equivalences" in text and "the notebook's exercise" in text and "sweep" in text
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = capsys.readouterr().out
    for kind in ["lr-batch", "data-size", "init"]:
        assert kind in text


def test_an_option_a_subcommand_does_not_take_is_an_error(capsys):
    assert main(["sweep", "init", "--impl", "torch-scratch"]) == 2
    assert "unrecognized arguments: --impl torch-scratch" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# Outputs go to regular files only, checked before any work


def _special_files(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "target.json").write_text("precious")
    os.symlink(tmp_path / "target.json", tmp_path / "link.json")
    os.symlink(tmp_path / "target.json", tmp_path / "link.png")
    os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a copy of /dev/null, made here
    os.mkfifo(tmp_path / "pipe")
    return tmp_path


BAD_OUTPUTS = [
    (["--output", "{tmp}/folder"], "--output {tmp}/folder is a directory"),
    (["--output", "{tmp}/link.json"], "--output {tmp}/link.json is a symbolic link"),
    (["--output", "{tmp}/null"], "--output {tmp}/null is not a regular file"),
    (["--output", "{tmp}/pipe"], "--output {tmp}/pipe is not a regular file"),
    (["--output", ""], "--output must name a file; got an empty path"),
    (["--output", "{tmp}/missing/r.json"], "the directory {tmp}/missing does not exist"),
    (["--plot", ""], "--plot must name a file; got an empty path"),
    (["--plot", "{tmp}/missing/p.png"], "--plot {tmp}/missing/p.png: the directory {tmp}/missing does not exist"),
    (["--plot", "{tmp}/link.png"], "--plot {tmp}/link.png is a symbolic link"),
    (["--output", "{tmp}/same.png", "--plot", "{tmp}/same.png"], "--output and --plot both name"),
    (["equivalences", "--output", "{tmp}/null"], "--output {tmp}/null is not a regular file"),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv, words", BAD_OUTPUTS, ids=[" ".join(argv) for argv, _ in BAD_OUTPUTS])
def test_outputs_that_are_not_regular_files_are_refused_before_any_work(argv, words, tmp_path):
    tmp = _special_files(tmp_path)
    before = {name: os.lstat(tmp / name) for name in os.listdir(tmp)}
    done = run_cli(*[arg.format(tmp=tmp) for arg in argv], *([] if argv[0] == "equivalences" else ["--repeats", "1"]))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and words.format(tmp=tmp) in done.stderr, done.stderr
    after = {name: os.lstat(tmp / name) for name in os.listdir(tmp)}
    assert after.keys() == before.keys()  # nothing replaced, nothing left behind
    for name, status in before.items():
        assert (after[name].st_ino, after[name].st_mode) == (status.st_ino, status.st_mode)
    assert (tmp / "target.json").read_text() == "precious"


def test_a_missing_plot_folder_leaves_the_report_untouched_and_does_no_work(tmp_path, capsys, monkeypatch):
    import linreg_compare.cli

    keep = tmp_path / "keep.json"
    keep.write_text("old")
    monkeypatch.setattr(linreg_compare.cli, "run_report", lambda *args: pytest.fail("the run started"))
    assert main(["--output", str(keep), "--plot", str(tmp_path / "missing" / "p.png")]) == 2
    assert keep.read_text() == "old" and "missing" in capsys.readouterr().err


def test_new_files_get_the_umask_mode_and_existing_files_keep_theirs(tmp_path):
    fresh, existing = tmp_path / "fresh.txt", tmp_path / "existing.txt"
    existing.write_text("old")
    os.chmod(existing, 0o640)
    old_umask = os.umask(0o022)
    try:
        assert main(["--impl", "numpy-closed-form", "--repeats", "1", "--output", str(fresh)]) == 0
        assert main(["--impl", "numpy-closed-form", "--repeats", "1", "--output", str(existing)]) == 0
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o644  # 0o666 through the umask, as open() gives
    assert stat.S_IMODE(os.stat(existing).st_mode) == 0o640 and existing.read_text().startswith("impl")


# ---------------------------------------------------------------------------------------------------------
# Inputs that once slipped past validation: one line, exit 2, before any work, in a real process

SLIPPED = [
    (["--noise", "1e200"], "make y too large for float32"),
    (["--true-w", "nan", "1"], "--true-w and --true-b must be finite numbers"),
    (["--true-b", "inf"], "--true-w and --true-b must be finite numbers"),
    (["--true-w", "1e308", "1e308"], "make y too large for float32"),
    (["--device", "meta"], "--device must be cpu, cuda or cuda:N; got 'meta'"),
    (["--num-examples", "10000000000"], "GiB of memory"),
    (["sweep", "data-size", "--seed", "4294967295"], "--seed must be an integer in [0, 2**32 - 4)"),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv, words", SLIPPED, ids=[" ".join(argv) for argv, _ in SLIPPED])
def test_inputs_that_slipped_past_validation_now_exit_2_in_one_line(argv, words):
    done = run_cli(*argv)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr


@pytest.mark.slow
def test_negative_zero_noise_is_zero_and_a_cuda_device_is_ignored_without_torch_rows():
    done = run_cli("--noise", "-0", "--impl", "numpy-closed-form", "--device", "cuda:7", "--repeats", "1")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("numpy-closed-form"))
    assert row.rstrip().endswith("ok")


def test_the_report_names_the_features_of_a_users_file(tmp_path, capsys):
    path = tmp_path / "houses.csv"
    sizes = np.linspace(0, 1, 20)
    rooms = np.arange(20) % 5
    lines = [f"{a},{2 * a + r + 0.01 * (i % 3)},{r}" for i, (a, r) in enumerate(zip(sizes, rooms))]
    path.write_text("size,price,rooms\n" + "\n".join(lines) + "\n")
    assert (
        main(
            [
                "--data",
                str(path),
                "--target",
                "price",
                "--features",
                "rooms,size",
                "--impl",
                "numpy-closed-form",
                "--repeats",
                "1",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["config"]["feature_names"] == ["rooms", "size"]
    assert main(["--data", str(path), "--target", "price", "--impl", "numpy-closed-form", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "target price," in out and "least squares of price on the 2 features" in out
    rows = [line.split()[0] for line in out.splitlines() if line.split()[:1] in (["size"], ["rooms"])]
    assert rows == ["size", "rooms", "size", "rooms"]  # a named row each, in the estimates and in the reference


def test_a_huge_learning_rate_is_a_divergence_in_the_report(capsys):
    assert main(["--lr", "1e39", "--impl", "torch-concise", "--impl", "sklearn-sgd", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("torch", "sklearn"))]
    assert all(
        row.rstrip().endswith("(w, b: the epoch before)") and "diverged after epoch 1: MSE" in row for row in rows
    )
    assert len(rows) == 2


def test_the_plot_needs_memory_for_the_grid_and_the_path_not_n_times_the_grid(tmp_path):
    import tracemalloc

    from compare import compare
    from linreg_compare import plot

    result = compare(["numpy-closed-form", "sklearn-sgd"], num_examples=9999, repeats=1, record_paths=True)
    tracemalloc.start()
    figure = plot.draw_comparison(result)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    plot.png_writer(figure)(str(tmp_path / "p.png"))
    assert peak < 50 * 2**20  # a 120 x 120 grid over 9999 rows at once would be 115 MB per array


def test_a_plot_that_takes_long_says_so_on_stderr_first(tmp_path, capsys, monkeypatch):
    import linreg_compare.cli

    monkeypatch.setattr(linreg_compare.cli, "LONG_PLOT_FEATURES", 2)  # the notebook's two features count as many here
    png = tmp_path / "curves.png"
    assert main(["--impl", "numpy-closed-form", "--repeats", "1", "--plot", str(png)]) == 0
    assert f"compare.py: drawing {png}: the loss over a grid of 3-parameter models" in capsys.readouterr().err
    assert png.stat().st_size > 0


@pytest.mark.slow
def test_help_and_import_pay_for_no_heavy_library():
    """`compare.py --help` needs only names and defaults; `import compare` imports no model library either."""
    code = (
        "import sys; sys.argv = ['compare.py', '--help']; import compare\n"
        "heavy = ('torch', 'sklearn', 'matplotlib', 'dask', 'scipy', 'pandas', 'pyarrow')\n"
        "print(*[name for name in heavy if name in sys.modules])\n"
        "try:\n    compare.main()\nexcept SystemExit:\n    pass\n"
        "print(*[name for name in heavy if name in sys.modules], file=sys.stderr)\n"
        "import impls; from impls import NumpyClosedFormRegressor\n"
        "NumpyClosedFormRegressor().fit([[0], [1], [3]], [0, 1, 1])\n"
        "print('closed form:', *[name for name in ('torch', 'matplotlib', 'dask') if name in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    after_import, after_help = done.stdout.splitlines()[0], done.stderr.strip()
    assert after_import == "" and after_help == "", (after_import, after_help)
    assert done.stdout.splitlines()[-1] == "closed form:", done.stdout  # the closed form's path: numpy and scikit-learn
    assert "usage: compare.py" in done.stdout
