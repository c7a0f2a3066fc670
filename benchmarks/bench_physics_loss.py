"""The physics models' training loss: supervised alone against supervised + reconstruction
(:func:`scaloquant.train.physics.physics_loss`), with known truth.

For each ``--variants`` entry ``WEIGHT:BROADENING`` (``BROADENING`` in 1/s, or ``none`` for the
unbroadened reconstruction term) a ``spectrum_physics`` model is trained on bench_adapt.py's
narrow ``invivo`` distribution (``--train-steps`` steps of 32 signals, ``--seed``, SNR 5-150) and
quantifies ``--n`` spectra (seed 7) of that distribution (``same``) and of its ``shifted`` one
(bench_adapt.py), noiseless and at ``--snr``. Printed per variant: the mean absolute error of
the metabolites' group shift (Hz) of the network, and the mean absolute error of the 20
metabolites' amplitudes (mM) with ``K = 0`` (the network alone) and after the polish
(``--polish`` iterations).

Usage: ``python benchmarks/bench_physics_loss.py [--variants 0:none 1:none 1:40]
[--train-steps 500] [--seed 0] [--n 128] [--snr 30] [--polish 5] [--threads 1]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench_adapt import SHIFTED_PRIOR, TRAIN_PRIOR
from scaloquant.io import default_basis
from scaloquant.models import load_model
from scaloquant.models.physics_truth import invivo_truth
from scaloquant.simulate.draws import draw_invivo
from scaloquant.simulate.invivo import render_invivo
from scaloquant.simulate.linewidths import basis_lines
from scaloquant.train.physics import PhysicsTrainConfig, train_physics


def _variant(text: str) -> tuple[float, float | None]:
    weight, broadening = text.split(":")
    return float(weight), None if broadening == "none" else float(broadening)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=["0:none", "1:none", "1:40"])
    ap.add_argument("--train-steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--polish", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    basis = default_basis()
    print(
        "| weight | broadening 1/s | scenario | data | shift MAE Hz | MAE K=0 | "
        f"MAE K={args.polish} | train s |"
    )
    print("|---:|---:|---|---|---:|---:|---:|---:|")
    for text in args.variants:
        weight, broadening = _variant(text)
        config = PhysicsTrainConfig(
            model="spectrum_physics",
            max_steps=args.train_steps,
            max_time_s=None,
            polish_iterations=args.polish,
            reconstruction_weight=weight,
            reconstruction_broadening_per_s=broadening,
            seed=args.seed,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.ckpt"
            start = time.perf_counter()
            train_physics(config, basis, path, prior=TRAIN_PRIOR, log=lambda _: None)
            train_s = time.perf_counter() - start
            model = load_model(path).quantifier
        problem = model.problem()
        g = problem.n_groups
        metabolites = [
            i for i, m in enumerate(model.metabolites) if m not in model.config.macromolecules
        ]
        for scenario, prior in (("same", TRAIN_PRIOR), ("shifted", SHIFTED_PRIOR)):
            prior = replace(prior, snr_range=(args.snr, args.snr))
            rng = np.random.default_rng(7)
            params = draw_invivo(prior, basis.names, args.n, rng, basis_lines(basis, prior))
            theta_true, truth = invivo_truth(problem, params)
            data = {
                "noiseless": render_invivo(basis, params).fids,
                f"SNR {args.snr:g}": render_invivo(basis, params, rng).fids,
            }
            for label, fids in data.items():
                with torch.no_grad():
                    theta = model.network_theta(torch.as_tensor(fids), inference=True).numpy()
                shift = float(np.abs(theta[:, g] - theta_true[:, g]).mean())
                mae = [
                    float(
                        np.abs(model.predict(fids, polish_iterations=k) - truth)[
                            :, metabolites
                        ].mean()
                    )
                    for k in (0, args.polish)
                ]
                print(
                    f"| {weight:g} | {broadening if broadening is not None else 'none'} | "
                    f"{scenario} | {label} | {shift:.2f} | {mae[0]:.3f} | {mae[1]:.3f} | "
                    f"{train_s:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
