"""The README's and docs' outputs are what their commands print now; the tour runs; the docstrings' examples hold.

Compared number by number, the same way on every machine, with the tolerance of the arithmetic that made
each number. Integers and words exactly; printed floats give or take one unit in their last printed digit;
and a value at the rounding level of its arithmetic only as "at that level", whatever its digits:

- float64 figures (a distance of 7e-15 between two solvers, say): below 1e-12;
- differences of two float32 runs (the equivalences study's columns ``max_param_diff`` and
  ``final_param_diff``: |θ_a - θ_b| over the steps of two torch fits): at most 1e-6 of the parameters'
  scale, 10 (the notebook's w = (2, -3.4), b = 4.2), so 1e-5, the study's own line for "exact"
  (``agrees_within_1e-5``). One float32 unit in the last place at 4.2 is 4.8e-07; runs that sum the same
  numbers in another order (another BLAS kernel, thread count, or ranks) differ by a few such units, so
  4.77e-07 shown and 1.49e-08 printed agree, while 1e-03 printed against 1e-07 shown does not.

Tables are read by column (the rule under the header gives each column's span), so a figure is judged by
the column it is in. The BLAS kernel OpenBLAS picks for the CPU, the thread count and the library
versions change the order of sums, hence the last digit of float32 drifts and the whole of rounding-level
figures; nothing else. Timings are masked. Blocks that start processes (shell sessions, ranks) are
``slow``. Blocks of `python benchmarks/…` are measurements of one run and are not re-run here
(tests/test_benchmarks.py runs the scripts).
"""

import contextlib
import doctest
import functools
import glob
import importlib
import io
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT

import compare
from linreg_compare.render import text_table
from linreg_compare.study import EXACT_TOLERANCE

DOCUMENTS = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
NUMBER = re.compile(r"[-+]?\d+(?:\.(\d+))?(?:e([-+]?\d+))?")
ROUNDING = 1e-12  # float64 figures below this are rounding
FLOAT32_SCALE = 10.0  # the decade of the parameters the float32 runs fit: w = (2, -3.4), b = 4.2
FLOAT32_ROUNDING = FLOAT32_SCALE / 1e6  # a difference of two float32 runs up to this is rounding ("exact")
FLOAT32_DIFFERENCES = {"max_param_diff", "final_param_diff"}  # the columns that are such differences
TIMING = re.compile(r"\d+\.\d+ \[\d+\.\d+, \d+\.\d+\]\s+\d+\.\d+")  # the fit ms and cold ms cells
TIMED = re.compile(r"\bms\b")  # a column of timings: "fit ms (median [q1, q3])", "cold ms"
RULE = re.compile(r"-+(?:  -+)*")  # the line under a table's header


def _blocks():
    """(document, commands, shown output) for every ```text block whose commands are compare.py or shell."""
    for path in DOCUMENTS:
        text = open(path, encoding="utf-8").read()
        for body in re.findall(r"```text\n(.*?)\n```", text, flags=re.S):
            lines = body.split("\n")
            commands = [line[2:] for line in lines if line.startswith("$ ")]
            if lines[0].startswith("$ python compare.py") and all(
                command.startswith(("python compare.py", "printf ")) for command in commands
            ):
                yield os.path.relpath(path, ROOT), commands, "\n".join(lines[1:])


BLOCKS = list(_blocks())


def _starts_processes(commands: list[str]) -> bool:
    """A shell session runs each command in a process; --distributed spawns ranks."""
    return len(commands) > 1 or any("--distributed" in command for command in commands)


def _cells(output: str) -> list[list[tuple[str | None, str]]]:
    """The output's lines, blank and timing lines left out, each as cells (column, text): one per column in a
    table's rows and header, one (None, line) elsewhere. Whitespace is collapsed and timings masked."""
    lines, starts, header = [], None, None
    raw = []
    for line in output.strip().split("\n"):  # a wrapped note's continuation lines (indented) joined to it again
        if line.startswith("  ") and line.strip() and raw and raw[-1].strip():
            raw[-1] += " " + line.strip()
        else:
            raw.append(line)
    for i, line in enumerate(raw):
        if (
            RULE.fullmatch(line) and i > 0 and raw[i - 1].strip()
        ):  # the header was the line before: cut it again by column
            starts = [match.start() for match in re.finditer(r"-+", line)]
            header = [" ".join(raw[i - 1][a:b].split()) for a, b in zip(starts, [*starts[1:], None])]
            lines[-1] = [(name, name) for name in header]
            continue
        if not line.strip():
            starts = header = None  # a blank line ends a table
            continue
        if line.startswith("timing:"):
            continue
        if starts is None:
            lines.append([(None, " ".join(TIMING.sub("<time>", line).split()))])
            continue
        row = []
        for name, a, b in zip(header, starts, [*starts[1:], None]):
            text = " ".join(line[a:b].split())
            row.append((name, "<time>" if TIMED.search(name) and text not in ("", "-") else text))
        lines.append(row)
    return lines


