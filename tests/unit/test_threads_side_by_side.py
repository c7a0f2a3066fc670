"""``run_side_by_side``: independent jobs in threads give what they give one after the other,
in the jobs' order, with torch's threads shared out and restored."""

import threading

import pytest
import torch

from scaloquant.threads import run_side_by_side


def test_results_and_order_are_those_of_the_jobs_and_threads_are_shared_out():
    seen = {}
    barrier = threading.Barrier(2, timeout=30)

    def job(name, value):
        def run():
            barrier.wait()  # both run at once (it would time out one after the other)
            seen[name] = torch.get_num_threads()
            return value * 2

        return run

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        done = run_side_by_side({"b": job("b", 1), "a": job("a", 5)}, workers=2)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert list(done) == ["b", "a"]
    assert [r for r, _ in done.values()] == [2, 10]
    assert all(spent >= 0 for _, spent in done.values())
    assert seen == {"a": 1, "b": 1}


def test_one_worker_runs_them_one_after_the_other_with_every_thread():
    order = []
    threads = torch.get_num_threads()
    done = run_side_by_side(
        {k: (lambda k=k: order.append((k, torch.get_num_threads()))) for k in "xyz"}, workers=1
    )
    assert list(done) == list("xyz")
    assert order == [(k, threads) for k in "xyz"]


def test_a_failing_job_raises_here():
    def bad():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_side_by_side({"ok": lambda: 1, "bad": bad})
    assert run_side_by_side({}) == {}
