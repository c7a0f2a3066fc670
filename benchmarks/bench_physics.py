"""Physics-head models against the batched fit on the same ``invivo`` spectra (issue 13).

For each checkpoint (``scaloquant train --model spectrum_physics|scalogram_physics``) and for
``scaloquant fit``'s default ``invivo`` model (:data:`scaloquant.fit.config.FIT_PRESETS`), on
``--n`` spectra of the ``invivo`` prior (docs/invivo-prior.md) rendered noiseless and at
``--snr``, seeded:

* mean absolute error of the 20 metabolite amplitudes (mM; the measured ``Mac`` and the lipids
  are left out), of the network alone (``K = 0``: its parameters + NNLS) and after ``K`` polish
  iterations for each ``--polish``, and of the full fit;
* slopes of estimate against truth (least squares through the origin is *not* used: ordinary
  slope with intercept) for NAA, tCr (Cr + PCr), tCho (GPC + PCho), Ins and Glu;
* the share of estimates more than 3 CRLB SDs from the truth;
* the network's parameter errors (metabolite-group damping 1/s, shift Hz, zero-order phase deg);
* wall time per spectrum (this process's threads: ``--threads``).

``--prior representable`` leaves out what the fit's model cannot represent (residual water,
the eddy-current phase, baseline humps; lipids stay), so that the polish and the fit can reach
the truth.

Usage: ``python benchmarks/bench_physics.py CKPT [CKPT ...] [--n 200] [--snr 30] [--seed 7]
[--polish 0 5 20] [--threads 1] [--prior full|representable] [--no-fit]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.models import load_model
from scaloquant.models.physics import invivo_truth
from scaloquant.simulate import BaselineConfig
from scaloquant.simulate.invivo import InvivoPrior, draw_invivo, render_invivo
from scaloquant.types import FID

SLOPES = {
    "NAA": ("NAA",),
    "tCr": ("Cr", "PCr"),
    "tCho": ("GPC", "PCho"),
    "Ins": ("Ins",),
    "Glu": ("Glu",),
}


def _columns(names, values, wanted):
    return np.stack([values[:, names.index(n)] for n in wanted], axis=1)


def _summary(label, names, est, sd, truth, seconds, n):
    metabolites = [x for x in truth["names"] if x != "Mac"]
    e = _columns(names, est, metabolites)
    t = _columns(truth["names"], truth["amplitudes"], metabolites)
    s = _columns(names, sd, metabolites)
    mae = np.abs(e - t).mean()
    slopes = []
    for key, parts in SLOPES.items():
        te = _columns(truth["names"], truth["amplitudes"], parts).sum(1)
        ee = _columns(names, est, parts).sum(1)
        slopes.append(f"{key} {np.polyfit(te, ee, 1)[0]:.3f}")
    beyond = np.mean(np.abs(e - t) > 3 * s)
    print(
        f"  {label:<28} MAE {mae:.4f} mM  beyond 3 CRLB {100 * beyond:5.1f} %  "
        f"{1e3 * seconds / n:7.1f} ms/spectrum  slopes: {', '.join(slopes)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--polish", type=int, nargs="+", default=[0, 5, 20])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-fit", action="store_true")
    ap.add_argument(
        "--prior",
        choices=("full", "representable"),
        default="full",
        help="representable: without residual water, eddy-current phase and baseline humps, "
        "the terms the fit's model lacks (it has a spline baseline, no water, no eddy currents)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    basis = default_basis()
    prior = InvivoPrior(snr_range=(args.snr, args.snr))
    if args.prior == "representable":
        prior = replace(
            prior,
            water_fraction=0.0,
            eddy_fraction=0.0,
            baseline=BaselineConfig(height_range=(0.0, 0.0)),
        )
    rng = np.random.default_rng(args.seed)
    params = draw_invivo(prior, basis.names, args.n, rng)
    sets = {
        "noiseless": render_invivo(basis, params).fids,
        f"SNR {args.snr:g}": render_invivo(basis, params, rng).fids,
    }
    models = [load_model(path).quantifier for path in args.checkpoints]
    for label, fids in sets.items():
        print(f"{label}: {args.n} invivo spectra ({args.prior} prior, seed {args.seed})")
        x = torch.as_tensor(fids)
        for model in models:
            problem = model.problem()
            theta_true, amplitudes = invivo_truth(problem, params)
            truth = {"names": model.metabolites, "amplitudes": amplitudes}
            start = time.perf_counter()
            theta_net = torch.cat(
                [model.network_theta(x[i : i + 32], inference=True) for i in range(0, len(x), 32)]
            )
            t_net = time.perf_counter() - start
            sl = problem.slices()
            err = theta_net.detach().numpy() - theta_true
            phase = np.rad2deg(np.angle(np.exp(1j * err[:, sl["phase0"]][:, 0])))
            print(
                f"  {model.config.model} network parameter MAE: damping "
                f"{np.abs(err[:, 0]).mean():.2f} 1/s, shift "
                f"{np.abs(err[:, sl['shift']][:, 0]).mean():.2f} Hz, phi0 "
                f"{np.abs(phase).mean():.2f} deg, phi1 "
                f"{np.rad2deg(np.abs(err[:, sl['phase1']])).mean():.2f} deg/ppm "
                f"({1e3 * t_net / args.n:.1f} ms/spectrum)"
            )
            for k in args.polish:
                start = time.perf_counter()
                amps, sd = model.predict(fids, return_sd=True, polish_iterations=k)
                seconds = time.perf_counter() - start
                _summary(
                    f"{model.config.model} K={k}",
                    model.metabolites,
                    amps,
                    sd,
                    truth,
                    seconds,
                    args.n,
                )
        if not args.no_fit:
            fid = FID(
                samples=fids,
                dwell_time_s=basis.dwell_time_s,
                spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
                ppm_reference=basis.ppm_reference,
            )
            start = time.perf_counter()
            result = fit_spectra(fid, basis, FIT_PRESETS["invivo"])
            seconds = time.perf_counter() - start
            truth = {"names": basis.names, "amplitudes": params.concentrations_mm}
            _summary(
                "fit (invivo preset)",
                result.names,
                result.amplitudes,
                result.crlb_sd,
                truth,
                seconds,
                args.n,
            )


if __name__ == "__main__":
    main()
