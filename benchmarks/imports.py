"""What a fresh process imports on the way to each entry point, by top-level package, from ``python -X importtime``.

    python benchmarks/imports.py

For each command, the self time of every module imported, summed by top-level package (largest first), and the
total; then which of them scikit-learn's own ``import sklearn.base`` brings in. One run of each: the figures are
indicative, a few tens of milliseconds either way; the whole-process ratios are ``run.py --only processes``.
"""

import collections
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = {
    "the notebook script": [os.path.join(ROOT, "benchmarks", "notebook.py")],
    "python compare.py": [os.path.join(ROOT, "compare.py")],
    "python compare.py --impl numpy-closed-form": [os.path.join(ROOT, "compare.py"), "--impl", "numpy-closed-form"],
    "python compare.py --help": [os.path.join(ROOT, "compare.py"), "--help"],
    "import sklearn.base": ["-c", "import sklearn.base"],
}


def self_times(arguments):
    """Seconds of each imported module's own import (its children excluded), from -X importtime's stderr."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
    )
    times = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line[len("import time:") :].split("|")
            times[name.strip()] = int(own) / 1e6
    return times


def by_package(times):
    totals = collections.Counter()
    for name, seconds in times.items():
        totals[name.split(".")[0]] += seconds
    return totals


def main():
    measured = {label: self_times(arguments) for label, arguments in COMMANDS.items()}
    for label, times in measured.items():
        totals = by_package(times)
        top = ", ".join(f"{package} {seconds * 1e3:.0f}" for package, seconds in totals.most_common(8))
        print(f"{label}: {sum(totals.values()):.2f} s in {len(times)} modules; ms by package: {top}")
    sklearn_brings = set(measured["import sklearn.base"]) - set(measured["the notebook script"])
    totals = by_package({name: measured["import sklearn.base"][name] for name in sklearn_brings})
    print(
        "\nimport sklearn.base brings, beyond what the notebook script imports (ms): "
        + ", ".join(f"{package} {seconds * 1e3:.0f}" for package, seconds in totals.most_common(12))
    )


if __name__ == "__main__":
    main()
