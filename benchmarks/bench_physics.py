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
``FIT_PRESETS["simulated"]`` (batched), on the same spectra, and run first: after each polished
model's summary, per spectrum, the share of spectra where the polish ends at a lower, the same
(relative difference <= 1e-3) or a higher cost than the fit's (another local minimum), with
both mean absolute errors on each share; and, per estimate, the counts beyond 3 CRLB in both,
in the polish only and in the fit only, McNemar's exact p and the 95 % interval of the
difference of the shares (spectra resampled). MAE over the 20 metabolites (``Mac`` left out), in the
simulator's amplitude units (``[0, 1]``). For ``K = 0`` the calibration of the network's own SD
(:attr:`scaloquant.models.physics.PhysicsEstimate.network_sd`) is printed too: the share of
estimates within 1 and 2 SDs of the truth (68 % and 95 % for a calibrated Gaussian SD).

Usage: ``python benchmarks/bench_physics.py CKPT [CKPT ...] [--n 200] [--snr 30] [--seed 7]
[--polish 0 5 20] [--threads 1] [--prior full|representable] [--simulation invivo|default]
[--no-fit] [--noisy-only] [--quantify N [N ...] [--quantify-fit-n 32] [--lcmodel-n 16]
[--lcmodel-workers 2] [--device cpu|cuda] [--suffix .nii] [--profile DIR]]``

``--quantify N [N ...]``: end to end instead (file in, results out): ``scaloquant quantify`` on
an MRSI-like NIfTI-MRS file of ``N`` default-simulator spectra at ``--snr`` (one file per ``N``,
the first ``N`` of the same spectra) for every checkpoint and every ``--polish`` K (and on a
file of one spectrum: the fixed start-up cost), ``scaloquant fit --preset simulated`` on its
first ``--quantify-fit-n`` and LCModel on its first ``--lcmodel-n``, each a new process with
``--threads``; wall and CPU seconds, spectra/s and the ratios (``main_end_to_end``); with
``--profile DIR`` each quantify run on the largest ``N`` once more under cProfile (where its
time goes, by function).
"""

from __future__ import annotations

import argparse
import compileall
import math
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binomtest

from scaloquant.evaluate import paired_bootstrap
from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.evaluation import evaluate
from scaloquant.io import default_basis
from scaloquant.models import load_model
from scaloquant.models.physics import EXACT_RELATIVE_COST
from scaloquant.models.physics_truth import default_truth, invivo_truth
from scaloquant.physics.macromolecules import LCMODEL_COMPONENTS
from scaloquant.simulate import BaselineConfig, SimulationConfig, drawn_parameters, simulate_dataset
from scaloquant.simulate.draws import draw_invivo
from scaloquant.simulate.invivo import render_invivo
from scaloquant.simulate.linewidths import basis_lines
from scaloquant.simulate.prior import MEASURED_MM_NAMES, InvivoPrior
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


def _metabolites(names):
    """``names`` less the macromolecules and lipids, measured (``Mac``) or parametric (LCModel's
    MM09-MM20, Lip09-Lip20, which the ``invivo`` models add): the 20 metabolites. Until session
    22 the lipids were counted in (23 amplitudes), though this docstring's header left them out;
    :func:`_summary` prints that figure too."""
    return [x for x in names if x not in MEASURED_MM_NAMES and x not in LCMODEL_COMPONENTS]


def _summary(label, names, est, sd, truth, seconds, n, network_sd=None):
    unit = truth.get("unit", " mM")
    metabolites = _metabolites(truth["names"])
    e = _columns(names, est, metabolites)
    t = _columns(truth["names"], truth["amplitudes"], metabolites)
    s = _columns(names, sd, metabolites)
    mae = np.abs(e - t).mean()
    with_lipids = [x for x in truth["names"] if x != "Mac"]
    if len(with_lipids) > len(metabolites):  # the figure printed before session 22
        e_all = _columns(names, est, with_lipids)
        t_all = _columns(truth["names"], truth["amplitudes"], with_lipids)
        mae_text = f"{mae:<7.4g}{unit} ({len(with_lipids)} with the lipids {np.abs(e_all - t_all).mean():.4g})"
    else:
        mae_text = f"{mae:<7.4g}{unit}"
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
        f"  {label:<28} MAE {mae_text}  beyond 3 CRLB {100 * beyond:5.1f} %  "
        f"{1e3 * seconds / n:7.1f} ms/spectrum  slopes: {', '.join(slopes)}{calibration}"
    )


def _estimate_with_cost(model, x, k, noise_var, batch=128):
    """Amplitudes, CRLB SDs ``(n, M)``, the polished model's cost ``(n,)`` (the fit's
    objective, :func:`scaloquant.fit.evaluation.evaluate`, its priors weighed with the noise
    variance ``noise_var`` ``(n,)``) after ``K = k`` and the cost of an exact fit ``(n,)``
    (1e-12 of the data's squared norm)."""
    model.eval()
    problem = model.problem()
    parts = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i : i + batch].to(torch.complex128)
            est = model.estimate(xb, polish_iterations=k)
            y = model.data_window(xb)
            var = torch.as_tensor(noise_var[i : i + batch], dtype=torch.float64)
            cost = evaluate(problem, est.theta, y, var).cost
            # a noiseless spectrum fitted exactly has a cost of rounding size: compare costs
            # above a floor of 1e-12 of the data's (ours: EXACT_RELATIVE_COST)
            floor = EXACT_RELATIVE_COST * y.abs().square().sum(-1)
            parts.append((est.amplitudes, est.sd, cost.clamp_min(floor), floor))
    return (torch.cat(c).numpy() for c in zip(*parts, strict=True))


