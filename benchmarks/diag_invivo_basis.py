"""The fit on ``invivo`` spectra simulated on a user's basis on a scanner grid, as training
renders them (issue 13, session 27): does it recover the truth?

For each ``BASIS:GRID`` pair the basis is put on the grid as the fit and training put it
(:func:`scaloquant.fit.spectra.prepared_on_grid`), ``--n`` spectra are drawn with
:func:`scaloquant.simulate.invivo.simulate_invivo_batch` (seed 0; parametric macromolecules where
the fit uses them) and fitted with ``FIT_PRESETS["invivo"]`` on the basis as given. Two priors:
``full`` (the invivo prior at SNR 30: water, lipids, baseline, eddy currents, phases) and
``clean`` (noiseless, no water, lipids, baseline, eddy current, phase or global shift). Printed
per pair and prior: the median relative error of NAA, tCr, tCho, Ins and Glu, how many spectra
have NAA or tCr off by more than 30 %, and how many fits stopped unconverged; first each basis'
signal per proton ``u`` (the unit of the parametric components).

Usage::

    PYTHONPATH=src python benchmarks/diag_invivo_basis.py [--n 16] [--priors full clean]
        [PAIR ...]

PAIR: ``BASIS:GRID`` with BASIS one of ``osprey``, ``suspect``, ``spant``, ``default`` (the
embedded basis) and GRID one of ``osprey`` (Philips, sub-01 TE 35), ``suspect`` (Siemens
SVS_30 rda), ``spant`` (Philips metab), ``own`` (the basis' own grid); default: each scanner basis
on its own scanner's grid.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.scale import signal_per_proton
from scaloquant.fit.spectra import prepared_on_grid
from scaloquant.io import default_basis, read_basis, read_fid
from scaloquant.metabolites import COMBINATIONS, canonical
from scaloquant.physics.macromolecules import MM_COMPONENTS
from scaloquant.simulate.config import BaselineConfig
from scaloquant.simulate.invivo import simulate_invivo_batch
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.types import FID

INVIVO = Path(__file__).resolve().parents[2] / "shared" / "data" / "invivo"
BASES = {
    "osprey": "philips-press-osprey/basis_philips_press35/3T_PRESS_Philips_35ms_noMM.BASIS",
    "suspect": "siemens-press30-suspect/press_30ms_3T.basis",
    "spant": "philips-press30-spant/lcmodel_reference/3t.basis",
    "default": None,
}
GRIDS = {
    "osprey": "philips-press-osprey/nifti/UnEdited/sub-01_PRESS_35_act.nii.gz",
    "suspect": "siemens-press30-suspect/nifti/SVS_30_rda.nii.gz",
    "spant": "philips-press30-spant/nifti_spec2nii/metab.nii.gz",
    "own": None,
}
ROWS = ("NAA", "tCr", "tCho", "Ins", "Glu")


def prior_of(name: str, parametric: bool) -> InvivoPrior:
    prior = InvivoPrior(snr_range=(30.0, 30.0))
    if parametric:
        prior = replace(prior, macromolecules="parametric")
    if name == "clean":
        prior = replace(
            prior,
            snr_range=(1e6, 1e6),
            water_fraction=0.0,
            lipid_fraction=0.0,
            eddy_fraction=0.0,
            phase0_range_deg=(0.0, 0.0),
            phase1_range_deg_per_ppm=(0.0, 0.0),
            baseline=BaselineConfig(height_range=(0.0, 0.0)),
            shift_range_ppm=(0.0, 0.0),
        )
    return prior


def row_sum(values: np.ndarray, names: list[str], row: str) -> np.ndarray:
    parts = COMBINATIONS.get(row, (row,))
    return sum(values[:, i] for i, name in enumerate(names) if name in parts)


def run(basis_key: str, grid_key: str, prior_name: str, n: int) -> str:
    basis = read_basis(INVIVO / BASES[basis_key]) if BASES[basis_key] else default_basis()
    acq = read_fid(INVIVO / GRIDS[grid_key]).acquisition if GRIDS[grid_key] else basis.acquisition
    config = FIT_PRESETS["invivo"]
    on_grid, prepared, _ = prepared_on_grid(basis, acq, config)
    prior = prior_of(prior_name, set(MM_COMPONENTS) <= set(prepared.names))
    signals = simulate_invivo_batch(on_grid, prior, n, np.random.default_rng(0))
    fid = FID(signals.fids, acq.dwell_time_s, acq.spectrometer_freq_mhz, acq.ppm_reference)
    start = time.perf_counter()
    result = fit_spectra(fid, basis, config)
    wall = time.perf_counter() - start
    truth_names = [canonical(x) for x in on_grid.names]
    fit_names = [canonical(x) for x in result.names]
    rel = {}
    for row in ROWS:
        truth = row_sum(signals.parameters.concentrations_mm, truth_names, row)
        fitted = row_sum(result.amplitudes, fit_names, row)
        rel[row] = np.abs(fitted - truth) / np.maximum(truth, 1e-9)
    off = int(((rel["NAA"] > 0.3) | (rel["tCr"] > 0.3)).sum())
    errors = " ".join(f"{row} {np.median(v) * 100:.1f}%" for row, v in rel.items())
    return (
        f"{basis_key:8s} on {grid_key:8s} {prior_name:5s} n={n} (fit {wall:.0f} s): median "
        f"error {errors}; NAA or tCr off > 30 %: {off}/{n}; unconverged "
        f"{int((~result.success).sum())}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "pairs", nargs="*", default=["osprey:osprey", "suspect:suspect", "spant:spant"]
    )
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--priors", nargs="+", choices=("full", "clean"), default=["full", "clean"])
    args = parser.parse_args(argv)
    pairs = [tuple(p.split(":")) for p in args.pairs]
    for basis_key in dict.fromkeys(b for b, _ in pairs):
        basis = read_basis(INVIVO / BASES[basis_key]) if BASES[basis_key] else default_basis()
        print(f"{basis_key}: signal per proton u = {signal_per_proton(basis)[0]:.6g}", flush=True)
    for basis_key, grid_key in pairs:
        for prior_name in args.priors:
            print(run(basis_key, grid_key, prior_name, args.n), flush=True)


if __name__ == "__main__":
    main()
