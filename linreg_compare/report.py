"""What ``compare`` returns: the settings, the machine, the least-squares reference and one row per implementation."""

from __future__ import annotations

from dataclasses import dataclass, field

from linreg_compare.capabilities import fits_dask_in_place
from linreg_compare.render import number, render


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def _timing_cell(row: dict) -> str:
    """The median fit time and its quartiles, or the one figure where one fit was timed."""
    median = number(_ms(row["fit_seconds"]), "{:.2f}")
    if row.get("fits_timed_within_max_seconds") == 1 or row["fit_seconds"] is None:
        return median
    return f"{median} [{number(_ms(row['fit_seconds_q1']), '{:.2f}')}, {number(_ms(row['fit_seconds_q3']), '{:.2f}')}]"


def _predicted_cell(row: dict) -> str:
    """The epochs a race is predicted to take: the tail average's (bias and variance terms) with --average; else
    "never" where the constant step's noise floor is above the bar, or full-gradient descent's epochs (conditioning)."""
    if "predicted_average_epochs" in row:
        return number(row["predicted_average_epochs"], "{}")
    floor, until = row.get("noise_floor_in_se"), row.get("until")
    if floor is not None and until is not None and floor > until:
        return f"never (floor {floor:.2g})"
    return number(row.get("predicted_epochs"), "{:.3g}")


# The table's columns: a title and the cell of a result row. The truth columns appear only when it is known.
COLUMNS = [
    ("impl", lambda r: r["impl"]),
    ("w error", lambda r: number(r["coef_error"], "{:.1e}")),
    ("b error", lambda r: number(r["intercept_error"], "{:.1e}")),
    ("to lstsq", lambda r: number(r["param_distance_to_lstsq"], "{:.1e}")),
    (
        "in SE (max, joint)",
        lambda r: (
            f"{number(r['param_distance_to_lstsq_in_se'], '{:.3g}')}, {number(r.get('joint_distance_in_se'), '{:.3g}')}"
        ),
    ),
    ("train MSE", lambda r: number(r["train_mse"], "{:.3e}")),
    ("excess", lambda r: number(r["excess_train_mse"], "{:+.1e}")),
    ("test MSE", lambda r: number(r["test_mse"], "{:.3e}")),
    ("train R²", lambda r: number(r.get("train_r2"), "{:.4g}")),
    ("test R²", lambda r: number(r["test_r2"], "{:.3f}" if abs(r["test_r2"] or 0) < 1e3 else "{:.2e}")),
    (
        "cv MSE (mean ± sd)",
        lambda r: f"{number(r.get('cv_test_mse_mean'), '{:.3e}')} ± {number(r.get('cv_test_mse_std'), '{:.1e}')}",
    ),
    ("epochs", lambda r: number(r["epochs"], "{}")),
    ("predicted", lambda r: _predicted_cell(r)),
    ("fit ms (median [q1, q3])", lambda r: _timing_cell(r)),
    ("cold ms", lambda r: number(_ms(r["cold_fit_seconds"]), "{:.1f}")),
    ("status", lambda r: r["status"]),
]
TRUTH_COLUMNS = ("w error", "b error")


def _shown(title: str, config: dict, results: list[dict]) -> bool:
    """Whether the table has this column: the truth's only when it is known, test R² only on the user's data (the
    synthetic data's test MSE has the noise floor to compare with), the cv column with --cv, predicted with --until."""
    if title in TRUTH_COLUMNS:
        return config["true_w"] is not None
    if title in ("test R²", "train R²"):
        return config.get("test") not in (None, "independent sample")
    if title.startswith("cv MSE"):
        return any("cv_test_mse_mean" in row for row in results)
    if title == "predicted":
        return any("predicted_epochs" in row for row in results)
    return True


