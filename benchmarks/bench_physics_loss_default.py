"""bench_physics_loss.py on the paper's default simulator (``--simulation default``): a
``spectrum_physics`` model trained ``STEPS`` steps of 32 signals (seed 0, SNR 30 as
``reproduce`` trains it) per ``WEIGHT:BROADENING`` variant (``none``: unbroadened), then the mean
absolute error of all amplitudes on 48 default-simulator spectra (seed 7), noiseless and at SNR
30, with ``K = 0`` and ``K = 20`` (the default simulation's polish). Prints
``| weight | broadening | data | MAE K=0 | MAE K=20 | train s |``.

Usage: ``python benchmarks/bench_physics_loss_default.py STEPS WEIGHT:BROADENING...``
(docs/physics-models.md: ``300 0:none 1:none``)
"""

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scaloquant.io import default_basis
from scaloquant.models import load_model
from scaloquant.models.physics_truth import default_truth
from scaloquant.simulate import SimulationConfig, drawn_parameters, simulate_batch
from scaloquant.train.physics import PhysicsTrainConfig, train_physics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("steps", type=int, help="training steps per variant")
    parser.add_argument(
        "variants", nargs="+", metavar="WEIGHT:BROADENING", help="e.g. 1:none 0.1:40"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    basis = default_basis()
    for text in args.variants:
        run(basis, args.steps, text)


def run(basis, steps: int, text: str) -> None:
    w, b = text.split(":")
    w = float(w)
    b = None if b == "none" else float(b)
    cfg = PhysicsTrainConfig(
        model="spectrum_physics",
        simulation="default",
        max_steps=steps,
        max_time_s=None,
        reconstruction_weight=w,
        reconstruction_broadening_per_s=b,
        seed=0,
    )
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        train_physics(
            cfg,
            basis,
            Path(d) / "m.ckpt",
            simulation_config=SimulationConfig(snr=(30.0, 30.0)),
            log=lambda _: None,
        )
        ts = time.time() - t0
        model = load_model(Path(d) / "m.ckpt").quantifier
    sc = SimulationConfig()
    sig = simulate_batch(basis, sc, 48, np.random.default_rng(7))
    theta_true, truth = default_truth(
        model.problem(), drawn_parameters(sig), basis.names, sc.phase1_pivot_ppm
    )
    noisy = simulate_batch(basis, replace(sc, snr=(30.0, 30.0)), 48, np.random.default_rng(7))
    for label, fids in (("noiseless", sig.fids), ("SNR 30", noisy.fids)):
        maes = [
            float(np.abs(model.predict(fids, polish_iterations=k) - truth).mean()) for k in (0, 20)
        ]
        print(f"| {w:g} | {b} | {label} | {maes[0]:.4f} | {maes[1]:.4f} | {ts:.0f} |", flush=True)


if __name__ == "__main__":
    main()
