"""Speed and accuracy of the linear-combination fit, against a named peer in the same run.

Peer: FSL-MRS's fitting would be the natural one, but FSL-MRS is distributed through conda, not
PyPI (``pip install fsl_mrs`` finds no distribution), so it cannot be installed here. The peer is
therefore the textbook alternative to variable projection: a **full nonlinear least-squares
fit** in which the amplitudes are ordinary bounded parameters beside the damping, shift and
phases (``scipy.optimize.least_squares``, trust-region reflective, the same model, the same
analytic derivatives and the same starting values, amplitudes started from NNLS), without
variable projection, continuation or restarts. LCModel, for scale, takes about 1.3 s per
spectrum on this machine (figure from the issue; not run here).

Measured on spectra of the default simulator (ISMRM 2016 basis, 21 metabolites x 2048 points,
``SimulationConfig()``: amplitudes U[0, 1], damping U[0, 15] 1/s, shift U[-3, 3] Hz), once
noiseless and once with noise at ``--snr`` (the simulator's SNR definition):

1. spectra per second of ``fit_spectra`` with 1 process and with ``--workers`` processes, and of
   the peer (1 process) on the first ``--peer-n`` of the same spectra; for 1 process also per
   second of CPU time, which a busy shared machine disturbs less than the wall clock;
2. the mean absolute error of the amplitudes of each (the issue's target for the fit: < 1e-3),
   and the share of spectra whose MAE exceeds 1e-3 (fits caught in a local minimum);
3. the path of ``quantify --refine``, 1 process: :func:`fit_given_amplitudes` (one damping and
   shift for all metabolites, its default) around a stand-in for a network's estimate (the
   truth plus Gaussian errors of SD ``--start-error-sd``, clipped at 0: SD 0.09 gives a MAE of
   about 0.07, the ``cpu``-preset spectrum CNN's), then ``fit_spectra`` started from it
   (:meth:`FitStart.from_result`) without the continuation stages, timed together.

Usage: ``python benchmarks/bench_fit.py [--n 40] [--workers 2] [--peer-n 10] [--snr 30] [--seed 1]
[--start-error-sd 0.09]``
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
from scipy.optimize import least_squares, nnls
from threadpoolctl import threadpool_limits

from scaloquant.fit import FitConfig, FitStart, fit_given_amplitudes, fit_spectra
from scaloquant.fit.model import Design, stack_complex
from scaloquant.fit.start import starting_parameters
from scaloquant.io import default_basis
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID


def _peer_one(design: Design, y: np.ndarray, start) -> np.ndarray:
    """The peer on one spectrum window ``y`` ``(K,)``: amplitudes and nonlinear parameters in
    one bounded least-squares problem; returns the amplitudes ``(M,)``."""
    m, lay, config = len(design.names), design.layout, design.config
    lo_p, hi_p = design.bounds(float(np.mean(start.shift_hz)))
    theta0 = np.clip(start.to_vector(lay), lo_p, hi_p)
    ys = stack_complex(y)
    a0 = nnls(stack_complex(design.columns(start)[0]), ys)[0]

    def split(x):
        return x[:m], start.with_vector(lay, x[m:])

    def fun(x):
        a, p = split(x)
        return ys - stack_complex(design.columns(p)[0] @ a)

    def jac(x):
        a, p = split(x)
        cols, z, phase = design.columns(p)
        derivs = design.model_derivatives(a, z, phase, cols)
        return -stack_complex(np.concatenate([cols, derivs], axis=1))

    opt = least_squares(
        fun,
        np.concatenate([a0, theta0]),
        jac=jac,
        bounds=(np.concatenate([np.zeros(m), lo_p]), np.concatenate([np.full(m, np.inf), hi_p])),
        method="trf",
        x_scale="jac",
        ftol=config.tolerance,
        xtol=config.tolerance,
        gtol=config.tolerance,
        max_nfev=20 * config.max_evaluations,
    )
    return opt.x[:m]


def peer_full_nlls(fid: FID, basis, config: FitConfig) -> np.ndarray:
    """The peer on every spectrum of ``fid`` ``(B, N)``, same starts as ours: ``(B, M)``."""
    design = Design(basis, config)
    data = design.data_window(fid.samples)
    starts = starting_parameters(design, data, None, (data.shape[0],))
    with threadpool_limits(limits=1, user_api="blas"):
        return np.array([_peer_one(design, y, s) for y, s in zip(data, starts, strict=True)])


def report(
    name: str,
    seconds: float,
    n: int,
    amplitudes: np.ndarray,
    truth: np.ndarray,
    cpu_seconds: float | None = None,
) -> float:
    mae = np.abs(amplitudes - truth).mean(axis=1)
    rate = n / seconds
    cpu = "" if cpu_seconds is None else f" ({n / cpu_seconds:6.2f}/CPU-s)"
    print(
        f"{name:44s} {rate:7.2f} spectra/s{cpu:17s} MAE {mae.mean():.2e}   "
        f"median {np.median(mae):.1e}   MAE > 1e-3: {np.count_nonzero(mae > 1e-3)}/{n}"
    )
    return rate


def timed(fn, *args, **kwargs):
    """``(result, wall seconds, CPU seconds of this process)``."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w0, time.process_time() - c0


