"""How many of this process's threads want a CPU while ``fit_spectra`` runs, phase by phase.

A sampling thread reads the state of every other thread of the process
(``/proc/self/task/*/stat``, Linux) every ``--interval-ms``: a thread that runs or waits for a
core is ``R``; one that waits for the GIL or a lock, or has no job left, sleeps (an OpenMP
thread that spins while it waits would count as runnable: the fit's passive wait has none spin).
The share of samples with 0, 1 and 2+ runnable threads says how much of the call could use both
cores, whatever else the machine runs (other processes delay a runnable thread but do not put
it to sleep), so it separates what the fit leaves idle from what a loaded machine takes. Each
sample is counted under the phase running in the main thread: ``prepare`` (the basis on the
data's grid), ``water`` (HLSVD), ``problems`` (``make_problem``, ``stage_problem``),
``side by side`` (:func:`scaloquant.threads.run_side_by_side`: the chunks' fits), ``result``
(``_batched_result``: SNR, linewidth), ``other``; with each side-by-side call's job walls (with
one job per worker, as for 128 spectra on 2 threads, its tail: the last job's end less the
first's; the jobs start together).

The runs of ``bench_fit_engine.py`` (``--n`` spectra, seed 1, SNR 30), ``--repeat`` times in
one process: the first call of a run pays what a process pays once (imports, caches).

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_cores.py [--n 128] [--threads 2]
[--runs invivo simulated tissue] [--repeat 2] [--interval-ms 2]``
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter, defaultdict

# first: it sets OpenMP's passive wait and huge pages before torch loads, as the command does
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import torch  # noqa: E402

import scaloquant.fit.batched as batched  # noqa: E402
import scaloquant.fit.spectra as spectra  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402

PHASES = (
    (spectra, "_prepared", "prepare"),
    (spectra, "_without_water", "water"),
    (batched, "make_problem", "problems"),
    (batched, "stage_problem", "problems"),
    (batched, "run_side_by_side", "side by side"),
    (spectra, "_batched_result", "result"),
)


class Sampler:
    """Counts of runnable threads (this sampler's own excluded), by phase."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.phase = "other"
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.job_walls: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = str(threading.get_native_id())
        tasks = f"/proc/{os.getpid()}/task"
        while not self._stop.is_set():
            running = 0
            for tid in os.listdir(tasks):
                if tid == me:
                    continue
                try:
                    with open(f"{tasks}/{tid}/stat") as handle:
                        stat = handle.read()
                except OSError:  # the thread ended
                    continue
                running += stat[stat.rindex(")") + 2] == "R"
            self.counts[self.phase][min(running, 2)] += 1
            time.sleep(self.interval_s)

    def wrap(self) -> None:
        """Label the samples taken while each function of :data:`PHASES` runs."""
        for module, name, label in PHASES:
            original = getattr(module, name)

            def wrapped(*args, _original=original, _label=label, **kwargs):
                before, self.phase = self.phase, _label
                try:
                    out = _original(*args, **kwargs)
                finally:
                    self.phase = before
                if _label == "side by side":
                    self.job_walls.append([wall for _, wall in out.values()])
                return out

            setattr(module, name, wrapped)


def report(label: str, wall: float, cpu: float, sampler: Sampler) -> None:
    total = sum(sum(c.values()) for c in sampler.counts.values())
    everything = sum(sampler.counts.values(), Counter())
    print(f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU, load {os.getloadavg()[0]:.1f}")
    for phase, counts in [("all", everything), *sorted(sampler.counts.items())]:
        n = sum(counts.values())
        mean = (counts[1] + 2 * counts[2]) / max(n, 1)
        print(
            f"  {phase:13s} {n / max(total, 1):6.1%} of the call; runnable 0 / 1 / 2+: "
            f"{counts[0] / n:6.1%} {counts[1] / n:6.1%} {counts[2] / n:6.1%}, mean {mean:.2f}"
        )
    for walls in sampler.job_walls:
        line = f"  side-by-side jobs: {' '.join(f'{w:.2f}' for w in walls)} s wall"
        if len(walls) == 2:  # one job per worker: the second's end less the first's
            line += f", tail {max(walls) - min(walls):.2f} s"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", nargs="+", default=["invivo", "simulated", "tissue"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--interval-ms", type=float, default=2.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    basis, _, fid, tissue_fid = engine_spectra(args.n, 30.0, 1)
    sampler = Sampler(args.interval_ms / 1000)
    sampler.wrap()
    sampler.start()
    try:
        for repeat in range(args.repeat):
            for run in args.runs:
                source = tissue_fid if run == "tissue" else fid
                preset = "invivo" if run == "tissue" else run
                sampler.counts.clear()
                sampler.job_walls.clear()
                wall, cpu = time.perf_counter(), time.process_time()
                spectra.fit_spectra(source, basis, FIT_PRESETS[preset])
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                report(f"{run} (call {repeat + 1})", wall, cpu, sampler)
    finally:
        sampler.stop()


if __name__ == "__main__":
    main()
