"""The pictures: matplotlib is imported here only, and only when a plot is asked for; figures go to files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from linreg_compare.study import EXACT_TOLERANCE, path_mse

if TYPE_CHECKING:
    from linreg_compare.report import Comparison


def pyplot():
    """matplotlib's pyplot, drawing to files only (never a window); imported on the first plot asked for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_equivalences(study: dict):
    """One column per pair, numbered as in the key below the figure: the two training losses on top (they
    should overlap), the largest parameter difference at every step below, against the 1e-5 bar of "exact"
    (float32 rounding); an exact zero is drawn on a marked floor, since a log axis has no zero."""
    plt = pyplot()
    pairs, drawn = study.records, study.plot
    fig, axes = plt.subplots(2, len(pairs), figsize=(3.6 * len(pairs), 9.5), squeeze=False)
    floor = 1e-12
    for column, pair in enumerate(pairs):
        top, bottom = axes[0, column], axes[1, column]
        for losses, label, style in zip(drawn["losses"][column], drawn["labels"][column], ("-", "--")):
            top.plot(losses, style, label=label, linewidth=1.5)
        top.set(yscale="log", xlabel="epoch" if pair["compared_at"] == "every epoch end" else "recorded step")
        top.set_title(f"#{column + 1}: {pair['kind']}", fontsize=10)
        top.legend(fontsize=6, title="the two runs", title_fontsize=6)
        difference = np.asarray(drawn["difference"][column])
        bottom.plot(np.maximum(difference, floor), color="black", label="max |θ₁ − θ₂|")
        finite = difference[np.isfinite(difference)]  # a diverged pair has no finite difference at its end
        bottom.axhline(EXACT_TOLERANCE, color="red", linestyle=":", label="1e-5: the bar of 'exact'")
        bottom.axhline(
            floor, color="grey", linestyle="-", linewidth=3, alpha=0.3, label="exactly 0, drawn at the tick 0"
        )
        bottom.set(yscale="log", ylim=(floor / 10, max(1e-3, float(np.max(finite, initial=0)) * 10)))
        ticks = [tick for tick in bottom.get_yticks() if floor < tick < 1] + [floor]
        bottom.set_yticks(ticks, [f"{tick:.0e}" if tick > floor else "0" for tick in ticks])
        step = "epoch" if pair["compared_at"] == "every epoch end" else "recorded step"
        bottom.set_xlabel(f"{step}\n" + "\n".join(_wrap(pair["why"], 52)), fontsize=7)
        largest = (
            pair["status"] if pair["max_param_diff"] is None else f"largest difference {pair['max_param_diff']:.1e}"
        )
        bottom.set_title(f"#{column + 1}: {largest}", fontsize=9)
        bottom.legend(fontsize=6, loc="upper right")
    axes[0, 0].set_ylabel("training MSE of each run")
    axes[1, 0].set_ylabel("max |parameter difference| at each step")
    key = "\n".join(f"#{number}: {pair['name']}" for number, pair in enumerate(pairs, 1))
    fig.suptitle(
        "The notebook's exercise, step by step: pairs of runs on the same data, initial parameters and batches. "
        "Exact pairs stay under the red line at every step; approximate ones need not (the text under each says why).",
        fontsize=11,
    )
    fig.text(0.01, 0.005, key, fontsize=8, va="bottom", family="monospace")
    fig.tight_layout(rect=(0, 0.025 * len(pairs) + 0.02, 1, 0.96))
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
    lrs, batch_sizes = study.plot["lrs"], study.plot["batch_sizes"]
    grid = np.full((len(batch_sizes), len(lrs)), np.nan)
    for row in study.records:
        if row["final_train_mse"] is not None:
            grid[batch_sizes.index(row["batch_size"]), lrs.index(row["lr"])] = row["final_train_mse"]
    fig, axis = plt.subplots(figsize=(8, 4.5))
    image = axis.imshow(np.log10(grid), cmap="viridis", aspect="auto")
    for i, j in np.ndindex(grid.shape):
        axis.text(
            j,
            i,
            "diverged" if np.isnan(grid[i, j]) else f"{grid[i, j]:.1e}",
            ha="center",
            va="center",
            fontsize=7,
            color="red" if np.isnan(grid[i, j]) else "white",
        )
    axis.set(
        xticks=range(len(lrs)),
        xticklabels=[f"{lr:g}" for lr in lrs],
        yticks=range(len(batch_sizes)),
        yticklabels=batch_sizes,
        xlabel="learning rate",
        ylabel="batch size",
        title=f"{study.config['impl']}: training MSE after {study.config['num_epochs']} epochs",
    )
    fig.colorbar(image, label="log10 training MSE")
    fig.tight_layout()
    return fig


