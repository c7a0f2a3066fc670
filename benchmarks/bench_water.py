"""The residual-water HLSVD (``scaloquant.signal.water.remove_water``): the band-limited HLSVD
(the default since session 9) against the full-band HLSVD it replaced (``full_band=True``), on
the same spectra: time per spectrum, the ratio, and how far the water-removed FIDs differ.

Spectra: the scanner spectra of ``../shared/data/invivo`` (every FID of their NIfTI-MRS
files, as ``scaloquant fit`` reads them) and ``--n`` tissue-like simulated spectra
(``simulate_invivo_batch(default_basis(), InvivoPrior(), n, default_rng(--seed))``, the
``invivo`` preset's test bed), whose water is known: the same draw with ``water_fraction=0``
is the spectrum without it. Printed per set: ms per spectrum of each (the fastest of
``--repeats`` alternated runs, BLAS on one thread, as the fit runs it), the difference of the
water-removed FIDs (largest over the samples, relative to the largest sample of the water the
full-band HLSVD removes) and of their spectra in the fit's window 0.2-4.2 ppm (relative to
the window's largest magnitude), the band-limited model's residual in units of the noise's
(``chi``: above ``MAX_BAND_RESIDUAL_TO_NOISE`` the full band is taken), and on the simulated
spectra what each leaves of the true water in that window (same scale). ``--fit N`` also fits
N tissue-like spectra with the ``invivo`` preset on one torch thread with each (CPU seconds, MAE against the truth, and the
amplitudes' differences in units of their CRLB).

Usage::

    PYTHONPATH=src python benchmarks/bench_water.py [--n 128] [--seed 1] [--repeats 3]
        [--fit 128]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from _timing import timed
from scaloquant.io import default_basis, read_fid
from scaloquant.signal import axes
from scaloquant.signal.water import MAX_BAND_RESIDUAL_TO_NOISE, remove_water
from scaloquant.simulate.invivo import simulate_invivo_batch
from scaloquant.simulate.prior import InvivoPrior

ROOT = Path(__file__).resolve().parents[1]
INVIVO = ROOT.parent / "shared" / "data" / "invivo"
SCANNER = [
    INVIVO / "philips-press30-spant/nifti_spec2nii/metab.nii.gz",
    INVIVO / "siemens-press30-suspect/nifti/SVS_30_rda.nii.gz",
    *sorted((INVIVO / "philips-press-osprey/nifti").glob("*/*act*.nii.gz")),
]
WINDOW_PPM = (0.2, 4.2)

Grid = tuple[float, float, float]


def tissue_like(n: int, seed: int, water_fraction: float | None = None) -> tuple[np.ndarray, Grid]:
    """``(FIDs (n, N), (dwell s, MHz, reference ppm))`` of the tissue-like prior; with
    ``water_fraction=0`` the same spectra without their water (the water is drawn last of the
    random numbers that decide it, so nothing else changes)."""
    basis = default_basis()
    prior = InvivoPrior() if water_fraction is None else InvivoPrior(water_fraction=water_fraction)
    sim = simulate_invivo_batch(basis, prior, n, np.random.default_rng(seed))
    acq = basis.acquisition
    return sim.fids, (acq.dwell_time_s, acq.spectrometer_freq_mhz, acq.ppm_reference)


def spectra_sets(n: int, seed: int) -> list[tuple[str, np.ndarray, Grid]]:
    """``(name, FIDs (B, N), grid)`` of each set to time."""
    sets = []
    for path in SCANNER:
        fid = read_fid(path)
        grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        sets.append((path.name, fid.samples.reshape(-1, fid.n_points), grid))
    fids, grid = tissue_like(n, seed)
    sets.append((f"simulated tissue-like (n={n})", fids, grid))
    return sets


def window_error(fids: np.ndarray, reference: np.ndarray, grid: Grid) -> np.ndarray:
    """``max |spectrum(fids - reference)|`` over the window, over ``max |spectrum(reference)|``
    there, per FID ``(B,)``."""
    ppm = axes.ppm_axis(fids.shape[-1], *grid)
    inside = (ppm > WINDOW_PPM[0]) & (ppm < WINDOW_PPM[1])
    diff = np.abs(axes.spectrum(fids - reference)[..., inside]).max(-1)
    return diff / np.abs(axes.spectrum(reference)[..., inside]).max(-1)


def residuals_to_noise(fids: np.ndarray, grid: Grid) -> np.ndarray:
    """The band-limited model's residual over its decimated samples in units of the noise's
    (``signal.water.band_residual_to_noise``, which decides the fallback to the full band), per
    FID ``(B,)``; NaN where the FID is not decimated."""
    from scaloquant.signal import water

    values, package = [], water.band_residual_to_noise

    def recorded(*args):
        values.append(package(*args))
        return values[-1]

    out = np.full(fids.shape[0], np.nan)
    water.band_residual_to_noise = recorded
    try:
        for b, fid in enumerate(fids):
            values.clear()
            remove_water(fid[None], *grid)
            out[b] = values[0] if values else np.nan
    finally:
        water.band_residual_to_noise = package
    return out


def fit_comparison(n: int, seed: int) -> None:
    """``fit_spectra(FIT_PRESETS["invivo"])`` of ``n`` tissue-like spectra on one torch
    thread with the full-band HLSVD put in place of the package's ``remove_water``, and with
    the package's: CPU seconds, MAE against the true concentrations, and how far the
    band-limited HLSVD moves each amplitude in units of the full-band fit's CRLB."""
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
    metabolites = [name for name in basis.names if name != "Mac"]
    truth = sim.parameters.concentrations_mm[:, [basis.names.index(m) for m in metabolites]]

    def full_band(*args, **kwargs):
        return package(*args, **kwargs, full_band=True)

    package = water.remove_water
    results = {}
    for label, remove in (("full band", full_band), ("band-limited", package)) * 2:
        water.remove_water = remove  # the fit imports it from the module when it runs
        try:
            result, wall, cpu = timed(fit_spectra, fid, basis, FIT_PRESETS["invivo"])
        finally:
            water.remove_water = package
        est = result.amplitudes[:, [result.names.index(m) for m in metabolites]]
        results[label] = result
        print(
            f"fit of {n} tissue-like spectra, invivo, 1 thread, {label:12s}: {cpu:5.1f} s CPU "
            f"({n / cpu:.1f} spectra per CPU-second), {wall:5.1f} s wall, "
            f"MAE {np.abs(est - truth).mean():.4f} mM",
            flush=True,
        )
    before, after = results["full band"], results["band-limited"]
    moved = np.abs(after.amplitudes - before.amplitudes) / before.crlb_sd
    moved = moved[np.isfinite(moved)]
    print(
        "amplitudes, band-limited - full band, in CRLB SDs of the full-band fit: median "
        f"{np.median(moved):.3f}, 90 % {np.quantile(moved, 0.9):.3f}, 99 % "
        f"{np.quantile(moved, 0.99):.3f}, max {moved.max():.2f}; "
        f"{100 * np.mean(moved < 0.05):.0f} % below 0.05"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=128, help="simulated spectra")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the fastest counts")
    parser.add_argument("--fit", type=int, default=0, help="also fit this many spectra with each")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    if args.fit:
        fit_comparison(args.fit, args.seed)
    sets = spectra_sets(args.n, args.seed)
    totals = np.zeros(3)  # spectra, seconds: full band, band-limited
    print(f"{'set':44s} {'B':>4s} {'full':>7s} {'limited':>7s} {'ratio':>6s} "
          f"{'max|diff|/|water|':>17s} {'window diff':>11s} {'chi':>5s}")  # fmt: skip
    with threadpool_limits(limits=1, user_api="blas"):
        for name, fids, grid in sets:
            # alternated, the fastest of the repeats: the others' jobs come and go
            runs = [
                (timed(remove_water, fids, *grid, full_band=True), timed(remove_water, fids, *grid))
                for _ in range(args.repeats)
            ]
            (full, _, _), (limited, _, _) = runs[0]
            t_full, t_lim = (min(run[i][1] for run in runs) for i in (0, 1))
            water = np.abs(fids - full).max(axis=-1)
            rel = np.abs(limited - full).max(axis=-1) / np.where(water > 0, water, np.inf)
            win = window_error(limited, full, grid)
            b = fids.shape[0]
            totals += (b, t_full, t_lim)
            spread = f"{np.max(win):.1e}" if b == 1 else f"{np.median(win):.1e} med"
            chi = residuals_to_noise(fids, grid)
            print(
                f"{name[:44]:44s} {b:4d} {1e3 * t_full / b:5.1f}ms {1e3 * t_lim / b:5.1f}ms "
                f"{t_full / t_lim:5.1f}x {np.max(rel) if b == 1 else np.median(rel):17.1e} "
                f"{spread:>11s} {np.median(chi):5.2f}"
            )
            if b > 1:
                print(
                    f"{'':44s} max: {np.max(rel):.1e}, window {np.max(win):.1e}; chi 99 % "
                    f"{np.nanquantile(chi, 0.99):.2f}, max {np.nanmax(chi):.2f}, "
                    f"{int(np.sum(chi > MAX_BAND_RESIDUAL_TO_NOISE))} above "
                    f"{MAX_BAND_RESIDUAL_TO_NOISE:g} (full band)"
                )
    b, t_full, t_lim = totals
    print(
        f"all {int(b)} spectra: full band {1e3 * t_full / b:.1f} ms, band-limited "
        f"{1e3 * t_lim / b:.1f} ms per spectrum ({t_full / t_lim:.1f}x); load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    fids, grid = tissue_like(args.n, args.seed)
    dry, _ = tissue_like(args.n, args.seed, water_fraction=0.0)
    wet = np.any(fids != dry, axis=-1)
    print(f"true water left in the window, {int(wet.sum())} simulated spectra with water "
          f"(relative to the window's largest magnitude without water):")  # fmt: skip
    with threadpool_limits(limits=1, user_api="blas"):
        for label, out in (
            ("none removed", fids),
            ("full band", remove_water(fids, *grid, full_band=True)),
            ("band-limited", remove_water(fids, *grid)),
        ):
            left = window_error(out, dry, grid)[wet]
            print(
                f"  {label:12s} median {np.median(left):.2e}, 90 % {np.quantile(left, 0.9):.2e}, "
                f"max {left.max():.2e}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