def _fit_cost(model, fit, x):
    """The cost ``(n,)`` of the fit's parameters (``fit``: a per-metabolite
    :class:`~scaloquant.fit.FitResult` of FIDs ``x`` ``(n, N)``) in ``model``'s problem (the same
    model, the priors weighed with the fit's noise variance, as the polish's cost), so that both
    are measured alike."""
    problem = model.problem()
    sl = problem.slices()
    col = [list(fit.names).index(m) for m in model.metabolites]
    counts = problem.group_matrix.sum(0)
    theta = torch.zeros(len(x), problem.size, dtype=torch.float64)
    for key, values in (("damping", fit.damping_per_s), ("shift", fit.shift_hz)):
        theta[:, sl[key]] = torch.as_tensor(np.asarray(values)[:, col]) @ problem.group_matrix
        theta[:, sl[key]] /= counts
    theta[:, sl["phase0"]] = torch.as_tensor(np.array(fit.phase0_rad))[:, None]
    theta[:, sl["phase1"]] = torch.as_tensor(np.array(fit.phase1_rad_per_ppm))[:, None]
    y = model.data_window(x)
    var = torch.as_tensor(np.asarray(fit.noise_sd) ** 2, dtype=torch.float64)
    return evaluate(problem, theta, y, var, derivatives=False).cost.numpy()


def _pairing(cost, floor, fit, amps, names, truth):
    """Per spectrum against the fit (``fit``: its cost and amplitudes, same spectra): where the
    polish ends at a lower, the same (relative difference <= 1e-3) or a higher cost, i.e. in
    another local minimum, and the two mean absolute errors there."""
    metabolites = _metabolites(truth["names"])
    t = _columns(truth["names"], truth["amplitudes"], metabolites)
    e_model = np.abs(_columns(names, amps, metabolites) - t).mean(1)
    e_fit = np.abs(_columns(fit["names"], fit["amplitudes"], metabolites) - t).mean(1)
    fit_cost = np.maximum(fit["cost"], floor)
    rel = (cost - fit_cost) / fit_cost
    parts = []
    for label, mask in (
        ("lower", rel < -1e-3),
        ("same", np.abs(rel) <= 1e-3),
        ("higher", rel > 1e-3),
    ):
        if mask.any():
            parts.append(
                f"{label} {100 * mask.mean():.0f} % (MAE {e_model[mask].mean():.4g} vs "
                f"fit {e_fit[mask].mean():.4g})"
            )
    print(f"    cost against the fit's, per spectrum: {'; '.join(parts)}")