def _close(printed: re.Match, shown: re.Match, rounding: float = ROUNDING) -> bool:
    """Whether two printed numbers agree: both at the rounding level of their arithmetic, or exactly for
    integers, else within one unit of the shown last digit."""
    a, b = float(printed.group()), float(shown.group())
    if max(abs(a), abs(b)) <= rounding:
        return True
    if shown.group(1) is None and shown.group(2) is None:
        return a == b
    last_digit = 10.0 ** (-len(shown.group(1) or "") + int(shown.group(2) or 0))
    return abs(a - b) <= 1.01 * last_digit


def _agree(printed: str, shown: str, column: str | None = None) -> bool:
    """Whether a printed line or cell says what the shown one does, by the rule of its column's arithmetic."""
    if NUMBER.sub("#", printed) != NUMBER.sub("#", shown):
        return False
    rounding = FLOAT32_ROUNDING if column in FLOAT32_DIFFERENCES else ROUNDING
    return all(_close(a, b, rounding) for a, b in zip(NUMBER.finditer(printed), NUMBER.finditer(shown)))


def _agree_lines(printed: list[tuple[str | None, str]], shown: list[tuple[str | None, str]]) -> bool:
    if [column for column, _ in printed] != [column for column, _ in shown]:
        return False
    return all(_agree(a, b, column) for (column, a), (_, b) in zip(printed, shown))


@functools.cache
def _run_in_process(command: str) -> str:
    argv = shlex.split(command)[2:]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert compare.main(argv + (["--repeats", "1"] if not argv else [])) == 0
    return out.getvalue()


def _run_in_a_shell(commands: list[str], folder) -> str:
    """Each command as a shell would, in an empty folder, echoed with '$ ' as the docs show it."""
    out = []
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "python":
            argv = [sys.executable, os.path.join(ROOT, argv[1]), *argv[2:]]
            done = subprocess.run(argv, capture_output=True, text=True, cwd=folder)
        else:
            done = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=folder)
        out += [f"$ {command}", done.stdout + done.stderr]
    return "\n".join(out[1:])


def test_the_readme_shows_the_report_and_the_docs_every_study():
    commands = [commands[0] for _, commands, _ in BLOCKS]
    assert commands[0] == "python compare.py" and BLOCKS[0][0] == "README.md"
    for study in ["equivalences", "sweep lr-batch", "sweep data-size", "sweep init"]:
        assert f"python compare.py {study}" in commands


@pytest.mark.parametrize(
    "document, commands, shown",
    [
        pytest.param(
            *block, id=f"{block[0]}: {block[1][0]}", marks=[pytest.mark.slow] if _starts_processes(block[1]) else []
        )
        for block in BLOCKS
    ],
)
def test_output_blocks_match_their_commands(document, commands, shown, tmp_path):
    if len(commands) == 1:
        printed = _run_in_process(commands[0])
    else:
        printed = _run_in_a_shell(commands, tmp_path)
    printed, shown = _cells(printed), _cells(shown)
    assert len(printed) == len(shown), f"{document}: {len(printed)} lines printed, {len(shown)} shown"
    for printed_line, shown_line in zip(printed, shown):
        assert _agree_lines(printed_line, shown_line), (
            f"{document} shows:\n{_line(shown_line)}\ncommand prints:\n{_line(printed_line)}"
        )


def _line(cells: list[tuple[str | None, str]]) -> str:
    return "  ".join(text for _, text in cells)


@pytest.mark.parametrize(
    "printed, shown, agree",
    [
        ("w [1.9996, -3.4002] after 3 epochs", "w [1.9996, -3.4002] after 3 epochs", True),
        ("drift 1.58e-04", "drift 1.57e-04", True),  # one unit in the last digit
        ("drift 1.59e-04", "drift 1.57e-04", False),
        ("to lstsq 7.2e-15", "to lstsq 4.4e-15", True),  # both rounding
        ("to lstsq 7.2e-10", "to lstsq 4.4e-15", False),
        ("3 epochs", "4 epochs", False),  # integers exactly
        ("status ok", "status diverged", False),
        ("w 2.0005", "w 2.0005 extra", False),
        ("w [2.0005, -3.3999]", "w [2.0004, -3.3999]", True),
        ("w [2.0005, -3.3999]", "w [2.0015, -3.3999]", False),  # a one-digit change that is not rounding
        ("excess -5.4e-20", "excess +3.1e-17", True),  # the closed form sits at rounding level
        ("excess 0", "excess 3.1e-17", True),
        ("MSE 9.623e-05", "MSE 9.633e-05", False),
    ],
)
def test_the_comparison_allows_rounding_in_the_last_digit_only(printed, shown, agree):
    assert _agree(printed, shown) is agree