def refine(fid: FID, basis, estimate: np.ndarray, config: FitConfig):
    """The ``quantify --refine`` path: one damping and shift for all metabolites around the
    estimate (``fit_given_amplitudes``' default), then the full fit started there without
    continuation."""
    given = fit_given_amplitudes(fid, basis, estimate)
    direct = replace(config, continuation_broadening_per_s=())
    return fit_spectra(fid, basis, direct, start=FitStart.from_result(given))


def compare(
    basis, signals, label: str, workers: int, peer_n: int, start_error_sd: float, seed: int
) -> None:
    """Ours with 1 and ``workers`` processes, the refine path, then the peer on the first
    ``peer_n`` spectra."""
    truth = signals.amplitudes
    n = truth.shape[0]
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    config = FitConfig()
    print(f"--- {n} {label} spectra; load average {os.getloadavg()[0]:.1f}")
    one, wall, cpu = timed(fit_spectra, fid, basis, config)
    ours_1 = report("scaloquant fit_spectra, 1 process", wall, n, one.amplitudes, truth, cpu)
    ours_cpu = n / cpu
    errors = np.random.default_rng(seed).normal(0.0, start_error_sd, truth.shape)
    estimate = np.clip(truth + errors, 0.0, None)
    refined, wall, cpu = timed(refine, fid, basis, estimate, config)
    report(
        f"refine from estimate (MAE {np.abs(estimate - truth).mean():.3f}), 1 process",
        wall,
        n,
        refined.amplitudes,
        truth,
        cpu,
    )
    t0 = time.perf_counter()
    many = fit_spectra(fid, basis, config, n_workers=workers)
    report(
        f"scaloquant fit_spectra, {workers} processes",
        time.perf_counter() - t0,
        n,
        many.amplitudes,
        truth,
    )
    assert np.allclose(many.amplitudes, one.amplitudes, rtol=1e-9, atol=1e-12)
    k = min(peer_n, n)
    peer_fid = FID(
        signals.fids[:k], basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference
    )
    peer, wall, cpu = timed(peer_full_nlls, peer_fid, basis, config)
    peer_rate = report("peer: full NLLS (no VARPRO), 1 process", wall, k, peer, truth[:k], cpu)
    print(
        f"ratio scaloquant/peer, 1 process each: {ours_1 / peer_rate:.2f}x spectra/s "
        f"({ours_cpu / (k / cpu):.2f}x per CPU-s); MAE on "
        f"the peer's {k} spectra: scaloquant {np.abs(one.amplitudes[:k] - truth[:k]).mean():.2e}"
        f", peer {np.abs(peer - truth[:k]).mean():.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="spectra fitted by scaloquant")
    parser.add_argument("--workers", type=int, default=2, help="processes of the parallel run")
    parser.add_argument("--peer-n", type=int, default=10, help="spectra fitted by the peer")
    parser.add_argument("--snr", type=float, default=30.0, help="SNR of the noisy set")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--start-error-sd", type=float, default=0.09, help="SD of the stand-in network's errors"
    )
    args = parser.parse_args()

    basis = default_basis()
    print(
        f"default simulator, {basis.n_metabolites} metabolites x {basis.n_points} points, "
        f"seed {args.seed}; {os.cpu_count()} CPUs; target >= 10 spectra/s on 2 cores "
        f"(LCModel: about 1.3 s per spectrum)"
    )
    clean = simulate_batch(basis, SimulationConfig(), args.n, np.random.default_rng(args.seed))
    compare(basis, clean, "noiseless", args.workers, args.peer_n, args.start_error_sd, args.seed)
    noisy_config = SimulationConfig.from_dict({"snr": [args.snr, args.snr]})
    noisy = simulate_batch(basis, noisy_config, args.n, np.random.default_rng(args.seed))
    compare(
        basis, noisy, f"SNR-{args.snr:g}", args.workers, args.peer_n, args.start_error_sd, args.seed
    )


if __name__ == "__main__":
    main()
