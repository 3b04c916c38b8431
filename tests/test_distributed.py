"""Data-parallel SGD with torch.distributed: W ranks with shards of a global batch take one process's steps.

The ranks are spawned processes meeting at a store on 127.0.0.1 and a free port (``linreg_compare.distributed.spawn``);
the tests that start them, or any other process, are ``slow``.
"""

import datetime
import gc
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch.distributed
import torch.multiprocessing
from conftest import NOTEBOOK_B, NOTEBOOK_W, ROOT, run_cli

import linreg_compare.distributed
from impls import TorchConciseRegressor, TorchScratchRegressor, synthetic_data
from linreg_compare import study
from linreg_compare.distributed import spawn

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
    argv = "--impl torch-concise --reduction sum --num-examples 1001 --seed 3 --lr 0.003 --num-epochs 2 --record-steps"
    fit = spawn(argv.split())
    one = TorchConciseRegressor(reduction="sum", record_steps=True, **settings).fit(X, y)
    assert fit["world_size"] == 2 and fit["backend"] == "gloo" and fit["n_steps"] == one.n_steps_ == 2 * 101
    np.testing.assert_allclose(fit["coef_path"], one.coef_path_, rtol=0, atol=EXACT)
    np.testing.assert_allclose(fit["intercept_path"], one.intercept_path_, rtol=0, atol=EXACT)
    np.testing.assert_allclose(fit["loss_curve"], one.loss_curve_, rtol=1e-4)


SEEDED_APART = synthetic_data(NOTEBOOK_W, NOTEBOOK_B, 45, random_state=3)  # 5 steps an epoch, the last of 5 examples


