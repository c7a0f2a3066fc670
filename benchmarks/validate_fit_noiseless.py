"""Known answer of the per-metabolite fit (issue 12): noiseless spectra of the default simulator
(``SimulationConfig()``, ``--n`` spectra of ``--seed``) fitted with ``--preset``; the model is
the simulator's, so every spectrum should come back exactly (the criterion: amplitude mean
absolute error below 1e-3 on every one). Prints the mean, median and largest MAE, the spectra
above 1e-3 and the speed (one torch thread).

Too slow for the test suite (64 fits take 15-30 s batched, 40 s with scipy); run:
``python benchmarks/validate_fit_noiseless.py [--n 64] [--seed 0] [--preset simulated]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", choices=sorted(FIT_PRESETS), default="simulated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    basis = default_basis()
    signals = simulate_batch(basis, SimulationConfig(), args.n, np.random.default_rng(args.seed))
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    t0 = time.perf_counter()
    result = fit_spectra(fid, basis, FIT_PRESETS[args.preset])
    seconds = time.perf_counter() - t0
    mae = np.abs(result.amplitudes - signals.amplitudes).mean(axis=1)
    above = np.flatnonzero(mae > 1e-3)
    print(
        f"{args.preset}, {args.n} noiseless spectra, seed {args.seed}: {args.n / seconds:.2f} "
        f"spectra/s; MAE mean {mae.mean():.2e}, median {np.median(mae):.1e}, max {mae.max():.1e}"
    )
    print(f"above 1e-3: {above.size} of {args.n} {above.tolist()}")
    print("criterion MAE < 1e-3 on every spectrum:", "met" if above.size == 0 else "NOT met")


if __name__ == "__main__":
    main()
