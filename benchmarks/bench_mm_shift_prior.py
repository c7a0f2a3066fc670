"""The ``invivo`` preset's MM shift prior (``FitConfig.mm_shift_prior_sd_hz``) against the
preset without it, alternated in one run: the CPU rate, where the iterations go, and how far
the answers move (docs/history/fit-log.md "The MM shift prior's cost and weight (session 29,
mm29)").

Spectra: ``bench_fit_engine.py``'s, seed 1, SNR 30, ``--n`` each: the default simulator's
(``invivo``; the in-vivo model does not match their per-metabolite lineshapes, and 10 % of them
take the adaptive rule's F-test refits) and the tissue-like ones of the ``invivo`` simulation
(``tissue``). Variants (``--variants``):

* ``none``: ``mm_shift_prior_sd_hz=None`` (the preset before session 29);
* ``prior``: ``FIT_PRESETS["invivo"]`` (1.3 Hz since session 29);
* ``unweighted``: the same prior weighed by 1 in the continuation stage and a first pass
  (:func:`scaloquant.fit.stages.prior_weight` patched to return ones), as session 28's
  option was: there the prior's strength scaled with the data's units.

Each round fits every variant once, in an order reversed every other round, on one torch thread;
printed per run and variant: the spectra per CPU-second of every round and their median, and
(first round) each ``batched.solve`` call's spectra, mean and largest iterations (the adaptive
rule's reference fit first, then its refit rounds) and the continuation stage's; then the
answers of each variant against the first's in CRLB SDs (median, largest) and the load average
before and after.

Usage: ``PYTHONPATH=src python benchmarks/bench_mm_shift_prior.py [--n 128] [--rounds 4]
[--variants none,prior,unweighted] [--runs invivo tissue]``
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _timing import timed  # noqa: E402
from scaloquant.fit import batched, fit_spectra, stages  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402

PRESET = FIT_PRESETS["invivo"]
CONFIGS = {
    "none": replace(PRESET, mm_shift_prior_sd_hz=None),
    "prior": PRESET,
    "unweighted": PRESET,
}


def ones_weight(problem, theta, y, region_var, stiffness=None):
    """:func:`stages.prior_weight` as session 28 had it: 1 whatever the data's units."""
    return torch.ones(theta.shape[0], dtype=torch.float64, device=theta.device)


def fit(name: str, fid, basis, record: list | None):
    """One variant's ``fit_spectra`` call; with ``record``, each LM run's ``(site, spectra,
    mean iterations, largest)`` appended to it."""
    saved = (stages.prior_weight, batched.prior_weight, batched.levenberg_marquardt)
    saved_stage = stages.levenberg_marquardt
    if name == "unweighted":
        batched.prior_weight = stages.prior_weight = ones_weight
    if record is not None:

        def recorded(site, solver):
            def run(*args, **kwargs):
                sol = solver(*args, **kwargs)
                its = sol.iterations.cpu().numpy()
                record.append((site, its.size, its.mean(), int(its.max())))
                return sol

            return run

        batched.levenberg_marquardt = recorded("pass", saved[2])
        stages.levenberg_marquardt = recorded("stage", saved_stage)
    try:
        return timed(fit_spectra, fid, basis, CONFIGS[name])
    finally:
        stages.prior_weight, batched.prior_weight, batched.levenberg_marquardt = saved
        stages.levenberg_marquardt = saved_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--variants", default="none,prior,unweighted")
    parser.add_argument("--runs", nargs="+", default=["invivo", "tissue"])
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {sorted(CONFIGS)}")
    torch.set_num_threads(1)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    basis, _, fid, tissue = engine_spectra(args.n, 30.0, 1)
    for run in args.runs:
        data = tissue if run == "tissue" else fid
        fit_spectra(data.with_samples(data.samples[:4]), basis, PRESET)  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in names}
        results = {}
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                record = [] if r == 0 else None
                result, _, cpu = fit(name, data, basis, record)
                rates[name].append(args.n / cpu)
                results[name] = result
                if record is not None:
                    passes = "; ".join(
                        f"{site} {n} {mean:.1f}/{most}" for site, n, mean, most in record
                    )
                    print(f"{run} {name:10s} LM runs (spectra mean/most iterations): {passes}")
        first = results[names[0]]
        for name in names:
            moved = ""
            if name != names[0]:
                diff = np.abs(results[name].amplitudes - first.amplitudes) / first.crlb_sd
                diff = np.where(np.isfinite(diff), diff, 0.0)
                moved = f"; answers vs {names[0]}: median {np.median(diff):.3f}, max {diff.max():.2f} CRLB SD"
            rate = " ".join(f"{v:.1f}" for v in rates[name])
            print(
                f"{run} {name:10s} per CPU-s {rate}  median {np.median(rates[name]):.1f}"
                f"  iterations {np.mean(results[name].n_evaluations):.1f}{moved}",
                flush=True,
            )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
