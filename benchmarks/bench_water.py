"""The residual-water HLSVD (``scaloquant.signal.water.remove_water``) against the full-SVD
HLSVD it replaced (``tests/oracle.py``: ``hlsvd_full_svd``), on the same spectra: time per
spectrum, the ratio, and how far the water-removed FIDs differ (the largest difference over
the samples, relative to the largest sample of the removed water).

Spectra: the scanner spectra of ``../shared/data/invivo`` (every FID of their NIfTI-MRS
files, as ``scaloquant fit`` reads them) and ``--n`` tissue-like simulated spectra
(``simulate_invivo_batch(default_basis(), InvivoPrior(), n, default_rng(--seed))``, the
``invivo`` preset's test bed). BLAS on one thread (as the fit runs it); ``--threads`` adds a
run of ``remove_water(..., threads=T)``. Wall time, the fastest of ``--repeats`` alternated
runs. ``--fit N`` first profiles the ``invivo`` fit of N tissue-like spectra with the old and
the new HLSVD.

Usage::

    PYTHONPATH=src python benchmarks/bench_water.py [--n 128] [--seed 1] [--threads 2]
        [--repeats 3] [--fit 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from scaloquant.io import default_basis, read_fid
from scaloquant.signal.water import (
    GRAM_MIN_SINGULAR_RATIO,
    HLSVD_COMPONENTS,
    HLSVD_POINTS,
    WATER_BAND_PPM,
    remove_water,
)
from scaloquant.simulate.invivo import InvivoPrior, simulate_invivo_batch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import oracle  # noqa: E402  (the full-SVD HLSVD: the tests' float64 reference)

INVIVO = ROOT.parent / "shared" / "data" / "invivo"
SCANNER = [
    INVIVO / "philips-press30-spant/nifti_spec2nii/metab.nii.gz",
    INVIVO / "siemens-press30-suspect/nifti/SVS_30_rda.nii.gz",
    *sorted((INVIVO / "philips-press-osprey/nifti").glob("*/*act*.nii.gz")),
]


def spectra_sets(n: int, seed: int) -> list[tuple[str, np.ndarray, tuple[float, float, float]]]:
    """``(name, FIDs (B, N), (dwell s, MHz, reference ppm))`` of each set to time."""
    sets = []
    for path in SCANNER:
        fid = read_fid(path)
        grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        sets.append((path.name, fid.samples.reshape(-1, fid.n_points), grid))
    basis = default_basis()
    sim = simulate_invivo_batch(basis, InvivoPrior(), n, np.random.default_rng(seed))
    acq = basis.acquisition
    grid = (acq.dwell_time_s, acq.spectrometer_freq_mhz, acq.ppm_reference)
    sets.append((f"simulated tissue-like (n={n})", sim.fids, grid))
    return sets


def reference(fids: np.ndarray, grid: tuple[float, float, float]) -> np.ndarray:
    """The full-SVD HLSVD's water-removed FIDs ``(B, N)``."""
    return np.stack([x - oracle.hlsvd_band_fid(x, *grid, WATER_BAND_PPM) for x in fids])


