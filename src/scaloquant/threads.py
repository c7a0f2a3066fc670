"""How many threads inference and the fit use, and how idle threads wait, so that speed holds
when other processes share the CPUs.

Why
---
libgomp (the OpenMP runtime of the PyTorch CPU wheels on Linux) lets a thread that finished its
share of a parallel region **spin** for a while before sleeping (``OMP_WAIT_POLICY=ACTIVE``-like
default). On an idle machine that saves a wake-up; on a machine whose cores are busy with other
processes, every parallel op waits for a partner thread that the scheduler has put aside, while
the spinning thread itself takes a core from the others. Measured with
``benchmarks/bench_quantify.py`` (scalogram CNN, 1024 spectra, 2 threads, 2 cores, one
busy-loop process beside it, load average 7-8 from other users as well): 34, 25 and 28
spectra/s with the default policy, 112, 105 and 111 with ``OMP_WAIT_POLICY=PASSIVE``; the issue
saw 452 then 24 spectra/s when a load arrived between two passes. OpenBLAS (numpy's BLAS) spins
the same way; the fit already runs it on one thread per process (``scaloquant.fit.spectra``),
and :func:`blas_threads` does the same for the network's figure fits.

What is done
------------
* :func:`prefer_passive_wait`: ``OMP_WAIT_POLICY=PASSIVE`` in the environment unless the user
  set it. The OpenMP runtime reads it once, when it initialises (the first parallel region
  after ``import torch``), so the ``scaloquant`` command sets it at its entry, before any
  subcommand imports torch; a library user sets it in the environment (or calls this function
  before importing torch). Its one cost: on an idle machine a parallel region starts a few
  microseconds later (sleeping threads are woken), which the network's large batches hide.
* :func:`choose_threads`: unless told, as many threads as CPUs this process may run on
  (``os.sched_getaffinity``: a container's or ``taskset``'s limit, not the machine's count)
  less those other processes keep busy (the 1-minute load average), at least 1. A thread per
  idle core; no thread that could only wait for a busy one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

#: The environment variable of the OpenMP wait policy (read by libgomp and Intel's libiomp).
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"


def prefer_passive_wait(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` (default ``os.environ``) unless it is set.

    Returns whether it was set here. It only takes effect if the OpenMP runtime has not yet
    initialised (before torch runs its first parallel op; see the module docstring).
    """
    environ = os.environ if environ is None else environ
    if environ.get(WAIT_POLICY_ENV):
        return False
    environ[WAIT_POLICY_ENV] = "PASSIVE"
    return True


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def choose_threads(requested: int | None = None, *, load: float | None = None) -> int:
    """Threads for torch (and a BLAS) in this process.

    Parameters
    ----------
    requested : the user's choice; returned as is when given (>= 1).
    load : processes wanting a CPU besides this one (default: the 1-minute load average, read
        before the work starts, when it counts the others).

    Returns
    -------
    ``available_cpus() - floor(load)``, clipped to ``[1, available_cpus()]``: on 2 CPUs, 2
    threads below a load of 1 (an idle machine with a little background), 1 above.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads must be >= 1, got {requested}")
        return int(requested)
    cpus = available_cpus()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    idle = cpus - int(math.floor(load))
    return max(1, min(cpus, idle))


def set_torch_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` (intra-op threads of the network)."""
    import torch

    torch.set_num_threads(int(threads))


@contextmanager
def blas_threads(threads: int = 1) -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL) to ``threads`` within the block (threadpoolctl): the fit's
    matrices are small, and threaded BLAS on busy cores spins as libgomp does."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield
