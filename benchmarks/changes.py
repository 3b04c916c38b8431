"""What each performance change saved, measured before/after in one run: python benchmarks/changes.py

Each line times the old and the new way of one step alternately (medians of many runs), on the notebook's data.
"""

import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from impls import synthetic_data
from impls.data import minibatches, torch_generator

X, y = synthetic_data([2, -3.4], 4.2, 1000)
FEATURES, LABELS = torch.as_tensor(X), torch.as_tensor(y).reshape(-1, 1)


def alternate(old, new, repeats=31):
    old(), new()
    times = {old: [], new: []}
    for round_ in range(repeats):
        for fn in (old, new) if round_ % 2 == 0 else (new, old):
            start = time.perf_counter()
            fn()
            times[fn].append(time.perf_counter() - start)
    return statistics.median(times[old]), statistics.median(times[new])


def line(what, old, new, unit_scale, unit):
    print(f"  {what:<62} {old * unit_scale:8.1f} -> {new * unit_scale:8.1f} {unit}  ({new / old:.2f}x)")


def concise_epochs(foreach):
    def run():
        generator = torch_generator(0)
        net = nn.Sequential(nn.Linear(2, 1))
        loss = nn.MSELoss()
        trainer = torch.optim.SGD(net.parameters(), lr=0.03, foreach=foreach)
        for _ in range(3):
            for X_batch, y_batch in minibatches(FEATURES, LABELS, 10, generator):
                l = loss(net(X_batch), y_batch)
                trainer.zero_grad()
                l.backward()
                trainer.step()

    return run


def scratch_epochs(one_op):
    def run():
        generator = torch_generator(0)
        w = torch.normal(0, 0.01, size=(2, 1), generator=generator, requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        for _ in range(3):
            for X_batch, y_batch in minibatches(FEATURES, LABELS, 10, generator):
                ((X_batch @ w + b - y_batch) ** 2 / 2).sum().backward()
                with torch.no_grad():
                    for param in (w, b):
                        if one_op:
                            param.sub_(param.grad, alpha=0.03 / len(X_batch))
                        else:
                            param -= 0.03 * param.grad / len(X_batch)
                        param.grad.zero_()

    return run


def batching(dataloader):
    def run():
        generator = torch_generator(0)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(FEATURES, LABELS), 10, shuffle=True, generator=generator
        )
        for _ in range(3):
            for _batch in loader if dataloader else minibatches(FEATURES, LABELS, 10, generator):
                pass

    return run


FIRST_USE = """
import time, torch
from torch import nn
start = time.perf_counter()
{build}
print(time.perf_counter() - start)
"""


def first_use(build):
    times = []
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-c", FIRST_USE.format(build=build)], capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout))
    return statistics.median(times)


def main():
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        "the notebook's 1000 x 2, batch 10, 3 epochs (300 steps)"
    )
    old, new = alternate(batching(True), batching(False))
    line("batching: DataLoader -> one gather per epoch, split into views", old / 300, new / 300, 1e6, "us a batch")
    old, new = alternate(concise_epochs(None), concise_epochs(False))
    line("torch-concise: SGD(foreach=None) -> SGD(foreach=False)", old / 300, new / 300, 1e6, "us a step")
    old, new = alternate(scratch_epochs(False), scratch_epochs(True))
    line(
        "torch-scratch: param -= lr * grad / B -> param.sub_(grad, alpha=lr / B)",
        old / 300,
        new / 300,
        1e6,
        "us a step",
    )
    old = first_use("nn.utils.skip_init(nn.Linear, 2, 1)")
    new = first_use("with torch.random.fork_rng(devices=[]):\n    nn.Linear(2, 1)")
    line("first model in a process: skip_init -> nn.Linear in fork_rng", old, new, 1e3, "ms")


if __name__ == "__main__":
    main()