def _fit_seeded_apart(rank: int, folder: str) -> None:
    """One of two ranks meeting through a file in ``folder``: both torch estimators with a RandomState of
    the rank's own, so that each rank draws another seed, and their parameter paths saved for the test."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo" if sys.platform.startswith("linux") else "lo0")
    torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2)
    try:
        paths = {}
        for cls in (TorchConciseRegressor, TorchScratchRegressor):
            est = cls(distributed=True, random_state=np.random.RandomState(100 + rank), record_steps=True)
            est.fit(*SEEDED_APART)
            paths[cls.__name__] = np.column_stack([est.coef_path_, est.intercept_path_])
        np.savez(os.path.join(folder, f"rank{rank}.npz"), **paths)
    finally:
        # As linreg_compare.distributed.run: what holds the group's threads (a fit's DistributedDataParallel, in
        # reference cycles) is collected before the group goes; collected after, it aborts the process now and then
        # ("terminate called without an active exception").
        est = None
        gc.collect()
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ranks_seeded_apart_take_rank_0s_start_and_batches(tmp_path):
    torch.multiprocessing.start_processes(_fit_seeded_apart, args=(str(tmp_path),), nprocs=2, start_method="spawn")
    first, second = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    for cls in (TorchConciseRegressor, TorchScratchRegressor):
        one = cls(random_state=np.random.RandomState(100), record_steps=True).fit(*SEEDED_APART)
        np.testing.assert_array_equal(first[cls.__name__], second[cls.__name__])  # every rank ends alike
        one_path = np.column_stack([one.coef_path_, one.intercept_path_])
        np.testing.assert_allclose(first[cls.__name__], one_path, rtol=0, atol=EXACT)  # the steps of one process


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
    command = [sys.executable, "-m", "linreg_compare.distributed", "--lr", "-1"]
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert out.stderr.startswith(
        "python -m linreg_compare.distributed: error: --lr must be a finite number > 0 or auto; got -1.0"
    )


@pytest.mark.slow
def test_the_module_outside_torchrun_exits_2_with_the_recipe():
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    out = subprocess.run(
        [sys.executable, "-m", "linreg_compare.distributed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "give --nproc-per-node W to start W ranks here, or run it under torchrun" in out.stderr


def test_a_test_not_marked_slow_can_start_neither_ranks_nor_processes(process_attempts):
    with pytest.raises(AssertionError, match="starts a process .* but is not marked slow"):
        torch.multiprocessing.start_processes(print, nprocs=2, start_method="spawn")
    with pytest.raises(AssertionError, match="not marked slow"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    assert process_attempts == ["BaseProcess.start", "Popen._execute_child"]  # tests/conftest.py's guard
    process_attempts.clear()  # refused on purpose: the test passes


BAD_SETTINGS = [
    (["--noise", "-1"], "--noise must be a finite number >= 0; got -1.0"),
    (["--seed", "-1"], "--seed must be an integer in [0, 2**32); got -1"),
    (["--num-examples", "1e10"], "argument --num-examples: invalid int value: '1e10'"),
    (["--num-examples", "10000000000"], "--num-examples 10000000000 with 2 features needs about"),
    (["--num-examples", "1000000000", "--nproc-per-node", "8"], "on 8 ranks needs about"),
    (["--nproc-per-node", "0"], "--nproc-per-node must be a number of ranks from 1 to 64; got 0"),
    (["--timeout", "-1"], "--timeout must be a number of seconds > 0; got -1.0"),
    (["--true-w", "inf"], "--true-w and --true-b must be finite numbers"),
]


@pytest.mark.parametrize("argv, words", BAD_SETTINGS, ids=[" ".join(argv) for argv, _ in BAD_SETTINGS])
def test_a_bad_setting_is_one_line_before_any_rank_starts(argv, words, capsys, monkeypatch):
    monkeypatch.setattr(linreg_compare.distributed, "spawn", lambda *a: pytest.fail("a rank started"))
    assert linreg_compare.distributed.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m linreg_compare.distributed: error: ") and words in err, (
        err
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line_from_the_entry_point(capsys, monkeypatch):
    monkeypatch.setattr(linreg_compare.distributed, "spawn", lambda *a: pytest.fail("a rank started"))
    assert linreg_compare.distributed.main(["--device", "cuda", "--nproc-per-node", "2"]) == 2
    assert "--device 'cuda' is not available here" in capsys.readouterr().err


def test_a_rank_waiting_for_one_that_never_comes_stops_within_the_timeout():
    """Rank 0 of two in this process, with the store on 127.0.0.1 and no rank 1: an error after --timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    options = {
        "master_listen_fd": listener.detach(),
        "wait_for_workers": False,
        "timeout": datetime.timedelta(seconds=1),
    }
    store = torch.distributed.TCPStore("127.0.0.1", port, 2, is_master=True, **options)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="timeout"):
        linreg_compare.distributed.run(["--timeout", "1"], 0, 2, 0, store=store, show=False)
    assert time.perf_counter() - start < 10
    del store


@pytest.mark.slow
def test_the_launcher_runs_w_ranks_on_loopback_and_writes_rank_0s_fit(tmp_path, capsys):
    output = tmp_path / "fit.json"
    argv = ["--nproc-per-node", "2", "--impl", "torch-scratch", "--num-examples", "5", "--output", str(output)]
    assert linreg_compare.distributed.main(argv) == 0
    fit = json.loads(output.read_text())
    assert fit["world_size"] == 2 and fit["num_examples"] == 5
    assert fit["shard_sizes"] == [3, 2]  # the global batch of 10 is the 5 examples there are
    one_process = TorchScratchRegressor(num_epochs=3).fit(*synthetic_data([2.0, -3.4], 4.2, 5))
    np.testing.assert_allclose(fit["coef"], one_process.coef_, rtol=1e-5)
    assert "torch-scratch on 2 ranks (gloo), global batch 10 in shards of 3/2" in capsys.readouterr().out


def test_equivalences_on_more_ranks_than_memory_holds_is_one_line(capsys, monkeypatch):
    from compare import main

    monkeypatch.setattr(study, "equivalences", lambda **kwargs: pytest.fail("the study started"))
    monkeypatch.setattr("linreg_compare.checks.available_memory", lambda: 8 * 2**30)
    assert main(["equivalences", "--distributed", "64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--num-examples 1000 with 2 features on 64 ranks needs about 25.0 GiB" in err
