"""The README's outputs are what its commands print now (timings aside, which vary from run to run)."""

import os
import re
import shlex

import pytest

import compare as runner

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
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
def test_readme_output_matches_the_command(command, shown, capsys):
    argv = shlex.split(command)[2:]
    assert runner.main(argv + (["--repeats", "1"] if not argv else [])) == 0
    assert _normalise(capsys.readouterr().out) == _normalise(shown)
