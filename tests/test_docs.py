"""The README's outputs are what its commands print now (timings aside, which vary from run to run).

Compared number by number, the same way on every machine: integers and words exactly, printed floats
give or take one unit in their last printed digit, and values under 1e-12 (a distance of 7e-15 between
two solvers, say) only as "below 1e-12". The BLAS kernel OpenBLAS picks for the CPU, the thread count
and the library versions change the order of sums, hence the last digit of float32 drifts and the
whole of rounding-level figures; nothing else.
"""

import contextlib
import functools
import io
import os
import re
import shlex

import pytest

import compare as runner

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
NUMBER = re.compile(r"[-+]?\d+(?:\.(\d+))?(?:e([-+]?\d+))?")
ROUNDING = 1e-12
TIMING = re.compile(r"\d+\.\d+ \[\d+\.\d+, \d+\.\d+\]\s+\d+\.\d+")  # the fit ms and cold ms cells


def _blocks():
    text = open(README, encoding="utf-8").read()
    for body in re.findall(r"```text\n(.*?)\n```", text, flags=re.S):
        lines = body.split("\n")
        if lines[0].startswith("$ python compare.py") and sum(line.startswith("$ ") for line in lines) == 1:
            yield lines[0][2:], "\n".join(lines[1:])


def _normalise(output: str) -> list[str]:
    lines = [TIMING.sub("<time>", line) for line in output.strip().split("\n") if not line.startswith("timing:")]
    return [" ".join(line.split()) for line in lines]


def _close(printed: re.Match, shown: re.Match) -> bool:
    """Whether two printed numbers agree: exactly for integers, else within one unit of the shown last digit."""
    a, b = float(printed.group()), float(shown.group())
    if shown.group(1) is None and shown.group(2) is None:
        return a == b
    last_digit = 10.0 ** (-len(shown.group(1) or "") + int(shown.group(2) or 0))
    return abs(a - b) <= 1.01 * last_digit or max(abs(a), abs(b)) < ROUNDING


def _agree(printed: str, shown: str) -> bool:
    if NUMBER.sub("#", printed) != NUMBER.sub("#", shown):
        return False
    return all(_close(a, b) for a, b in zip(NUMBER.finditer(printed), NUMBER.finditer(shown)))


@functools.cache
def _run(command: str) -> str:
    argv = shlex.split(command)[2:]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert runner.main(argv + (["--repeats", "1"] if not argv else [])) == 0
    return out.getvalue()


BLOCKS = list(_blocks())


def test_the_readme_shows_the_report_and_every_study():
    assert [command for command, _ in BLOCKS] == [
        "python compare.py",
        "python compare.py equivalences",
        "python compare.py sweep lr-batch",
        "python compare.py sweep data-size",
        "python compare.py sweep init",
    ]


@pytest.mark.parametrize("command, shown", BLOCKS, ids=[command for command, _ in BLOCKS])
def test_readme_output_matches_the_command(command, shown):
    printed, shown = _normalise(_run(command)), _normalise(shown)
    assert len(printed) == len(shown)
    for printed_line, shown_line in zip(printed, shown):
        assert _agree(printed_line, shown_line), f"README shows:\n{shown_line}\ncommand prints:\n{printed_line}"


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
        ("MSE 9.623e-05", "MSE 9.633e-05", False),
    ],
)
def test_the_comparison_allows_rounding_in_the_last_digit_only(printed, shown, agree):
    assert _agree(printed, shown) is agree
