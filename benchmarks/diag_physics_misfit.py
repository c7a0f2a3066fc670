"""How often a physics-head model's ``quantify`` is far off where the fit is not, on ``invivo``
spectra simulated on the model's own basis and grid (issue 13, session 28): wrong-but-plausible
estimates, and whether anything in the output flags them.

Data: ``--n`` spectra of the ``invivo`` simulation (``InvivoPrior()``, its SNR range unless
``--snr``; LCModel's parametric macromolecules where the model fits them) rendered on the
checkpoint's grid from ``--basis`` (the basis it was trained on; default the embedded one), as
one NIfTI-MRS file. ``quantify`` with the model (its defaults) and ``fit`` with its default
(``FIT_PRESETS["invivo"]``) on the same file. A spectrum is *off* for a method where NAA or
Cr+PCr is more than ``--off`` (relative) from the truth. Printed: how many spectra are off for
physics, for the fit, for physics alone; then, for each spectrum off for physics alone, its
truth, both estimates, the physics row's ``fit_residual``, ``qc`` and ``water_near_window`` (of the
spectrum the model saw) columns and the fit's ``fit_residual``.

Usage::

    PYTHONPATH=src python benchmarks/diag_physics_misfit.py CKPT [--basis FILE] [--n 64]
        [--snr S] [--seed 0] [--off 0.3] [--no-fit] [--save FILE.npz]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_physics_baseline import SCORED, model_spectra, scored, table
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import write_nifti_mrs
from scaloquant.quantify import Options, fit_inputs, quantify_inputs, read_inputs
from scaloquant.simulate.prior import InvivoPrior


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--basis", type=Path, help="the basis the model was trained on")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--snr", type=float, default=None, help="default: the prior's range")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--off", type=float, default=0.3)
    p.add_argument("--no-fit", action="store_true", help="physics only (the fit's columns NaN)")
    p.add_argument("--save", type=Path, help="an .npz of the truth and both estimates")
    args = p.parse_args(argv)
    prior = InvivoPrior() if args.snr is None else InvivoPrior(snr_range=(args.snr, args.snr))
    model, basis, signals, want, fid = model_spectra(
        args.checkpoint, args.basis, prior, args.n, args.seed
    )
    names = tuple(model.quantifier.metabolites)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nifti_mrs(Path(tmp) / "sim.nii.gz", fid)
        cpu = time.process_time()
        physics = quantify_inputs(read_inputs([path]), model, options=Options(max_figures=0))
        cpu = time.process_time() - cpu
        fit = None
        if not args.no_fit:
            fit = fit_inputs(
                read_inputs([path]),
                basis,
                basis_name="bench",
                options=Options(fit_config=FIT_PRESETS["invivo"], max_figures=0),
            )
    got = scored(table(physics, names), names)
    fitted = scored(table(fit, names), names) if fit is not None else np.full_like(got, np.nan)

    def off(values: np.ndarray) -> np.ndarray:
        rel = np.abs(values[:, :2] / want[:, :2] - 1)
        return np.nan_to_num(rel, nan=np.inf).max(-1) > args.off

    if args.save is not None:
        np.savez(args.save, truth=want, physics=got, fit=fitted, snr=signals.parameters.snr)
    p_off = off(got)
    f_off = off(fitted) if fit is not None else np.zeros_like(p_off)  # --no-fit: none
    alone = p_off & ~f_off
    mae = np.nanmean(np.abs(got - want), axis=0)
    quality = physics.results[0].quality
    qc = physics.results[0].qc
    near = physics.results[0].fit["water_near_window"]
    print(
        f"{args.n} spectra, seed {args.seed}, load {os.getloadavg()[0]:.1f}, quantify CPU "
        f"{cpu:.1f} s; MAE " + " ".join(f"{k} {v:.3f}" for k, v in zip(SCORED, mae, strict=True))
    )
    print(
        f"NAA or tCr off by > {100 * args.off:g} %: physics {int(p_off.sum())}, fit "
        f"{int(f_off.sum())}, physics alone {int(alone.sum())}, flagged (qc) among those "
        f"{int(sum(bool(qc[j]) for j in np.flatnonzero(alone)))}"
    )
    for j in np.flatnonzero(alone):
        fit_residual = (
            fit.results[0].quality["fit_residual"][j] if fit is not None else float("nan")
        )
        print(
            f"  spectrum {j}: truth NAA {want[j, 0]:.1f} tCr {want[j, 1]:.1f}; physics "
            f"{got[j, 0]:.1f} {got[j, 1]:.1f} (fit_residual {quality['fit_residual'][j]:.3f}, "
            f"qc '{qc[j]}', water_near_window {near[j]:.2f}); fit {fitted[j, 0]:.1f} {fitted[j, 1]:.1f} (fit_residual "
            f"{fit_residual:.3f}); SNR {signals.parameters.snr[j]:.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
