"""Physics-head models against the fit on the same spectra: ``invivo`` or the paper's default
simulator (issue 13).

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

``--simulation default``: test spectra of the paper's default simulator instead
(:func:`scaloquant.simulate.simulate_dataset` with ``SimulationConfig()``, seed ``--seed``, a
stream independent of any training seed's; the SNR set is the same draw with the simulator's
noise at ``--snr``), for models trained with ``--simulation default``; the fit is
``FIT_PRESETS["simulated"]``, on the same spectra. MAE over the 20 metabolites (``Mac`` left out), in the
simulator's amplitude units (``[0, 1]``). For ``K = 0`` the calibration of the network's own SD
(:attr:`scaloquant.models.physics.PhysicsEstimate.network_sd`) is printed too: the share of
estimates within 1 and 2 SDs of the truth (68 % and 95 % for a calibrated Gaussian SD).

Usage: ``python benchmarks/bench_physics.py CKPT [CKPT ...] [--n 200] [--snr 30] [--seed 7]
[--polish 0 5 20] [--threads 1] [--prior full|representable] [--simulation invivo|default]
[--no-fit]``
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
from scaloquant.models.physics import default_truth, invivo_truth
from scaloquant.simulate import BaselineConfig, SimulationConfig, drawn_parameters, simulate_dataset
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


def _summary(label, names, est, sd, truth, seconds, n, network_sd=None):
    unit = truth.get("unit", " mM")
    metabolites = [x for x in truth["names"] if x != "Mac"]
    e = _columns(names, est, metabolites)
    t = _columns(truth["names"], truth["amplitudes"], metabolites)
    s = _columns(names, sd, metabolites)
    mae = np.abs(e - t).mean()
    calibration = ""
    if network_sd is not None:
        z = np.abs(e - t) / _columns(names, network_sd, metabolites)
        calibration = (
            f"  network SD: within 1 SD {100 * np.mean(z <= 1):.0f} %, "
            f"within 2 SD {100 * np.mean(z <= 2):.0f} %"
        )
    slopes = []
    for key, parts in SLOPES.items():
        te = _columns(truth["names"], truth["amplitudes"], parts).sum(1)
        ee = _columns(names, est, parts).sum(1)
        slopes.append(f"{key} {np.polyfit(te, ee, 1)[0]:.3f}")
    beyond = np.mean(np.abs(e - t) > 3 * s)
    print(
        f"  {label:<28} MAE {mae:<7.4g}{unit}  beyond 3 CRLB {100 * beyond:5.1f} %  "
        f"{1e3 * seconds / n:7.1f} ms/spectrum  slopes: {', '.join(slopes)}{calibration}"
    )


def _models_on(models, params_truth, fids, polish, n, unit=" mM"):
    """Print every model's parameter errors and, for each ``K``, its amplitude summary."""
    x = torch.as_tensor(fids)
    for model in models:
        problem = model.problem()
        theta_true, amplitudes = params_truth(problem)
        truth = {"names": model.metabolites, "amplitudes": amplitudes, "unit": unit}
        start = time.perf_counter()
        theta_net = torch.cat(
            [model.network_theta(x[i : i + 32], inference=True) for i in range(0, len(x), 32)]
        )
        t_net = time.perf_counter() - start
        sl = problem.slices()
        err = theta_net.detach().numpy() - theta_true
        phase = np.rad2deg(np.angle(np.exp(1j * err[:, sl["phase0"]][:, 0])))
        damping = np.abs(err[:, sl["damping"]]).mean() if problem.lorentzian else float("nan")
        print(
            f"  {model.config.model} network parameter MAE (mean over groups): damping "
            f"{damping:.2f} 1/s, shift {np.abs(err[:, sl['shift']]).mean():.2f} Hz, phi0 "
            f"{np.abs(phase).mean():.2f} deg, phi1 "
            f"{np.rad2deg(np.abs(err[:, sl['phase1']])).mean():.2f} deg/ppm "
            f"({1e3 * t_net / n:.1f} ms/spectrum)"
        )
        for k in polish:
            start = time.perf_counter()
            amps, sd = model.predict_with_sd(fids, polish_iterations=k)
            seconds = time.perf_counter() - start
            network_sd = None
            if k == 0:
                network_sd = model.predict_with_sd(fids, polish_iterations=0, network_sd=True)[1]
            _summary(
                f"{model.config.model} K={k}",
                model.metabolites,
                amps,
                sd,
                truth,
                seconds,
                n,
                network_sd,
            )


def _fit(label, fids, basis, config, truth, n):
    fid = FID(
        samples=fids,
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
    )
    start = time.perf_counter()
    result = fit_spectra(fid, basis, config)
    seconds = time.perf_counter() - start
    _summary(label, result.names, result.amplitudes, result.crlb_sd, truth, seconds, n)


def main_default(args, models) -> None:
    """``--simulation default``: the paper's simulator, noiseless and at ``--snr``."""
    basis = default_basis()
    config = SimulationConfig()
    noiseless = next(simulate_dataset(basis, config, args.n, args.seed, chunk_size=args.n))
    noisy_config = replace(config, snr=(args.snr, args.snr))
    noisy = next(simulate_dataset(basis, noisy_config, args.n, args.seed, chunk_size=args.n))
    # the SNR draw comes after the amplitudes, dampings and shifts: the same spectra plus noise
    np.testing.assert_array_equal(noisy.amplitudes, noiseless.amplitudes)
    params = drawn_parameters(noiseless)
    truth = {"names": basis.names, "amplitudes": params.amplitudes, "unit": ""}

    def params_truth(problem):
        return default_truth(problem, params, basis.names, config.phase1_pivot_ppm)

    for label, fids in (("noiseless", noiseless.fids), (f"SNR {args.snr:g}", noisy.fids)):
        print(f"{label}: {args.n} default-simulator spectra (seed {args.seed})")
        _models_on(models, params_truth, fids, args.polish, args.n, unit="")
        if not args.no_fit:
            _fit("fit (simulated)", fids, basis, FIT_PRESETS["simulated"], truth, args.n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--polish", type=int, nargs="+", default=[0, 5, 20])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-fit", action="store_true")
    ap.add_argument("--simulation", choices=("invivo", "default"), default="invivo")
    ap.add_argument(
        "--prior",
        choices=("full", "representable"),
        default="full",
        help="representable: without residual water, eddy-current phase and baseline humps, "
        "the terms the fit's model lacks (it has a spline baseline, no water, no eddy currents)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = [load_model(path).quantifier for path in args.checkpoints]
    if args.simulation == "default":
        main_default(args, models)
        return
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
    truth = {"names": basis.names, "amplitudes": params.concentrations_mm}
    for label, fids in sets.items():
        print(f"{label}: {args.n} invivo spectra ({args.prior} prior, seed {args.seed})")
        _models_on(models, lambda problem: invivo_truth(problem, params), fids, args.polish, args.n)
        if not args.no_fit:
            _fit("fit (invivo preset)", fids, basis, FIT_PRESETS["invivo"], truth, args.n)


if __name__ == "__main__":
    main()