def _beyond_pairing(names, amps, sd, fit, truth):
    """Per estimate against the fit (``fit``: its amplitudes and CRLB SDs, same spectra): more
    than 3 CRLB SDs from the truth in both, in the polish only or in the fit only; McNemar's
    exact test on the discordant estimates (``binomtest``: the two only-counts equally likely),
    and the 95 % paired bootstrap interval of the difference of the shares (polish - fit), the
    spectra resampled (:func:`scaloquant.evaluate.paired_bootstrap`: the estimates of one
    spectrum are not independent)."""
    metabolites = _metabolites(truth["names"])
    t = _columns(truth["names"], truth["amplitudes"], metabolites)

    def beyond(source_names, a, s):
        err = np.abs(_columns(source_names, a, metabolites) - t)
        return err > 3 * _columns(source_names, s, metabolites)

    mine, theirs = beyond(names, amps, sd), beyond(fit["names"], fit["amplitudes"], fit["sd"])
    only_mine, only_fit = int((mine & ~theirs).sum()), int((theirs & ~mine).sum())
    p = binomtest(only_mine, only_mine + only_fit).pvalue if only_mine + only_fit else 1.0
    # the share of each method is the mean absolute "error" of its indicators against 0
    boot = paired_bootstrap(
        np.zeros(mine.shape),
        mine.astype(float),
        theirs.astype(float),
        rng=np.random.default_rng(0),
        metric="mae",
    )
    print(
        f"    beyond 3 CRLB against the fit's, per estimate: both {int((mine & theirs).sum())}, "
        f"polish only {only_mine}, fit only {only_fit} (McNemar exact p {p:.2g}); difference "
        f"{100 * boot.mean_diff:+.2f} % points, 95 % interval over spectra "
        f"[{100 * boot.mean_low:+.2f}, {100 * boot.mean_high:+.2f}]"
    )


def _models_on(models, params_truth, fids, polish, n, unit=" mM", fit=None):
    """Print every model's parameter errors and, for each ``K``, its amplitude summary (with
    ``fit``, the per-metabolite fit's result on the same spectra, the pairing with it)."""
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
            if k and fit is not None:
                fit_var = np.asarray(fit.noise_sd) ** 2
                amps, sd, cost, floor = _estimate_with_cost(model, x, k, fit_var)
            else:
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
            if k and fit is not None:
                paired = {
                    "names": fit.names,
                    "amplitudes": fit.amplitudes,
                    "sd": fit.crlb_sd,
                    "cost": _fit_cost(model, fit, x),
                }
                _pairing(cost, floor, paired, amps, model.metabolites, truth)
                _beyond_pairing(model.metabolites, amps, sd, paired, truth)


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
    return result


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

    sets = [("noiseless", noiseless.fids), (f"SNR {args.snr:g}", noisy.fids)]
    for label, fids in sets[1:] if args.noisy_only else sets:
        print(f"{label}: {args.n} default-simulator spectra (seed {args.seed})")
        fit = None
        if not args.no_fit:
            preset = args.fit_preset or "simulated"
            fit = _fit(f"fit ({preset})", fids, basis, FIT_PRESETS[preset], truth, args.n)
        _models_on(models, params_truth, fids, args.polish, args.n, unit="", fit=fit)


def _cli(
    args: list[str], threads: int, device: str = "cpu", profile: Path | None = None
) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, of the child process) of ``scaloquant ARGS
    --threads T --device D`` in a new process (start and imports included: what a user waits for). On a
    machine shared with other work the CPU seconds are the steadier figure: the wall time
    grows with the others' load. ``profile``: run it under cProfile, its statistics written there
    (the main thread's; the profiler's overhead makes these times longer)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    runner = ["-m", "cProfile", "-o", str(profile)] if profile else []
    subprocess.run(
        [sys.executable, *runner, "-m", "scaloquant", *args]
        + ["--threads", str(threads), "--device", device],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _profiled(model: Path, n: int, data_file: Path, out: Path, args, name: str, k: int) -> None:
    """``quantify`` on the file of ``n`` spectra once more, under cProfile: its statistics
    written to ``--profile``'s folder, its 25 costliest functions by cumulative time and 15 by
    own time printed."""
    folder = Path(args.profile)
    folder.mkdir(parents=True, exist_ok=True)
    stats_path = folder / f"quantify_{name}_K{k}_N{n}.pstats"
    cmd = [
        "quantify",
        str(data_file),
        "--model",
        str(model),
        "--out",
        str(out),
        "--max-figures",
        "0",
    ]
    wall, _ = _cli(cmd, args.threads, args.device, profile=stats_path)
    print(f"  under cProfile ({n} spectra, {wall:.1f} s wall): {stats_path}")
    stats = pstats.Stats(str(stats_path))
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)


