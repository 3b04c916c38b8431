"""Beyond one process: the closed form on a Dask cluster from Parquet files, and data-parallel SGD on W ranks.

    python benchmarks/scale_out.py             # 1e7 x 20 in 20 Parquet files (1.7 GB in a temporary folder)
    python benchmarks/scale_out.py --quick     # small sizes: checks that it runs

1. From files to coefficients, both timed alternately: the Dask fit on LocalCluster(2 workers x 1 thread,
   processes, 127.0.0.1) of ``dask.dataframe.read_parquet(files)``, against reading the same files with
   pyarrow into one numpy array and fitting in memory. Bound: Dask / pyarrow+numpy <= 1.5.
2. Peak memory of each worker during the Dask fit, beyond what it held before (its peak-RSS mark reset
   first), in chunks of the data (one chunk: one file's rows x 21 float64). Bound: under 3 chunks.
3. Data-parallel SGD: seconds per epoch of torch-scratch and torch-concise on W = 2 spawned ranks
   (``linreg_compare.distributed.spawn``, gloo) against W = 1 at the same global batch, for growing models.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]


def write_files(folder, num_examples, num_features, num_files):
    """``num_files`` Parquet files of the notebook's law with ``num_features`` features, columns x1.. and y."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    true_w = rng.uniform(-5, 5, num_features)
    rows = num_examples // num_files
    for i in range(num_files):
        X = rng.standard_normal((rows, num_features))
        y = X @ true_w + 4.2 + rng.normal(0, 0.01, rows)
        columns = {f"x{j + 1}": X[:, j] for j in range(num_features)} | {"y": y}
        pq.write_table(pa.table(columns), os.path.join(folder, f"part{i:02d}.parquet"))
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


def fit_with_dask(files):
    import dask.dataframe as dd

    from impls import NumpyClosedFormRegressor

    frame = dd.read_parquet(files)
    features = [name for name in frame.columns if name != "y"]
    return NumpyClosedFormRegressor().fit(frame[features], frame["y"])


def fit_with_pyarrow(files):
    import pyarrow.parquet as pq

    from impls import NumpyClosedFormRegressor

    tables = [pq.read_table(name) for name in files]
    features = [name for name in tables[0].column_names if name != "y"]
    rows = sum(table.num_rows for table in tables)
    X, y, start = np.empty((rows, len(features))), np.empty(rows), 0
    for table in tables:  # column by column into one C-ordered array, as linreg_compare.read does
        for j, name in enumerate(features):
            X[start : start + table.num_rows, j] = table.column(name).to_numpy()
        y[start : start + table.num_rows] = table.column("y").to_numpy()
        start += table.num_rows
    return NumpyClosedFormRegressor().fit(X, y)


def reset_peak():
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")  # Linux: reset the peak-RSS mark (VmHWM) to the current RSS


def rss_and_peak_mb():
    with open("/proc/self/status") as file:
        fields = dict(line.split(":", 1) for line in file)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def closed_form(num_examples, num_features, num_files, repeats):
    import distributed

    with tempfile.TemporaryDirectory() as folder:
        files = write_files(folder, num_examples, num_features, num_files)
        chunk_mb = num_examples // num_files * (num_features + 1) * 8 / 2**20
        size = sum(os.path.getsize(name) for name in files) / 2**30
        print(f"closed form, {num_examples:,} x {num_features} float64 in {num_files} Parquet files ({size:.2f} GB)")
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            on_dask, in_memory = fit_with_dask(files), fit_with_pyarrow(files)  # warm-ups, and the agreement
            agreement = np.max(np.abs(on_dask.coef_ - in_memory.coef_) / np.abs(in_memory.coef_))
            times = {"dask": [], "pyarrow": []}
            for round_ in range(repeats):
                for side in ["dask", "pyarrow"] if round_ % 2 == 0 else ["pyarrow", "dask"]:
                    start = time.perf_counter()
                    (fit_with_dask if side == "dask" else fit_with_pyarrow)(files)
                    times[side].append(time.perf_counter() - start)
            dask_s, pyarrow_s = statistics.median(times["dask"]), statistics.median(times["pyarrow"])
            client.run(reset_peak)
            before = client.run(rss_and_peak_mb)
            fit_with_dask(files)
            after = client.run(rss_and_peak_mb)
        ratio = dask_s / pyarrow_s
        print(
            f"  files to coefficients, median of {repeats}: Dask on 2 workers x 1 thread {dask_s:.2f} s, pyarrow "
            f"+ numpy in memory {pyarrow_s:.2f} s: ratio {ratio:.2f} (bound <= 1.5) "
            f"{'pass' if ratio <= 1.5 else 'SHORT'}"
        )
        print(f"  coefficients agree to {agreement:.1e} relative; solver {on_dask.solver_}")
        print(
            f"  one chunk (one file) = {num_examples // num_files:,} rows x {num_features + 1} float64 "
            f"= {chunk_mb:.0f} MB"
        )
        for worker in before:
            extra = after[worker][1] - before[worker][0]
            print(
                f"  worker {list(before).index(worker) + 1}: RSS {before[worker][0]:.0f} MB before the fit, peak "
                f"{after[worker][1]:.0f} MB during it: {extra:.0f} MB = {extra / chunk_mb:.2f} chunks (bound < 3) "
                f"{'pass' if extra < 3 * chunk_mb else 'SHORT'}"
            )


def data_parallel(models, num_examples, num_epochs):
    """Seconds per epoch on 2 ranks vs 1 at the same global batch, each (d, batch) in ``models``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from impls import synthetic_data
    from linreg_compare.distributed import spawn

    print(
        f"\ndata-parallel SGD, {num_examples:,} examples, {num_epochs} epochs: seconds per epoch (fit between "
        "barriers / epochs)"
    )
    print(f"  {'implementation':<15} {'d':>6} {'batch':>6} {'1 rank':>9} {'2 ranks':>9} {'2 / 1':>7}")
    for d, batch in models:
        X, y = synthetic_data(np.linspace(-2, 2, d), 4.2, num_examples, dtype="float64")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "data.parquet")
            pq.write_table(pa.table({f"x{j}": X[:, j] for j in range(d)} | {"y": y}), path)
            for impl, lr in [("torch-scratch", 0.01), ("torch-concise", 0.005)]:
                argv = [
                    "--impl",
                    impl,
                    "--data",
                    path,
                    "--target",
                    "y",
                    "--batch-size",
                    str(batch),
                    "--num-epochs",
                    str(num_epochs),
                    "--lr",
                    str(lr),
                    "--warm-up",
                ]
                one, two = (spawn(argv, world)["seconds_per_epoch"] for world in (1, 2))
                print(f"  {impl:<15} {d:>6} {batch:>6} {one:9.3f} {two:9.3f} {two / one:7.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that it runs")
    parser.add_argument("--only", choices=["closed-form", "data-parallel"], help="run one part")
    args = parser.parse_args(argv)
    if args.only in (None, "closed-form"):
        closed_form(*((200_000, 20, 4, 2) if args.quick else (10_000_000, 20, 20, 5)))
    if args.only in (None, "data-parallel"):
        models = [(2, 10), (200, 100)] if args.quick else [(2, 10), (100, 100), (1000, 1000), (5000, 1000)]
        data_parallel(models, 2_000 if args.quick else 20_000, 1 if args.quick else 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