def plot_data_size(study: dict):
    plt = pyplot()
    sizes = [row["num_examples"] for row in study.records]
    fig, axis = plt.subplots(figsize=(7, 5))
    for name in study.plot["names"]:
        axis.plot(sizes, [row[name] for row in study.records], marker="o", label=name)
    axis.plot(sizes, [row["theory_lstsq"] for row in study.records], "k--", label="σ·sqrt((d+1)/n)")
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="training examples n",
        ylabel="‖(ŵ, b̂) − (w, b)‖ (mean over seeds)",
        title=f"Error against data size ({study.config['num_epochs']} epochs for the iterative ones)",
    )
    axis.legend()
    fig.tight_layout()
    return fig


def plot_init(study: dict):
    plt = pyplot()
    names = list(dict.fromkeys(impl for impl, _ in study.plot["curves"]))
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), sharey=True, squeeze=False)
    axes = axes[0]
    per_epoch = study.plot["steps_per_epoch"]
    for axis, name in zip(axes, names):
        for (impl, init_std), losses in study.plot["curves"].items():
            if impl == name:
                axis.plot(np.arange(len(losses)) / per_epoch, losses, label=f"init std {init_std:g}")
        axis.axhline(1e-4, color="grey", linestyle="--", label="noise floor")
        axis.set(yscale="log", xlabel="epoch", title=name)
        axis.legend()
    axes[0].set_ylabel("training MSE")
    fig.tight_layout()
    return fig


