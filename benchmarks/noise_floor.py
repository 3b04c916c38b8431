"""Is the predicted noise floor the one SGD settles at, and does the tail average reach least squares?
python benchmarks/noise_floor.py [--quick]      (the tables)
python benchmarks/noise_floor.py --figure PATH  (constant steps against the tail average on one data set)

For each real data set of benchmarks/real_data.py (and MORE) whose standardised design has κ below MAX_CONDITION
(the runner's defaults: standardised features, lr 0.03, batches of 10, seed 0, every row trained on), each
iterative implementation trains EPOCHS epochs by ``partial_fit``; the measured figure is the mean over the last
SETTLED epochs of the report's in-SE measure at each epoch's end, beside ``linreg_compare.noise_floor``'s prediction
of the floor and of that mean (the floor plus what is left of the start's error, which on small data read in a few
steps per epoch has not yet decayed). The claim holds where measured and predicted are within a factor of 3. Then,
with ``average=True``, the epochs each takes to come within 0.1 SE (at most AVERAGE_EPOCHS) and its distance after
AVERAGE_EPOCHS, each beside the prediction of the tail average's bias and variance terms. Prints markdown tables
(docs/learn.md holds their output).
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.real_data import DATA_SETS, frame  # noqa: E402
from impls import implementation  # noqa: E402
from linreg_compare import noise_floor  # noqa: E402
from linreg_compare.score import Data, largest, least_squares_reference  # noqa: E402
from linreg_compare.score import in_se as score_in_se  # noqa: E402
from linreg_compare.standardize import in_original_units, standardized  # noqa: E402
from linreg_compare.step_size import spectrum  # noqa: E402

EPOCHS, SETTLED, AVERAGE_EPOCHS, UNTIL = 60, 20, 100, 0.1
MAX_CONDITION = 12.0
# Beside benchmarks/real_data.py's data sets, more that statsmodels ships with a well-conditioned design.
MORE = {
    "spector": ("spector", "GRADE"),
    "anes96": ("anes96", "PID"),
    "strikes": ("strikes", "duration"),
    "heart": ("heart", "survival"),
    "cancer": ("cancer", "cancer"),
}
ITERATIVE = ("torch-concise", "torch-scratch", "sklearn-sgd")


def reference_of(X, y) -> dict:
    """Least squares on (X, y) as the runner computes it, every row trained on."""
    return least_squares_reference(Data(X, y), None)


def in_se(fitted, reference: dict) -> float:
    """The report's in-SE measure of a fitted pipeline, by the runner's own scoring."""
    return largest(score_in_se(*in_original_units(fitted), reference))


def distances(name: str, X, y, reference: dict, epochs: int, average: bool, stop_below=None):
    """The in-SE distance after each epoch of ``partial_fit``, and the fitted pipeline."""
    pipeline = standardized(implementation(name)(average=average))
    pipeline[0].fit(X)
    Z, learner, found = pipeline[0].transform(X), pipeline[-1], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            learner.partial_fit(Z, y)
            found.append(in_se(pipeline, reference))
            if stop_below is not None and found[-1] < stop_below:
                break
    return found, pipeline


def predicted_then(pipeline, X, y, reference: dict, epochs: int, settled: int):
    """The expected in-SE measure over the last ``settled`` of ``epochs`` epochs at a constant step: the noise floor
    and the start's error not yet contracted away (``noise_floor.constant_step``)."""
    scaler, estimator = pipeline[0], pipeline[-1]
    coef = np.asarray(reference["coef"], dtype=np.float64)
    theta = np.append(reference["intercept"] + coef @ scaler.mean_, coef * scaler.scale_)
    Z = scaler.transform(X)
    step = 2.0 * estimator.lr_ / estimator.lr_limit(1.0, num_examples=len(Z))
    noise = noise_floor.epoch_noise(Z, y, theta, step, estimator._rows_per_step(len(Z)))
    if noise is None:
        return None
    transform = noise_floor.to_data_units(scaler.mean_, scaler.scale_, Z.shape[1])
    stderr = np.append(reference["coef_stderr"], reference["intercept_stderr"])
    values = [
        noise_floor.expected_in_se(*noise_floor.constant_step(noise, -theta, epoch), transform, stderr)
        for epoch in range(epochs - settled + 1, epochs + 1)
    ]
    return float(np.mean(values))


def data_sets(quick: bool):
    for name, (source, target) in {**DATA_SETS, **MORE}.items():
        data = frame(source).dropna()
        X = np.array(data.drop(columns=[target]), dtype=float)
        y = np.array(data[target], dtype=float)
        condition = spectrum(X, True).condition
        if condition < MAX_CONDITION:
            yield name, X, y, condition
        if quick and name == "stackloss":
            return


