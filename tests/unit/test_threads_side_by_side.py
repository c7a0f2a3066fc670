"""``run_side_by_side`` (threads) and ``run_in_processes``: independent jobs side by side give
what they give one after the other, in the jobs' order, with torch's threads shared out."""

import sys
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


# run_in_processes: its jobs must be picklable, so they are functions of this module (the
# worker processes import it by name; spawn gives them this process' sys.path)


def _meet(here, there, value, *, log):
    """Mark ``here``, wait (at most 120 s) until the other job marked ``there``: both jobs
    run at once, or this one times out."""
    import os
    import time as clock
    from pathlib import Path

    import torch as worker_torch

    Path(here).touch()
    deadline = clock.monotonic() + 120
    while not Path(there).exists():
        if clock.monotonic() > deadline:
            raise TimeoutError(f"{there} never appeared: the jobs did not run at once")
        clock.sleep(0.01)
    log(f"{value} met")
    log("second line")
    return os.getpid(), worker_torch.get_num_threads(), value


def _basis_checksum(basis, *, log):
    return basis.names, complex(basis.fids.sum()), dict(basis.metadata)


def _fails(*, log):
    raise ValueError("boom in a worker")


def _dies(*, log):
    import os

    os._exit(3)


def test_processes_run_at_once_in_the_jobs_order_with_their_share_of_threads(tmp_path):
    import os
    from functools import partial

    from scaloquant.io.default import default_basis
    from scaloquant.threads import run_in_processes

    lines = []
    a, b = tmp_path / "a", tmp_path / "b"
    basis = default_basis()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        done = run_in_processes(
            {
                "second": partial(_meet, b, a, 2),
                "first": partial(_meet, a, b, 1),
            },
            workers=2,
            log=lambda name, line: lines.append((name, line)),
        )
        assert torch.get_num_threads() == 2  # this process' own setting is untouched
        (names, total, metadata), _ = run_in_processes(
            {"basis": partial(_basis_checksum, basis)}, workers=1
        )["basis"]
    finally:
        torch.set_num_threads(before)
    assert list(done) == ["second", "first"]
    pids = {name: pid for name, ((pid, _, _), _) in done.items()}
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert [threads for (_, threads, _), _ in done.values()] == [1, 1]
    assert [value for (_, _, value), _ in done.values()] == [2, 1]
    assert all(spent > 0 for _, spent in done.values())
    for name, value in (("first", 1), ("second", 2)):  # each job's lines, in its order
        assert [line for n, line in lines if n == name] == [f"{value} met", "second line"]
    # a frozen type with read-only mappings reaches the worker whole (scaloquant.types)
    assert names == basis.names
    assert total == complex(basis.fids.sum())
    assert metadata == dict(basis.metadata)


def test_a_job_that_fails_or_dies_in_its_process_is_reported_here():
    from scaloquant.errors import ScaloquantError
    from scaloquant.threads import run_in_processes

    with pytest.raises(ValueError, match="boom in a worker"):
        run_in_processes({"bad": _fails}, workers=1)
    with pytest.raises(ScaloquantError, match="ended without a result"):
        run_in_processes({"dies": _dies}, workers=1)
    assert run_in_processes({}) == {}


_ORPHAN_DRIVER = """
import os, sys, time
from pathlib import Path

from scaloquant.threads import run_in_processes


def wait(*, log):
    Path(sys.argv[1]).write_text(str(os.getpid()))
    time.sleep(300)


if __name__ == "__main__":
    run_in_processes({"wait": wait}, workers=1)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX: an orphan gets a new parent id")
def test_a_worker_ends_itself_when_the_process_that_started_it_is_killed(tmp_path, process_running):
    """A parent killed outright cannot stop its workers; each worker watches for it
    (``_end_with_parent``) and ends within a few of its checks, not after its job."""
    import os
    import signal
    import subprocess
    import time as clock

    driver, pid_file = tmp_path / "driver.py", tmp_path / "worker.pid"
    driver.write_text(_ORPHAN_DRIVER)
    parent = subprocess.Popen([sys.executable, str(driver), str(pid_file)])
    try:
        deadline = clock.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()):
            assert parent.poll() is None, "the driver ended before its worker started"
            assert clock.monotonic() < deadline, "the worker never started"
            clock.sleep(0.05)
        worker = int(pid_file.read_text())
        os.kill(worker, 0)  # running
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = clock.monotonic() + 30
        while clock.monotonic() < deadline and process_running(worker):
            clock.sleep(0.1)
        if process_running(worker):
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the orphaned worker was still running 30 s after its parent was killed")
    finally:
        if parent.poll() is None:
            parent.kill()