def draw_comparison(result: Comparison):
    """Training MSE at every step (log scale, noise floor drawn) and the paths of (w1, w2) over the loss contours.

    Every loss comes from the (d+2)×(d+2) moments of the data (``path_mse``): memory O(grid + path), whatever n.
    """
    plt = pyplot()
    races = {name: c["race"] for name, c in result.curves.items() if "race" in c}
    fig, axes = plt.subplots(2 if races else 1, 2, figsize=(12, 10 if races else 5), squeeze=False)
    (loss_axis, path_axis), X, y = axes[0], *result.data
    if races:
        draw_race(result, races, *axes[1])
    paths = {
        name: np.column_stack([c["coef_path"], c["intercept_path"]])
        for name, c in result.curves.items()
        if "coef_path" in c
    }
    for name, trail in paths.items():
        epochs = np.linspace(0, len(result.curves[name]["loss_curve"]), len(trail))
        stride = max(1, len(trail) // 2000)
        per_step = len(trail) > len(result.curves[name]["loss_curve"]) + 1
        loss_axis.plot(
            epochs[::stride],
            path_mse(X, y, trail[::stride]),
            marker=None if per_step else "o",
            label=name + (" (every step)" if per_step else " (every epoch)"),
        )
    if result.reference["noise_floor_mse"] is not None:
        loss_axis.axhline(result.reference["noise_floor_mse"], color="grey", linestyle="--", label="noise floor σ²")
    loss_axis.axhline(result.reference["train_mse"], color="black", linestyle=":", label="least squares")
    loss_axis.set(yscale="log", xlabel="epoch", ylabel="training MSE", title="Training loss along the way")
    loss_axis.legend()

    coef = np.array(result.reference["coef"])
    # Axes: (w1, w2) with the other parameters at the optimum, or (w1, b) when there is a single feature.
    axes = (0, 1)
    optimum = np.append(coef, result.reference["intercept"])
    points = np.vstack([optimum] + [p for p in paths.values()])
    low, high = points[:, axes].min(axis=0), points[:, axes].max(axis=0)
    pad = 0.1 * (high - low) + 1e-3
    grid_a, grid_b = np.meshgrid(
        np.linspace(low[0] - pad[0], high[0] + pad[0], 120), np.linspace(low[1] - pad[1], high[1] + pad[1], 120)
    )
    theta = np.tile(optimum, (grid_a.size, 1))
    theta[:, axes[0]], theta[:, axes[1]] = grid_a.ravel(), grid_b.ravel()
    losses = path_mse(X, y, theta).reshape(grid_a.shape)
    path_axis.contour(grid_a, grid_b, np.log10(losses), levels=20, cmap="viridis", linewidths=0.7)
    for name, trail in paths.items():
        path_axis.plot(
            trail[:, axes[0]], trail[:, axes[1]], marker="." if len(trail) < 50 else None, linewidth=1, label=name
        )
    path_axis.plot(
        *optimum[list(axes)], marker="*", markersize=14, color="red", linestyle="none", label="least squares"
    )
    names = [f"w of {name}" for name in result.config["feature_names"]] + ["intercept"]
    labels = (names[0], names[1]) if len(coef) >= 2 else (names[0], "intercept")
    title = "Parameter paths over log10 training-loss contours"
    if len(coef) > 2:
        title += f"\n(the first 2 of {len(coef)} weights; the others held at least squares')"
    path_axis.set(xlabel=labels[0], ylabel=labels[1], title=title)
    path_axis.legend()
    fig.tight_layout()
    return fig


def draw_race(result: Comparison, races: dict, epoch_axis, time_axis) -> None:
    """The race to least squares (``--until``): each iterative method's largest distance to it in standard errors,
    against epochs and against training seconds (log scales), the bar T, and the closed form as one point."""
    until, floor = result.config["until"], result.config["until"] / 100
    averaged = bool(result.config.get("average"))
    style = {"linestyle": "--"} if averaged else {}
    floors = {row["impl"]: row.get("noise_floor_in_se") for row in result.results}
    for name, race in races.items():
        distances = np.maximum(np.nan_to_num(race["distances"], nan=np.inf, posinf=1e300), floor)
        epochs = np.arange(1, len(distances) + 1)
        label = f"{name} (tail average)" if averaged else f"{name} (constant step)"
        (line,) = epoch_axis.plot(epochs, distances, label=label, **style)
        time_axis.plot(race["seconds"], distances, color=line.get_color(), label=label, **style)
        if floors.get(name) is not None:  # where the constant step settles, predicted
            epoch_axis.axhline(
                floors[name], color=line.get_color(), linestyle="-.", linewidth=0.8, label=f"{name}'s noise floor"
            )
    for row in result.results:
        if row["impl"] not in races and row["fit_seconds"] is not None:
            time_axis.plot(row["fit_seconds"], floor, marker="*", markersize=12, linestyle="none", color="red")
            time_axis.annotate(f"{row['impl']} (exact, drawn at the floor)", (row["fit_seconds"], floor), fontsize=7)
    for axis, xlabel in [(epoch_axis, "epoch"), (time_axis, "training seconds")]:
        axis.axhline(until, color="black", linestyle=":", label=f"T = {until:g} SE")
        axis.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="max |θ − θ_ls| / SE")
        axis.legend(fontsize=8)
    epoch_axis.set_title("The race to least squares, in standard errors")
    time_axis.set_title("The same race against the clock")


def png_writer(fig):
    """A function that writes ``fig`` as a PNG to the path it is given (for ``linreg_compare.files``), then frees it."""

    def write(path: str) -> None:
        try:
            fig.savefig(path, format="png", dpi=110)
        finally:
            pyplot().close(fig)

    return write


def draw_study(study):
    draw = {
        "equivalences": plot_equivalences,
        "sweep lr-batch": plot_lr_batch,
        "sweep data-size": plot_data_size,
        "sweep init": plot_init,
    }[study.study]
    return draw(study)
