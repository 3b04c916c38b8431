"""The book's other exercises as sweeps: learning rate × batch size, data size, and initialisation.

Each returns a ``Study`` (``linreg_compare.study``); every loss is the full-training-set MSE of the recorded
parameters, computed by ``path_mse``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from impls import NAMES, NOTEBOOK_B, NOTEBOOK_W, DivergenceWarning, implementation, synthetic_data
from impls._step_size import step_limit
from linreg_compare.capabilities import has_learning_rate, names_that
from linreg_compare.fit import build
from linreg_compare.standardize import in_original_units, standardized
from linreg_compare.step_size import spectrum
from linreg_compare.study import Study, path_mse, trajectory


def _taking(parameter: str) -> list[str]:
    """The implementations that take ``parameter`` (the torch ones take ``init_std``)."""
    return [name for name in NAMES if parameter in implementation(name)().get_params()]


def sweep_lr_batch(
    *,
    impl: str | None = None,
    lrs=(0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
    batch_sizes=(1, 10, 100, 1000),
    num_examples=1000,
    num_epochs=3,
    seed=0,
    X=None,
    y=None,
    standardize: bool = False,
    data_name: str = "synthetic",
) -> Study:
    """Final training MSE for each learning rate and batch size of ``impl`` (default: the first implementation
    with a learning rate); a diverged cell is marked, not raised. On the notebook's data, or on the user's
    (X, y), standardised first with ``standardize`` (the MSE then of the line in the data's units)."""
    impl = impl or names_that(has_learning_rate)[0]
    if X is None:
        X, y = synthetic_data(NOTEBOOK_W, NOTEBOOK_B, num_examples, random_state=seed)
    rows = []
    for batch_size in batch_sizes:
        for lr in lrs:
            est = implementation(impl)(lr=lr, batch_size=batch_size, num_epochs=num_epochs, random_state=seed)
            fitted = standardized(est) if standardize else est
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DivergenceWarning)
                fitted.fit(X, y)
            rows.append(
                {
                    "batch_size": batch_size,
                    "lr": lr,
                    "steps": est.n_steps_,  # per sample for sklearn-sgd
                    "final_train_mse": None
                    if est.diverged_
                    else path_mse(X, y, [np.append(*in_original_units(fitted))])[0],
                    "status": f"diverged after epoch {est.n_iter_}" if est.diverged_ else "ok",
                }
            )
    config = {
        "impl": impl,
        "data": data_name,
        "num_examples": len(X),
        "num_epochs": num_epochs,
        "seed": seed,
        "standardize": standardize,
    }
    # The step size the data allow at each batch size, in the implementation's convention (impls/_step_size.py).
    seen = np.asarray(X, dtype=np.float64)
    if standardize:
        from sklearn.preprocessing import StandardScaler

        seen = StandardScaler().fit_transform(seen)
    limits = {B: step_limit(implementation(impl)(batch_size=B), seen) for B in batch_sizes}
    remark = (
        f"stable lr (lr_limit at the curvature a minibatch of B rows sees; {spectrum(seen, False).largest:.4g} = "
        f"λ_max of G for full batches): " + ", ".join(f"B={B}: {limit:.3g}" for B, limit in limits.items())
    )
    return Study(
        "sweep lr-batch",
        config,
        rows,
        plot={"lrs": list(lrs), "batch_sizes": list(batch_sizes)},
        remarks=[remark],
    )


def sweep_data_size(
    *,
    sizes=(5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
    seeds=(0, 1, 2, 3, 4),
    noise=0.01,
    num_epochs=3,
    batch_size=10,
    lr=0.03,
) -> Study:
    """‖ŵ − w‖ against n for every implementation (mean over seeds), beside least squares' σ·sqrt((d+1)/n)."""
    true_w, true_b = np.array(NOTEBOOK_W), NOTEBOOK_B
    settings = {"lr": lr, "batch_size": batch_size, "num_epochs": num_epochs}
    rows = []
    for num_examples in sizes:
        row = {"num_examples": num_examples, "theory_lstsq": noise * math.sqrt((len(true_w) + 1) / num_examples)}
        for name in NAMES:
            errors = []
            for seed in seeds:
                X, y = synthetic_data(true_w, true_b, num_examples, noise=noise, random_state=seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DivergenceWarning)
                    est = build(name, **settings, random_state=seed).fit(X, y)
                errors.append(np.linalg.norm(np.append(est.coef_ - true_w, est.intercept_ - true_b)))
            row[name] = float(np.mean(errors))
        rows.append(row)
    config = {"seeds": list(seeds), "noise": noise, "num_epochs": num_epochs, "batch_size": batch_size, "lr": lr}
    return Study("sweep data-size", config, rows, plot={"names": list(NAMES)})


def sweep_init(
    *, init_stds=(0.0, 0.01, 1.0, 10.0), num_examples=1000, num_epochs=3, lr=0.03, batch_size=10, seed=0
) -> Study:
    """Zeros versus the notebook's N(0, 0.01²) versus large variances, for the two torch implementations at the
    book's lr for each (the same 0.03, so torch-scratch, with its ½, takes half-size steps)."""
    X, y = synthetic_data(NOTEBOOK_W, NOTEBOOK_B, num_examples, random_state=seed)
    rows, curves = [], {}
    for name in _taking("init_std"):
        for init_std in init_stds:
            path, diverged = trajectory(
                name, X, y, lr=lr, batch_size=batch_size, num_epochs=num_epochs, random_state=seed, init_std=init_std
            )
            losses = path_mse(X, y, path)
            per_epoch = losses[:: math.ceil(num_examples / batch_size)]
            rows.append(
                {
                    "impl": name,
                    "lr": lr,
                    "init_std": init_std,
                    "initial_train_mse": float(losses[0]),
                    **{
                        f"epoch_{k}_train_mse": None if diverged else float(v)
                        for k, v in enumerate(per_epoch[1:], start=1)
                    },
                    "final_param_error": None
                    if diverged
                    else float(np.linalg.norm(path[-1] - [*NOTEBOOK_W, NOTEBOOK_B])),
                    "status": f"diverged after epoch {diverged}" if diverged else "ok",
                }
            )
            curves[(name, init_std)] = losses
    config = {"num_examples": num_examples, "num_epochs": num_epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    return Study(
        "sweep init", config, rows, plot={"curves": curves, "steps_per_epoch": math.ceil(num_examples / batch_size)}
    )