@pytest.mark.parametrize(
    "column, printed, shown, agree",
    [
        ("max_param_diff", "1.49e-08", "4.77e-07", True),  # two float32 runs, summed in another order: rounding
        ("max_param_diff", "0", "2.38e-07", True),
        ("final_param_diff", "4.77e-07", "0", True),
        ("max_param_diff", "9.54e-06", "2.38e-07", True),  # up to 1e-6 of the scale
        ("max_param_diff", "0.001", "1.00e-07", False),  # a real difference is not rounding
        ("max_param_diff", "1.20e-05", "2.38e-07", False),  # above the line of "exact"
        ("max_param_diff", "1.58e-04", "1.57e-04", True),  # a larger difference: the last digit only
        ("max_param_diff", "1.60e-04", "1.57e-04", False),
        ("max_param_diff", "-", "2.38e-07", False),  # diverged
        ("to lstsq", "4.77e-07", "1.49e-08", False),  # a float64 column keeps the float64 rule
        ("to lstsq", "7.2e-15", "0.0e+00", True),
        (None, "4.77e-07", "1.49e-08", False),  # as does a line outside a table
    ],
)
def test_a_difference_of_float32_runs_agrees_at_float32_rounding_only(column, printed, shown, agree):
    assert _agree(printed, shown, column) is agree


def test_float32_rounding_is_the_studys_line_of_exact_and_its_columns_are_shown():
    assert FLOAT32_ROUNDING == EXACT_TOLERANCE  # the table's agrees_within_1e-5 draws the same line
    shown = {column for _, _, output in BLOCKS for line in _cells(output) for column, _ in line}
    assert FLOAT32_DIFFERENCES <= shown  # a renamed column would silently fall back to the float64 rule


def test_tables_are_read_by_column_and_judged_by_it():
    header, notes = ["pair", "max_param_diff", "status"], ["notes 4.77e-07"]
    shown = text_table(header, [["1 2", "4.77e-07", "ok"], ["3", "0.0154", "not ok"]], notes) + "timing: 5 ms\n"
    assert _cells(shown) == [
        [("pair", "pair"), ("max_param_diff", "max_param_diff"), ("status", "status")],
        [("pair", "1 2"), ("max_param_diff", "4.77e-07"), ("status", "ok")],
        [("pair", "3"), ("max_param_diff", "0.0154"), ("status", "not ok")],
        [(None, "notes 4.77e-07")],
    ]
    # Another machine: another rounding-level figure, a narrower column, the last digit of a larger one.
    printed = text_table(header, [["1 2", "0", "ok"], ["3", "0.0155", "not ok"]], ["notes 0"])
    assert [_agree_lines(a, b) for a, b in zip(_cells(printed), _cells(shown), strict=True)] == [True] * 3 + [False]
    wrong = text_table(header, [["1 2", "0.001", "ok"], ["3", "0.0154", "not ok"]], notes)
    assert not _agree_lines(_cells(wrong)[1], _cells(shown)[1])


def test_every_picture_the_docs_show_is_committed():
    for path in DOCUMENTS:
        for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", open(path, encoding="utf-8").read()):
            assert os.path.isfile(os.path.join(os.path.dirname(path), image)), f"{path} shows {image}"


def test_docs_call_the_notebook_the_notebook():
    for path in DOCUMENTS:  # output recorded from a benchmark stays as it was printed
        text = re.sub(r"```text\n\$ python benchmarks/.*?```", "", open(path, encoding="utf-8").read(), flags=re.S)
        assert not re.search(r"the seed'?s? (notebook|setting|way|exercise|loop|DataLoader)", text), path


@pytest.mark.parametrize(
    "module", ["impls.torch_concise", "impls.torch_scratch", "impls.numpy_closed_form", "impls.sklearn_sgd"]
)
def test_each_estimators_docstring_example_runs(module):
    finder, runner_ = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [test for test in finder.find(importlib.import_module(module)) if test.examples]
    assert tests, f"{module} has no example"
    for test in tests:
        runner_.run(test)
    assert runner_.summarize(verbose=False).failed == 0


@pytest.mark.slow
def test_the_tour_runs_from_top_to_bottom():
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    notebook = jupytext.read(os.path.join(ROOT, "docs", "tour.md"))
    where = {"metadata": {"path": os.path.join(ROOT, "docs")}}
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources=where)
    client.execute()  # raises CellExecutionError, naming the cell, if any cell raises
    assert any(
        output.get("output_type") == "display_data" for cell in notebook.cells for output in cell.get("outputs", [])
    )


def test_the_readmes_library_examples_run():
    """The README's python blocks, run in order in one namespace (your own arrays given as the notebook's)."""
    from impls import synthetic_data

    namespace = {}
    namespace["my_X"], namespace["my_y"] = synthetic_data([1.0, 2.0], 0.5, 200, dtype="float64")
    for block in re.findall(r"```python\n(.*?)\n```", open(os.path.join(ROOT, "README.md")).read(), flags=re.S):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(block, namespace)  # noqa: S102 - the README's own examples
    assert namespace["stream"].coef_ == pytest.approx(namespace["ols"].coef_, rel=1e-12)
