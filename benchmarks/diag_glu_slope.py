"""Why Glu's slope of estimate against truth is below 0.95 for the fit on 600 SNR-30 spectra of
the default simulator (issue 13's done-when 1; docs/history/physics-models-log.md, "Glu's slope
on larger sets (session 10)").

``--n`` spectra of ``simulate_dataset(default_basis(), SimulationConfig(), n, seed)`` at
``--snr`` (the same draw as ``bench_physics.py --simulation default``), fitted with
``FIT_PRESETS["simulated"]``; every figure below is on these same spectra (paired). Slopes:
:func:`scaloquant.evaluate.metrics.slope` (least squares with intercept). Printed:

1. per fit (``--fits``: ``simulated``; ``simulated-plain``, its spread priors off;
   ``unconstrained``, ``simulated`` with the amplitudes solved by unconstrained instead of
   non-negative least squares in every evaluation, a diagnostic only): MAE over the 20
   metabolites, slopes of NAA, tCr, tCho, Ins, Glu and Glx (Glu + Gln), Glu's estimates at
   exactly 0, the correlation of Glu's error with Gln's and GABA's, the 95 % bootstrap interval
   of Glu's slope (spectra resampled), CPU seconds;
2. for the first fit, Glu by truth bin of 0.1: bias, SD, estimates at 0, mean CRLB, and the
   bin's share of ``slope - 1`` (``sum (t - mean t)(e - mean e) / sum (t - mean t)^2`` over
   its spectra, ``e`` the error: the bins add up to ``slope - 1``); slopes above and below
   truth levels; the bias in CRLB units of Glu, Gln and GABA by truth below / above 0.15;
3. amplitudes solved again at fixed lineshapes (the nonlinear parameters held): at the fit's
   (NNLS reproduces the fit; unconstrained) and at the true ones (NNLS; unconstrained): what
   the non-negativity costs without and with the lineshapes estimated;
4. the slope expected under the Cramér-Rao bound at the truth (``validate_fit_crlb.py``'s
   :func:`bound_at_truth`, the fit's model with its priors, the true noise), over ``--draws``
   draws: an unbiased Gaussian estimator (Glu's bound), the same clipped at 0, and the
   non-negative least squares of the linear model whose information is the inverse of the
   amplitudes' bound (all 21 amplitudes, so the neighbours' clipping is in it); mean and 95 %
   range;
5. the fitted dampings: error by amplitude truth (all metabolites), the spectrum's mean damping
   error (what the spread priors hold each damping about), Glu's mean damping error and
   relative amplitude error above truth 0.3 and the regression slope between them.

Run (about 4 CPU-minutes for the three fits of 600 spectra, one thread):
``python benchmarks/diag_glu_slope.py [--n 600] [--seed 7] [--snr 30] [--draws 200]
[--fits simulated simulated-plain unconstrained] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch

from bench_physics import SLOPES
from scaloquant.evaluate.metrics import slope
from scaloquant.fit import batched, evaluation, fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.evaluation import evaluate, w_inner
from scaloquant.fit.problem import data_window, make_problem
from scaloquant.fit.spectra import prepared_on_grid
from scaloquant.fit.start import start_theta
from scaloquant.io import default_basis
from scaloquant.simulate import SimulationConfig, simulate_dataset
from scaloquant.types import FID
from validate_fit_crlb import bound_at_truth

QUANTITIES = {**SLOPES, "Glx": ("Glu", "Gln")}


@contextlib.contextmanager
def unconstrained_amplitudes():
    """Within: every evaluation of the batched fit solves its amplitudes by unconstrained least
    squares (``evaluation.nnls_gram`` replaced; the same ridge), all of them passive."""
    original = evaluation.nnls_gram

    def solve(gram, h, passive=None):
        eye = torch.eye(h.shape[-1], dtype=gram.dtype, device=gram.device)
        ridge = 1e-13 * torch.diagonal(gram, dim1=-2, dim2=-1).amax(-1).clamp_min(1e-300)
        x = torch.linalg.solve(gram + ridge[:, None, None] * eye, h)
        return x, torch.ones_like(h, dtype=torch.bool)

    evaluation.nnls_gram = solve
    try:
        yield
    finally:
        evaluation.nnls_gram = original


def summed(names, values, parts):
    return values[:, [list(names).index(p) for p in parts]].sum(1)


def bootstrap_slope(t, e, rng, n_boot=2000):
    idx = rng.integers(0, t.size, (n_boot, t.size))
    return np.percentile(slope(t[idx].T, e[idx].T), [2.5, 97.5])


def fit_summary(label, names, est, truth, seconds, rng):
    err = est - truth
    metabolites = [j for j, n in enumerate(names) if n != "Mac"]
    parts = []
    for key, members in QUANTITIES.items():
        t, e = summed(names, truth, members), summed(names, est, members)
        parts.append(f"{key} {slope(t[:, None], e[:, None])[0]:.3f}")
    g, q, b = (names.index(n) for n in ("Glu", "Gln", "GABA"))
    low, high = bootstrap_slope(truth[:, g], est[:, g], rng)
    print(
        f"  {label:<14} MAE {np.abs(err[:, metabolites]).mean():.4f}  slopes {', '.join(parts)}"
        f"  (Glu 95 % [{low:.3f}, {high:.3f}])  Glu at 0: {np.sum(est[:, g] == 0)}"
        f"  corr(Glu err, Gln err) {np.corrcoef(err[:, g], err[:, q])[0, 1]:+.2f}"
        f", GABA {np.corrcoef(err[:, g], err[:, b])[0, 1]:+.2f}  {seconds:.0f} CPU-s"
    )


def bins_table(names, result, truth):
    g = names.index("Glu")
    t, e = truth[:, g], result.amplitudes[:, g]
    err = e - t
    dt = t - t.mean()
    share = dt * (err - err.mean()) / (dt @ dt)
    print(f"  Glu slope - 1 = {share.sum():+.4f}; by truth bin:")
    print(f"  {'truth':>9} {'n':>4} {'bias':>8} {'SD':>7} {'at 0':>5} {'CRLB':>7} {'share':>8}")
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(t, edges) - 1, 0, 9)
    for k in range(10):
        s = which == k
        print(
            f"  {edges[k]:.1f}-{edges[k + 1]:.1f} {s.sum():4d} {err[s].mean():+8.4f} "
            f"{err[s].std():7.4f} {np.sum(e[s] == 0):5d} {result.crlb_sd[s, g].mean():7.4f} "
            f"{share[s].sum():+8.4f}"
        )
    for level in (0.1, 0.2, 0.3):
        above = t > level
        print(
            f"  slope over truth > {level}: {slope(t[above, None], e[above, None])[0]:.3f} "
            f"({above.sum()} spectra); <= {level}: {slope(t[~above, None], e[~above, None])[0]:.3f}"
        )
    for name in ("Glu", "Gln", "GABA"):
        j = names.index(name)
        z = (result.amplitudes[:, j] - truth[:, j]) / result.crlb_sd[:, j]
        weak = truth[:, j] <= 0.15
        print(
            f"  {name}: mean error / CRLB, truth <= 0.15 {z[weak].mean():+.2f} "
            f"({weak.sum()}), above {z[~weak].mean():+.2f}"
        )


def at_fixed_lineshapes(problem, theta, y, noise_var):
    """``(NNLS, unconstrained)`` amplitudes ``(B, M)`` at the nonlinear parameters ``theta``."""
    ev = evaluate(problem, theta, y, noise_var, derivatives=False)
    step = torch.linalg.solve(ev.gram, w_inner(problem, ev.columns, ev.residual)[..., 0])
    return ev.amplitudes.numpy(), (ev.amplitudes + step).numpy()


def fixed_lineshapes(basis, config, result, noisy, truth):
    _, prepared, _ = prepared_on_grid(basis, basis.acquisition, config)
    problem = make_problem(prepared, config)
    y = data_window(problem, torch.as_tensor(noisy.fids, dtype=torch.complex128))
    nv = torch.as_tensor(result.noise_sd**2)
    fitted = SimpleNamespace(
        damping_per_s=np.array(result.damping_per_s),
        shift_hz=np.array(result.shift_hz),
        gauss_per_s2=np.array(result.gauss_by_metabolite_per_s2),
        phase0_rad=np.array(result.phase0_rad),
        phase1_rad_per_ppm=np.array(result.phase1_rad_per_ppm),
        lineshape_kernel=np.ones((y.shape[0], 1)),
    )
    theta = batched._theta_of(problem, fitted, slice(None))
    true_start = {k: noisy.parameters[k] for k in ("damping_per_s", "shift_hz")}
    zero_shift = replace(config, initial_shift="zero")
    theta_true = start_theta(problem, zero_shift, y, basis.dwell_time_s, true_start)
    g = basis.names.index("Glu")
    metabolites = [j for j, n in enumerate(basis.names) if n != "Mac"]
    print("  amplitudes solved again, lineshapes held: Glu slope, MAE")
    for label, th in (("fit's", theta), ("true", theta_true)):
        for kind, a in zip(
            ("NNLS", "unconstrained"), at_fixed_lineshapes(problem, th, y, nv), strict=True
        ):
            mae = np.abs(a - truth)[:, metabolites].mean()
            at0 = np.sum(a[:, g] <= 0)
            print(
                f"    {label:<6} lineshapes, {kind:<13} Glu {slope(truth[:, g, None], a[:, g, None])[0]:.3f}"
                f"  MAE {mae:.4f}  Glu <= 0: {at0}"
            )


def expected_slopes(basis, config, noiseless, noise_sd, truth, draws, rng):
    n, m = truth.shape
    g = basis.names.index("Glu")
    spectral_sd = noise_sd * np.sqrt(basis.n_points)
    cov = np.stack(
        [
            bound_at_truth(basis, noiseless.take(slice(i, i + 1)), float(spectral_sd[i]), config)
            for i in range(n)
        ]
    )
    sd = np.sqrt(cov[:, g, g])
    t = truth[:, g]
    gauss = t + sd * rng.standard_normal((draws, n))
    info = torch.linalg.inv(torch.as_tensor(cov))
    info = 0.5 * (info + info.mT)
    chol = torch.linalg.cholesky(info)
    tt = torch.as_tensor(truth)[..., None]
    nnls = []
    for _ in range(draws):
        z = torch.as_tensor(rng.standard_normal((n, m, 1)))
        a, _ = evaluation.nnls_gram(info, (info @ tt + chol @ z)[..., 0])
        nnls.append(a[:, g].numpy())
    print(
        f"  expected Glu slope under the CRLB at the truth (mean Glu bound {sd.mean():.4f}; "
        f"{draws} draws, mean [95 % range]):"
    )
    for label, est in (
        ("unbiased Gaussian", gauss),
        ("the same clipped at 0", np.maximum(gauss, 0)),
        ("NNLS of the linear model", np.array(nnls)),
    ):
        s = slope(np.repeat(t[None, :, None], draws, 0), est[..., None])[:, 0]
        print(
            f"    {label:<26} {s.mean():.3f} [{np.percentile(s, 2.5):.3f}, "
            f"{np.percentile(s, 97.5):.3f}]"
        )


def dampings(names, result, truth, params):
    err = result.damping_per_s - params["damping_per_s"]
    active = result.amplitudes > 0
    print("  damping error (1/s) by amplitude truth, all metabolites with an amplitude > 0:")
    for lo, hi in ((0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 0.7), (0.7, 1.0)):
        s = active & (truth >= lo) & (truth < hi)
        print(f"    {lo:.1f}-{hi:.1f}: mean {err[s].mean():+.2f}, median {np.median(err[s]):+.2f}")
    mean_err = (result.damping_per_s.mean(1) - params["damping_per_s"].mean(1)).mean()
    g = names.index("Glu")
    s = truth[:, g] > 0.3
    rel = result.amplitudes[s, g] / truth[s, g] - 1
    per = np.polyfit(err[s, g], rel, 1)[0]
    print(
        f"  the spectrum's mean damping (21 signals) fitted - true {mean_err:+.2f}; Glu over "
        f"truth 0.3: damping error {err[s, g].mean():+.2f}, relative amplitude error "
        f"{rel.mean():+.4f}, {per:+.4f} per 1/s of damping error"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--fits",
        nargs="+",
        default=["simulated", "simulated-plain", "unconstrained"],
        choices=["simulated", "simulated-plain", "unconstrained"],
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    basis = default_basis()
    config = SimulationConfig()
    noiseless = next(simulate_dataset(basis, config, args.n, args.seed, chunk_size=args.n))
    noisy_config = replace(config, snr=(args.snr, args.snr))
    noisy = next(simulate_dataset(basis, noisy_config, args.n, args.seed, chunk_size=args.n))
    truth = noisy.amplitudes
    names = list(basis.names)
    fid = FID(noisy.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    rng = np.random.default_rng(0)
    print(f"{args.n} default-simulator spectra, seed {args.seed}, SNR {args.snr:g}")
    results = {}
    for label in args.fits:
        preset = "simulated" if label == "unconstrained" else label
        start = time.process_time()
        with unconstrained_amplitudes() if label == "unconstrained" else contextlib.nullcontext():
            results[label] = fit_spectra(fid, basis, FIT_PRESETS[preset])
        seconds = time.process_time() - start
        fit_summary(label, names, results[label].amplitudes, truth, seconds, rng)
    main_label = args.fits[0]
    main_config = FIT_PRESETS["simulated" if main_label == "unconstrained" else main_label]
    result = results[main_label]
    print(f"{main_label}:")
    bins_table(names, result, truth)
    fixed_lineshapes(basis, main_config, result, noisy, truth)
    expected_slopes(
        basis, main_config, noiseless, noisy.parameters["noise_sd"], truth, args.draws, rng
    )
    dampings(names, result, truth, noisy.parameters)


if __name__ == "__main__":
    main()
