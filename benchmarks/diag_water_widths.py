"""Widths of the components the HLSVD water removal takes out (session 20, ``hlsvd20``).

For each FID, the components :func:`scaloquant.signal.water.remove_water` subtracts (those of
its band-limited HLSVD, :func:`~scaloquant.signal.water.band_limited_components`, with a
frequency in :data:`~scaloquant.signal.water.WATER_BAND_PPM`, here with no width bound:
``max_fwhm_hz=inf``), each with its FWHM ``-ln|z| / (pi dt)`` (Hz), its centre (ppm) and its
height: the tallest point of its magnitude spectrum over the data's tallest metabolite peak
(:data:`METABOLITE_WINDOW_PPM`, 1.8-3.4 ppm, of the data less what was removed). The sum of the components is checked against what ``remove_water`` (unbounded)
removes: the same to rounding, or the script stops.

Sets: ``diag_physics_water.py``'s three renderings of ``--n`` ``invivo`` spectra at ``--snr``
(seed ``--seed``: no water, the prior's water at 4.35-4.95 ppm, the water moved to 4.30-4.45
ppm), the scanner spectra of ``../shared/data/invivo`` and the ISMRM 2016 challenge's 28
spectra and its Cr water-scaling spectrum, as ``bench_lcmodel.py`` reads them (widths and
heights only: no truth is read).

Per set: the components' count, the FWHM percentiles of those at least ``--tall`` times the
metabolite peak, and per width threshold (``--thresholds``, Hz) how many components and spectra
lie above it, with their tallest; the widest tall components. ``--remove-bound HZ``: also
compare ``remove_water`` with that width bound against the unbounded one (the spectra whose
removed water changes by more than 1 % of the metabolite peak).

Usage: ``PYTHONPATH=src python benchmarks/diag_water_widths.py [--n 400] [--snr 30]
[--seed 11] [--sets simulated,scanner,challenge] [--tall 0.1] [--thresholds 25 30 40 60 100]
[--remove-bound 40]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bench_lcmodel import challenge_set, cr_set, invivo_set
from diag_physics_water import water_sets
from scaloquant.io import default_basis
from scaloquant.signal import axes
from scaloquant.signal.water import WATER_BAND_PPM, band_limited_components, remove_water

#: Where the data's tallest metabolite point is taken (its magnitude, no baseline removed).
METABOLITE_WINDOW_PPM = (1.8, 3.4)


def components(fid: np.ndarray, grid: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    """The unbounded removal's components of one FID ``(N,)``: ``(c, z, fwhm_hz, ppm)``."""
    c, z = band_limited_components(fid, *grid, WATER_BAND_PPM, max_fwhm_hz=np.inf)
    freq_hz = np.angle(z) / (2 * np.pi * grid[0])
    fwhm = -np.log(np.abs(z)) / (np.pi * grid[0])
    return c, z, fwhm, axes.hz_to_ppm(freq_hz, grid[1], grid[2])