FIGURE_DATA = "anes96"


def figure(path: str) -> int:
    """Constant steps against their tail average on FIGURE_DATA, in SE after every epoch, with each predicted floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source, target = MORE[FIGURE_DATA]
    data = frame(source).dropna()
    X, y = np.array(data.drop(columns=[target]), dtype=float), np.array(data[target], dtype=float)
    reference = reference_of(X, y)
    fig, axis = plt.subplots(figsize=(8, 5))
    for impl in ITERATIVE:
        constant, pipeline = distances(impl, X, y, reference, AVERAGE_EPOCHS, average=False)
        averaged, _ = distances(impl, X, y, reference, AVERAGE_EPOCHS, average=True)
        epochs = np.arange(1, AVERAGE_EPOCHS + 1)
        (line,) = axis.plot(epochs, constant, label=f"{impl}, constant step")
        axis.plot(epochs, averaged, color=line.get_color(), linestyle="--", label=f"{impl}, tail average")
        floor = noise_floor.for_row(pipeline, X, y, reference)["noise_floor_in_se"]
        axis.axhline(floor, color=line.get_color(), linestyle=":", linewidth=1, label=f"{impl}, predicted floor")
    axis.axhline(UNTIL, color="black", linestyle="-.", linewidth=1, label=f"{UNTIL:g} SE")
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="epoch",
        ylabel="max |θ − θ_ls| / SE",
        title=f"{FIGURE_DATA} ({X.shape[0]} × {X.shape[1]}), standardised, lr 0.03, batches of 10",
    )
    axis.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return 0


def main(argv: list[str]) -> int:
    if "--figure" in argv:
        return figure(argv[argv.index("--figure") + 1])
    quick = "--quick" in argv
    epochs = 12 if quick else EPOCHS
    settled = 4 if quick else SETTLED
    print(
        "| data (n × d), κ | implementation | measured, last epochs (SE) | predicted floor | predicted, last epochs "
        "| measured / predicted |"
    )
    print("|---|---|---|---|---|---|")
    held = total = 0
    averaging = []
    for name, X, y, condition in data_sets(quick):
        reference = reference_of(X, y)
        for impl in ITERATIVE:
            found, pipeline = distances(impl, X, y, reference, epochs, average=False)
            measured = float(np.mean(found[-settled:]))
            floor = noise_floor.for_row(pipeline, X, y, reference)["noise_floor_in_se"]
            predicted = then = predicted_then(pipeline, X, y, reference, epochs, settled)
            ratio = None if predicted is None else measured / predicted
            within = ratio is not None and 1 / 3 <= ratio <= 3
            held, total = held + within, total + 1
            print(
                f"| {name} ({X.shape[0]} × {X.shape[1]}), {condition:.3g} | {impl} | {measured:.3g} | "
                f"{'-' if floor is None else f'{floor:.3g}'} | {'-' if then is None else f'{then:.3g}'} | "
                f"{'-' if ratio is None else f'{ratio:.2f}'}{'' if within else ' (outside 3×)'} |"
            )
            found, pipeline = distances(impl, X, y, reference, AVERAGE_EPOCHS, average=True)
            pipeline[-1].set_params(num_epochs=AVERAGE_EPOCHS)
            predicted = noise_floor.for_row(pipeline, X, y, reference, until=UNTIL)
            reached = next((epoch + 1 for epoch, distance in enumerate(found) if distance < UNTIL), None)
            averaging.append((name, X.shape, impl, reached, predicted["predicted_average_epochs"], found[-1]))
            averaging[-1] += (predicted["predicted_in_se"],)
    print(f"\nThe measured floor is within 3 times the predicted one in {held} of {total} cases.\n")
    print(
        f"| data (n × d) | implementation | epochs to {UNTIL:g} SE with --average | predicted | "
        f"distance after {AVERAGE_EPOCHS} | predicted |"
    )
    print("|---|---|---|---|---|---|")
    within = 0
    for name, shape, impl, reached, predicted_epochs, distance, prediction in averaging:
        within += reached is not None
        print(
            f"| {name} ({shape[0]} × {shape[1]}) | {impl} | {reached or f'not within {AVERAGE_EPOCHS}'} | "
            f"{predicted_epochs or f'not within {AVERAGE_EPOCHS}'} | {distance:.2g} | "
            f"{'-' if prediction is None else f'{prediction:.2g}'} |"
        )
    print(f"\nWith --average, {within} of {len(averaging)} reach {UNTIL:g} SE within {AVERAGE_EPOCHS} epochs.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
