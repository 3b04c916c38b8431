"""The torch implementations on a GPU: the same answers as on the CPU, the data moved once, and the time.

    python benchmarks/cuda_check.py

Needs a machine with a CUDA GPU (run it there; the test suite's CUDA test covers the agreement too).
``--device cpu`` runs the same script against the CPU, as a dry run of the script itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import NAMES, implementation  # noqa: E402
from impls.data import synthetic_data  # noqa: E402

TORCH_NAMES = [name for name in NAMES if name.startswith("torch")]
TRUE_W, TRUE_B = np.array([2.0, -3.4]), 4.2


def synchronize(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_seconds(step, device, repeats):
    """Median wall time of ``step()`` after one warm-up call, synchronising the device around each."""
    step()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def agreement(device):
    """Largest difference between the CPU fit and the ``device`` fit: parameters and loss curve."""
    X, y = synthetic_data(TRUE_W, TRUE_B, 1000, random_state=0)
    print("\nagreement with the CPU fit at the notebook's setting (1000 x 2, batch 10, lr 0.03, 3 epochs):")
    print(
        f"  {'implementation':<16} {'dtype':<8} {'max |coef diff|':>16} {'|intercept diff|':>17} "
        f"{'max |loss diff|':>16}"
    )
    worst = 0.0
    for name in TORCH_NAMES:
        for dtype in ["float32", "float64"]:
            cpu = implementation(name)(dtype=dtype).fit(X, y)
            gpu = implementation(name)(dtype=dtype, device=device).fit(X, y)
            coef = np.max(np.abs(gpu.coef_ - cpu.coef_))
            intercept = abs(gpu.intercept_ - cpu.intercept_)
            loss = np.max(np.abs(np.array(gpu.loss_curve_) - np.array(cpu.loss_curve_)))
            worst = max(worst, coef, intercept)
            print(f"  {name:<16} {dtype:<8} {coef:>16.2e} {intercept:>17.2e} {loss:>16.2e}")
    # The same batches in the same order: the only differences are float rounding in other kernels.
    assert worst < 1e-4, f"the GPU fit differs from the CPU fit by {worst:.2e}"
    print(f"  largest parameter difference {worst:.2e} (bound 1e-4): ok")


def host_to_device_copies(device):
    """Count the host-to-device copies in one fit with the profiler: a fixed few, not one per batch."""
    if not device.startswith("cuda"):
        print("\nhost-to-device copies: not counted on the CPU")
        return
    from torch.profiler import ProfilerActivity, profile

    X, y = synthetic_data(TRUE_W, TRUE_B, 1000, random_state=0)
    print("\nhost-to-device copies during one fit (torch.profiler), 300 minibatch steps each:")
    for name in TORCH_NAMES:
        for use_dataloader in [False, True] if name == "torch-concise" else [False]:
            options = {"use_dataloader": True} if use_dataloader else {}
            estimator = implementation(name)(device=device, **options)
            estimator.fit(X, y)  # warm-up: kernels loaded, caches filled
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], acc_events=True) as prof:
                estimator.fit(X, y)
                torch.cuda.synchronize()
            copies = sum(e.count for e in prof.key_averages() if "Memcpy HtoD" in e.key)
            label = name + (" (use_dataloader=True)" if use_dataloader else "")
            print(f"  {label:<40} {copies:>4} copies")
            if not use_dataloader:
                assert copies < 30, f"{label}: {copies} host-to-device copies in 300 steps"


def timings(device, repeats):
    print(f"\nmedian fit time, {device} / cpu, {repeats} fits after a warm-up, device synchronised around each:")
    print(f"  {'setting':<46} {'implementation':<16} {'cpu s':>9} {device + ' s':>9} {'ratio':>7}")
    settings = [
        ("notebook: 1000 x 2, batch 10, 3 epochs", 1000, 2, {}),
        ("1,000,000 x 100, batch 10,000, 3 epochs", 1_000_000, 100, {"batch_size": 10_000, "lr": 0.01}),
    ]
    for label, n, d, options in settings:
        w = np.linspace(-2.0, 2.0, d)
        X, y = synthetic_data(w, TRUE_B, n, random_state=0, dtype=np.float32)
        for name in TORCH_NAMES:
            cpu = median_seconds(lambda: implementation(name)(**options).fit(X, y), "cpu", repeats)
            gpu = median_seconds(lambda: implementation(name)(device=device, **options).fit(X, y), device, repeats)
            print(f"  {label:<46} {name:<16} {cpu:>9.4f} {gpu:>9.4f} {gpu / cpu:>7.2f}")
        if n > 100_000:
            host_side_costs(X, y, device, repeats)


def host_side_costs(X, y, device, repeats):
    """What a large fit on the GPU pays on the host before and around its steps."""
    from sklearn.utils.validation import check_array

    from impls.data import shuffled_order, torch_generator

    def seconds(step):
        return median_seconds(step, device, repeats)

    generator = torch_generator(0)
    costs = {
        "checking X on the host (validate_data's finiteness check)": seconds(lambda: check_array(X)),
        "copying X and y to the device, once": seconds(
            lambda: (torch.as_tensor(X).to(device), torch.as_tensor(y).to(device))
        ),
        "3 epochs' orders from the CPU generator": seconds(
            lambda: [shuffled_order(len(X), generator) for _ in range(3)]
        ),
    }
    print("    of which, on the host side of every fit above:")
    for what, cost in costs.items():
        print(f"      {what:<60} {cost:>8.4f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device to check against the CPU (default cuda)")
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per measurement (default 5)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.exit(2, "cuda_check.py: no CUDA GPU is available here; run it on a machine with one\n")
    print(f"torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} CPU threads")
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(args.device)}, CUDA {torch.version.cuda}")
    agreement(args.device)
    host_to_device_copies(args.device)
    timings(args.device, args.repeats)


if __name__ == "__main__":
    main()
