"""Does starting an MRSI voxel's fit from its neighbour's result save iterations without
moving the result beyond noise? (issue 12, task ``mrsi``.)

Pairs of tissue-like spectra (:func:`scaloquant.simulate.draws.draw_invivo`, the ``invivo``
simulation prior) stand for neighbouring voxels: voxel A drawn from the prior, its neighbour B
the same tissue with the group shifts moved by N(0, ``--shift-sd``) Hz (B0 across a voxel),
the dampings by N(0, ``--damping-sd``) 1/s, the concentrations by a factor 1 + N(0, 0.05), the
zero-order phase by N(0, 2) degrees, each with its own noise. A is fitted with the ``invivo``
preset (1) from scratch, (2) from B's fit (``FitStart.from_result``) without the continuation
stage. Printed: CPU seconds and LM iterations of each, the amplitude difference of (2) from
(1) in units of (1)'s CRLB, and both fits' errors of the ratios to tCr against the truth.

Usage: ``PYTHONPATH=src python benchmarks/diag_mrsi_neighbour_start.py [--n 128] [--seed 1]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from scaloquant.threads import prefer_command_settings

prefer_command_settings()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scaloquant.fit import FitStart, fit_spectra  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402
from scaloquant.io import default_basis  # noqa: E402
from scaloquant.metabolites import COMBINATIONS, indices_of  # noqa: E402
from scaloquant.simulate.draws import draw_invivo  # noqa: E402
from scaloquant.simulate.invivo import render_invivo  # noqa: E402
from scaloquant.simulate.linewidths import basis_lines  # noqa: E402
from scaloquant.simulate.prior import InvivoPrior  # noqa: E402
from scaloquant.types import FID  # noqa: E402

MAIN = ("tNAA", "tCho", "Glx", "Ins")


def neighbour(params, rng, shift_sd_hz: float, damping_sd_per_s: float):
    """The parameters of a neighbouring voxel of ``params`` (see the module docstring)."""
    b, g = params.shift_hz.shape
    return replace(
        params,
        shift_hz=params.shift_hz + rng.normal(0, shift_sd_hz, (b, g)),
        damping_per_s=np.clip(
            params.damping_per_s + rng.normal(0, damping_sd_per_s, (b, g)), 0.5, None
        ),
        concentrations_mm=params.concentrations_mm
        * (1 + rng.normal(0, 0.05, params.concentrations_mm.shape)),
        phase0_deg=params.phase0_deg + rng.normal(0, 2.0, b),
    )


def timed(fn, *args, **kwargs):
    cpu = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - cpu


def parts(name: str) -> tuple[str, ...]:
    return COMBINATIONS.get(name, (name,))


def amount(values: np.ndarray, names, name: str) -> np.ndarray:
    """The sum of ``values`` ``(B, M)`` over the parts of ``name`` present in ``names``."""
    return values[:, indices_of(parts(name), list(names))].sum(axis=1)


def ratios(result) -> np.ndarray:
    a = result.amplitudes
    return np.stack([amount(a, result.names, n) / amount(a, result.names, "tCr") for n in MAIN], -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shift-sd", type=float, default=1.5)
    parser.add_argument("--damping-sd", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    basis = default_basis()
    rng = np.random.default_rng(args.seed)
    prior = InvivoPrior()
    a_params = draw_invivo(prior, basis.names, args.n, rng, basis_lines(basis, prior))
    b_params = neighbour(a_params, rng, args.shift_sd, args.damping_sd)
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    a = FID(
        render_invivo(basis, a_params, rng, prior_freq_mhz=prior.spectrometer_freq_mhz)[0], *grid
    )
    b = FID(
        render_invivo(basis, b_params, rng, prior_freq_mhz=prior.spectrometer_freq_mhz)[0], *grid
    )
    config = FIT_PRESETS["invivo"]
    cold, cold_cpu = timed(fit_spectra, a, basis, config)
    fit_b, _ = timed(fit_spectra, b, basis, config)
    warm_config = replace(config, continuation_broadening_per_s=())
    warm, warm_cpu = timed(fit_spectra, a, basis, warm_config, start=FitStart.from_result(fit_b))
    # the truth's ratios to tCr, from the drawn concentrations
    conc = a_params.concentrations_mm
    truth = np.stack(
        [amount(conc, basis.names, n) / amount(conc, basis.names, "tCr") for n in MAIN], -1
    )
    print(
        f"{args.n} voxel pairs, neighbour shift SD {args.shift_sd} Hz, damping SD {args.damping_sd}/s"
    )
    for label, r, cpu in (("from scratch", cold, cold_cpu), ("from the neighbour", warm, warm_cpu)):
        err = np.abs(ratios(r) / truth - 1)
        print(
            f"{label:20s} CPU {cpu:6.1f} s, LM iterations per spectrum {r.n_evaluations.mean():5.1f}, "
            "median |ratio/truth - 1| "
            + ", ".join(f"{n} {100 * np.median(e):.1f} %" for n, e in zip(MAIN, err.T, strict=True))
        )
    shown = (*MAIN, "tCr")
    cold_a, warm_a = cold.amplitudes, warm.amplitudes
    sd = {
        n: cold.crlb_sd_of_sum([cold.names[i] for i in indices_of(parts(n), list(cold.names))])
        for n in shown
    }
    z = np.stack(
        [
            np.abs(amount(warm_a, warm.names, n) - amount(cold_a, cold.names, n)) / sd[n]
            for n in shown
        ],
        -1,
    )
    print(
        "|warm - cold| / CRLB of cold: median "
        + ", ".join(f"{n} {np.median(v):.3f}" for n, v in zip((*MAIN, "tCr"), z.T, strict=True))
        + f"; 95th percentile {np.percentile(z, 95):.3f}; max {z.max():.2f}"
    )


if __name__ == "__main__":
    main()