def measure(label: str, fids: np.ndarray, grid, args) -> None:
    """Print the width table of one set of FIDs ``(B, N)`` on ``grid`` (dwell, MHz, ppm ref)."""
    fids = np.asarray(fids, dtype=np.complex128).reshape(-1, fids.shape[-1])
    n = fids.shape[-1]
    removed = fids - remove_water(fids, *grid, max_fwhm_hz=np.inf)
    ppm = axes.ppm_axis(n, grid[0], grid[1], grid[2])
    window = (ppm >= METABOLITE_WINDOW_PPM[0]) & (ppm <= METABOLITE_WINDOW_PPM[1])
    rows = []  # spectrum, fwhm Hz, ppm, height / metabolite peak
    worst = 0.0
    steps = np.arange(n)
    for b, fid in enumerate(fids):
        c, z, fwhm, at = components(fid, grid)
        each = c[:, None] * z[:, None] ** steps  # (K, N)
        scale = np.abs(removed[b]).max() or 1.0
        worst = max(worst, np.abs(each.sum(0) - removed[b]).max() / scale)
        peak = np.abs(axes.spectrum(fids[b] - removed[b])[window]).max()
        heights = np.abs(axes.spectrum(each)).max(axis=-1) / peak
        rows += [(b, w, p, h) for w, p, h in zip(fwhm, at, heights, strict=True)]
    if worst > 1e-6:
        raise SystemExit(f"{label}: the components differ from remove_water's by {worst:.1e}")
    table = np.array(rows).reshape(-1, 4)
    tall = table[table[:, 3] >= args.tall]
    print(f"== {label}: {len(fids)} spectra, {len(table)} components removed "
          f"({len(tall)} >= {args.tall:g} x the metabolite peak; sum = remove_water's to "
          f"{worst:.0e})")  # fmt: skip
    if len(tall):
        q = np.percentile(tall[:, 1], [0, 50, 90, 99, 100])
        print("  tall FWHM Hz: min {:.1f}  median {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f}"
              .format(*q))  # fmt: skip
    for t in args.thresholds:
        above = table[table[:, 1] > t]
        tall_above = above[above[:, 3] >= args.tall]
        print(
            f"  FWHM > {t:g} Hz: {len(above)} components in {len(np.unique(above[:, 0]))} "
            f"spectra; tallest {above[:, 3].max() if len(above) else 0:.3f}; >= {args.tall:g}: "
            f"{len(tall_above)} in {len(np.unique(tall_above[:, 0]))} spectra"
        )
    widest = tall[np.argsort(-tall[:, 1])][:6]
    for b, w, p, h in widest:
        print(f"    spectrum {int(b)}: {w:.1f} Hz at {p:.2f} ppm, {h:.2f} x the metabolite peak")
    if args.remove_bound is not None:
        bounded = fids - remove_water(fids, *grid, max_fwhm_hz=args.remove_bound)
        peaks = np.array([np.abs(axes.spectrum(f - r)[window]).max() for f, r in
                          zip(fids, removed, strict=True)])  # fmt: skip
        change = np.abs(axes.spectrum(bounded - removed)).max(axis=-1) / peaks
        moved = np.flatnonzero(change > 0.01)
        print(f"  bound {args.remove_bound:g} Hz: removed water changed by > 1 % of the "
              f"metabolite peak in {moved.size} spectra: "
              + ", ".join(f"{b} ({change[b]:.2f})" for b in moved[:12]))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--near", type=float, nargs=2, default=(4.30, 4.45))
    ap.add_argument("--sets", default="simulated,scanner,challenge")
    ap.add_argument("--tall", type=float, default=0.1, help="x the metabolite peak")
    ap.add_argument("--thresholds", type=float, nargs="+", default=(25, 30, 40, 60, 100))
    ap.add_argument("--remove-bound", type=float, help="Hz")
    args = ap.parse_args(argv)
    chosen = args.sets.split(",")
    if "simulated" in chosen:
        basis = default_basis()
        grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
        sets, _ = water_sets(basis, args.n, args.snr, args.seed, tuple(args.near))
        for name, fids in sets.items():
            measure(f"invivo prior, {name} (seed {args.seed})", fids, grid, args)
    groups = []
    if "scanner" in chosen:
        with tempfile.TemporaryDirectory() as folder:
            groups += invivo_set(Path(folder))
    if "challenge" in chosen:
        groups += challenge_set() + cr_set()[:1]
    for group in groups:
        fids = [case.fid for case in group.cases]
        grids = {
            (f.dwell_time_s, f.spectrometer_freq_mhz, f.ppm_reference, f.n_points) for f in fids
        }
        if len(grids) == 1:  # the challenge's 28: one table
            samples = np.stack([f.samples.reshape(-1, f.n_points) for f in fids]).reshape(
                -1, fids[0].n_points
            )
            measure(
                f"{group.label} ({', '.join(c.name for c in group.cases[:3])}...)",
                samples,
                next(iter(grids))[:3],
                args,
            )
            continue
        for case, fid in zip(group.cases, fids, strict=True):
            grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
            measure(f"{group.label}: {case.name}", fid.samples, grid, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
