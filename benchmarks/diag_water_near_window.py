"""Residual water near the fit's window on tissue-like spectra: which fits fail, and why.

The spectra of ``bench_invivo_default.py`` (``tissue_spectra``: the ``invivo`` simulation prior at
``--snr``, ``--n`` drawn from ``--seed``) fitted with ``FIT_PRESETS["invivo"]`` (or ``--set
FIELD=JSON`` changes of it). Per spectrum: the MAE over the 20 metabolites, the fitted phases
against the truth's (the fit's ``phi0`` at the simulator's pivot, ``phi1`` in deg/ppm), the
strongest residual water line's centre and height over the NAA singlet's, the quality flags the fit gives
(:func:`scaloquant.signal.quality.qc_flags`, :func:`~scaloquant.signal.quality.fit_flags` with
the fit's own figures), and, with ``--truth-start``, the same fit started from the true phases:
its cost ``|data - model|^2`` over the window against the default fit's, and its MAE (is the
truth's basin lower?). Lines are printed for the ``--worst`` spectra by
MAE and for every spectrum whose phases are more than ``--phase-off`` deg off; then the
``water_near_window`` ratio of the failed fits (session 16's: phi1 more than 15 deg/ppm off and
the MAE above 3 mM) and of the others, with the metabolite singlets (the library's) and with the
tallest point of 1.8-3.4 ppm (the measure until session 36, ``diag_water_near_ratio.py``).

Usage: ``PYTHONPATH=src python benchmarks/diag_water_near_window.py [--n 64] [--snr 30] [--seed 5]
[--truth-start] [--band 4.4 5.2] [--set FIELD=JSON]``; ``--band`` sets
:data:`scaloquant.signal.water.WATER_BAND_PPM` (the band the fit's water removal takes) for the run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np
import torch

from bench_invivo_default import tissue_spectra
from diag_water_near_ratio import _span, near_ratios
from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.result import FitStart
from scaloquant.signal import water
from scaloquant.signal.quality import fit_flags, qc_flags, quality_figures
from scaloquant.signal.water_peak import WATER_NEAR_WINDOW_RATIO, water_near_window
from scaloquant.simulate.prior import MEASURED_MM_NAMES, InvivoPrior


def wrap_deg(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x) + 180.0) % 360.0 - 180.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--worst", type=int, default=8)
    parser.add_argument("--phase-off", type=float, default=30.0, help="deg of phi0")
    parser.add_argument("--truth-start", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="FitConfig FIELD=JSON")
    parser.add_argument("--band", type=float, nargs=2, metavar=("LO", "HI"), help="water band, ppm")
    args = parser.parse_args(argv)
    if args.band:
        water.WATER_BAND_PPM = tuple(args.band)
    torch.set_num_threads(1)
    config = FIT_PRESETS["invivo"]
    for item in args.set:
        key, _, value = item.partition("=")
        value = json.loads(value)
        config = replace(config, **{key: tuple(value) if isinstance(value, list) else value})
    basis, signals, fid = tissue_spectra(InvivoPrior(snr_range=(args.snr, args.snr)), args.n,
                                         args.seed)  # fmt: skip
    p = signals.parameters
    metabolites = [n for n in basis.names if n not in MEASURED_MM_NAMES]
    truth = p.concentrations_mm[:, [basis.names.index(n) for n in metabolites]]
    result = fit_spectra(fid, basis, config)
    index = [result.names.index(n) for n in metabolites]
    err = np.abs(result.amplitudes[:, index] - truth).mean(axis=1)
    pivot = p.phase1_pivot_ppm
    # the fit's phase at the simulator's pivot, and its sign: the fit multiplies the model by
    # exp(i phi), the simulator the signal; the comparison is made on the spectra whose fit is
    # good (their median difference), so a convention's sign or offset shows there
    phi1_fit = np.degrees(result.phase1_rad_per_ppm)
    phi0_fit = np.degrees(result.phase0_rad) + phi1_fit * (pivot - result.phase1_pivot_ppm)
    d0, d1 = wrap_deg(phi0_fit - p.phase0_deg), phi1_fit - p.phase1_deg_per_ppm
    figures = quality_figures(fid.samples, fid.dwell_time_s, fid.spectrometer_freq_mhz,
                              fid.ppm_reference)  # fmt: skip
    seen = fid.samples - (0 if result.removed_water is None else result.removed_water)
    near = water_near_window(seen, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference,
                             config.ppm_range[1])  # fmt: skip
    flags = fit_flags(qc_flags(figures), result.relative_residual, result.linewidth_ppm,
                      result.metabolite_fraction, near)  # fmt: skip
    # the ratio with the metabolite height until session 36 (the tallest point of 1.8-3.4 ppm)
    old = near_ratios(seen, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference,
                      config.ppm_range[1])["window"]  # fmt: skip
    # the strongest water line of each spectrum (height relative to NAA's, as the prior draws)
    wmax = np.argmax(p.water_height, axis=1)
    rows = np.arange(args.n)
    w_ppm, w_h = p.water_centre_ppm[rows, wmax], p.water_height[rows, wmax]
    w_fwhm = p.water_damping_per_s[rows, wmax] / np.pi
    low = np.min(np.where(p.water_height > 0, p.water_centre_ppm, np.inf), axis=1)
    print(f"{args.n} spectra, SNR {args.snr:g}, seed {args.seed}, {' '.join(args.set) or 'invivo'}"
          f", water band {water.WATER_BAND_PPM}: MAE {err.mean():.4f} mM; MAE > 5 mM: "
          f"{int(np.sum(err > 5))}; phi0 off > {args.phase_off:g} deg: "
          f"{int(np.sum(np.abs(d0) > args.phase_off))}; phi1 off > 15 deg/ppm: "
          f"{int(np.sum(np.abs(d1) > 15))}")  # fmt: skip
    truth_fit = None
    if args.truth_start:
        start = FitStart(
            phase0_rad=np.radians(p.phase0_deg + p.phase1_deg_per_ppm * (
                result.phase1_pivot_ppm - pivot)),
            phase1_rad_per_ppm=np.radians(p.phase1_deg_per_ppm),
        )  # fmt: skip
        truth_fit = fit_spectra(fid, basis, config, start=start)
        terr = np.abs(truth_fit.amplitudes[:, index] - truth).mean(axis=1)
        tcost = (truth_fit.residual_norm / result.residual_norm) ** 2
        print(f"from the true phases: MAE {terr.mean():.4f} mM")
    show = set(np.argsort(-err)[: args.worst]) | set(np.flatnonzero(np.abs(d0) > args.phase_off))
    print(
        " spec  MAE mM  dphi0 dphi1 | water ppm  H/NAA fwhmHz lowest | rel.res  "
        "met/data  near | qc" + ("  | truth-start: cost/cost MAE dphi0" if truth_fit else "")
    )
    for i in sorted(show, key=lambda i: -err[i]):
        line = (f"{i:5d} {err[i]:7.3f} {d0[i]:6.0f} {d1[i]:5.1f} | {w_ppm[i]:8.3f} {w_h[i]:6.1f} "
                f"{w_fwhm[i]:6.1f} {low[i]:6.3f} | {result.relative_residual[i]:7.3f}"
                f"  {result.metabolite_fraction[i]:7.3f} {near[i]:5.2f} | {';'.join(flags[i]) or '-'}")  # fmt: skip
        if truth_fit is not None:
            t0 = np.degrees(truth_fit.phase0_rad[i]) + np.degrees(
                truth_fit.phase1_rad_per_ppm[i]
            ) * (pivot - truth_fit.phase1_pivot_ppm)
            line += f"  | {tcost[i]:8.4f} {terr[i]:6.3f} {wrap_deg(t0 - p.phase0_deg[i]):5.0f}"
        print(line)
    # session 16's failed fits: phi1 more than 15 deg/ppm off and the MAE above 3 mM
    failed = (np.abs(d1) > 15) & (err > 3)
    for way, x in (("water_near_window", near), ("until session 36 (1.8-3.4 ppm)", old)):
        print(
            f"{way}: the {int(failed.sum())} failed fits {_span(x[failed])} "
            f"({int(np.sum(x[failed] > WATER_NEAR_WINDOW_RATIO))} above "
            f"{WATER_NEAR_WINDOW_RATIO:g}); the others {_span(x[~failed])}, 99th percentile "
            f"{np.nanpercentile(x[~failed], 99):.2f} "
            f"({int(np.sum(x[~failed] > WATER_NEAR_WINDOW_RATIO))} above)"
        )
    good = np.abs(d0) <= args.phase_off
    print(
        f"median |dphi0| of the others {np.median(np.abs(d0[good])):.1f} deg, "
        f"|dphi1| {np.median(np.abs(d1[good])):.2f} deg/ppm"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