def full_svd_taken(fids: np.ndarray) -> int:
    """How many of the FIDs ``(B, N)`` the new code decomposes by the full SVD (its Hankel
    matrix' ``s_K / s_1`` below ``GRAM_MIN_SINGULAR_RATIO``), not by the Gram matrix."""
    n = min(fids.shape[-1], HLSVD_POINTS)
    count = 0
    for x in fids:
        hankel = np.lib.stride_tricks.sliding_window_view(x[:n], n - n // 2 + 1)[: n // 2]
        s = np.linalg.svd(hankel, compute_uv=False)
        count += int(s[min(HLSVD_COMPONENTS, s.size) - 1] < GRAM_MIN_SINGULAR_RATIO * s[0])
    return count


def timed(run, *args, **kwargs) -> tuple[np.ndarray, float, float]:
    """``(run(...), seconds of wall time, seconds of this process' CPU time)``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = run(*args, **kwargs)
    return out, time.perf_counter() - start, time.process_time() - cpu


def fit_profile(n: int, seed: int) -> None:
    """``fit_spectra(FIT_PRESETS["invivo"])`` of ``n`` tissue-like spectra on one torch
    thread, under cProfile, with the full-SVD HLSVD put in place of ``remove_water`` (before)
    and with the package's (now): wall and CPU seconds, and ``remove_water``'s."""
    import cProfile
    import pstats

    import torch

    from scaloquant.fit import fit_spectra
    from scaloquant.fit.config import FIT_PRESETS
    from scaloquant.signal import water
    from scaloquant.types import FID

    torch.set_num_threads(1)
    basis = default_basis()
    sim = simulate_invivo_batch(basis, InvivoPrior(), n, np.random.default_rng(seed))
    acq = basis.acquisition
    fid = FID(sim.fids, acq.dwell_time_s, acq.spectrometer_freq_mhz, acq.ppm_reference)

    def full_svd(fids, dwell_time_s, mhz, ref, band_ppm=WATER_BAND_PPM, threads=1):
        return reference(np.asarray(fids, dtype=np.complex128), (dwell_time_s, mhz, ref))

    package = water.remove_water
    for label, remove in (("before (full SVD)", full_svd), ("now", package)):
        water.remove_water = remove  # the fit imports it from the module when it runs
        try:
            profile = cProfile.Profile()
            start, cpu = time.perf_counter(), time.process_time()
            profile.runcall(fit_spectra, fid, basis, FIT_PRESETS["invivo"])
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            water.remove_water = package
        stats = pstats.Stats(profile).stats
        inside = max(v[3] for k, v in stats.items() if k[2] in ("remove_water", "full_svd"))
        print(
            f"fit of {n} tissue-like spectra, invivo, 1 thread, {label}: {wall:.1f} s wall "
            f"({n / wall:.2f} spectra/s), {cpu:.1f} s CPU, remove_water {inside:.1f} s "
            f"({100 * inside / wall:.0f} % of the wall time, profiled)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=128, help="simulated spectra")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="threads of the extra run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the fastest counts")
    parser.add_argument(
        "--fit", type=int, default=0, help="also profile the invivo fit of this many spectra"
    )
    args = parser.parse_args()
    if args.fit:
        fit_profile(args.fit, args.seed)
    sets = spectra_sets(args.n, args.seed)
    totals = np.zeros(5)  # spectra, seconds: full SVD, new, threaded; threaded's CPU seconds
    print(f"{'set':58s} {'B':>4s} {'full SVD':>9s} {'new':>7s} {'ratio':>6s} "
          f"{'T=' + str(args.threads):>7s} {'max |diff|/|water|':>18s} {'by SVD':>6s}")  # fmt: skip
    with threadpool_limits(limits=1, user_api="blas"):
        for name, fids, grid in sets:
            # alternated, the fastest of the repeats: the others' jobs come and go
            runs = [
                (
                    timed(reference, fids, grid),
                    timed(remove_water, fids, *grid),
                    timed(remove_water, fids, *grid, threads=args.threads),
                )
                for _ in range(args.repeats)
            ]
            (ref, _, _), (new, _, _), (par, _, _) = runs[0]
            t_ref, t_new = (min(run[i][1] for run in runs) for i in (0, 1))
            t_par, cpu_par = min((run[2][1], run[2][2]) for run in runs)
            water = np.abs(fids - ref).max(axis=-1)
            diff = np.abs(new - ref).max(axis=-1)
            rel = np.max(diff / np.where(water > 0, water, np.inf))
            same = all(np.array_equal(run[2][0], new) and np.array_equal(run[1][0], new)
                       for run in runs)  # fmt: skip
            b = fids.shape[0]
            totals += (b, t_ref, t_new, t_par, cpu_par)
            by_svd = full_svd_taken(fids)
            print(
                f"{name:58s} {b:4d} {1e3 * t_ref / b:7.1f}ms {1e3 * t_new / b:5.1f}ms "
                f"{t_ref / t_new:5.1f}x {1e3 * t_par / b:5.1f}ms {rel:18.1e} {by_svd:6d}"
                + ("" if same else "  the FIDs changed between runs or thread counts!")
            )
    b, t_ref, t_new, t_par, cpu_par = totals
    print(
        f"all {int(b)} spectra: full SVD {1e3 * t_ref / b:.1f} ms, new {1e3 * t_new / b:.1f} ms "
        f"per spectrum ({t_ref / t_new:.1f}x); {args.threads} threads "
        f"{1e3 * t_par / b:.1f} ms ({t_ref / t_par:.1f}x), using {cpu_par / t_par:.2f} CPUs "
        f"(CPU time / wall time; {os.getloadavg()[0]:.1f} load average at the end)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
