"""The thread and wait policy of :mod:`scaloquant.threads`."""

from __future__ import annotations

import os

import pytest

from scaloquant import threads


def test_passive_wait_unless_the_user_chose():
    env: dict[str, str] = {}
    assert threads.prefer_passive_wait(env) and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not threads.prefer_passive_wait(env) and env["OMP_WAIT_POLICY"] == "ACTIVE"


def test_huge_pages_unless_the_user_chose():
    env: dict[str, str] = {}
    assert threads.prefer_huge_pages(env) and env == {"THP_MEM_ALLOC_ENABLE": "1"}
    env = {"THP_MEM_ALLOC_ENABLE": "0"}
    assert not threads.prefer_huge_pages(env) and env["THP_MEM_ALLOC_ENABLE"] == "0"


def test_reproducible_mkl_unless_the_user_chose():
    env: dict[str, str] = {}
    assert threads.prefer_reproducible_mkl(env) and env == {"MKL_CBWR": "AUTO"}
    env = {"MKL_CBWR": "COMPATIBLE"}
    assert not threads.prefer_reproducible_mkl(env) and env["MKL_CBWR"] == "COMPATIBLE"


def test_the_commands_settings_are_the_three_unless_the_user_chose():
    env: dict[str, str] = {}
    threads.prefer_command_settings(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "THP_MEM_ALLOC_ENABLE": "1", "MKL_CBWR": "AUTO"}
    env = {"OMP_WAIT_POLICY": "ACTIVE", "MKL_CBWR": "COMPATIBLE"}
    threads.prefer_command_settings(env)
    assert env == {
        "OMP_WAIT_POLICY": "ACTIVE",
        "THP_MEM_ALLOC_ENABLE": "1",
        "MKL_CBWR": "COMPATIBLE",
    }


def test_the_command_sets_it_before_a_subcommand_runs(monkeypatch):
    from scaloquant.cli import main

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    monkeypatch.delenv("MKL_CBWR", raising=False)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    assert os.environ["MKL_CBWR"] == "AUTO"


def test_threads_follow_the_idle_cpus(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    assert threads.choose_threads(load=0.3) == 4
    assert threads.choose_threads(load=1.0) == 3
    assert threads.choose_threads(load=2.7) == 2
    assert threads.choose_threads(load=9.0) == 1  # never fewer than one
    assert threads.choose_threads(3, load=9.0) == 3  # the user's choice stands
    with pytest.raises(ValueError):
        threads.choose_threads(0)


def test_runnable_now_counts_where_the_average_lags(monkeypatch):
    """The 1-minute load average still counts a job that ended; the processes runnable now
    (``/proc/loadavg``'s ``R/T``, less this one) decide where fewer."""
    assert threads.runnable_others("1.15 1.28 1.19 1/79 20836") == 0.0
    assert threads.runnable_others("3.90 2.10 1.00 4/212 9") == 3.0
    assert threads.runnable_others("garbage") is None
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.3, 1.0, 0.8))
    monkeypatch.setattr(threads, "runnable_others", lambda: 0.0)
    assert threads.choose_threads() == 2  # idle now, busy a minute ago
    monkeypatch.setattr(threads, "runnable_others", lambda: 3.0)
    assert threads.choose_threads() == 1  # the average is the lower figure: it stands
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    monkeypatch.setattr(threads, "runnable_others", lambda: None)  # no /proc
    assert threads.choose_threads() == 1


def test_available_cpus_is_the_affinity():
    if hasattr(os, "sched_getaffinity"):
        assert threads.available_cpus() == len(os.sched_getaffinity(0))
    assert threads.available_cpus() >= 1


def test_blas_threads_limits_and_restores():
    from threadpoolctl import threadpool_info

    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    with threads.blas_threads(1):
        inside = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        assert all(n == 1 for n in inside)
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before


def test_torch_threads_are_restored():
    import torch

    before = torch.get_num_threads()
    with threads.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_map_on_threads_keeps_the_order_and_uses_the_threads():
    import threading

    seen: set[str] = set()

    def work(x: int) -> int:
        seen.add(threading.current_thread().name)
        return x * x

    assert threads.map_on_threads(work, range(6), 1) == [0, 1, 4, 9, 16, 25]
    assert seen == {threading.current_thread().name}  # one thread: in the caller's
    seen.clear()
    assert threads.map_on_threads(work, list(range(6)), 2, "probe") == [0, 1, 4, 9, 16, 25]
    assert seen and all(name.startswith("probe") for name in seen)
    assert threads.map_on_threads(work, [], 2) == []
    with pytest.raises(ValueError, match="threads must be >= 1"):
        threads.map_on_threads(work, [1], 0)
