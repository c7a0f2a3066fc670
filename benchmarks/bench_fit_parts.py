"""The adaptive default's parts side by side against one part, alternated in one run.

``scaloquant.fit.spectra._fit_adaptive`` fits every spectrum at the fixed stiffness, screens
them and fits the flagged ones again with the F-test (a reference fit and refit rounds). Run as
one part, the fixed fit's chunks share the cores (``batched.chunk_parts``), but the F-test of
the ~10 % flagged runs as one small chunk on one core while the others idle. In parts
(``batched.side_by_side_parts``: one part per worker where ``chunk_ranges`` shares a batch
out), each part runs its whole pipeline on one torch thread, one part's F-test beside another's
fixed fit. Ways:

* ``one part``: ``side_by_side_parts`` patched to ``[part(0, n)]`` (the pipeline before it);
* ``parts``: as the library runs it.

Runs (``bench_fit_engine.py``'s spectra, seed 1, SNR 30, ``FIT_PRESETS["invivo"]``, ``--n``
each): ``invivo``, the default simulator's spectra (~10 % flagged); ``tissue``, the tissue-like
spectra of the ``invivo`` simulation preset (few flagged). After a fit of 8 (what a process
pays once), each round fits each run both ways in a rotated order, ``--rounds`` times, with
wall and process CPU seconds, the load average before each round, and the call's critical path
(:func:`critical_path`: the caller thread's own time plus, for each ``run_side_by_side`` of the
call, its busiest worker's; in thread CPU seconds, and in wall seconds less those the threads
waited for a CPU): what the call would take with a core of its own for each thread, where on a
machine that others keep busy wall time shows their load. Every array field of the results
must be equal to the bit between the ways (a spectrum's fits are its own).

Usage: ``PYTHONPATH=src python benchmarks/bench_fit_parts.py [--runs invivo tissue] [--n 128]
[--rounds 6] [--threads 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections import defaultdict

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _timing import timed  # noqa: E402
from bench_fit_small_chunk import same  # noqa: E402
from scaloquant.fit import batched, fit_spectra  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402

WAYS = ("one part", "parts")


def one_part(part, n, device):
    """``side_by_side_parts`` as one part: the adaptive pipeline before it."""
    return [part(0, n)]


def runqueue_s() -> float:
    """Seconds this thread has waited for a CPU while runnable (Linux's
    ``/proc/thread-self/schedstat``, its second field)."""
    with open("/proc/thread-self/schedstat") as handle:
        return int(handle.read().split()[1]) / 1e9


@contextlib.contextmanager
def critical_path():
    """While open, collects the call's critical path in the yielded dict: ``"cpu"``, this
    thread's own CPU seconds plus, for each ``batched.run_side_by_side`` called from it, the
    thread CPU of its busiest worker (the jobs it ran, one after another); ``"unqueued"``, the
    same with wall seconds less the seconds the threads waited for a CPU (so counting their
    waits for the GIL and for each other, which a machine of one's own has too, where
    ``"cpu"`` does not). Set on exit."""
    real, caller = batched.run_side_by_side, threading.get_ident()
    calls = []  # (wall s of the call, busiest worker's CPU s, its unqueued s)

    def traced(jobs, workers=None):
        spans = {}

        def timed_job(name, job):
            def run():
                cpu, wall, queued = time.thread_time(), time.perf_counter(), runqueue_s()
                try:
                    return job()
                finally:
                    done = spans.setdefault(threading.get_ident(), [0.0, 0.0])
                    done[0] += time.thread_time() - cpu
                    done[1] += time.perf_counter() - wall - (runqueue_s() - queued)

            return run

        wall = time.perf_counter()
        out = real({name: timed_job(name, job) for name, job in jobs.items()}, workers)
        if threading.get_ident() == caller:
            cpu, unqueued = (max(column) for column in zip(*spans.values(), strict=True))
            calls.append((time.perf_counter() - wall, cpu, unqueued))
        return out

    batched.run_side_by_side = traced
    path = {}
    cpu, wall, queued = time.thread_time(), time.perf_counter(), runqueue_s()
    try:
        yield path
    finally:
        batched.run_side_by_side = real
        own = time.perf_counter() - wall - (runqueue_s() - queued) - sum(c[0] for c in calls)
        path["cpu"] = time.thread_time() - cpu + sum(c[1] for c in calls)
        path["unqueued"] = own + sum(c[2] for c in calls)
        path["calls"] = len(calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["invivo", "tissue"])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    basis, _, fid, tissue = engine_spectra(args.n, 30.0, 1)
    data = {"invivo": fid, "tissue": tissue}
    config = FIT_PRESETS["invivo"]
    fit_spectra(tissue.with_samples(tissue.samples[:8]), basis, config)  # what a process pays once
    library = batched.side_by_side_parts
    times: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    first: dict[tuple[str, str], object] = {}
    for r in range(args.rounds):
        print(f"round {r + 1}, load average {os.getloadavg()[0]:.2f}", flush=True)
        for run in args.runs:
            for way in WAYS[r % 2 :] + WAYS[: r % 2]:
                batched.side_by_side_parts = one_part if way == "one part" else library
                try:
                    with critical_path() as path:
                        result, wall, cpu = timed(fit_spectra, data[run], basis, config)
                finally:
                    batched.side_by_side_parts = library
                times[run, way].append((wall, cpu, path["cpu"], path["unqueued"]))
                first.setdefault((run, way), result)
                print(
                    f"  {run:7s} {way:9s} {wall:6.2f} s wall ({args.n / wall:6.2f} spectra/s) "
                    f"{cpu:6.2f} CPU-s; critical path {path['cpu']:5.2f} CPU-s, "
                    f"{path['unqueued']:5.2f} s unqueued ({path['calls']} side by side)",
                    flush=True,
                )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    for run in args.runs:
        window = first[run, "parts"].window_ppm
        flagged = 0 if window is None else int(np.count_nonzero(window[:, 1] < window.max()))
        for way in WAYS:
            walls = ", ".join(f"{args.n / row[0]:.1f}" for row in times[run, way])
            paths = ", ".join(f"{row[3]:.2f}" for row in times[run, way])
            med = np.median(times[run, way], axis=0)
            print(
                f"{run:7s} {way:9s} spectra/s {walls}; unqueued s {paths}; medians "
                f"{args.n / med[0]:.2f}/s wall, {med[1]:.2f} CPU-s, critical path "
                f"{med[2]:.2f} CPU-s, {med[3]:.2f} s unqueued ({args.n / med[3]:.2f}/s)"
            )
        equal = same(first[run, "one part"], first[run, "parts"])
        print(f"{run:7s} parts equal to the bit to one part: {equal} ({flagged} flagged)")


if __name__ == "__main__":
    main()
