"""The benchmark scripts run and report (they are smoke-tested here; no timing is asserted)."""

import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", script), *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.slow
def test_run_py_times_a_section_in_its_own_process_and_collects_its_figures(tmp_path):
    results = tmp_path / "results.json"
    done = _run("run.py", "--quick", "--only", "sklearn", "--only", "small", "--json", str(results))
    assert done.returncode == 0, done.stderr  # a smoke run fails only when something breaks
    rows = json.loads(results.read_text())
    figures = [row["figure"] for row in rows]
    assert figures[0] == "sklearn-sgd / bare SGDRegressor.fit at 10,000 x 10"
    assert "reference: 3 bare partial_fit" in figures[1]
    assert "numpy-closed-form / LinearRegression at 100 x 2" in figures
    assert all(row["bound"] is None for row in rows)  # the bounds are for the full sizes
    assert "pass" not in done.stdout and "SHORT" not in done.stdout
    assert done.stdout.startswith("machine: ")  # the environment, printed once, before the sections' output
    assert done.stdout.index("scikit-learn SGD") < done.stdout.index("small problems")  # in the order of SECTIONS
    assert "smoke run: " in done.stdout.splitlines()[-2]


@pytest.mark.slow
def test_run_py_refuses_an_unknown_section():
    done = _run("run.py", "--only", "gpu")
    assert done.returncode == 2
    assert "invalid choice: 'gpu'" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
@pytest.mark.slow
def test_cuda_check_says_in_one_line_that_it_needs_a_gpu():
    done = _run("cuda_check.py")
    assert done.returncode == 2
    assert done.stderr == "cuda_check.py: no CUDA GPU is available here; run it on a machine with one\n"


@pytest.mark.slow
def test_scale_out_times_dask_from_parquet_files_against_pyarrow():
    done = _run("scale_out.py", "--quick", "--only", "closed-form")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("closed form, 200,000 x 20 float64 in 4 Parquet files")
    assert "files to coefficients" in lines[1] and "ratio" in lines[1]
    assert sum(line.lstrip().startswith("worker ") for line in lines) == 2  # one peak per worker


@pytest.mark.slow
def test_ddp_exits_counts_clean_runs():
    done = _run("ddp_exits.py", "--runs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("1 of 1 runs ended cleanly (python -m linreg_compare.distributed --nproc-per-node 2")


@pytest.mark.slow
def test_imports_py_sums_each_module_s_own_import_time_by_package():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import imports
    finally:
        sys.path.remove(os.path.join(ROOT, "benchmarks"))
    times = imports.self_times(["-c", "import json.decoder"])
    assert {"json", "json.decoder", "json.scanner"} <= set(times) and all(seconds >= 0 for seconds in times.values())
    totals = imports.by_package(times)
    assert totals["json"] == pytest.approx(sum(seconds for name, seconds in times.items() if name.startswith("json")))
