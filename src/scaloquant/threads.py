"""How many threads inference and the fit use, and how idle threads wait, so that speed holds
when other processes share the CPUs.

Why
---
libgomp (the OpenMP runtime of the PyTorch CPU wheels on Linux) lets a thread that finished its
share of a parallel region **spin** for a while before sleeping (``OMP_WAIT_POLICY=ACTIVE``-like
default). On an idle machine that saves a wake-up; on a machine whose cores are busy with other
processes, every parallel op waits for a partner thread that the scheduler has put aside, while
the spinning thread itself takes a core from the others. Measured with
``benchmarks/bench_quantify.py --load 1`` (scalogram CNN of ``train --preset tiny``, 1024
spectra, 2 cores shared with other users' jobs at a load average of 8-9, then one busy-loop
process more), two runs each, spectra/s of three passes:

* libgomp's default, 2 threads: 67 64 56 and 61 44 74; beside the busy loop 33 31 27 and
  32 26 32;
* PASSIVE, 2 threads: 173 170 188 and 116 153 148; beside the busy loop 90 86 97 and 85 81 97;
* PASSIVE, 1 thread (:func:`choose_threads` at load 8.6): 153 167 155 and 301 318 333 (the
  others' load fell); beside the busy loop 74 85 80 and 97 127 120.

PASSIVE is 2.5-3x faster on the loaded machine and the slowest of three loaded passes stays
0.76-0.88 of the fastest; from the passes before the busy loop to those beside it speed drops
to 0.46-0.53 (its share of 2 cores: the issue saw 452 then 24, a 19x drop, with the default).
One thread instead of two cost about 10 % here and leaves a core to the others. OpenBLAS
(numpy's BLAS) spins the same way; the fit already runs it on one thread per process
(``scaloquant.fit.spectra``), and :func:`blas_threads` does the same for quantify's figure and
``--refine`` start fits.

With a controlled load (``--load 3``: three busy loops, 2 threads, load average 6-8):
default 27 29 34 spectra/s (0.11 of its passes before the loops), PASSIVE 85 98 123,
``GOMP_SPINCOUNT=10000`` (a short spin, then sleep) 62 68 62.

The cost, on a machine that is idle or has one competitor: with the load average at 0.7-1 the
default ran 638 701 711 spectra/s and 481 476 423 beside one busy loop; PASSIVE 510 484 467
and 308 210 215 (one thread, chosen at load 2: 467 474 537 and 212 263 277); and
``benchmarks/bench_scalogram.py`` measured the paper-size transform at 108 signals/s with
PASSIVE against 191 with the default (load average 1). So PASSIVE gives up a third of the
speed on a quiet machine to keep 3-4x more of it on a crowded one, where the default
collapses; the default here is the one whose worst case is mild. On a machine of your own set
``OMP_WAIT_POLICY=ACTIVE`` (and ``--threads``): a choice the user makes stands.

What is done
------------
* :func:`prefer_passive_wait`: ``OMP_WAIT_POLICY=PASSIVE`` in the environment unless the user
  set it. The OpenMP runtime reads it once, when it initialises (the first parallel region
  after ``import torch``), so the ``scaloquant`` command sets it at its entry, before any
  subcommand imports torch; a library user sets it in the environment (or calls this function
  before importing torch). Its cost is on an idle machine, where every parallel region wakes
  sleeping threads (above: up to 1.8x on the scalogram transform; not measured idle for
  ``quantify`` here, the machine never was).
* :func:`prefer_huge_pages`: ``THP_MEM_ALLOC_ENABLE=1`` in the environment unless the user
  set it, so that torch asks the kernel for transparent huge pages (``madvise``) for its CPU
  tensors of 2 MB and more. torch's CPU allocator keeps no cache: every large temporary is a
  fresh ``mmap``, touched page by page, and the batched fit's working arrays (``(B, M, N)``
  complex, ~100 MB for a chunk of 128 spectra) are allocated a few times per iteration. With
  4 kB pages each costs ~25,000 page faults; measured on a copy of such an array (1 thread,
  load ~4 on 2 cores): 24,577 -> 560 faults and 69 -> 23 ms of CPU time per copy; the
  ``invivo`` fit of 128 spectra 16.5 -> 13.0 s of CPU time. torch reads the variable at its
  first CPU allocation, so the ``scaloquant`` command sets it at its entry with
  :func:`prefer_passive_wait` (a library user sets it in the environment, or calls this
  function before importing torch). Without huge pages enabled in the kernel
  (``/sys/kernel/mm/transparent_hugepage/enabled`` ``never``) it changes nothing.
* :func:`prefer_reproducible_mkl`: ``MKL_CBWR=AUTO`` in the environment unless the user set
  it: MKL's conditional numerical reproducibility, in the code path it would pick anyway. Without
  it MKL's batched products give a matrix other bits by its place in the batch (``(1, 59) x (59,
  59)`` float64, 64 matrices: 42 of the 59 from the 6th on differ from the same 59 as a batch of
  their own), so the batched fit's result for a spectrum depended on its chunk's other spectra
  and on which of them had converged (docs/history/fit-log.md "The fit's chunk-size dependence
  (session 19, `chunk19`)"); with it and the fit's own products made per spectrum
  (:func:`scaloquant.fit.evaluation.batched_matmul`), every ``invivo`` amplitude of 256 spectra
  is the same to the bit in chunks of 16, 128 and 256 and in another order. Its cost was not
  measurable (fits of 128 spectra per CPU-second, alternated with it unset). MKL reads it at its
  first call, so the ``scaloquant`` command sets it at its entry with :func:`prefer_passive_wait`
  (a library user sets it in the environment, or calls this function before torch's first
  product).
* :func:`choose_threads`: unless told, as many threads as CPUs this process may run on
  (``os.sched_getaffinity``: a container's or ``taskset``'s limit, not the machine's count)
  less those other processes keep busy (the 1-minute load average, or the processes runnable
  now where fewer: the average lags a minute behind a job that ended), at least 1. A thread
  per idle core; no thread that could only wait for a busy one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from functools import partial
from typing import Any

from .errors import ScaloquantError


def _set_unless_set(environ: MutableMapping[str, str] | None, name: str, value: str) -> bool:
    """Set ``name=value`` in ``environ`` (default ``os.environ``) unless ``name`` is set to a
    non-empty value; whether it was set here (the body of the ``prefer_*`` functions)."""
    environ = os.environ if environ is None else environ
    if environ.get(name):
        return False
    environ[name] = value
    return True


#: The environment variable of the OpenMP wait policy (read by libgomp and Intel's libiomp).
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"


def prefer_passive_wait(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` (default ``os.environ``) unless it is set.

    Returns whether it was set here. It only takes effect if the OpenMP runtime has not yet
    initialised (before torch runs its first parallel op; see the module docstring).
    """
    return _set_unless_set(environ, WAIT_POLICY_ENV, "PASSIVE")


