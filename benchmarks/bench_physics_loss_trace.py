"""Trace of a ``spectrum_physics`` training on bench_adapt.py's narrow prior: every EVERY steps the
validation (64 spectra) supervised and reconstruction terms, the metabolites' predicted shift
(mean, range, MAE against the truth, Hz), damping (1/s) and phi0 error (deg). Modes: ``plain``
(the unbroadened reconstruction term at WEIGHT), ``rampW`` (weight 0 for W steps, then ramped
to WEIGHT over W more), ``broadL`` (the term on data and model broadened by L 1/s).

Usage (from benchmarks/): ``python bench_physics_loss_trace.py WEIGHT STEPS SEED EVERY MODE``
"""

import argparse
import time

import numpy as np
import torch

from bench_adapt import TRAIN_PRIOR
from scaloquant.fit.problem import data_window
from scaloquant.io import default_basis
from scaloquant.models.physics import build_physics_quantifier
from scaloquant.models.physics_head import least_squares_amplitudes, problem_in
from scaloquant.simulate import SimulationConfig
from scaloquant.train.physics import physics_loss, signal_source

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("weight", type=float, help="the reconstruction term's weight")
parser.add_argument("steps", type=int, help="training steps")
parser.add_argument("seed", type=int, help="the root of the run's generators")
parser.add_argument("every", type=int, nargs="?", default=25, help="steps between traces")
parser.add_argument("mode", nargs="?", default="plain", help="plain, rampW or broadL")
args = parser.parse_args()
torch.set_num_threads(1)
w, steps, seed, every, mode = args.weight, args.steps, args.seed, args.every, args.mode
basis = default_basis()
seeds = np.random.SeedSequence(seed).spawn(4)
init, norm_rng, train_rng, val_rng = (np.random.default_rng(s) for s in seeds)
torch.manual_seed(int(init.integers(2**62)))
model, on_grid, _ = build_physics_quantifier("spectrum_physics", basis, None, polish_iterations=5)
draw = signal_source(model, on_grid, "invivo", TRAIN_PRIOR, SimulationConfig())
model.fit_normalisation(torch.as_tensor(draw(256, norm_rng)[0]))
vf, vt, va = draw(64, val_rng)
vf = torch.as_tensor(vf)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
p = model.problem()
g = p.n_groups
print("groups", p.group_names, flush=True)
t0 = time.perf_counter()


def log(step):
    model.eval()
    with torch.no_grad():
        th = model.network_theta(vf)
        loss, terms = physics_loss(model, vf, vt, va, w)
    model.train()
    sh = th[:, g : 2 * g].numpy()
    tsh = vt[:, g : 2 * g]
    d = th[:, :g].numpy()
    ph = np.degrees(th[:, 3 * g].numpy())
    print(
        f"{step:4d} sup {terms['supervised']:.4f} rec {terms['reconstruction']:.4f} "
        f"shift0 mean {sh[:, 0].mean():+.2f} [{sh[:, 0].min():+.2f},{sh[:, 0].max():+.2f}] err {np.abs(sh[:, 0] - tsh[:, 0]).mean():.2f} Hz "
        f"damp0 {d[:, 0].mean():.1f} phi0err {np.degrees(np.abs(np.angle(np.exp(1j * (np.radians(ph) - vt[:, 3 * g]))))).mean():.1f} deg  {time.perf_counter() - t0:.0f}s",
        flush=True,
    )


log(0)
for step in range(1, steps + 1):
    f, t, a = draw(32, train_rng)
    ww = w
    if mode.startswith("ramp"):
        warm = int(mode[4:])
        ww = w * min(1.0, max(0.0, (step - warm) / warm))
    if "broad" in mode:
        b = float(mode.split("broad")[1])
        loss, _ = physics_loss(model, torch.as_tensor(f), t, a, 0.0, 8)
        st = problem_in(model.stage_problem(b), torch.float32)
        yb = data_window(st, torch.as_tensor(f[:8]).to(torch.complex128))
        _, rel = least_squares_amplitudes(st, model.network_theta(torch.as_tensor(f[:8])), yb)
        loss = loss + ww * rel.mean()
    else:
        loss, _ = physics_loss(model, torch.as_tensor(f), t, a, ww, 8)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    if step % every == 0:
        log(step)
