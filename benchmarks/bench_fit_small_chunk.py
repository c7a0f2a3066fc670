"""A fit of between one and two workers' ``SIDE_BY_SIDE_MIN`` spectra on 2 torch threads: the
three ways its one chunk can run, alternated in one run.

:func:`scaloquant.fit.batched.chunk_parts` runs a CPU batch of at least ``workers *
SIDE_BY_SIDE_MIN`` spectra in chunks side by side (a torch thread each) and one of fewer than
``SIDE_BY_SIDE_MIN`` as one chunk on one torch thread; in between (32-63 spectra at 2 threads:
the F-test's reference fit and refits when that many are flagged, a small MRSI slice's part)
one chunk ran on the caller's thread with its small operations split over the 2 torch
threads, until ``ONE_THREAD_BELOW`` (64) put it on one torch thread.
Each ``--n`` (tissue-like spectra of ``bench_fit_engine.py``'s ``invivo`` simulation, seed 1,
``FIT_PRESETS["invivo"]``) is fitted with ``fit_spectra``

* ``two threads``: one chunk, 2 torch threads (``ONE_THREAD_BELOW`` set to 32: the rule
  before it);
* ``one thread``: one chunk on one torch thread (the rule of ``ONE_THREAD_BELOW``);
* ``side by side``: two chunks side by side, one torch thread each (``SIDE_BY_SIDE_MIN``
  lowered to 16),

after a fit of 8 (what a process pays once), in a rotated order each round, ``--rounds``
times, with wall and process CPU seconds and the
load average before each round; the results of every way must be equal to the bit
(``np.array_equal`` of every field: a spectrum's fit is its own, session 19's ``chunk19``)
for the ways of one thread per chunk; whether ``two threads`` gives the same is printed.

Usage: ``PYTHONPATH=src python benchmarks/bench_fit_small_chunk.py [--n 32 48 63]
[--rounds 10] [--threads 2]``
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _timing import timed  # noqa: E402
from scaloquant.fit import batched, fit_spectra  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402

#: The ways, as the ``(SIDE_BY_SIDE_MIN, ONE_THREAD_BELOW)`` that give them for 32-63 spectra
#: at 2 workers.
WAYS = {"two threads": (32, 32), "one thread": (32, 64), "side by side": (16, 64)}


def same(a, b) -> bool:
    """Whether two fit results are equal to the bit in every array field."""
    return all(
        np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
        for x, y in ((getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
        if isinstance(x, np.ndarray)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[32, 48, 63])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    basis, _, _, tissue = engine_spectra(max(args.n), 30.0, 1)
    config = FIT_PRESETS["invivo"]
    original = batched.SIDE_BY_SIDE_MIN, batched.ONE_THREAD_BELOW
    fit_spectra(tissue.with_samples(tissue.samples[:8]), basis, config)  # what a process pays once
    times: dict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
    first: dict[tuple[int, str], object] = {}
    names = list(WAYS)
    for r in range(args.rounds):
        print(f"round {r + 1}, load average {os.getloadavg()[0]:.2f}", flush=True)
        for n in args.n:
            part = tissue.with_samples(tissue.samples[:n])
            for name in names[r % 3 :] + names[: r % 3]:
                batched.SIDE_BY_SIDE_MIN, batched.ONE_THREAD_BELOW = WAYS[name]
                try:
                    result, wall, cpu = timed(fit_spectra, part, basis, config)
                finally:
                    batched.SIDE_BY_SIDE_MIN, batched.ONE_THREAD_BELOW = original
                times[n, name].append((wall, cpu))
                first.setdefault((n, name), result)
                print(f"  n {n:3d} {name:13s} {wall:6.2f} s wall {cpu:6.2f} CPU-s", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    for n in args.n:
        for name in names:
            walls = ", ".join(f"{w:.2f}" for w, _ in times[n, name])
            cpus = ", ".join(f"{c:.2f}" for _, c in times[n, name])
            med = np.median(times[n, name], axis=0)
            print(
                f"n {n:3d} {name:13s} wall {walls}  CPU-s {cpus}  medians {med[0]:.2f} {med[1]:.2f}"
            )
    for name in ("side by side", "two threads"):
        equal = all(same(first[n, "one thread"], first[n, name]) for n in args.n)
        print(f"{name} equal to the bit to one thread: {equal}")


if __name__ == "__main__":
    main()
