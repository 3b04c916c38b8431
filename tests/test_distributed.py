"""Data-parallel SGD with torch.distributed: W ranks with shards of a global batch take one process's steps.

The ranks are spawned processes meeting at a store on 127.0.0.1 and a free port (``runner.distributed.spawn``);
the tests that start them, or any other process, are ``slow``.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch.distributed
import torch.multiprocessing
from conftest import ROOT, run_cli

from impls import TorchConciseRegressor, TorchScratchRegressor, synthetic_data
from runner import study
from runner.distributed import spawn

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch build has no torch.distributed"
)
EXACT = study.EXACT_TOLERANCE  # float32 steps: the ranks sum partial gradients in another order than one process


@pytest.mark.slow
def test_the_equivalence_study_shows_both_data_parallel_pairs_exact_at_every_step():
    result = study.equivalences(world_size=2)
    pairs = [pair for pair in result.records if "ranks" in pair["name"]]
    assert [("DDP" in pair["name"], "all_reduce" in pair["name"]) for pair in pairs] == [(True, False), (False, True)]
    for pair in pairs:  # 1005 examples: the last batch of 5 is cut into shards of 3 and 2
        assert pair["compared_at"] == "every step" and pair["status"] == "ok"
        assert pair["agrees_within_1e-5"] is True and pair["max_param_diff"] <= EXACT
    assert result.config["world_size"] == 2 and "shards of 3/2" in pairs[0]["why"]


@pytest.mark.slow
def test_an_empty_shard_and_the_sum_loss_keep_the_steps_of_one_process():
    # 1001 examples, batches of 10: the last batch has 1 example, so rank 1's shard of it is empty.
    X, y = synthetic_data([2.0, -3.4], 4.2, 1001, random_state=3)
    settings = {"lr": 0.003, "batch_size": 10, "num_epochs": 2, "random_state": 3}
    fit = spawn(["--impl", "torch-concise", "--reduction", "sum", "--num-examples", "1001", "--seed", "3",
                 "--lr", "0.003", "--num-epochs", "2", "--record-steps"])  # fmt: skip
    one = TorchConciseRegressor(reduction="sum", record_steps=True, **settings).fit(X, y)
    assert fit["world_size"] == 2 and fit["backend"] == "gloo" and fit["n_steps"] == one.n_steps_ == 2 * 101
    np.testing.assert_allclose(fit["coef_path"], one.coef_path_, rtol=0, atol=EXACT)
    np.testing.assert_allclose(fit["intercept_path"], one.intercept_path_, rtol=0, atol=EXACT)
    np.testing.assert_allclose(fit["loss_curve"], one.loss_curve_, rtol=1e-4)


@pytest.mark.slow
def test_the_command_line_adds_the_pairs_only_when_asked(tmp_path):
    out = run_cli("equivalences", "--num-epochs", "1", "--format", "json")
    assert out.returncode == 0 and "ranks" not in out.stdout and "world_size" not in out.stdout
    for ranks in ["1", "65"]:
        bad = run_cli("equivalences", "--distributed", ranks)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1
        assert f"--distributed must be a number of ranks from 2 to 64; got {ranks}" in bad.stderr


@pytest.mark.parametrize("cls", [TorchConciseRegressor, TorchScratchRegressor])
def test_distributed_without_a_process_group_says_how_to_start_one(cls):
    X, y = synthetic_data([1.0], 0.0, 20)
    with pytest.raises(ValueError, match=r"distributed=True\) must be fitted in every rank .* torchrun"):
        cls(distributed=True).fit(X, y)
    assert cls().fit(X, y).n_iter_ == 3  # and without it, the one-process fit


@pytest.mark.slow
def test_a_bad_setting_under_torchrun_is_one_line_before_any_rank_joins():
    # RANK and WORLD_SIZE as torchrun sets them, but no rendezvous: the setting is refused before joining.
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}
    out = subprocess.run([sys.executable, "-m", "runner.distributed", "--lr", "-1"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert out.stderr.startswith("python -m runner.distributed: error: The 'lr' parameter of TorchConciseRegressor")


@pytest.mark.slow
def test_the_module_outside_torchrun_exits_2_with_the_recipe():
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    out = subprocess.run([sys.executable, "-m", "runner.distributed"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert out.returncode == 2 and "torchrun --nproc-per-node 2" in out.stderr and out.stdout == ""


def test_a_test_not_marked_slow_can_start_neither_ranks_nor_processes(process_attempts):
    with pytest.raises(AssertionError, match="starts a process .* but is not marked slow"):
        torch.multiprocessing.start_processes(print, nprocs=2, start_method="spawn")
    with pytest.raises(AssertionError, match="not marked slow"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    assert process_attempts == ["BaseProcess.start", "Popen._execute_child"]  # tests/conftest.py's guard
    process_attempts.clear()  # refused on purpose: the test passes
