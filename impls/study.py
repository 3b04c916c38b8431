"""The seed's exercise and the book's other exercises, answered with numbers: loss conventions proved
step by step (``equivalences``) and three sweeps (learning rate x batch size, data size, initialisation).

Each function returns plain data (rows for tables, arrays for plots); ``compare.py`` renders and writes them.
Every loss here is the full-training-set MSE of the recorded parameters, computed by ``path_mse``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from impls import DivergenceWarning, implementation, synthetic_data

EXACT_TOLERANCE = 1e-5  # float32 arithmetic: agreement at every step within this is "exact"


def path_mse(X, y, path) -> np.ndarray:
    """Training MSE (no ½) at each row of ``path``, a (steps, d + 1) array of (w, b)."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    with np.errstate(all="ignore"):
        return np.mean((X @ path[:, :-1].T + path[:, -1] - y[:, None]) ** 2, axis=0)


def trajectory(name: str, X, y, **params) -> np.ndarray:
    """The parameters (w, b) after every step (every epoch for sklearn-sgd), starting with the initial ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        est = implementation(name)(record_steps=True, **params).fit(X, y)
    return np.column_stack([est.coef_path_, est.intercept_path_])


def equivalences(
    *, num_examples=1000, batch_size=10, lr=0.03, num_epochs=3, seed=0, true_w=(2.0, -3.4), true_b=4.2, noise=0.01
) -> dict:
    """Pairs of configurations on the same data, initial parameters and minibatch order, compared at every step."""
    X, y = synthetic_data(true_w, true_b, num_examples, noise=noise, random_state=seed)
    uneven = num_examples + batch_size // 2 if num_examples % batch_size == 0 else num_examples
    X_uneven, y_uneven = synthetic_data(true_w, true_b, uneven, noise=noise, random_state=seed)
    common = {"batch_size": batch_size, "num_epochs": num_epochs, "random_state": seed}
    a, B = lr, batch_size
    steps_per_epoch = math.ceil(num_examples / B)
    specs = [
        (
            f"MSELoss mean, lr {a:g}  vs  MSELoss sum, lr {a:g}/{B} = {a / B:g}",
            "exact",
            "the sum's gradient is B times the mean's, so dividing lr by B gives the same steps",
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
            "the seed's DataLoader(shuffle=True)  vs  the package's own batching, same generator",
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
    pairs = []
    for name, kind, why, (name_a, X_a, y_a, params_a), (name_b, X_b, y_b, params_b) in specs:
        first = trajectory(name_a, X_a, y_a, **common, **params_a)
        second = trajectory(name_b, X_b, y_b, **common, **params_b)
        if len(second) != len(first):  # sklearn-sgd records epoch ends only: compare there
            per_epoch = math.ceil(len(X_a) / B)
            first = first[::per_epoch]
        difference = np.abs(first - second).max(axis=1)
        pairs.append(
            {
                "name": name,
                "kind": kind,
                "max_param_diff": float(difference.max()),
                "final_param_diff": float(difference[-1]),
                "agrees_within_1e-5": bool(difference.max() <= EXACT_TOLERANCE),
                "compared_at": "every step" if len(first) > num_epochs + 1 else "every epoch end",
                "why": why,
                # for plots, not for tables
                "_losses": (path_mse(X_a, y_a, first), path_mse(X_b, y_b, second)),
                "_difference": difference,
                "_labels": (_describe(name_a, params_a), _describe(name_b, params_b)),
            }
        )
    config = {"num_examples": num_examples, "uneven_num_examples": uneven, "batch_size": B, "lr": a,
              "num_epochs": num_epochs, "seed": seed, "steps_per_epoch": steps_per_epoch}  # fmt: skip
    return {"study": "equivalences", "config": config, "pairs": pairs}


def _describe(name, params):
    return name + "".join(
        f", {key}={value:g}" if isinstance(value, float) else f", {key}={value}" for key, value in params.items()
    )


def sweep_lr_batch(
    *, impl="torch-concise", lrs=(0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0), batch_sizes=(1, 10, 100, 1000),
    num_examples=1000, num_epochs=3, seed=0,
) -> dict:  # fmt: skip
    """Final training MSE for each learning rate and batch size; a diverged cell is marked, not raised."""
    X, y = synthetic_data((2.0, -3.4), 4.2, num_examples, random_state=seed)
    rows = []
    for batch_size in batch_sizes:
        for lr in lrs:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DivergenceWarning)
                est = implementation(impl)(lr=lr, batch_size=batch_size, num_epochs=num_epochs, random_state=seed).fit(
                    X, y
                )
            diverged = any(issubclass(w.category, DivergenceWarning) for w in caught)
            rows.append({
                "batch_size": batch_size, "lr": lr, "steps": num_epochs * math.ceil(num_examples / batch_size),
                "final_train_mse": None if diverged else float(np.mean((X @ est.coef_ + est.intercept_ - y) ** 2)),
                "status": f"diverged after epoch {est.n_iter_}" if diverged else "ok",
            })  # fmt: skip
    config = {"impl": impl, "num_examples": num_examples, "num_epochs": num_epochs, "seed": seed}
    return {"study": "sweep lr-batch", "config": config, "rows": rows, "_axes": (list(lrs), list(batch_sizes))}


def sweep_data_size(
    *, sizes=(5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000), seeds=(0, 1, 2, 3, 4), noise=0.01,
    num_epochs=3, batch_size=10, lr=0.03,
) -> dict:  # fmt: skip
    """‖ŵ − w‖ against n for every implementation (mean over seeds), beside least squares' σ·sqrt((d+1)/n)."""
    true_w, true_b = np.array([2.0, -3.4]), 4.2
    rows = []
    for num_examples in sizes:
        row = {"num_examples": num_examples, "theory_lstsq": noise * math.sqrt((len(true_w) + 1) / num_examples)}
        for name in ("torch-concise", "torch-scratch", "numpy-closed-form", "sklearn-sgd"):
            errors = []
            for seed in seeds:
                X, y = synthetic_data(true_w, true_b, num_examples, noise=noise, random_state=seed)
                params = (
                    {}
                    if name == "numpy-closed-form"
                    else {"lr": lr, "batch_size": batch_size, "num_epochs": num_epochs, "random_state": seed}
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DivergenceWarning)
                    est = implementation(name)(**params).fit(X, y)
                errors.append(np.linalg.norm(np.append(est.coef_ - true_w, est.intercept_ - true_b)))
            row[name] = float(np.mean(errors))
        rows.append(row)
    config = {"seeds": list(seeds), "noise": noise, "num_epochs": num_epochs, "batch_size": batch_size, "lr": lr}
    return {"study": "sweep data-size", "config": config, "rows": rows}


