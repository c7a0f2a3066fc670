"""Speed of ``fit_given_amplitudes`` (amplitudes held, e.g. a network's estimate), global and
per-metabolite grouping, in the same run (the scipy solver's figures, before it was retired, are
in docs/fit.md).

Spectra: ``--n`` noiseless spectra of the default simulator (``--seed``), the amplitudes given
with a uniform +-10 % error (a network's). Prints spectra per second (one torch thread), the
mean absolute shift error against the truth (Hz), the mean ``|phi0|`` (rad; the truth is 0),
the median residual noise SD and the mean LM iterations.

``python benchmarks/bench_fit_given.py [--n 64] [--seed 0]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from scaloquant.fit import FitConfig, fit_given_amplitudes
from scaloquant.io import default_basis
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    basis = default_basis()
    rng = np.random.default_rng(args.seed)
    signals = simulate_batch(basis, SimulationConfig(), args.n, rng)
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    estimate = signals.amplitudes * rng.uniform(0.9, 1.1, signals.amplitudes.shape)
    for label, config in (
        ("global (the default)", FitConfig(grouping="global")),
        ("per metabolite", FitConfig()),
    ):
        t0 = time.perf_counter()
        result = fit_given_amplitudes(fid, basis, estimate, config)
        rate = args.n / (time.perf_counter() - t0)
        shift_error = np.abs(result.shift_hz - signals.parameters["shift_hz"]).mean()
        print(
            f"{label:24s} {rate:6.1f} spectra/s  shift error {shift_error:.3f} Hz  "
            f"|phi0| {np.abs(result.phase0_rad).mean():.4f}  noise SD "
            f"{np.median(result.noise_sd):.4g}  iterations {result.n_evaluations.mean():.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
