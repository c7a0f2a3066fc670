"""The NAA singlet's width in ``invivo`` spectra rendered on a basis, against the width the prior
drew (issue 13, session 28): are the prior's ppm ranges true on any basis and grid?

For each ``BASIS:GRID`` pair (as :mod:`diag_invivo_basis`: the basis put on the grid by
:func:`scaloquant.fit.spectra.prepared_on_grid`) and each width ``w`` of ``--widths``,
``--n`` spectra are drawn by :func:`scaloquant.simulate.invivo.simulate_invivo_batch` (seed 0)
with the prior's singlet FWHM range set to ``[w, w]`` and everything but NAA at 0: no other
metabolite, macromolecules, lipids, water, baseline, eddy current, phase, per-metabolite
damping or shift, SNR 1e9. The rendered NAA singlet's FWHM is read by
:func:`scaloquant.signal.snr_fwhm.fwhm_ppm` (1.9-2.1 ppm, no baseline removal: only NAA is
there). Printed per pair: the basis' own NAA FWHM on the grid (Hz), then per ``w`` the median,
minimum and maximum of rendered / requested width over the draws (the metabolite T2, hence the
Lorentzian part, varies between them).

Usage::

    PYTHONPATH=src python benchmarks/diag_invivo_linewidth.py [--n 32]
        [--widths 0.03 0.05 0.08 0.12] [PAIR ...]

PAIR as in :mod:`diag_invivo_basis` (default: each scanner basis on its own scanner's grid and
the embedded basis on its own grid).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.spectra import prepared_on_grid
from scaloquant.io import default_basis, read_basis, read_fid
from scaloquant.signal.snr_fwhm import fwhm_ppm
from scaloquant.simulate.config import BaselineConfig
from scaloquant.simulate.invivo import simulate_invivo_batch
from scaloquant.simulate.prior import InvivoPrior

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diag_invivo_basis import BASES, GRIDS, INVIVO  # noqa: E402

NAA_WINDOW_PPM = (1.9, 2.1)


def naa_only_prior(names: tuple[str, ...], width_ppm: float) -> InvivoPrior:
    """The invivo prior with only NAA drawn, at one total singlet width, noiseless."""
    prior = InvivoPrior()
    concentrations = {k: (0.0, 0.0) for k in prior.concentrations_mm}
    concentrations["NAA"] = (10.0, 10.0)
    return replace(
        prior,
        concentrations_mm=concentrations,
        independent_fraction=0.0,
        macromolecules="parametric",
        mm_parametric_range_mm={k: (0.0, 0.0) for k in prior.mm_parametric_range_mm},
        mm_per_tcr_range=(0.0, 0.0),
        lipid_fraction=0.0,
        water_fraction=0.0,
        eddy_fraction=0.0,
        baseline=BaselineConfig(height_range=(0.0, 0.0)),
        phase0_range_deg=(0.0, 0.0),
        phase1_range_deg_per_ppm=(0.0, 0.0),
        shift_range_ppm=(0.0, 0.0),
        shift_deviation_range_ppm=(0.0, 0.0),
        damping_deviation_range_per_s=(0.0, 0.0),
        singlet_fwhm_range_ppm=(width_ppm, width_ppm),
        snr_range=(1e9, 1e9),
    )


def run(basis_key: str, grid_key: str, widths: list[float], n: int) -> list[str]:
    basis = read_basis(INVIVO / BASES[basis_key]) if BASES[basis_key] else default_basis()
    acq = read_fid(INVIVO / GRIDS[grid_key]).acquisition if GRIDS[grid_key] else basis.acquisition
    on_grid, _, _ = prepared_on_grid(basis, acq, FIT_PRESETS["invivo"])
    sf = on_grid.spectrometer_freq_mhz
    axes = (on_grid.dwell_time_s, sf, on_grid.ppm_reference)
    own = fwhm_ppm(
        on_grid.fids[on_grid.names.index("NAA")],
        *axes,
        NAA_WINDOW_PPM,
        remove_baseline=False,
    )
    lines = [
        f"{basis_key} on {grid_key}: {sf:.6f} MHz, {on_grid.n_points} points of "
        f"{on_grid.dwell_time_s * 1e3:.4g} ms; the basis' NAA FWHM {own * sf:.3f} Hz"
    ]
    for width in widths:
        prior = naa_only_prior(on_grid.names, width)
        signals = simulate_invivo_batch(on_grid, prior, n, np.random.default_rng(0))
        ratio = fwhm_ppm(signals.fids, *axes, NAA_WINDOW_PPM, remove_baseline=False) / width
        lines.append(
            f"  requested {width:.3f} ppm ({width * sf:.2f} Hz): rendered / requested median "
            f"{np.median(ratio):.4f}, min {ratio.min():.4f}, max {ratio.max():.4f}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "pairs",
        nargs="*",
        default=["osprey:osprey", "suspect:suspect", "spant:spant", "default:own"],
    )
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.03, 0.05, 0.08, 0.12])
    args = parser.parse_args(argv)
    for pair in args.pairs:
        basis_key, grid_key = pair.split(":")
        for line in run(basis_key, grid_key, args.widths, args.n):
            print(line, flush=True)


if __name__ == "__main__":
    main()