def _p_value(p) -> str:
    """A p value as statsmodels prints it, three decimals, "0.000" below 0.0005."""
    return number(p, "{:.3f}")


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
    step: dict | None = None  # the step size the data allow (linreg_compare.step_size), None without iterative ones

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "environment": self.environment,
            "reference": self.reference,
            "step_size": self.step,
            "results": self.results,
        }

    def csv_records(self) -> list[dict]:
        """One record per implementation, then least squares' (its estimates, standard errors, t and p values),
        each with the target and the parameters' names (intercept first)."""
        names = {"target": self.config.get("target"), "parameters": self.parameter_names()}
        ref = self.reference
        reference = {
            "impl": "least squares (reference)",
            "coef": ref["coef"],
            "intercept": ref["intercept"],
            "bse": ref.get("bse"),
            "tvalues": ref.get("tvalues"),
            "pvalues": ref.get("pvalues"),
            "train_mse": ref["train_mse"],
            "train_r2": ref.get("rsquared"),
            "status": ref["solver"],
        }
        return [{**names, **row} for row in self.results] + [{**names, **reference}]

    def parameter_names(self) -> list[str]:
        """The parameters in the reference's order: the intercept, then one weight per feature, by name."""
        return ["(intercept)", *self.config["feature_names"]]

    def extra_tables(self) -> list[tuple[list[str], list[list[str]]]]:
        """Below the main table: each implementation's estimate of every parameter, one named row each (so that
        nothing grows with the number of features along a line), and least squares' as statsmodels reports it."""
        names, ref = self.parameter_names(), self.reference
        header = ["parameter", *(row["impl"] for row in self.results)]
        estimates = [[names[0], *(number(row["intercept"], "{:.5g}") for row in self.results)]]
        for j, name in enumerate(names[1:]):
            estimates.append(
                [name, *(number((row["coef"] or [None] * len(names))[j], "{:.5g}") for row in self.results)]
            )
        if ref.get("params") is None:
            return [(header, estimates)]
        summary_header = ["parameter", "estimate", "std err", "t", "P>|t|", "[0.025", "0.975]"]
        summary = [
            [
                name,
                number(ref["params"][j], "{:.5g}"),
                number(ref["bse"][j], "{:.3g}"),
                number(ref["tvalues"][j], "{:.3g}"),
                _p_value(ref["pvalues"][j]),
                number(ref["conf_int"][j][0], "{:.5g}"),
                number(ref["conf_int"][j][1], "{:.5g}"),
            ]
            for j, name in enumerate(names)
        ]
        return [(header, estimates), (summary_header, summary)]

    def cells(self) -> tuple[list[str], list[list[str]]]:
        columns = [(title, cell) for title, cell in COLUMNS if _shown(title, self.config, self.results)]
        return [title for title, _ in columns], [[cell(row) for _, cell in columns] for row in self.results]

    def notes(self) -> list[str]:
        c, ref, env = self.config, self.reference, self.environment
        notes = [
            f"data: {c['data']}, target {c.get('target', 'y')}, {c['num_examples']} examples x {c['num_features']} "
            f"features, {c['data_dtype']} (torch arithmetic in {c['dtype']}); "
            f"batch {c['batch_size']}, lr {c['lr']}, {c['num_epochs']} epochs, seed {c['seed']}",
            self._reference_note(),
            "in SE: the largest |θ - θ_ls| over w and b in units of its standard error, and the joint (Mahalanobis) "
            "distance √(Σw·excess/σ̂²), which a correlated error cannot hide from; below ~0.1 the optimisation "
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
        notes.extend(self._own_data_notes())
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

    def _reference_note(self) -> str:
        """The line above least squares' own table: what was fitted, its fit statistics as statsmodels names them."""
        c, ref = self.config, self.reference
        text = (
            f"least squares of {c.get('target', 'y')} on the {c['num_features']} features ({ref['solver']}; the table "
            f"above, as statsmodels' {'WLS' if c.get('weighted') else 'OLS'} summary): train MSE {ref['train_mse']:.4g}"
        )
        if ref.get("params") is None:
            return text
        text += (
            f", R² {number(ref['rsquared'], '{:.6g}')}, adj. R² {number(ref['rsquared_adj'], '{:.6g}')}, "
            f"F {number(ref['fvalue'], '{:.4g}')} (p {_p_value(ref['f_pvalue'])}), df_resid {ref['df_resid']}"
        )
        if c.get("weighted"):
            text += "; rows of weight 0 count in the degrees of freedom, as in statsmodels' WLS"
        return text

    def _own_data_notes(self) -> list[str]:
        """What was done to the user's data: rows held out, features standardised, the step size they allow, a
        rank below the number of features, and the race to least squares."""
        c, ref, notes = self.config, self.reference, []
        if c.get("test") not in (None, "independent sample"):
            if isinstance(c["test"], str):
                notes.append(
                    f"held out: {c['test']} cross-validation (scikit-learn's KFold, shuffled with the seed); the "
                    f"table's fits, times and test MSE are fold 1's ({c['num_examples']} rows to train, "
                    f"{c['num_test']} held out), cv MSE is over every fold"
                )
            else:
                notes.append(
                    f"held out: {c['num_test']} of {c['num_test'] + c['num_examples']} rows (--test-fraction "
                    f"{c['test']:g}, a seeded random split); the "
                    f"reference and every fit used the other {c['num_examples']}; test R² = 1 − test MSE / Var(y_test)"
                )
        if c.get("standardize"):
            notes.append(
                "standardised: the iterative implementations fit (x − mean)/sd of the training rows (StandardScaler "
                "in a Pipeline); their w and b are mapped back to the data's units. The closed form fits the data "
                "as given: least squares is the same line either way"
            )
        if self.step is not None:
            notes.append(self.step["note"])
        floors = {r["impl"]: r["noise_floor_in_se"] for r in self.results if r.get("noise_floor_in_se") is not None}
        if floors:
            notes.append(self._noise_floor_note(floors))
        redundant = c.get("redundant_columns") or []
        if redundant or (ref.get("rank") is not None and ref["rank"] < c["num_features"]):
            combined = ref["rank"] is not None and len(redundant) < c["num_features"] - ref["rank"]
            why = "; ".join([*redundant, *(["columns that combine others"] if combined else [])])
            notes.append(
                f"rank: X has rank {ref['rank']} for {c['num_features']} features ({why}); least squares then has "
                "many solutions and the closed form gives the one of minimum norm; the iterative methods still run"
            )
        if c.get("until") is not None:
            until = f"{c['until']:g}"
            notes.append(
                f"until {until} SE: each iterative implementation trained by its fit, its distance measured after "
                "every epoch (off the clock), "
                f"{c['num_epochs']} epochs at most, until every parameter was within {until} standard errors of "
                "least squares, or --max-seconds of training; fit ms is the training time alone; predicted: with "
                "--average, the first epoch at which the tail average's bias and variance terms are predicted below "
                "T; else never where the constant step's noise floor is above T, or the epochs that full-gradient "
                "descent with the same step needs from the zero line, ln(start/T)/(−ln ρ) steps with ρ = max|1 − αλ| "
                "over the spectrum of G"
            )
        return notes

    def _noise_floor_note(self, floors: dict) -> str:
        """The predicted floor of constant steps, and of the tail average where it was taken."""
        listed = ", ".join(f"{name} {floor:.2g}" for name, floor in floors.items())
        note = (
            f"where SGD settles: at a constant step the iterates stay, at an epoch's end, about {listed} SE (the "
            "largest, expected) from least squares, however many epochs run (predicted from random reshuffling's epoch "
            "noise and a Lyapunov equation, linreg_compare/noise_floor.py)"
        )
        averaged = {r["impl"]: r["predicted_in_se"] for r in self.results if r.get("predicted_in_se") is not None}
        if averaged:
            predicted = ", ".join(f"{name} {value:.2g}" for name, value in averaged.items())
            return note + f"; their tail average (--average) is predicted {predicted} SE after these epochs"
        return note + "; --average (the tail average of the iterates) or a smaller lr gets below it"

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