#: The environment variable with which torch (>= 2.1) asks for transparent huge pages.
HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"


def prefer_huge_pages(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` in ``environ`` (default ``os.environ``) unless it is set.

    Returns whether it was set here. It only takes effect before torch's first CPU allocation
    (before ``import torch``; see the module docstring).
    """
    return _set_unless_set(environ, HUGE_PAGES_ENV, "1")


#: The environment variable of MKL's conditional numerical reproducibility mode.
MKL_REPRODUCIBLE_ENV = "MKL_CBWR"


def prefer_reproducible_mkl(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``MKL_CBWR=AUTO`` in ``environ`` (default ``os.environ``) unless it is set.

    Returns whether it was set here. It only takes effect before MKL's first call (torch's
    first matrix product; see the module docstring).
    """
    return _set_unless_set(environ, MKL_REPRODUCIBLE_ENV, "AUTO")


def prefer_command_settings(environ: MutableMapping[str, str] | None = None) -> None:
    """The runtime settings the ``scaloquant`` command makes before torch loads, each unless
    the user set it: :func:`prefer_passive_wait`, :func:`prefer_huge_pages` and
    :func:`prefer_reproducible_mkl` on ``environ`` (default ``os.environ``). Benchmarks call it
    too, so that they time what the command runs."""
    prefer_passive_wait(environ)
    prefer_huge_pages(environ)
    prefer_reproducible_mkl(environ)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


#: Looks at the runnable count of ``/proc/loadavg`` (:func:`runnable_others`), and the
#: seconds between them.
RUNNABLE_LOOKS, RUNNABLE_INTERVAL_S = 5, 0.01


def runnable_others(loadavg: str | None = None) -> float | None:
    """Processes runnable now besides this one: the median over :data:`RUNNABLE_LOOKS` looks
    at the ``R/T`` field of Linux's ``/proc/loadavg`` (``R`` counts this process, running
    while it reads), or of ``loadavg`` (that text, once); ``None`` where there is none."""
    texts = []
    if loadavg is not None:
        texts = [loadavg]
    else:
        try:
            for i in range(RUNNABLE_LOOKS):
                if i:
                    time.sleep(RUNNABLE_INTERVAL_S)
                with open("/proc/loadavg") as handle:
                    texts.append(handle.read())
        except OSError:
            return None
    try:
        counts = sorted(int(t.split()[3].split("/")[0]) - 1 for t in texts)
    except (IndexError, ValueError):
        return None
    return float(max(0, counts[len(counts) // 2]))


def choose_threads(requested: int | None = None, *, load: float | None = None) -> int:
    """Threads for torch (and a BLAS) in this process.

    Parameters
    ----------
    requested : the user's choice; returned as is when given (>= 1).
    load : processes wanting a CPU besides this one (default: the 1-minute load average, read
        before the work starts, when it counts the others; or, where fewer, the processes
        runnable now, :func:`runnable_others`: the average still counts a job that ended a
        minute ago, and took 1 of 2 threads for a 32 x 32 MRSI fit right after another
        command on an idle machine, 104 s against 52 s on 2).

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
        now = runnable_others()
        if now is not None:
            load = min(load, now)
    idle = cpus - int(math.floor(load))
    return max(1, min(cpus, idle))


def set_torch_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` (intra-op threads of the network), for the process."""
    import torch

    torch.set_num_threads(int(threads))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` within the block and restored after it, so
    that a command run in-process (``scaloquant.cli.main`` from a script or a test) leaves the
    caller's setting as it was."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def blas_threads(threads: int = 1) -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL) to ``threads`` within the block (threadpoolctl): the fit's
    matrices are small, and threaded BLAS on busy cores spins as libgomp does."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield


def run_side_by_side(
    jobs: Mapping[str, Callable[[], Any]], workers: int | None = None
) -> dict[str, tuple[Any, float]]:
    """Run independent ``jobs`` (name -> function of no arguments) side by side in ``workers``
    Python threads (default: one per job, at most :func:`available_cpus`), torch's intra-op
    threads shared out among them (``torch.get_num_threads() // workers``, at least 1; the
    caller's setting restored afterwards). Returns name -> ``(result, wall s of that job)``,
    in the order of ``jobs``; a job's exception is raised here.

    For jobs that spend their time in torch or numpy operations (which release the GIL) and
    use no random generator shared between them: the batched fit and the physics models'
    polish. Where 2 threads of one op use 2 cores poorly (PASSIVE waiting, small operations:
    the module docstring), one thread per job on each core does more in the same time.
    """
    import torch

    if not jobs:
        return {}
    workers = min(len(jobs), available_cpus()) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")

    def timed(job: Callable[[], Any]) -> tuple[Any, float]:
        t0 = time.perf_counter()
        result = job()
        return result, time.perf_counter() - t0

    per_job = max(1, torch.get_num_threads() // workers)
    with torch_threads(per_job), ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(timed, job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def map_on_threads(
    work: Callable[[Any], Any], items: Sequence[Any], threads: int, name: str = "scaloquant"
) -> list[Any]:
    """``[work(x) for x in items]``, on up to ``threads`` Python threads when there are two
    or more items (in order; one thread: in this one). For work that spends its time in numpy,
    scipy or LAPACK calls that release the GIL, each item computed whole by one thread, so the
    results are those of one thread whatever the count: the quality checks' blocks
    (:mod:`scaloquant.signal.qc_spectra`) and the HLSVD's FIDs and batches
    (:mod:`scaloquant.signal.water`)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    workers = min(threads, len(items))
    if workers < 2:
        return [work(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        return list(pool.map(work, items))


#: The queue of a worker process of :func:`run_in_processes` for its jobs' log lines (set
#: when the process starts, by :func:`_start_worker`).
_WORKER_LOG: Any = None


#: Seconds between a worker's checks that the process which started it is still there.
PARENT_CHECK_S = 0.5


def _start_worker(queue: Any, threads: int, parent_pid: int) -> None:
    global _WORKER_LOG
    import threading

    _WORKER_LOG = queue
    set_torch_threads(threads)
    threading.Thread(
        target=_end_with_parent, args=(parent_pid,), name="scaloquant-parent-watch", daemon=True
    ).start()


def _end_with_parent(parent_pid: int) -> None:
    """A worker's watch: end this process once the one that started it is gone. A parent
    killed outright (``SIGKILL``, the out-of-memory killer) cannot stop its workers, and
    Lightning's training ignores ``SIGTERM``: without the watch they would go on computing,
    for minutes, results nobody reads. POSIX: the orphan's parent becomes another process."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _send_line(name: str, line: str) -> None:
    _WORKER_LOG.put((name, str(line)))


def _run_job(name: str, job: Callable[..., Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = job(log=partial(_send_line, name))
    return result, time.perf_counter() - t0


def run_in_processes(
    jobs: Mapping[str, Callable[..., Any]],
    workers: int | None = None,
    log: Callable[[str, str], None] | None = None,
) -> dict[str, tuple[Any, float]]:
    """Run independent ``jobs`` (name -> picklable function called as ``job(log=...)``) in
    ``workers`` new processes (``spawn``; default one per job, at most :func:`available_cpus`),
    each with ``torch.get_num_threads() // workers`` torch threads (at least 1). A job starts
    when a process is free, in the order of ``jobs`` (put the longest first). Its ``log`` sends
    one line at a time to ``log(name, line)``, called here (in a thread of this process) as
    the line arrives. Returns name -> ``(result, wall s of that job)`` in the order of
    ``jobs``; a job's exception is raised here once the jobs already running have ended.
    Interrupted here (``KeyboardInterrupt``, ``SystemExit``), it kills its workers before it
    re-raises; a worker whose starter is gone (killed) ends itself (:func:`_end_with_parent`).

    For jobs that a Python thread cannot run beside another: the regression CNNs' Lightning
    training seeds and reads torch's global generator and holds the GIL between its small
    operations (:func:`run_side_by_side` shares one process). A process costs its start (Python,
    torch and the job's modules: ~4-6 s of CPU) and a copy of the job's arguments.
    """
    import multiprocessing
    import threading

    import torch

    if not jobs:
        return {}
    workers = min(len(jobs), available_cpus()) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    per_job = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    queue = context.SimpleQueue()

    def relay() -> None:
        while (item := queue.get()) is not None:
            if log is not None:
                log(*item)

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    others = {child.pid for child in multiprocessing.active_children()}
    pool = ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(queue, per_job, os.getpid()),
    )
    try:
        futures = {name: pool.submit(_run_job, name, job) for name, job in jobs.items()}
        try:
            return {name: future.result() for name, future in futures.items()}
        except BrokenProcessPool as err:
            raise ScaloquantError(
                "a worker process ended without a result (it was killed, e.g. for lack of "
                "memory); free memory or run one job at a time, and run again"
            ) from err
    except (KeyboardInterrupt, SystemExit):
        # Ctrl+C or SIGTERM (the CLI raises it as an interruption) while the jobs run: end the
        # workers now, rather than wait in the shutdown below for trainings nobody will read
        # (Lightning's training ignores SIGTERM; Ctrl+C reaches them already)
        for child in multiprocessing.active_children():
            if child.pid not in others:
                child.kill()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        queue.put(None)
        reader.join()


def is_launching_process() -> bool:
    """Whether this is the process a user started, not one a multi-process training launched
    beside it (it alone writes and cleans up the run's files). Environment variables only, no
    torch: ``scaloquant train`` asks it on its refusals before the trainer is imported."""
    # Lightning's DDP launcher starts the extra processes with LOCAL_RANK > 0; torchrun and SLURM
    # set RANK / SLURM_PROCID and NODE_RANK for every process
    for var in ("LOCAL_RANK", "RANK", "NODE_RANK", "SLURM_PROCID"):
        value = os.environ.get(var, "0")
        if value.strip().isdigit() and int(value) != 0:
            return False
    return True