def sweep_init(
    *, init_stds=(0.0, 0.01, 1.0, 10.0), num_examples=1000, num_epochs=3, lr=0.03, batch_size=10, seed=0
) -> dict:
    """Zeros versus the seed's N(0, 0.01²) versus large variances, for the two torch implementations at the
    book's lr for each (the same 0.03, so torch-scratch, with its ½, takes half-size steps)."""
    X, y = synthetic_data((2.0, -3.4), 4.2, num_examples, random_state=seed)
    rows, curves = [], {}
    for name in ("torch-concise", "torch-scratch"):
        for init_std in init_stds:
            path = trajectory(
                name, X, y, lr=lr, batch_size=batch_size, num_epochs=num_epochs, random_state=seed, init_std=init_std
            )
            losses = path_mse(X, y, path)
            per_epoch = losses[:: math.ceil(num_examples / batch_size)]
            rows.append({
                "impl": name, "lr": lr, "init_std": init_std, "initial_train_mse": float(losses[0]),
                **{f"epoch_{k}_train_mse": float(v) for k, v in enumerate(per_epoch[1:], start=1)},
                "final_param_error": float(np.linalg.norm(path[-1] - [2.0, -3.4, 4.2])),
            })  # fmt: skip
            curves[(name, init_std)] = losses
    config = {"num_examples": num_examples, "num_epochs": num_epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    return {
        "study": "sweep init",
        "config": config,
        "rows": rows,
        "_curves": curves,
        "_steps_per_epoch": math.ceil(num_examples / batch_size),
    }


# ------------------------------------------------------------------------------------------------------------
# Pictures (matplotlib is imported only here, and only when a plot is asked for)


def pyplot():
    """matplotlib's pyplot, drawing to files only (never a window); imported on the first plot asked for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_equivalences(study: dict):
    plt = pyplot()
    pairs = study["pairs"]
    fig, axes = plt.subplots(2, len(pairs), figsize=(3.6 * len(pairs), 7), squeeze=False)
    floor = 1e-12
    for column, pair in enumerate(pairs):
        top, bottom = axes[0, column], axes[1, column]
        for losses, label, style in zip(pair["_losses"], pair["_labels"], ("-", "--")):
            top.plot(losses, style, label=label, linewidth=1.5)
        top.set(yscale="log", title=f"{pair['kind']}: max diff {pair['max_param_diff']:.1e}", xlabel="recorded step")
        top.title.set_fontsize(9)
        top.legend(fontsize=6)
        bottom.plot(np.maximum(pair["_difference"], floor), color="black")
        bottom.axhline(EXACT_TOLERANCE, color="red", linestyle=":", label="1e-5")
        bottom.set(yscale="log", ylim=(floor / 2, None), xlabel="recorded step")
        bottom.set_title("\n".join(_wrap(pair["name"], 48)), fontsize=7)
        bottom.legend(fontsize=6)
    axes[0, 0].set_ylabel("training MSE")
    axes[1, 0].set_ylabel(f"max |parameter difference| (0 drawn at {floor:g})")
    fig.tight_layout()
    return fig


def _wrap(text, width):
    words, lines = text.split(), [""]
    for word in words:
        if len(lines[-1]) + len(word) + 1 > width:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    return lines


def plot_lr_batch(study: dict):
    plt = pyplot()
    lrs, batch_sizes = study["_axes"]
    grid = np.full((len(batch_sizes), len(lrs)), np.nan)
    for row in study["rows"]:
        if row["final_train_mse"] is not None:
            grid[batch_sizes.index(row["batch_size"]), lrs.index(row["lr"])] = row["final_train_mse"]
    fig, axis = plt.subplots(figsize=(8, 4.5))
    image = axis.imshow(np.log10(grid), cmap="viridis", aspect="auto")
    for i, j in np.ndindex(grid.shape):
        axis.text(j, i, "diverged" if np.isnan(grid[i, j]) else f"{grid[i, j]:.1e}", ha="center", va="center",
                  fontsize=7, color="red" if np.isnan(grid[i, j]) else "white")  # fmt: skip
    axis.set(xticks=range(len(lrs)), xticklabels=[f"{lr:g}" for lr in lrs], yticks=range(len(batch_sizes)),
             yticklabels=batch_sizes, xlabel="learning rate", ylabel="batch size",
             title=f"{study['config']['impl']}: training MSE after {study['config']['num_epochs']} epochs")  # fmt: skip
    fig.colorbar(image, label="log10 training MSE")
    fig.tight_layout()
    return fig


def plot_data_size(study: dict):
    plt = pyplot()
    sizes = [row["num_examples"] for row in study["rows"]]
    fig, axis = plt.subplots(figsize=(7, 5))
    for name in ("torch-concise", "torch-scratch", "numpy-closed-form", "sklearn-sgd"):
        axis.plot(sizes, [row[name] for row in study["rows"]], marker="o", label=name)
    axis.plot(sizes, [row["theory_lstsq"] for row in study["rows"]], "k--", label="σ·sqrt((d+1)/n)")
    axis.set(xscale="log", yscale="log", xlabel="training examples n", ylabel="‖(ŵ, b̂) − (w, b)‖ (mean over seeds)",
             title=f"Error against data size ({study['config']['num_epochs']} epochs for the iterative ones)")  # fmt: skip
    axis.legend()
    fig.tight_layout()
    return fig


def plot_init(study: dict):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    per_epoch = study["_steps_per_epoch"]
    for axis, name in zip(axes, ("torch-concise", "torch-scratch")):
        for (impl, init_std), losses in study["_curves"].items():
            if impl == name:
                axis.plot(np.arange(len(losses)) / per_epoch, losses, label=f"init std {init_std:g}")
        axis.axhline(1e-4, color="grey", linestyle="--", label="noise floor")
        axis.set(yscale="log", xlabel="epoch", title=name)
        axis.legend()
    axes[0].set_ylabel("training MSE")
    fig.tight_layout()
    return fig
