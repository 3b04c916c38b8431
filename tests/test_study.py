"""The notebook's exercise proved step by step, and the sweeps that answer the book's other exercises."""

import json

import matplotlib.image
import numpy as np
import pytest

from compare import main
from linreg_compare import study, sweeps


@pytest.fixture(scope="module")
def equivalences():
    return study.equivalences()


def test_every_exact_pair_agrees_within_1e_5_at_every_step(equivalences):
    pairs = zip(equivalences.records, equivalences.plot["difference"])
    exact = [pair for pair, difference in pairs if pair["kind"] == "exact"]
    assert len(exact) == 4
    for pair, difference in zip(equivalences.records, equivalences.plot["difference"]):
        if pair["kind"] != "exact":
            continue
        assert pair["compared_at"] == "every step" and len(difference) in (301, 304)  # 3 epochs of 100 or 101 steps
        assert difference.max() <= 1e-5, pair["name"]
        assert pair["agrees_within_1e-5"]
    dataloader = next(pair for pair in exact if "DataLoader" in pair["name"])
    assert dataloader["max_param_diff"] == 0.0  # the very same batches: bit for bit


def test_sum_over_batch_size_is_not_exact_when_batches_are_uneven(equivalences):
    uneven = next(pair for pair in equivalences.records if "last batch of 5" in pair["name"])
    assert uneven["kind"] == "approximate" and uneven["max_param_diff"] > 1e-5 * 5
    # ... and dividing by the length of the batch actually drawn restores it
    divisor = next(pair for pair in equivalences.records if "len(batch drawn)" in pair["name"])
    assert divisor["kind"] == "exact" and divisor["max_param_diff"] <= 1e-5
    assert equivalences.config["uneven_num_examples"] == 1005


def test_per_sample_sklearn_is_close_but_not_exact(equivalences):
    index, pair = next((i, pair) for i, pair in enumerate(equivalences.records) if "sklearn" in pair["name"])
    assert pair["compared_at"] == "every epoch end" and len(equivalences.plot["difference"][index]) == 4
    assert 1e-5 < pair["final_param_diff"] < 1e-2


def test_path_mse_matches_a_direct_computation():
    X = np.array([[0.0], [1.0], [2.0]])
    y = np.array([1.0, 3.0, 5.0])
    path = np.array([[2.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(study.path_mse(X, y, path), [0.0, (1 + 9 + 25) / 3])


def test_lr_batch_sweep_marks_divergence_instead_of_crashing():
    sweep = sweeps.sweep_lr_batch(lrs=(0.03, 5.0), batch_sizes=(10, 100))
    cells = {(row["batch_size"], row["lr"]): row for row in sweep.records}
    assert cells[(10, 0.03)]["status"] == "ok" and cells[(10, 0.03)]["final_train_mse"] < 2e-4
    assert cells[(10, 5.0)]["status"].startswith("diverged") and cells[(10, 5.0)]["final_train_mse"] is None
    assert cells[(100, 0.03)]["final_train_mse"] > cells[(10, 0.03)]["final_train_mse"]  # 10x fewer steps


def test_data_size_sweep_closed_form_follows_the_theory():
    sweep = sweeps.sweep_data_size(sizes=(20, 2000), seeds=(0, 1, 2, 3, 4, 5, 6, 7))
    small, large = sweep.records
    for row in (small, large):
        assert 0.3 * row["theory_lstsq"] < row["numpy-closed-form"] < 3 * row["theory_lstsq"]
    assert small["torch-concise"] > 100 * small["numpy-closed-form"]  # 3 epochs of 2 steps: far from done


def test_init_sweep_converges_from_every_start():
    sweep = sweeps.sweep_init(init_stds=(0.0, 10.0))
    for row in sweep.records:
        assert row["epoch_3_train_mse"] < 2e-4
    concise = {row["init_std"]: row for row in sweep.records if row["impl"] == "torch-concise"}
    assert concise[10.0]["initial_train_mse"] > concise[0.0]["initial_train_mse"]


@pytest.mark.parametrize("argv", [["equivalences"], ["sweep", "lr-batch"], ["sweep", "data-size"], ["sweep", "init"]])
def test_each_study_command_writes_json_and_a_png(argv, tmp_path):
    out, png = tmp_path / "study.json", tmp_path / "study.png"
    assert main(argv + ["--format", "json", "--output", str(out), "--plot", str(png)]) == 0
    parsed = json.loads(out.read_text())
    records = parsed.get("pairs", parsed.get("rows"))
    assert records and not any(key.startswith("_") for key in records[0])
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 500 and image[..., :3].std() > 0.05


def test_equivalences_json_has_the_promised_fields(tmp_path, capsys):
    assert main(["equivalences", "--format", "json"]) == 0
    pairs = json.loads(capsys.readouterr().out)["pairs"]
    for pair in pairs:
        assert {"name", "kind", "max_param_diff", "final_param_diff"} <= set(pair)
        assert pair["kind"] in ("exact", "approximate")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["sweep", "nope"], "argument kind: invalid choice: 'nope'"),
        (["sweep"], "the following arguments are required: kind"),
        (["equivalences", "--lr", "0"], "--lr must be a finite number > 0"),
        (["equivalences", "--plot", "x.svg"], "--plot must name a .png file"),
    ],
)
def test_bad_study_commands_exit_2_with_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_diverged_pairs_are_marked_never_rows_of_nan():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from numpy, no DivergenceWarning leaking out
        result = study.equivalences(lr=100.0)
    for pair in result.records:
        assert pair["status"].startswith("diverged: first after epoch 1") and pair["max_param_diff"] is None
    assert "nan" not in result.render("table").lower()


def test_batches_of_one_leave_out_the_uneven_pairs_with_a_note():
    result = study.equivalences(batch_size=1, num_examples=100)
    assert len(result.records) == 4 and not any("last batch" in pair["name"] for pair in result.records)
    table = result.render("table")
    assert "last batch of 0" not in table and "0/1" not in table and "left out" in table


def test_lr_batch_steps_are_the_steps_each_implementation_takes():
    sweep = sweeps.sweep_lr_batch(impl="sklearn-sgd", lrs=(0.03,), batch_sizes=(1, 100))
    assert [row["steps"] for row in sweep.records] == [3000, 3000]  # one step per sample, whatever the batch
    sweep = sweeps.sweep_lr_batch(impl="torch-scratch", lrs=(0.03,), batch_sizes=(1, 100))
    assert [row["steps"] for row in sweep.records] == [3000, 30]


def test_a_loss_that_ends_above_its_start_is_a_divergence_in_the_sweep():
    cell = sweeps.sweep_lr_batch(lrs=(1.0,), batch_sizes=(100,)).records[0]
    assert cell["status"] == "diverged after epoch 3" and cell["final_train_mse"] is None


@pytest.mark.parametrize("num_examples, batch_size", [(1, 10), (25, 10), (7, 3)])
def test_every_pair_called_exact_agrees_whatever_the_data_size(num_examples, batch_size):
    """A data size that B does not divide leaves a short last batch: the mean-vs-sum pair is then not exact,
    and is not called so."""
    result = study.equivalences(num_examples=num_examples, batch_size=batch_size)
    for pair in result.records:
        assert pair["agrees_within_1e-5"] or pair["kind"] != "exact", pair
    first = result.records[0]
    assert first["kind"] == "approximate" and "but here the last batch has" in first["why"]
