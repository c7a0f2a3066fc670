"""Candidate settings of the ``invivo`` fit preset on tissue-like simulated spectra with a known
truth, in one run: accuracy per metabolite and speed.

``--n`` spectra of the ``invivo`` simulation prior (:mod:`scaloquant.simulate.prior`,
docs/invivo-prior.md: group Voigt lineshapes, per-metabolite deviations, the measured ``Mac``,
lipids in a quarter of them, residual water, baseline humps, eddy-current phase, any zero- and
first-order phase) at SNR ``--snr``, drawn from ``--seed``, on the embedded ISMRM 2016 basis;
each variant of ``--variants`` fits all of them in one ``fit_spectra`` call on one torch
thread. Printed per variant: the MAE (mM) and SMAPE (%) of each of the 20 metabolites (``Mac``
and the lipids left out), their means, the share of estimates more than 3 CRLB SDs from the
truth, the spectra per second of wall and of process CPU time, and the baseline stiffnesses
chosen. Variants (:data:`VARIANTS`): ``default`` is ``FIT_PRESETS["invivo"]``, the others
change it as their name says (``ftest``: ``baseline_stiffness="ftest"``; ``4.0``: the
0.2-4.0 ppm window; ``edN``: a fixed ``N`` effective dimensions per ppm; ``no-hlsvd``:
``water_removal="none"``, the preset before it removed the residual water by HLSVD; ``nested``: ``ftest`` with ``baseline_ftest_rule="nested"``; ``ftest1``:
``ftest`` with the candidates from 1 ED/ppm, as before session 22; ``adaptive``:
``baseline_stiffness="adaptive"``; ``no-mm-shift-prior``: ``mm_shift_prior_sd_hz=None``, the
preset before session 29; ``ecc``: the default on the spectra corrected for their eddy
currents by simulated water references, :func:`water_references`, as ``fit --ecc`` does;
``each-mm``: ``grouping="metabolites_and_each_mm"``, each macromolecule and lipid component in
a lineshape group of its own, ``fit --groups metabolites_and_each_mm``).
Every variant after the first also prints the paired
difference of its per-spectrum MAE from the first's, with its standard error. ``--prior-set
key=value`` (JSON values, repeatable) changes the prior (:meth:`InvivoPrior.to_dict` keys; e.g.
``water_fraction=0``, ``lipid_fraction=0``, ``baseline={"height_range": [0, 0]}``) to see which
of its terms a variant loses on.

Usage: ``PYTHONPATH=src python benchmarks/bench_invivo_default.py [--n 64] [--snr 30]
[--seed 5] [--variants default,freeform-ftest-4.0] [--prior-set key=value ...] [--save OUT.npz]``
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scaloquant.evaluate.metrics import smape
from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.signal.ecc import eddy_current_corrected
from scaloquant.simulate.effects import (
    apply_phase,
    complex_noise,
    eddy_current_phase_rad,
    water_fids,
)
from scaloquant.simulate.invivo import InvivoSignals, simulate_invivo_batch
from scaloquant.simulate.prior import MEASURED_MM_NAMES, InvivoPrior
from scaloquant.types import FID, BasisSet

INVIVO = FIT_PRESETS["invivo"]
ED1_TO_7 = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
VARIANTS = {
    "default": INVIVO,
    "4.0": replace(INVIVO, ppm_range=(0.2, 4.0)),
    "freeform": replace(INVIVO, lineshape="freeform"),
    "4.0-ed1": replace(INVIVO, ppm_range=(0.2, 4.0), baseline_ed_per_ppm=1.0),
    "4.0-ed4": replace(INVIVO, ppm_range=(0.2, 4.0), baseline_ed_per_ppm=4.0),
    "ftest-4.0": replace(INVIVO, baseline_stiffness="ftest", ppm_range=(0.2, 4.0)),
    "ftest": replace(INVIVO, baseline_stiffness="ftest"),
    # the F-test's candidates before session 22: from 1 ED/ppm
    "ftest1": replace(INVIVO, baseline_stiffness="ftest", baseline_ed_candidates_per_ppm=ED1_TO_7),
    "ftest1-4.0": replace(
        INVIVO,
        baseline_stiffness="ftest",
        ppm_range=(0.2, 4.0),
        baseline_ed_candidates_per_ppm=ED1_TO_7,
    ),
    "freeform-ftest-4.0": replace(
        INVIVO, lineshape="freeform", baseline_stiffness="ftest", ppm_range=(0.2, 4.0)
    ),
    "freeform-ftest": replace(INVIVO, lineshape="freeform", baseline_stiffness="ftest"),
    # the preset has removed the residual water by HLSVD since df6fda8: without it, as before
    "no-hlsvd": replace(INVIVO, water_removal="none"),
    # the MM and lipid groups' shifts held to the metabolites' (session 28, minima28)
    "no-mm-shift-prior": replace(INVIVO, mm_shift_prior_sd_hz=None),
    "nested": replace(INVIVO, baseline_stiffness="ftest", baseline_ftest_rule="nested"),
    "nested-4.0": replace(
        INVIVO, baseline_stiffness="ftest", baseline_ftest_rule="nested", ppm_range=(0.2, 4.0)
    ),
    # the fixed default, and the F-test over 0.2-4.0 ppm for the spectra whose fixed fit fails
    # it (session 23)
    "adaptive": replace(INVIVO, baseline_stiffness="adaptive"),
    # every macromolecule and lipid component in a lineshape group of its own, as LCModel fits
    # them (fit --groups metabolites_and_each_mm, session 34)
    "each-mm": replace(INVIVO, grouping="metabolites_and_each_mm"),
}
#: Variants whose spectra are first corrected by :func:`water_references` (Klose's eddy-current
#: correction, ``fit --ecc``): the default model on the corrected spectra.
ECC_VARIANTS = {"ecc": INVIVO}
#: The simulated water reference's peak over the metabolites' reference peak (NAA's).
WATER_OVER_REFERENCE = 3000.0


def tissue_spectra(prior: InvivoPrior, n: int, seed: int) -> tuple[BasisSet, InvivoSignals, FID]:
    """``n`` tissue-like spectra of ``prior`` on the embedded ISMRM 2016 basis, drawn from
    ``seed``: the basis, the signals (truth in ``signals.parameters``) and the spectra as one
    :class:`FID` ``(n, n_points)``, internal orientation. The amplitude of a basis FID is the
    concentration in mM (:mod:`scaloquant.simulate.invivo`), so ``concentrations_mm`` are the
    true amplitudes in basis units (``Mac``'s: a multiple of the measured spectrum)."""
    basis = default_basis()
    signals = simulate_invivo_batch(basis, prior, n, np.random.default_rng(seed))
    fid = FID(
        samples=signals.fids,
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
    )
    return basis, signals, fid


def water_references(basis: BasisSet, signals: InvivoSignals, seed: int) -> np.ndarray:
    """``(n, n_points)`` unsuppressed water references of the tissue-like spectra: one
    Lorentzian at 4.65 ppm moved by the metabolites' shift, as wide as their Lorentzian,
    :data:`WATER_OVER_REFERENCE` times their reference peak, under each spectrum's eddy-current
    phase and zero- and first-order phase, with noise of its SD (the scan's receiver), drawn
    from ``seed`` (for the ``ecc`` variant, :data:`ECC_VARIANTS`)."""
    p, acq = signals.parameters, basis.acquisition
    n = len(signals.fids)
    centre = 4.65 + p.shift_hz[:, :1] / acq.spectrometer_freq_mhz
    water = water_fids(
        acq,
        centre,
        p.damping_per_s[:, :1],
        np.full((n, 1), WATER_OVER_REFERENCE),
        np.zeros((n, 1)),
        signals.reference_height,
    )
    water = water * np.exp(
        1j * eddy_current_phase_rad(p.eddy_amplitude_rad, p.eddy_time_constant_s, acq.time_axis_s())
    )
    water = apply_phase(water, acq, p.phase0_deg, p.phase1_deg_per_ppm, p.phase1_pivot_ppm)
    return water + complex_noise(signals.noise_sd, acq.n_points, np.random.default_rng(seed))


def _windows(result) -> str:
    """``, windows LO-HI: count, ...`` of a result whose spectra were fitted over different
    windows (``window_ppm``); empty otherwise."""
    if result.window_ppm is None:
        return ""
    windows, counts = np.unique(result.window_ppm, axis=0, return_counts=True)
    return ", windows " + ", ".join(
        f"{lo:g}-{hi:g}: {c}" for (lo, hi), c in zip(windows, counts, strict=True)
    )


def _paired(per_spectrum: dict[str, np.ndarray], first: str, name: str) -> str:
    """``; paired MAE difference from FIRST: mean +- SE (spectra changed)``: the mean over
    spectra of this variant's per-spectrum MAE (over the 20) less ``first``'s, with its
    standard error; empty for ``first`` itself."""
    if name == first:
        return ""
    diff = per_spectrum[name] - per_spectrum[first]
    se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else np.nan
    changed = int(np.count_nonzero(diff))
    return f"; paired MAE - {first}: {diff.mean():+.4f} +- {se:.4f} mM ({changed} changed)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--variants", default="default,freeform-ftest-4.0")
    parser.add_argument("--save", type=Path, help="npz of every variant's estimates and stiffness")
    parser.add_argument("--prior-set", action="append", default=[], help="prior key=JSON")
    args = parser.parse_args(argv)
    prior_dict = InvivoPrior(snr_range=(args.snr, args.snr)).to_dict()
    for item in args.prior_set:
        key, _, value = item.partition("=")
        if key not in prior_dict:
            print(f"unknown prior key {key!r}; choose from {', '.join(prior_dict)}")
            return 2
        value = json.loads(value)
        if key == "baseline":
            value = {**prior_dict["baseline"], **value}
        prior_dict[key] = value
    prior = InvivoPrior.from_dict(prior_dict)
    chosen = args.variants.split(",")
    unknown = [v for v in chosen if v not in {**VARIANTS, **ECC_VARIANTS}]
    if unknown:
        print(
            f"unknown variant {', '.join(unknown)}; choose from {', '.join({**VARIANTS, **ECC_VARIANTS})}"
        )
        return 2
    torch.set_num_threads(1)
    basis, signals, fid = tissue_spectra(prior, args.n, args.seed)
    metabolites = [n for n in basis.names if n not in MEASURED_MM_NAMES]
    truth = signals.parameters.concentrations_mm[:, [basis.names.index(n) for n in metabolites]]
    changed = f", prior {' '.join(args.prior_set)}" if args.prior_set else ""
    print(
        f"{args.n} invivo spectra at SNR {args.snr:g} (seed {args.seed}){changed}, 1 torch thread"
    )
    rows, saved, per_spectrum = {}, {"truth": truth}, {}
    for name in chosen:
        wall, cpu = time.perf_counter(), time.process_time()
        if name in ECC_VARIANTS:
            water = water_references(basis, signals, args.seed + 1)
            corrected, _ = eddy_current_corrected(
                fid.samples,
                water,
                dwell_time_s=fid.dwell_time_s,
                water_dwell_time_s=fid.dwell_time_s,
                spectrometer_freq_mhz=fid.spectrometer_freq_mhz,
                ppm_reference=fid.ppm_reference,
            )
            result = fit_spectra(fid.with_samples(corrected), basis, ECC_VARIANTS[name])
        else:
            result = fit_spectra(fid, basis, VARIANTS[name])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        index = [result.names.index(n) for n in metabolites]
        est, sd = result.amplitudes[:, index], result.crlb_sd[:, index]
        mae, sm = np.abs(est - truth).mean(axis=0), smape(truth, est)
        rows[name] = (mae, sm)
        per_spectrum[name] = np.abs(est - truth).mean(axis=1)
        saved[f"{name}/amplitudes"] = est
        saved[f"{name}/baseline_ed_per_ppm"] = result.baseline_ed_per_ppm
        beyond = np.mean(np.abs(est - truth) > 3 * sd)
        eds, counts = np.unique(result.baseline_ed_per_ppm, return_counts=True)
        stiffness = ", ".join(f"{e:g}: {c}" for e, c in zip(eds, counts, strict=True))
        print(
            f"{name:24s} MAE {mae.mean():.4f} mM  SMAPE {sm.mean():.2f} %  beyond 3 CRLB "
            f"{100 * beyond:.1f} %  {args.n / wall:.1f} spectra/s wall, {args.n / cpu:.1f} CPU  "
            f"ED/ppm {stiffness}{_windows(result)}{_paired(per_spectrum, chosen[0], name)}",
            flush=True,
        )
    print(f"\n{'MAE mM / SMAPE %':14s}" + "".join(f"{name:>26s}" for name in chosen))
    for j, metabolite in enumerate(metabolites):
        print(
            f"{metabolite:14s}"
            + "".join(f"{rows[n][0][j]:>16.4f} / {rows[n][1][j]:5.1f}" for n in chosen)
        )
    if args.save:
        np.savez(args.save, **saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
