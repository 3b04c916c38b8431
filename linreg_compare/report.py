"""What ``compare`` returns: the settings, the machine, the least-squares reference and one row per implementation."""

from __future__ import annotations

from dataclasses import dataclass, field

from linreg_compare.capabilities import fits_dask_in_place
from linreg_compare.render import number, numbers, render


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


# The table's columns: a title and the cell of a result row. The truth columns appear only when it is known.
COLUMNS = [
    ("impl", lambda r: r["impl"]),
    ("w", lambda r: numbers(r["coef"], "{:.4f}")),
    ("b", lambda r: number(r["intercept"], "{:.4f}")),
    ("w error", lambda r: number(r["coef_error"], "{:.1e}")),
    ("b error", lambda r: number(r["intercept_error"], "{:.1e}")),
    ("to lstsq", lambda r: number(r["param_distance_to_lstsq"], "{:.1e}")),
    ("in SE", lambda r: number(r["param_distance_to_lstsq_in_se"], "{:.2g}")),
    ("train MSE", lambda r: number(r["train_mse"], "{:.3e}")),
    ("excess", lambda r: number(r["excess_train_mse"], "{:+.1e}")),
    ("test MSE", lambda r: number(r["test_mse"], "{:.3e}")),
    ("epochs", lambda r: number(r["epochs"], "{}")),
    (
        "fit ms (median [q1, q3])",
        lambda r: (
            f"{number(_ms(r['fit_seconds']), '{:.2f}')} [{number(_ms(r['fit_seconds_q1']), '{:.2f}')}, "
            f"{number(_ms(r['fit_seconds_q3']), '{:.2f}')}]"
        ),
    ),
    ("cold ms", lambda r: number(_ms(r["cold_fit_seconds"]), "{:.1f}")),
    ("status", lambda r: r["status"]),
]
TRUTH_COLUMNS = ("w error", "b error")


@dataclass
class Comparison:
    """The result of ``compare``. ``str(result)`` is the table; ``result.render(fmt)`` gives ``table``,
    ``markdown``, ``json`` or ``csv``; ``results`` holds one dict per implementation."""

    config: dict
    environment: dict
    reference: dict
    results: list[dict]
    curves: dict = field(default_factory=dict, repr=False)  # for plots: loss curves and parameter paths
    data: tuple = field(default=None, repr=False)  # the training (X, y), for plots

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "environment": self.environment,
            "reference": self.reference,
            "results": self.results,
        }

    def csv_records(self) -> list[dict]:
        return self.results

    def cells(self) -> tuple[list[str], list[list[str]]]:
        known_truth = self.config["true_w"] is not None
        columns = [(title, cell) for title, cell in COLUMNS if known_truth or title not in TRUTH_COLUMNS]
        return [title for title, _ in columns], [[cell(row) for _, cell in columns] for row in self.results]

    def notes(self) -> list[str]:
        c, ref, env = self.config, self.reference, self.environment
        notes = [
            f"data: {c['data']}, {c['num_examples']} examples x {c['num_features']} features, {c['data_dtype']} "
            f"(torch arithmetic in {c['dtype']}); "
            f"batch {c['batch_size']}, lr {c['lr']}, {c['num_epochs']} epochs, seed {c['seed']}",
            f"w is in the order of the features: {', '.join(c['feature_names'])}",
            f"least squares on this sample ({ref['solver']}): train MSE {ref['train_mse']:.3e}, "
            f"w {numbers(ref['coef'], '{:.4f}')}, b {ref['intercept']:.4f}, "
            f"standard errors {numbers(ref['coef_stderr'], '{:.1e}')}, {number(ref['intercept_stderr'], '{:.1e}')}",
            "in SE: the largest |θ - θ_ls| over w and b in units of its standard error; below ~0.1 the optimisation "
            "error is negligible next to the statistical one",
        ]
        if c.get("dask"):
            local = (
                "all rows gathered in one process" if c["sample"] is None else f"a uniform sample of {c['sample']} rows"
            )
            in_place = [r["impl"] for r in self.results if fits_dask_in_place(r["impl"])]
            notes.append(
                f"dask: {', '.join(in_place) or 'no implementation'}, the reference and every score were computed "
                "where the data live, one pass each (times include "
                f"reading them); the other implementations fit {local}, or were skipped (their status says why)"
            )
        if c["noise"] is not None:
            notes.append(
                f"noise floor sigma^2 = {ref['noise_floor_mse']:.3e}; expected |θ_ls - θ| of least squares "
                f"≈ sigma*sqrt((d+1)/n) = {ref['expected_lstsq_param_error']:.1e}"
            )
        timed = ", ".join(str(r["fits_timed_within_max_seconds"]) for r in self.results)
        notes.append(
            f"timing: median of the timed fits ({timed} of at most {c['repeats']}, within {c['max_seconds']:g} s "
            "each) after one untimed warm-up (cold ms: that first fit); "
            f"{env['device']}, {env['threads']} threads; Python {env['python']}, numpy {env['numpy']}, "
            f"torch {env['torch']}, scikit-learn {env['scikit-learn']}"
        )
        return notes

    def to_json(self) -> str:
        return render(self, "json")

    def to_csv(self) -> str:
        return render(self, "csv")

    def to_markdown(self) -> str:
        return render(self, "markdown")

    def to_table(self) -> str:
        return render(self, "table")

    def render(self, fmt: str = "table") -> str:
        return render(self, fmt)

    def __str__(self) -> str:
        return self.to_table()

    def _repr_markdown_(self) -> str:  # shown by Jupyter
        return self.to_markdown()
