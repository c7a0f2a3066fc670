"""Simulator speed and memory, measured against a named peer in the same run.

Peer: FSL-MRS (``fsl_mrs.utils.synthetic``) would be the natural one, but it is distributed
through conda, not PyPI, so it cannot be installed here. The peer is therefore the plain direct
float64 evaluation of the paper's Eq. 1, vectorised the textbook way (one ``(B, M, N)`` array
of complex exponentials, summed over metabolites): the reference implementation that our
tests check against.

Measured, on the embedded ISMRM 2016 basis (21 signals x 2048 points):

1. signals per second of ``synthesize`` (numpy, complex128) and ``synthesize_torch`` (CPU,
   complex64 and complex128), default config, and of the complete ``simulate_batch`` with
   noise, phases and baseline; each against the peer on the same parameters;
2. peak resident memory (RSS) of a streamed ``scaloquant simulate`` run in a child process,
   against the size of the dataset it writes (what a writer that holds the data would need).

Usage: ``python benchmarks/bench_simulate.py [--batch 1024] [--n-rss 100000] [--threads 1]``
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from scaloquant.io import default_basis
from scaloquant.simulate import (
    SimulationConfig,
    draw_parameters,
    simulate_batch,
    synthesize,
    synthesize_torch,
)

EXTRAS = SimulationConfig.from_dict(
    {
        "snr": [10, 50],
        "phase0_range_deg": [-30, 30],
        "phase1_range_deg_per_ppm": [-2, 2],
        "baseline": {},
    }
)


def peer_direct_eq1(basis_fids, params, dwell_time_s):
    """The reference: Eq. 1 evaluated directly in float64 with a (B, M, N) exponential array."""
    t = np.arange(basis_fids.shape[1]) * dwell_time_s
    rate = -params.damping_per_s + 2j * np.pi * params.shift_hz
    return np.einsum("bm,mn,bmn->bn", params.amplitudes, basis_fids, np.exp(rate[..., None] * t))


def rate(fn, n_signals, repeats=3):
    """Best-of-``repeats`` signals per second of ``fn()`` (best: least disturbed by other load)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n_signals / best


def speed(batch: int) -> None:
    basis = default_basis()
    rng = np.random.default_rng(0)
    params = draw_parameters(SimulationConfig(), batch, rng, names=basis.names)
    peer_batch = min(batch, 256)  # (B, 21, 2048) complex128 is 176 MB at B = 256
    peer_params = params.take(slice(0, peer_batch))
    peer = rate(lambda: peer_direct_eq1(basis.fids, peer_params, basis.dwell_time_s), peer_batch)
    err = np.linalg.norm(
        synthesize(basis.fids, peer_params, basis.dwell_time_s)
        - peer_direct_eq1(basis.fids, peer_params, basis.dwell_time_s)
    ) / np.linalg.norm(peer_direct_eq1(basis.fids, peer_params, basis.dwell_time_s))
    print(f"peer: direct float64 Eq. 1 ((B, M, N) array)   {peer:10.0f} signals/s")
    print(f"  (relative difference of synthesize from the peer: {err:.1e})")

    def report(name, value):
        print(f"{name:47s} {value:10.0f} signals/s   ratio to peer {value / peer:6.1f}x")

    report(
        "scaloquant synthesize (numpy complex128)",
        rate(lambda: synthesize(basis.fids, params, basis.dwell_time_s), batch),
    )
    for dtype in (torch.complex64, torch.complex128):
        x = torch.tensor(np.array(basis.fids), dtype=dtype)  # a writable copy
        report(
            f"scaloquant synthesize_torch (CPU {str(dtype)[6:]})",
            rate(lambda x=x: synthesize_torch(x, params, basis.dwell_time_s), batch),
        )
    report(
        "scaloquant simulate_batch, default config",
        rate(lambda: simulate_batch(basis, SimulationConfig(), batch, rng), batch),
    )
    report(
        "scaloquant simulate_batch, noise+phase+baseline",
        rate(lambda: simulate_batch(basis, EXTRAS, batch, rng), batch),
    )


def memory(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sim.h5"
        cmd = [
            sys.executable,
            "-c",
            "from scaloquant.cli import run; run()",
            "simulate",
            "--n",
            str(n),
            "--seed",
            "1",
            "--out",
            str(out),
            "--snr",
            "20",
            "--baseline",
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        size_mb = out.stat().st_size / 1e6
    # ru_maxrss is in kB on Linux; this is the only child process run, so it is that run's peak
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3
    data_mb = n * default_basis().n_points * 8 / 1e6  # complex64 FIDs alone
    print(
        f"streamed `scaloquant simulate --n {n} --snr 20 --baseline`: {elapsed:.1f} s, "
        f"{n / elapsed:.0f} signals/s end to end, file {size_mb:.0f} MB"
    )
    print(
        f"peak RSS {peak_mb:.0f} MB; holding the FIDs in memory instead would need "
        f"{data_mb:.0f} MB: ratio {peak_mb / data_mb:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024, help="signals per timed call")
    parser.add_argument(
        "--n-rss",
        type=int,
        default=100_000,
        help="signals of the streamed run whose peak RSS is measured (0: skip)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (numpy here is single-threaded)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.n_rss:
        memory(args.n_rss)  # first: the peak RSS of children must come from this run alone
    speed(args.batch)


if __name__ == "__main__":
    main()
