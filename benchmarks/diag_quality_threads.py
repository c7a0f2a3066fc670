"""How quantify's quality checks use the run's threads: the stage's time on 1 and 2 threads, and
how much of a block's time the GIL is held.

Spectra: ``--n`` default-simulator spectra at SNR 30 (seed 7, as ``diag_quantify_stages.py``),
or the FIDs of ``--fids FILE.npy`` (``(N, 2048)`` on the default basis's grid; simulating 16384
takes ~30 s). Printed, for each thread count of ``--threads``: the wall and CPU seconds of
``quality_figures`` and of ``water_near_window`` (above 4.2 ppm, the fit window's top) on all of
them, as ``scaloquant quantify`` calls them (``scipy.fft.set_workers(threads)``, BLAS on one
thread), the fastest of ``--repeats``; then the GIL probe: a second Python thread that sleeps
0.5 ms and counts a tick, in a loop, counted while one thread computes a block of
``QUALITY_BLOCK`` spectra over and over, against its count while nothing runs. A call that holds
the GIL lets the probe tick only between calls (~0 ticks per held ms); one that releases it lets
the probe tick as if idle. How late the probe wakes, less the time the kernel counts it waiting
for a core, is the time it waited for the GIL, a figure the machine's load leaves alone (the
fit-log's "How the HLSVD is computed" counted the ticks of the HLSVD's LAPACK call alike). Run
it once with each tree's ``src`` on ``PYTHONPATH`` to compare two trees, alternating them.

Usage: ``PYTHONPATH=src python benchmarks/diag_quality_threads.py [--n 16384] [--fids F.npy]
[--threads 1 2] [--repeats 3] [--probe-s 2] [--probe-rounds 2]``
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import scipy.fft
from scipy.ndimage import median_filter

from scaloquant.io import default_basis
from scaloquant.signal import qc_spectra, quality, water_peak
from scaloquant.threads import blas_threads

#: The sleep of the probe thread between its ticks, s.
PROBE_SLEEP_S = 0.0005


def simulated(n: int) -> np.ndarray:
    from scaloquant.simulate import SimulationConfig, simulate_dataset

    config = SimulationConfig.from_dict({"snr": [30, 30]})
    return next(simulate_dataset(default_basis(), config, n, 7, chunk_size=n)).fids


def timed(fn, repeats: int) -> tuple[float, float]:
    """The fastest of ``repeats`` calls: ``(wall s, CPU s of the process)``."""
    best = (np.inf, np.inf)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def _run_delay_s(native_id: int) -> float:
    """Seconds the thread ``native_id`` of this process has waited for a core, runnable
    (Linux's ``/proc/.../schedstat``, second field); 0 where it cannot be read."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as handle:
            return int(handle.read().split()[1]) * 1e-9
    except (OSError, IndexError, ValueError):
        return 0.0


class Probe:
    """A daemon thread that sleeps :data:`PROBE_SLEEP_S` and ticks, in a loop: to return from
    each sleep it needs the GIL. How late it wakes, summed, less the time the kernel says it
    waited for a core (a loaded machine), is the time it waited for the GIL (and its timer's
    slack, measured while nothing runs)."""

    def __init__(self) -> None:
        self.ticks, self.late_s, self.native_id, self._running = 0, 0.0, 0, True
        threading.Thread(target=self._loop, daemon=True).start()
        while not self.native_id:
            time.sleep(0.001)

    def _loop(self) -> None:
        self.native_id = threading.get_native_id()
        while self._running:
            start = time.perf_counter()
            time.sleep(PROBE_SLEEP_S)
            self.late_s += time.perf_counter() - start - PROBE_SLEEP_S
            self.ticks += 1

    def rate(self, fn, seconds: float) -> tuple[float, float, int]:
        """While ``fn()`` is called over and over for ``seconds``: the probe's ticks per second,
        the fraction of the time it woke late for other reasons than waiting for a core, and
        the calls."""
        ticks, late, delay = self.ticks, self.late_s, _run_delay_s(self.native_id)
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            fn()
            calls += 1
        wall = time.perf_counter() - start
        waited = (self.late_s - late) - (_run_delay_s(self.native_id) - delay)
        return (self.ticks - ticks) / wall, waited / wall, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16384)
    parser.add_argument("--fids", default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe-s", type=float, default=2.0)
    parser.add_argument("--probe-rounds", type=int, default=2)
    args = parser.parse_args()
    basis = default_basis()
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    fids = np.load(args.fids)[: args.n] if args.fids else simulated(args.n)
    print(f"{fids.shape[0]} spectra of {fids.shape[1]} points; quality from {quality.__file__}")
    stages = {
        "quality_figures": lambda: quality.quality_figures(fids, *grid),
        "water_near_window": lambda: water_peak.water_near_window(fids, *grid, 4.2),
    }
    with blas_threads(1):
        for fn in stages.values():  # first calls: page faults, imports
            fn()
        for threads in args.threads:
            with scipy.fft.set_workers(threads):
                for name, fn in stages.items():
                    wall, cpu = timed(fn, args.repeats)
                    print(f"  {threads} thread(s): {name:18s} {wall:6.2f} s wall {cpu:6.2f} s CPU")
        block = fids[: qc_spectra.QUALITY_BLOCK]
        line = np.random.default_rng(0).random(200_000)
        probe = Probe()
        calls = {
            # the two ends of the scale: a call that releases the GIL and keeps a core busy,
            # one that holds it (on a loaded machine the probe's own share of a core falls too)
            "np.sort (releases the GIL)": lambda: np.sort(line),
            "scipy's median_filter (holds it)": lambda: median_filter(line, 19, mode="nearest"),
            "one block's quality_figures": lambda: quality.quality_figures(block, *grid),
            "one block's water_near_window": lambda: water_peak.water_near_window(
                block, *grid, 4.2
            ),
        }
        for _ in range(args.probe_rounds):  # alternated: the machine's load moves
            idle, idle_wait, _ = probe.rate(lambda: time.sleep(0.01), args.probe_s)
            print(f"  GIL probe: {idle:.0f} ticks/s idle, late {idle_wait:.2f} of the time")
            for name, fn in calls.items():
                rate, waited, n_calls = probe.rate(fn, args.probe_s)
                ms = 1e3 * args.probe_s / n_calls
                print(
                    f"  GIL probe: {rate:6.0f} ticks/s ({rate / idle:.2f} of idle), late (not "
                    f"for a core) {waited:.2f} of the time, during {name} ({n_calls} calls, "
                    f"{ms:.1f} ms each)"
                )


if __name__ == "__main__":
    main()
