"""Test-time adaptation (``quantify --adapt``, :mod:`scaloquant.models.adapt`) of a
``spectrum_physics`` model to spectra outside its training distribution, with known truth.

A model is trained on one ``invivo`` distribution (``--train-steps`` steps of 32 signals, seed
0, SNR 5-150; or ``--ckpt`` reuses one written by an earlier run with ``--save``) and
quantifies ``--n`` spectra of:

* ``same``: the training distribution;
* ``shifted``: the metabolites' shift 0.05-0.08 ppm (training: +-0.02), singlet FWHM
  0.06-0.10 ppm (training: 0.03-0.06), zero-order phase 20-60 deg (training: +-20);

both noiseless and at ``--snr`` (the same draw plus the prior's noise). The training and test
distributions hold only what the fit's model represents (no residual water, eddy-current
phase or baseline humps; lipids in a quarter of the spectra), so the truth is reachable.

For each ``--steps`` x ``--lr``: the mean relative reconstruction residual at the network's
parameters before and after adaptation (:func:`scaloquant.models.adapt.reconstruction_error`),
the mean absolute error of the 20 metabolites' amplitudes (mM; macromolecules and lipids left
out) against the truth, of the network alone (``K = 0``) and after the model's polish
(``--polish`` iterations), and the wall time of the adaptation (this process's threads).

The model is trained on the supervised loss alone (``--reconstruction-weight 0``, the default
here and, since it was measured, of the training loss): with the unbroadened reconstruction
term at weight 1 on this narrow prior, 600 steps (seeds 0 and 1) left the metabolites' shift
at the edge of the network's range (+24 and -24 Hz, truth within +-2.5 Hz; the sigmoid
saturated), a model not worth adapting; with weight 0, 500 steps: shift error 0.38 Hz
(docs/physics-models.md, "The reconstruction term"; benchmarks/bench_physics_loss.py).

Usage: ``python benchmarks/bench_adapt.py [--ckpt CKPT | --train-steps 500 --save CKPT]
[--n 256] [--snr 30] [--steps 50 100 200] [--lr 1e-3 3e-4] [--polish 5] [--seed 7]
[--threads 1]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scaloquant.io import default_basis
from scaloquant.models import load_model
from scaloquant.models.adapt import AdaptConfig, adapt_encoder, reconstruction_error
from scaloquant.models.physics_truth import invivo_truth
from scaloquant.simulate import BaselineConfig
from scaloquant.simulate.draws import draw_invivo
from scaloquant.simulate.invivo import render_invivo
from scaloquant.simulate.linewidths import basis_lines
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.train.physics import PhysicsTrainConfig, train_physics

TRAIN_PRIOR = InvivoPrior(
    water_fraction=0.0,
    eddy_fraction=0.0,
    baseline=BaselineConfig(height_range=(0.0, 0.0)),
    shift_range_ppm=(-0.02, 0.02),
    singlet_fwhm_range_ppm=(0.03, 0.06),
    phase0_range_deg=(-20.0, 20.0),
)
SHIFTED_PRIOR = replace(
    TRAIN_PRIOR,
    shift_range_ppm=(0.05, 0.08),
    singlet_fwhm_range_ppm=(0.06, 0.10),
    phase0_range_deg=(20.0, 60.0),
)


def _model(args):
    if args.ckpt is not None:
        return load_model(args.ckpt).quantifier
    path = Path(args.save or "/tmp/bench_adapt_model.ckpt")
    config = PhysicsTrainConfig(
        model="spectrum_physics",
        max_steps=args.train_steps,
        max_time_s=None,
        polish_iterations=args.polish,
        reconstruction_weight=args.reconstruction_weight,
        seed=0,
    )
    start = time.perf_counter()
    result = train_physics(config, default_basis(), path, prior=TRAIN_PRIOR, log=lambda _: None)
    print(
        f"trained {result.steps} steps in {time.perf_counter() - start:.0f} s, best validation "
        f"loss {result.best_val_loss:.4g}: {path}"
    )
    return load_model(path).quantifier


def _mae(model, fids, truth, polish: int, metabolites) -> float:
    estimate = model.predict(fids, polish_iterations=polish)
    return float(np.abs(estimate - truth)[:, metabolites].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", type=Path)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--train-steps", type=int, default=500)
    ap.add_argument("--reconstruction-weight", type=float, default=0.0)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--lr", type=float, nargs="+", default=[1e-3, 3e-4])
    ap.add_argument("--polish", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scenarios", nargs="+", default=["same", "shifted"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = _model(args)
    basis = default_basis()
    metabolites = [
        i for i, m in enumerate(model.metabolites) if m not in model.config.macromolecules
    ]
    priors = {"same": TRAIN_PRIOR, "shifted": SHIFTED_PRIOR}
    print(
        "| scenario | data | steps | lr | reconstruction before -> after | MAE K=0 before -> after "
        f"| MAE K={args.polish} before -> after | adapt s |"
    )
    print("|---|---|---:|---:|---|---|---|---:|")
    for scenario in args.scenarios:
        prior = replace(priors[scenario], snr_range=(args.snr, args.snr))
        rng = np.random.default_rng(args.seed)
        params = draw_invivo(prior, basis.names, args.n, rng, basis_lines(basis, prior))
        _, truth = invivo_truth(model.problem(), params)
        data = {
            "noiseless": render_invivo(basis, params).fids,
            f"SNR {args.snr:g}": render_invivo(basis, params, rng).fids,
        }
        for label, fids in data.items():
            before = float(reconstruction_error(model, fids).mean())
            mae0 = _mae(model, fids, truth, 0, metabolites)
            maek = _mae(model, fids, truth, args.polish, metabolites)
            for steps in args.steps:
                for lr in args.lr:
                    result = adapt_encoder(model, fids, AdaptConfig(steps=steps, learning_rate=lr))
                    assert abs(result.reconstruction_before - before) <= 1e-9 * before
                    after0 = _mae(result.model, fids, truth, 0, metabolites)
                    afterk = _mae(result.model, fids, truth, args.polish, metabolites)
                    print(
                        f"| {scenario} | {label} | {steps} | {lr:g} | {before:.4f} -> "
                        f"{result.reconstruction_after:.4f} | {mae0:.3f} -> {after0:.3f} | "
                        f"{maek:.3f} -> {afterk:.3f} | {result.wall_time_s:.1f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
