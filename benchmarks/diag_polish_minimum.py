"""Which cheap, fit-free figure tells that ``quantify --model``'s polish stopped in a worse
minimum than ``fit`` reaches on the same spectrum.

For each spectrum the polish's row (``quantify --model --baseline-stiffness fixed``: every row
the polish's, none fitted again) is set beside the fit of the same spectrum as the model saw it
(less its water where quantify removed it) with the model's own fit settings at the same fixed
stiffness (``fit_spectra``, ``water_removal="none"``): the truth here is the fit's residual, not
a concentration truth. A spectrum is ``worse`` where the polish's residual SD over the window
exceeds the fit's by more than ``--margin`` (default 10 %).

The candidate detectors, each from what quantify has without the fit:

- ``ron``: the ``residual_over_noise`` column (its ``misfit`` flag: above 1.5);
- ``s<w>``: the residual's structure, the SD of its moving average over ``w`` points of the
  window over what white noise of the spectrum's noise SD would give (``sigma / sqrt(w)``):
  about 1 for a noise-like residual, the residual's lines kept where they are ``w`` points wide;
- ``gain``: the network start's relative residual over the polish's;
- ``amp_z``: the largest ``|a_polish - a_network|`` over ``sqrt(crlb_sd^2 + network_sd^2)``
  over the model's components.

Inputs: the 28 ISMRM 2016 challenge spectra (``--challenge``), files given with ``--files``
(each with ``--water`` in the same order, or none), and ``--simulate SNR ...`` sets of ``--n``
``invivo`` spectra on the model's grid from ``--basis``. Writes one CSV row a spectrum to
``--csv`` and prints each detector's rates at the thresholds ``--at``.

Usage::

    PYTHONPATH=src python benchmarks/diag_polish_minimum.py CKPT --csv OUT.csv [--challenge]
        [--files F ... [--water W ...]] [--simulate 10 30 100 --n 64 --basis B] [--margin 0.1]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from scaloquant.fit import fit_spectra, fitted_spectra
from scaloquant.fit.spectra import fit_result_at
from scaloquant.models import load_model
from scaloquant.quantify import Options, quantify_inputs, read_inputs, run
from scaloquant.signal.axes import ppm_axis
from scaloquant.signal.noise import misfit_beyond_noise, noise_sd
from scaloquant.threads import blas_threads

CHALLENGE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ismrm2016-challenge"
WIDTHS = (3, 6, 12)


def captured(inputs, model) -> list[tuple]:
    """``quantify --baseline-stiffness fixed`` of ``inputs``: per input, ``(samples the model
    saw, fid, PhysicsRows)`` read by a hook on ``run._physics_estimates`` (changes nothing)."""
    calls = []
    own = run._physics_estimates

    def hooked(quantifier, samples, fid, *args, **kwargs):
        out = own(quantifier, samples, fid, *args, **kwargs)
        calls.append((fid, out))
        return out

    run._physics_estimates = hooked
    try:
        quantify_inputs(inputs, model, options=Options(max_figures=0, baseline_stiffness="fixed"))
    finally:
        run._physics_estimates = own
    return calls


def moving_sd(residual: np.ndarray, width: int) -> np.ndarray:
    """SD per real part ``(B,)`` of the moving average over ``width`` points of ``residual``
    ``(B, K)`` (complex), the valid part only."""
    kernel = np.ones(width) / width
    out = np.empty(residual.shape[0])
    for i, r in enumerate(residual):
        s = np.convolve(r, kernel, mode="valid")
        out[i] = np.sqrt(np.mean(np.abs(s) ** 2) / 2)
    return out


def window_points(fid, ppm_range: tuple[float, float]) -> int:
    """Complex points of ``fid``'s grid in the fit window ``ppm_range``."""
    ppm = ppm_axis(fid.n_points, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    return int(np.count_nonzero((ppm >= ppm_range[0]) & (ppm <= ppm_range[1])))


def fit_only(quantifier, fid) -> dict[str, np.ndarray]:
    """The fit alone (the model's fit settings, its water removal, fixed stiffness) of the flat
    ``fid``: its relative residual, residual over the noise and misfit beyond the noise."""
    config = replace(
        quantifier.config.fit_config,
        baseline_stiffness="fixed",
        device=quantifier.basis_fids.device.type,
    )
    with blas_threads(1):
        fit = fit_spectra(fid, quantifier.basis(), config)
    rel = np.asarray(fit.relative_residual).reshape(-1)
    ron = np.asarray(fit.residual_over_noise).reshape(-1)
    k = window_points(fid, config.ppm_range)
    return {"fit_rel": rel, "fit_ron": ron, "fit_excess": misfit_beyond_noise(rel, ron, k)}


def figures(quantifier, fid, rows) -> dict[str, np.ndarray]:
    """Per spectrum of one input: the polish's and the fit's residual SDs and the detectors."""
    seen = rows.seen
    n_metab = len(quantifier.metabolites)
    amplitudes, crlb_sd = rows.columns[0][:, :n_metab], rows.columns[1][:, :n_metab]
    polish_rel, polish_ron = rows.columns[3], rows.columns[5]
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    sigma = noise_sd(seen, *grid)
    flat = fid.with_samples(seen)
    basis = quantifier.basis()
    config = replace(
        quantifier.config.fit_config,
        water_removal="none",
        baseline_stiffness="fixed",
        device=quantifier.basis_fids.device.type,
    )
    with blas_threads(1):
        at = fit_result_at(flat, basis, config, rows.theta, deviations=True)
        residual = fitted_spectra(at, flat, basis).residual.reshape(len(seen), -1)
        fit = fit_spectra(flat, basis, config)
        fit_residual = fitted_spectra(fit, flat, basis).residual.reshape(len(seen), -1)
    start = quantifier.predict_estimates(seen, polish_iterations=0)
    k = window_points(fid, config.ppm_range)
    out = {
        "polish_rel": polish_rel,
        "fit_rel": np.asarray(fit.relative_residual).reshape(-1),
        "polish_ron": polish_ron,
        "fit_ron": np.asarray(fit.residual_over_noise).reshape(-1),
        "ron": polish_ron,
        "excess": misfit_beyond_noise(polish_rel, polish_ron, k),
        "fit_excess": misfit_beyond_noise(
            np.asarray(fit.relative_residual).reshape(-1),
            np.asarray(fit.residual_over_noise).reshape(-1),
            k,
        ),
        "gain": start.fit_residual / polish_rel,
        # what quantify's default refits already (its F-test screen of the polish)
        "screened": quantifier.asks_for_flexible_baseline(seen, rows.theta).astype(float),
    }
    for w in WIDTHS:
        out[f"s{w}"] = moving_sd(residual, w) / (sigma / np.sqrt(w))
        out[f"fit_s{w}"] = moving_sd(fit_residual, w) / (sigma / np.sqrt(w))
    z = np.abs(amplitudes - start.amplitudes) / np.sqrt(crlb_sd**2 + start.network_sd**2)
    out["amp_z"] = np.nanmax(np.where(np.isfinite(z), z, np.nan), axis=1)
    names = list(quantifier.metabolites)
    fit_names = list(fit.names)
    for name in ("Cr", "PCr"):
        if name in names and name in fit_names:
            out[f"{name}_polish"] = amplitudes[:, names.index(name)]
            out[f"{name}_fit"] = np.asarray(fit.amplitudes).reshape(len(seen), -1)[
                :, fit_names.index(name)
            ]
    return out


def simulated(model_path: Path, basis: Path, snr: float, n: int, seed: int):
    """``n`` ``invivo`` spectra at ``snr`` on the model's grid (bench_physics_baseline's)."""
    from bench_physics_baseline import model_spectra
    from scaloquant.quantify.inputs import SpectraInput
    from scaloquant.simulate.prior import InvivoPrior

    _, _, _, _, fid = model_spectra(model_path, basis, InvivoPrior(snr_range=(snr, snr)), n, seed)
    return [SpectraInput(Path(f"sim-snr{snr:g}.nii"), fid, None, None, np.eye(4), ())]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--challenge", nargs="?", const="1-28", help="datasets, e.g. 9 or 1-28")
    p.add_argument("--files", nargs="*", default=[])
    p.add_argument("--water", nargs="*", default=[])
    p.add_argument("--simulate", nargs="*", type=float, default=[])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--basis", type=Path)
    p.add_argument("--label", default="")
    p.add_argument("--fit-only", action="store_true", help="--simulate sets: the fit alone")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    model = load_model(args.checkpoint)
    sets: list[tuple[str, list]] = []
    if args.challenge:
        folder = CHALLENGE / "datasets_JMRUI"
        lo, _, hi = args.challenge.partition("-")
        for k in range(int(lo), int(hi or lo) + 1):
            a, b = folder / f"dataset{k}_WS.txt", folder / f"dataset{k}_nWS.txt"
            sets.append((f"challenge{k}", read_inputs([a], water=[b])))
    for i, path in enumerate(args.files):
        water = [args.water[i]] if args.water else []
        sets.append((Path(path).name, read_inputs([path], water=water)))
    for snr in args.simulate:
        sets.append((f"sim{snr:g}", simulated(args.checkpoint, args.basis, snr, args.n, args.seed)))
    rows_out = []
    for label, inputs in sets if args.fit_only else ():
        fid = inputs[0].fid
        flat = fid.with_samples(fid.samples.reshape(-1, fid.n_points))
        values = fit_only(model.quantifier, flat)
        rows_out += [
            {"model": "fit", "set": label, "row": j} | {k: float(v[j]) for k, v in values.items()}
            for j in range(flat.samples.shape[0])
        ]
        print(f"{label}: done, load {os.getloadavg()[0]:.1f}", flush=True)
    for label, inputs in () if args.fit_only else sets:
        for fid, rows in captured(inputs, model):
            values = figures(model.quantifier, fid, rows)
            for j in range(len(rows.seen)):
                rows_out.append(
                    {"model": args.label, "set": label, "row": j}
                    | {k: float(v[j]) for k, v in values.items()}
                )
        print(f"{label}: done, load {os.getloadavg()[0]:.1f}", flush=True)
    keys = list(dict.fromkeys(k for r in rows_out for k in r))
    new = not args.csv.exists()
    with open(args.csv, "a", newline="") as handle:
        writer = csv.DictWriter(handle, keys, restval="nan")
        if new:
            writer.writeheader()
        writer.writerows(rows_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
