"""Do data-parallel runs end cleanly? N runs of torch-concise (DDP) on 2 ranks, each a fresh command, counted.

    python benchmarks/ddp_exits.py --runs 50                 # the package's launcher (--nproc-per-node 2)
    python benchmarks/ddp_exits.py --runs 50 --torchrun      # the same module under torchrun, on 127.0.0.1

A run is clean when it exits 0 and its standard error has no abort ("terminate called", SIGABRT, a
traceback). Prints one line per unclean run and a last line "N of N runs ended cleanly"; exits 1 if any
did not.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGNS = ("terminate called", "SIGABRT", "Signal 6", "Traceback", "core dumped")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def command(torchrun: bool) -> list[str]:
    fit = ["-m", "linreg_compare.distributed", "--impl", "torch-concise"]
    if not torchrun:
        return [sys.executable, *fit, "--nproc-per-node", "2"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1"]
    return [*launcher, "--master-port", str(free_port()), *fit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="how many runs")
    parser.add_argument("--torchrun", action="store_true", help="launch with torchrun instead of --nproc-per-node")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one run may take")
    args = parser.parse_args()
    clean, start = 0, time.perf_counter()
    for run in range(1, args.runs + 1):
        try:
            done = subprocess.run(
                command(args.torchrun), capture_output=True, text=True, cwd=ROOT, timeout=args.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            print(f"run {run}: no end within {args.timeout:g} s", flush=True)
            continue
        signs = [sign for sign in SIGNS if sign in done.stderr]
        if done.returncode == 0 and not signs:
            clean += 1
        else:
            print(f"run {run}: exit status {done.returncode}, {', '.join(signs) or 'no sign on stderr'}", flush=True)
    launcher = "torchrun" if args.torchrun else "python -m linreg_compare.distributed --nproc-per-node 2"
    print(f"{clean} of {args.runs} runs ended cleanly ({launcher}, {time.perf_counter() - start:.0f} s)")
    return 0 if clean == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
