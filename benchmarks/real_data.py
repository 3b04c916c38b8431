"""The comparison on real data, as a new user runs it: python benchmarks/real_data.py

Each data set shipped with scikit-learn and statsmodels (no download) is written to a CSV and given to
``compare.py --data FILE --target COL`` with no other flag, then with ``--lr auto --no-standardize``; the table
says, per data set, how many implementations diverged, whether every row has a test MSE, and the condition number.
``--race`` instead races the iterative implementations to least squares on the standardised data
(``--until 0.1 --num-epochs 500``, the data sets of at most RACE_ROWS rows) and gives each one's status.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import compare  # noqa: E402

# name: (statsmodels dataset or "diabetes", target column)
DATA_SETS = {
    "diabetes": ("diabetes", "target"),
    "longley": ("longley", "TOTEMP"),
    "stackloss": ("stackloss", "STACKLOSS"),
    "statecrime": ("statecrime", "murder"),
    "ccard": ("ccard", "AVGEXP"),
    "fair": ("fair", "affairs"),
    "grunfeld": ("grunfeld", "invest"),
    "cpunish": ("cpunish", "EXECUTIONS"),
    "scotland": ("scotland", "YES"),
    "committee": ("committee", "BILLS104"),
    "copper": ("copper", "WORLDCONSUMPTION"),
    "engel": ("engel", "foodexp"),
    "randhie": ("randhie", "mdvis"),
}


def frame(name: str):
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        return load_diabetes(scaled=False, as_frame=True).frame
    from statsmodels import datasets

    return getattr(datasets, name).load_pandas().data.select_dtypes("number")


def run(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = compare.main([*argv, "--format", "json", "--repeats", "1"])
    return {"status": status, **(json.loads(out.getvalue()) if status == 0 else {})}


RACE_ROWS = 10_000  # the race's 500 epochs of minibatches of 10 take minutes beyond this


def race() -> int:
    print("| data (n × d) | torch-concise | torch-scratch | sklearn-sgd |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, (source, target) in DATA_SETS.items():
            data = frame(source)
            if len(data) > RACE_ROWS:
                continue
            path = os.path.join(folder, f"{name}.csv")
            data.to_csv(path, index=False)
            argv = ["--data", path, "--target", target, "--until", "0.1", "--num-epochs", "500"]
            argv += ["--impl", "torch-concise", "--impl", "torch-scratch", "--impl", "sklearn-sgd"]
            report = run(argv)
            cells = [f"{row['status']} (predicted {row['predicted_epochs']:.3g})" for row in report["results"]]
            print(f"| {name} ({len(data)} × {data.shape[1] - 1}) | " + " | ".join(cells) + " |")
    return 0


def main() -> int:
    if "--race" in sys.argv[1:]:
        return race()
    print(
        "| data (n × d) | defaults: diverged | every row a test MSE | --lr auto --no-standardize: diverged "
        "| κ, standardised |"
    )
    print("|---|---|---|---|---|")
    failures = 0
    with tempfile.TemporaryDirectory() as folder:
        for name, (source, target) in DATA_SETS.items():
            path = os.path.join(folder, f"{name}.csv")
            frame(source).to_csv(path, index=False)
            default = run(["--data", path, "--target", target])
            auto = run(["--data", path, "--target", target, "--lr", "auto", "--no-standardize"])
            if default["status"] or auto["status"]:
                print(f"| {name} | exit {default['status']} | | exit {auto['status']} | |")
                failures += 1
                continue
            diverged = sum(row["status"].startswith("diverged") for row in default["results"])
            auto_diverged = sum(row["status"].startswith("diverged") for row in auto["results"])
            scored = all(row["test_mse"] is not None and np.isfinite(row["test_mse"]) for row in default["results"])
            failures += diverged + auto_diverged + (not scored)
            config = default["config"]
            rows = config["num_examples"] + config["num_test"]
            print(
                f"| {name} ({rows} × {config['num_features']}) | {diverged} of 4 "
                f"| {'yes' if scored else 'no'} | {auto_diverged} of 4 | {default['step_size']['condition']:.3g} |"
            )
    print(f"\n{failures} failures (a divergence, a missing test MSE or a non-zero exit)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
