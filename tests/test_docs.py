"""The README's and docs' outputs are what their commands print now; the tour runs; the docstrings' examples hold.

Compared number by number, the same way on every machine: integers and words exactly, printed floats
give or take one unit in their last printed digit, and values under 1e-12 (a distance of 7e-15 between
two solvers, say) only as "below 1e-12". The BLAS kernel OpenBLAS picks for the CPU, the thread count
and the library versions change the order of sums, hence the last digit of float32 drifts and the
whole of rounding-level figures; nothing else. Timings are masked. Blocks of `python benchmarks/…`
are measurements of one run and are not re-run here (tests/test_benchmarks.py runs the scripts).
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

import compare as runner

DOCUMENTS = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
NUMBER = re.compile(r"[-+]?\d+(?:\.(\d+))?(?:e([-+]?\d+))?")
ROUNDING = 1e-12
TIMING = re.compile(r"\d+\.\d+ \[\d+\.\d+, \d+\.\d+\]\s+\d+\.\d+")  # the fit ms and cold ms cells


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


def _normalise(output: str) -> list[str]:
    lines = [
        TIMING.sub("<time>", line) for line in output.strip().split("\n") if line and not line.startswith("timing:")
    ]
    return [" ".join(line.split()) for line in lines]


def _close(printed: re.Match, shown: re.Match) -> bool:
    """Whether two printed numbers agree: exactly for integers, else within one unit of the shown last digit."""
    a, b = float(printed.group()), float(shown.group())
    if max(abs(a), abs(b)) < ROUNDING:
        return True
    if shown.group(1) is None and shown.group(2) is None:
        return a == b
    last_digit = 10.0 ** (-len(shown.group(1) or "") + int(shown.group(2) or 0))
    return abs(a - b) <= 1.01 * last_digit


def _agree(printed: str, shown: str) -> bool:
    if NUMBER.sub("#", printed) != NUMBER.sub("#", shown):
        return False
    return all(_close(a, b) for a, b in zip(NUMBER.finditer(printed), NUMBER.finditer(shown)))


@functools.cache
def _run_in_process(command: str) -> str:
    argv = shlex.split(command)[2:]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert runner.main(argv + (["--repeats", "1"] if not argv else [])) == 0
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


@pytest.mark.parametrize("document, commands, shown", BLOCKS, ids=[f"{d}: {c[0]}" for d, c, _ in BLOCKS])
def test_output_blocks_match_their_commands(document, commands, shown, tmp_path):
    if len(commands) == 1:
        printed = _run_in_process(commands[0])
    else:
        printed = _run_in_a_shell(commands, tmp_path)
    printed, shown = _normalise(printed), _normalise(shown)
    assert len(printed) == len(shown), f"{document}: {len(printed)} lines printed, {len(shown)} shown"
    for printed_line, shown_line in zip(printed, shown):
        assert _agree(printed_line, shown_line), f"{document} shows:\n{shown_line}\ncommand prints:\n{printed_line}"


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
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.join(ROOT, "docs")}})  # fmt: skip
    client.execute()  # raises CellExecutionError, naming the cell, if any cell raises
    assert any(
        output.get("output_type") == "display_data" for cell in notebook.cells for output in cell.get("outputs", [])
    )
