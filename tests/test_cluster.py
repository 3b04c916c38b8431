"""Dask clusters for the command line: every wait has a deadline, nothing listens beyond 127.0.0.1, no flake.

Servers that misbehave (one that accepts and never answers, one that answers garbage) run in a thread
of the test, on 127.0.0.1 and a port the system picks free, and stop with it.
"""

import contextlib
import os
import socket
import threading
import time

import numpy as np
import pytest

from compare import compare, main
from impls import synthetic_data
from linreg_compare.cluster import dask_scheduler, deadline_get

pytest.importorskip("distributed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@contextlib.contextmanager
def listener(reply: bytes | None):
    """A TCP server on 127.0.0.1 that accepts every connection and sends ``reply`` (None: nothing, ever)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop, connections = threading.Event(), []

    def serve():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection = server.accept()[0]
                connections.append(connection)
                if reply is not None:
                    connection.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in connections:
            connection.close()
        server.close()


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    """Two Parquet files of y = 2 a - 3.4 b + 1.5 c + 4.2 + noise."""
    folder = tmp_path_factory.mktemp("two")
    X, y = synthetic_data([2.0, -3.4, 1.5], 4.2, 2000, random_state=1, dtype="float64")
    for i, rows in enumerate([slice(0, 1000), slice(1000, 2000)]):
        pq.write_table(
            pa.table({"a": X[rows, 0], "b": X[rows, 1], "c": X[rows, 2], "y": y[rows]}), folder / f"p{i}.parquet"
        )
    return folder


@pytest.mark.parametrize(
    "reply, words",
    [(None, "no dask scheduler answered within 1 s (--timeout)"), (os.urandom(64), "is not a dask scheduler")],
    ids=["silent", "garbage"],
)
def test_a_scheduler_address_that_does_not_answer_as_dask_is_one_line_within_the_timeout(
    reply, words, two_files, capsys
):
    with listener(reply) as address:
        start = time.perf_counter()
        assert main(["--data", str(two_files), "--target", "y", "--scheduler", address, "--timeout", "1"]) == 2
        assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--scheduler {address}: " in err and words in err, err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--scheduler", ""], "--scheduler must be threads, processes or a scheduler's tcp://host:port; got ''"),
        (["--scheduler", "tls://127.0.0.1:8786"], "tls:// needs certificates the command line does not take"),
        (["--scheduler", "processes", "--timeout", "0"], "--timeout must be a number of seconds > 0; got 0.0"),
        (["--scheduler", "processes", "--timeout", "nan"], "--timeout must be a number of seconds > 0; got nan"),
        (["--scheduler", "tcp://127.0.0.1:1", "--dashboard"], "--dashboard applies to --scheduler processes"),
    ],
)
def test_bad_scheduler_settings_are_one_line(argv, words, two_files, capsys):
    assert main(["--data", str(two_files), "--target", "y", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_each_computation_on_a_cluster_has_a_deadline(client):
    import dask

    slow = dask.delayed(time.sleep)(3)
    start = time.perf_counter()
    with dask.config.set(scheduler=deadline_get(client, 0.5)), pytest.raises(TimeoutError, match="longer than 0.5 s"):
        dask.compute(slow)
    assert time.perf_counter() - start < 2.5
    with dask.config.set(scheduler=deadline_get(client, 30)):
        assert dask.compute(dask.delayed(sum)([1, 2]), [dask.delayed(len)("abc")]) == (3, [3])


def test_a_run_where_every_implementation_was_skipped_exits_1(two_files, monkeypatch, capsys):
    from linreg_compare import scale

    monkeypatch.setattr(scale, "available_memory", lambda: 1)  # nothing fits: the iterative ones are skipped
    argv = ["--data", str(two_files), "--target", "y", "--impl", "sklearn-sgd", "--repeats", "1"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "skipped: data larger than memory" in captured.out
    assert captured.err == "compare.py: error: no implementation produced a result (see the status column)\n"


@pytest.mark.slow
def test_two_parquet_files_on_worker_processes_twenty_times_without_a_flake(two_files):
    """The closed form and an iterative implementation computed on one collection, call after call: with
    fused chains this failed about one run in two (a KeyError in the scheduler, or a hang)."""
    from linreg_compare.read import read_dask

    expected = None
    with dask_scheduler("processes", timeout=60):
        for _ in range(20):
            X, y, *_ = read_dask(str(two_files), "y")
            result = compare(["numpy-closed-form", "sklearn-sgd"], X=X, y=y, repeats=1)
            assert [row["status"] for row in result.results] == ["ok", "ok"]
            coef = result.results[0]["coef"]
            expected = coef if expected is None else expected
            np.testing.assert_allclose(coef, expected, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("dashboard", [False, True])
def test_worker_processes_listen_on_loopback_only_and_serve_a_dashboard_only_when_asked(dashboard):
    psutil = pytest.importorskip("psutil")
    import dask

    with dask_scheduler("processes", timeout=60, dashboard=dashboard):
        dask.compute(dask.delayed(sum)([1, 2]))
        ours = psutil.Process().children(recursive=True) + [psutil.Process()]
        listening = [
            connection.laddr
            for process in ours
            for connection in process.net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN
        ]
    assert listening and {address.ip for address in listening} == {"127.0.0.1"}
    assert (8787 in {address.port for address in listening}) == dashboard