def _grid_shape(n: int) -> tuple[int, int, int]:
    """An MRSI-like ``(x, y, 1)`` grid of ``n`` voxels: square where ``n`` is a square, else
    ``(n, 1, 1)``."""
    side = math.isqrt(n)
    return (side, side, 1) if side * side == n else (n, 1, 1)


def _rate(label: str, n: int, wall: float, cpu: float) -> float:
    print(
        f"  {label}: {wall:.1f} s wall, {cpu:.1f} s CPU; {n / wall:.1f} spectra/s of wall time, "
        f"{n / cpu:.1f} per CPU second"
    )
    return n / wall


def main_end_to_end(args) -> None:
    """``--quantify N [N ...]``: file in, results out, in one run with the fit and LCModel on
    the same spectra. The first ``N`` of the same default-simulator spectra at ``--snr``
    written as one MRSI-like NIfTI-MRS file per ``N`` (a square grid where ``N`` is a square);
    ``scaloquant quantify FILE --model CKPT --max-figures 0`` for every checkpoint at every
    ``--polish`` K (a copy of the checkpoint with ``polish_iterations = K``), first on a file of
    1 spectrum (the fixed start-up cost: imports, checkpoint, reading and writing), then on each
    N (the rate end to end, and the rate with the start-up cost taken off: how the rate grows
    with N); ``scaloquant fit FILE --preset simulated`` on the first
    ``--quantify-fit-n``, and LCModel on the first ``--lcmodel-n`` (``--lcmodel-workers``
    processes; ``benchmarks/bench_fit_engine.py``'s ``lcmodel_speed``), each with
    ``--threads``; then the speed of each quantify run as a multiple of the fit's and
    LCModel's. ``--device`` for quantify and the fit (LCModel runs on the CPU); ``--suffix
    .nii`` writes the files uncompressed (on a GPU, gzip's single-threaded inflate of a large
    file takes longer than the whole quantification)."""
    from scaloquant.io import write_nifti_mrs
    from scaloquant.models.checkpoint import CHECKPOINT_KEY

    basis = default_basis()
    config = replace(SimulationConfig(), snr=(args.snr, args.snr))
    sizes = list(dict.fromkeys(args.quantify))
    n_all = max(sizes)
    data = next(simulate_dataset(basis, config, n_all, args.seed, chunk_size=n_all))

    def fid(samples, shape):
        return FID(
            samples=samples.reshape(*shape, -1),
            dwell_time_s=basis.dwell_time_s,
            spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
            ppm_reference=basis.ppm_reference,
        )

    # an installed package has its modules compiled to bytecode (pip does it at install); a
    # source tree run with PYTHONDONTWRITEBYTECODE set (as these machines do) compiles all of
    # scaloquant's modules in every process: ~0.1 s of a start-up that users do not pay
    # (docs/history/physics-models-log.md "quantify's start-up (session 17, `quant17`)")
    import scaloquant

    compiled = compileall.compile_dir(Path(scaloquant.__file__).parent, quiet=1)
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {
            n: write_nifti_mrs(tmp / f"all{n}{args.suffix}", fid(data.fids[:n], _grid_shape(n)))
            for n in sizes
        }
        one = write_nifti_mrs(tmp / f"one{args.suffix}", fid(data.fids[:1], (1, 1, 1)))
        grids = ", ".join(f"{' x '.join(map(str, _grid_shape(n)))} voxels" for n in sizes)
        print(
            f"end to end: {' and '.join(map(str, sizes))} default-simulator spectra at SNR "
            f"{args.snr:g}, one NIfTI-MRS file each ({grids}, {args.suffix}), --threads "
            f"{args.threads}, --device {args.device}, "
            f"load average {os.getloadavg()[0]:.1f}; scaloquant's modules compiled to bytecode "
            f"first, as an install does ({'done' if compiled else 'failed: start-up includes it'})"
        )
        for i, path in enumerate(args.checkpoints):
            for k in args.polish:
                ckpt = torch.load(path, weights_only=True)
                ckpt[CHECKPOINT_KEY]["quantifier"]["polish_iterations"] = k
                copy = tmp / f"model{i}_k{k}.ckpt"
                torch.save(ckpt, copy)
                name = ckpt[CHECKPOINT_KEY]["quantifier"]["model"]
                times = {}
                for n, data_file in ((1, one), *files.items()):
                    out = tmp / f"out{i}_k{k}_{n}"
                    cmd = ["quantify", str(data_file), "--model", str(copy), "--out", str(out)]
                    times[n] = _cli([*cmd, "--max-figures", "0"], args.threads, args.device)
                w1, c1 = times[1]
                print(
                    f"  scaloquant quantify --model {name} K={k}: start-up (1 spectrum) "
                    f"{w1:.1f} s wall, {c1:.1f} s CPU"
                )
                for n in sizes:
                    wn, cn = times[n]
                    key = f"{name} K={k}" + (f" N={n}" if len(sizes) > 1 else "")
                    rates[key] = _rate(f"  {n} spectra", n, wn, cn)
                    if n > 1 and wn > w1 and cn > c1:
                        _rate("  start-up taken off", n - 1, wn - w1, cn - c1)
                if args.profile:
                    _profiled(copy, n_all, files[n_all], tmp / f"prof{i}_k{k}", args, name, k)
        n_fit = min(args.quantify_fit_n, n_all)
        if n_fit:
            part = write_nifti_mrs(
                tmp / f"part{args.suffix}", fid(data.fids[:n_fit], (n_fit, 1, 1))
            )
            cmd = ["fit", str(part), "--preset", "simulated", "--out", str(tmp / "fit")]
            wall, cpu = _cli([*cmd, "--max-figures", "0"], args.threads, args.device)
            rates["fit"] = _rate(
                f"scaloquant fit --preset simulated ({n_fit} of them)", n_fit, wall, cpu
            )
    if args.lcmodel_n:
        from bench_fit_engine import lcmodel_speed

        rate, note = lcmodel_speed(data, basis, min(args.lcmodel_n, n_all), args.lcmodel_workers)
        if rate is None:
            print(f"  {note}")
        else:
            print(
                f"  LCModel ({min(args.lcmodel_n, n_all)} of them, {note}): {rate:.2f} spectra/s of wall time"
            )
            rates["LCModel"] = rate
    for ref in ("fit", "LCModel"):
        if ref in rates:
            ratios = ", ".join(
                f"{label} {rate / rates[ref]:.0f}x"
                for label, rate in rates.items()
                if " K=" in label
            )
            print(f"  speed of wall time against {ref}'s: {ratios}")


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
        "--noisy-only",
        action="store_true",
        help="--simulation default: the --snr set alone (the same spectra, no noiseless set)",
    )
    ap.add_argument("--simulation", choices=("invivo", "default"), default="invivo")
    ap.add_argument(
        "--prior",
        choices=("full", "representable"),
        default="full",
        help="representable: without residual water, eddy-current phase and baseline humps, "
        "the terms the fit's model lacks (it has a spline baseline, no water, no eddy currents)",
    )
    ap.add_argument(
        "--quantify",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="end to end instead: scaloquant quantify on a file of N spectra, one file per N "
        "(and fit and LCModel)",
    )
    ap.add_argument("--quantify-fit-n", type=int, default=32)
    ap.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="--quantify: quantify's and the fit's",
    )
    ap.add_argument(
        "--suffix",
        choices=(".nii.gz", ".nii"),
        default=".nii.gz",
        help="--quantify: the files' format, compressed (the default) or not",
    )
    ap.add_argument(
        "--profile",
        default=None,
        metavar="DIR",
        help="--quantify: each quantify run on the largest N once more under cProfile, "
        "its statistics written to DIR and its costliest functions printed",
    )
    ap.add_argument("--lcmodel-n", type=int, default=16, help="--quantify: LCModel's spectra")
    ap.add_argument("--lcmodel-workers", type=int, default=2)
    ap.add_argument(
        "--fit-preset",
        choices=sorted(FIT_PRESETS),
        help="--simulation default: the fit's preset of the fit arm and of the models' polish "
        "(default: simulated for the fit arm, each model its checkpoint's), e.g. simulated "
        "for a per-metabolite model saved with simulated-plain",
    )
    args = ap.parse_args()
    if args.quantify:
        main_end_to_end(args)
        return
    torch.set_num_threads(args.threads)
    models = [load_model(path).quantifier for path in args.checkpoints]
    if args.fit_preset:
        for model in models:
            model.polish_with(FIT_PRESETS[args.fit_preset])
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
    params = draw_invivo(prior, basis.names, args.n, rng, basis_lines(basis, prior))
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
