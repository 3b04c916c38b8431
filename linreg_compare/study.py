"""The notebook's exercise and the book's other exercises, answered with numbers: loss conventions proved
step by step (``equivalences``) and three sweeps (learning rate x batch size, data size, initialisation).

Each function returns a ``Study``: its settings, one record per table row, and the arrays its plot draws.
Every loss here is the full-training-set MSE of the recorded parameters, computed by ``path_mse``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from impls import NOTEBOOK_B, NOTEBOOK_W, DivergenceWarning, implementation, synthetic_data
from impls._collections import is_dask
from impls.closed_form.moments import BLOCK_ROWS, block_moments
from linreg_compare.render import cell, render

EXACT_TOLERANCE = 1e-5  # float32 arithmetic: agreement at every step within this is "exact"


@dataclass
class Study:
    """A study's result: ``records`` are its table's rows (and its JSON's ``pairs`` or ``rows``), ``plot``
    the arrays its picture needs. ``render(fmt)`` gives a table, markdown, JSON or CSV."""

    study: str
    config: dict
    records: list[dict]
    records_name: str = "rows"
    plot: dict = field(default_factory=dict, repr=False)
    remarks: list[str] = field(default_factory=list)  # lines for the notes: what was left out, and why

    def to_dict(self) -> dict:
        return {"study": self.study, "config": self.config, self.records_name: self.records}

    def csv_records(self) -> list[dict]:
        return self.records

    def cells(self) -> tuple[list[str], list[list[str]]]:
        explained = "why" in self.records[0]  # numbered rows, their explanations as notes
        header = [key for key in self.records[0] if key != "why"]
        rows = [[cell(record[key]) for key in header] for record in self.records]
        if explained:
            return ["#", *header], [[str(i), *row] for i, row in enumerate(rows, 1)]
        return header, rows

    def notes(self) -> list[str]:
        config = ", ".join(f"{key} {value}" for key, value in self.config.items())
        notes = [f"{self.study}: {config}", *self.remarks]
        return notes + [f"#{i} {record['why']}" for i, record in enumerate(self.records, 1) if "why" in record]

    def render(self, fmt: str = "table") -> str:
        return render(self, fmt)


def path_mse(X, y, path) -> np.ndarray:
    """Training MSE (no ½) at each row of ``path``, a (steps, d + 1) array of (w, b).

    From the (d+2)×(d+2) moments M of Z = [X, 1, y]: with v = (w, b, −1), n·MSE = vᵀMv. Memory is
    O(d² + steps) whatever n and however many points are asked for (a whole contour grid, say); dask
    arrays are reduced to M where they live.
    """
    if is_dask(X):  # one pass where the data live
        from impls.closed_form.dask import moments_of_chunks as dask_moments

        moments = dask_moments(X, y, None, 0.0)
    else:
        X, y = np.asarray(X), np.asarray(y)
        moments = sum(
            block_moments(X[i : i + BLOCK_ROWS], y[i : i + BLOCK_ROWS], None, 0.0) for i in range(0, len(X), BLOCK_ROWS)
        )
    v = np.column_stack([np.asarray(path, dtype=np.float64), -np.ones(len(path))])
    with np.errstate(all="ignore"):
        return np.maximum(np.sum((v @ moments) * v, axis=1) / len(X), 0.0)  # vᵀMv row by row, by one matmul


def trajectory(name: str, X, y, world_size: int = 1, **params) -> np.ndarray:
    """The parameters (w, b) after every step (every epoch for sklearn-sgd), starting with the initial ones,
    and the epoch after which training diverged (None when it did not). With ``world_size`` > 1, fitted
    data-parallel on that many spawned ranks, each reading (X, y) from the same Parquet file."""
    if world_size > 1:
        return _trajectory_on_ranks(name, X, y, world_size, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        est = implementation(name)(record_steps=True, **params).fit(X, y)
    return np.column_stack([est.coef_path_, est.intercept_path_]), (est.n_iter_ if est.diverged_ else None)


def _trajectory_on_ranks(name, X, y, world_size, *, lr, batch_size, num_epochs, random_state, reduction="mean"):
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet

    from linreg_compare.distributed import spawn

    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/data.parquet"
        columns = {f"x{j}": X[:, j] for j in range(X.shape[1])} | {"y": y}
        pyarrow.parquet.write_table(pa.table(columns), path)
        fit = spawn(
            [
                "--impl",
                name,
                "--data",
                path,
                "--target",
                "y",
                "--lr",
                repr(lr),
                "--batch-size",
                str(batch_size),
                "--num-epochs",
                str(num_epochs),
                "--seed",
                str(random_state),
                "--reduction",
                reduction,
                "--record-steps",
            ],
            world_size,
        )
    return np.column_stack([fit["coef_path"], fit["intercept_path"]]), (fit["n_iter"] if fit["diverged"] else None)


def equivalences(
    *,
    num_examples=1000,
    batch_size=10,
    lr=0.03,
    num_epochs=3,
    seed=0,
    true_w=NOTEBOOK_W,
    true_b=NOTEBOOK_B,
    noise=0.01,
    world_size=1,
) -> Study:
    """Pairs of configurations on the same data, initial parameters and minibatch order, compared at every step.

    With ``world_size`` W > 1, two more pairs: each torch implementation fitted data-parallel on W spawned
    ranks (torch.distributed, gloo, 127.0.0.1) against one process with the same global batch.
    """
    X, y = synthetic_data(true_w, true_b, num_examples, noise=noise, random_state=seed)
    # The uneven pairs need a last batch shorter than B: n itself if B does not divide it, else n + B/2.
    uneven = num_examples + batch_size // 2 if num_examples % batch_size == 0 else num_examples
    X_uneven, y_uneven = synthetic_data(true_w, true_b, uneven, noise=noise, random_state=seed)
    common = {"batch_size": batch_size, "num_epochs": num_epochs, "random_state": seed}
    a, B = lr, batch_size
    steps_per_epoch = math.ceil(num_examples / B)
    specs = [
        (
            f"MSELoss mean, lr {a:g}  vs  MSELoss sum, lr {a:g}/{B} = {a / B:g}",
            "exact" if num_examples % B == 0 else "approximate",
            "the sum's gradient is B times the mean's, so dividing lr by B gives the same steps"
            + ("" if num_examples % B == 0 else f"; but here the last batch has {num_examples % B} examples, not {B}"),
            ("torch-concise", X, y, {"lr": a}),
            ("torch-concise", X, y, {"lr": a / B, "reduction": "sum"}),
        ),
        (
            f"MSELoss (torch-concise), lr {a:g}  vs  ½ squared loss (torch-scratch), lr {2 * a:g}",
            "exact",
            "d/dŷ (ŷ-y)² = 2(ŷ-y) while d/dŷ ½(ŷ-y)² = (ŷ-y): the ½ is worth a factor 2 in lr",
            ("torch-concise", X, y, {"lr": a}),
            ("torch-scratch", X, y, {"lr": 2 * a}),
        ),
        (
            "the notebook's DataLoader(shuffle=True)  vs  the package's own batching, same generator",
            "exact",
            "both draw the same permutation from the same generator, so they see the same batches",
            ("torch-concise", X, y, {"lr": a, "use_dataloader": True}),
            ("torch-concise", X, y, {"lr": a}),
        ),
        (
            f"minibatch torch-scratch, lr {2 * a:g}  vs  per-sample sklearn-sgd, eta0 = 2*{a:g}/{B} = {2 * a / B:g}",
            "approximate",
            "the same distance per epoch to first order, but per-sample steps use fresher parameters "
            "and another shuffle; compared at the end of each epoch",
            ("torch-scratch", X, y, {"lr": 2 * a}),
            ("sklearn-sgd", X, y, {"lr": a}),
        ),
        (
            f"{uneven} examples (last batch of {uneven % B}): MSELoss mean, lr {a:g}  vs  sum, lr {a / B:g}",
            "approximate",
            f"the last batch of each epoch has {uneven % B} examples, not {B}: sum/B then takes a step "
            f"{uneven % B}/{B} the size of the mean's, so the trajectories part after the first epoch",
            ("torch-concise", X_uneven, y_uneven, {"lr": a}),
            ("torch-concise", X_uneven, y_uneven, {"lr": a / B, "reduction": "sum"}),
        ),
        (
            f"{uneven} examples: MSELoss mean, lr {a:g}  vs  ½ loss summed / len(batch drawn), lr {2 * a:g}",
            "exact",
            "dividing by the length of the batch actually drawn (as torch-scratch's sgd does) keeps it exact",
            ("torch-concise", X_uneven, y_uneven, {"lr": a}),
            ("torch-scratch", X_uneven, y_uneven, {"lr": 2 * a}),
        ),
    ]
    remarks = []
    if B == 1:  # every batch is full: no uneven last batch exists, so the pairs about it do not apply
        specs, uneven = specs[:4], None
        remarks.append("pairs about an uneven last batch are left out: with batches of 1 every batch is full")
    if world_size > 1:
        from linreg_compare.distributed import shard_sizes

        X_d, y_d, n_d = (X, y, num_examples) if uneven is None else (X_uneven, y_uneven, uneven)
        shards = "/".join(map(str, shard_sizes(min(B, n_d), world_size)))  # of the batch actually drawn
        last = "/".join(map(str, shard_sizes(n_d % B or B, world_size)))
        specs += [
            (
                f"{n_d} examples: {world_size} ranks × shards of {shards} (DDP, torch-concise)  vs  one process × "
                f"batch {B}, lr {a:g}",
                "exact",
                f"DDP averages the {world_size} ranks' gradients, each of its shard's summed loss times "
                f"{world_size}/|B|: the average is the gradient of the whole batch's mean loss, the last batch "
                f"(shards of {last}) included",
                ("torch-concise", X_d, y_d, {"lr": a, "world_size": world_size}),
                ("torch-concise", X_d, y_d, {"lr": a}),
            ),
            (
                f"{n_d} examples: {world_size} ranks × shards of {shards} (all_reduce, torch-scratch)  vs  one "
                f"process × batch {B}, lr {2 * a:g}",
                "exact",
                "backward() sums the ranks' gradients of their shards' summed losses with all_reduce (a hook on "
                "each parameter), which is the gradient summed over the whole batch; sgd then divides by the "
                "batch's length as one process does",
                ("torch-scratch", X_d, y_d, {"lr": 2 * a, "world_size": world_size}),
                ("torch-scratch", X_d, y_d, {"lr": 2 * a}),
            ),
        ]
    pairs, plot = [], {"losses": [], "difference": [], "labels": []}
    for name, kind, why, (name_a, X_a, y_a, params_a), (name_b, X_b, y_b, params_b) in specs:
        first, diverged_a = trajectory(name_a, X_a, y_a, **common, **params_a)
        second, diverged_b = trajectory(name_b, X_b, y_b, **common, **params_b)
        if len(second) != len(first):  # sklearn-sgd records epoch ends only: compare there
            per_epoch = math.ceil(len(X_a) / B)
            first = first[::per_epoch]
        diverged = [
            f"{which} after epoch {epoch}"
            for which, epoch in (("first", diverged_a), ("second", diverged_b))
            if epoch is not None
        ]
        with np.errstate(invalid="ignore", over="ignore"):
            difference = np.abs(first - second).max(axis=1)
        pairs.append(
            {
                "name": name,
                "kind": kind,
                "max_param_diff": None if diverged else float(difference.max()),
                "final_param_diff": None if diverged else float(difference[-1]),
                "agrees_within_1e-5": None if diverged else bool(difference.max() <= EXACT_TOLERANCE),
                "compared_at": "every step" if len(first) > num_epochs + 1 else "every epoch end",
                "status": "diverged: " + ", ".join(diverged) if diverged else "ok",
                "why": why,
            }
        )
        plot["losses"].append((path_mse(X_a, y_a, first), path_mse(X_b, y_b, second)))
        plot["difference"].append(difference)
        plot["labels"].append((_describe(name_a, params_a), _describe(name_b, params_b)))
    config = {
        "num_examples": num_examples,
        "uneven_num_examples": uneven,
        "batch_size": B,
        "lr": a,
        "num_epochs": num_epochs,
        "seed": seed,
        "steps_per_epoch": steps_per_epoch,
    }
    if world_size > 1:
        config["world_size"] = world_size
    return Study("equivalences", config, pairs, records_name="pairs", plot=plot, remarks=remarks)


def _describe(name, params):
    return name + "".join(
        f", {key}={value:g}" if isinstance(value, float) else f", {key}={value}" for key, value in params.items()
    )
