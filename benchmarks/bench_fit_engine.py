"""Speed of the batched fit engine against the scipy fit it replaces, in the same run.

Spectra: the default simulator (ISMRM 2016 basis, 21 signals x 2048 points, amplitudes U[0, 1],
per-metabolite damping U[0, 15] 1/s and shift U[-3, 3] Hz) with noise at ``--snr``. Fitted by

1. ``scipy``: ``FIT_PRESETS["simulated"]``, the per-metabolite scipy fit (one spectrum at a
   time, 1 process), on the first ``--old-n`` spectra;
2. ``invivo``: ``FIT_PRESETS["invivo"]`` (batched, groups + Voigt + priors + spline baseline +
   measured MM and parametric lipids);
3. ``simulated-batched``: the per-metabolite model on the batched solver;

each reported as spectra per second of wall time and of process CPU time (a busy shared machine
disturbs the second less), with the amplitude MAE against the truth for the per-metabolite
models (the in-vivo model does not match these spectra' per-metabolite lineshapes, so its MAE
is not an accuracy figure). With ``--mrsi`` also a 32 x 32 MRSI slice end to end:
``scaloquant fit`` in-process on a NIfTI-MRS file of 1024 such spectra, outputs included.

Usage: ``python benchmarks/bench_fit_engine.py [--n 64] [--old-n 8] [--snr 30] [--threads 1]
[--seed 1] [--mrsi]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def mrsi_end_to_end(basis, signals, shape=(32, 32)) -> float:
    """Seconds of ``scaloquant fit`` on a ``shape`` NIfTI-MRS slice, in-process."""
    from scaloquant.cli import main
    from scaloquant.io.nifti import write_nifti_mrs

    n = shape[0] * shape[1]
    reps = -(-n // signals.fids.shape[0])
    fids = np.tile(signals.fids, (reps, 1))[:n].reshape(*shape, 1, -1)
    fid = FID(fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nifti_mrs(Path(tmp) / "slice.nii.gz", fid)
        start = time.perf_counter()
        assert main(["fit", str(path), "--out", str(Path(tmp) / "out")]) == 0
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="spectra of the batched runs")
    parser.add_argument("--old-n", type=int, default=8, help="spectra of the scipy run")
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mrsi", action="store_true", help="also time a 32 x 32 MRSI slice")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [args.snr, args.snr]})
    signals = simulate_batch(basis, config, args.n, np.random.default_rng(args.seed))
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    truth = signals.parameters.amplitudes
    print(f"{args.n} spectra at SNR {args.snr:g}, torch threads {args.threads}")
    runs = [
        ("scipy (simulated preset)", "simulated", args.old_n),
        ("batched invivo", "invivo", args.n),
        ("batched simulated-batched", "simulated-batched", args.n),
    ]
    for label, preset, n in runs:
        part = fid.with_samples(fid.samples[:n])
        result, wall, cpu = timed(fit_spectra, part, basis, FIT_PRESETS[preset])
        line = f"{label:28s} {n / wall:7.2f} spectra/s wall, {n / cpu:7.2f} per CPU-s"
        if preset != "invivo":
            mae = np.mean(np.abs(result.amplitudes - truth[:n]))
            line += f", amplitude MAE {mae:.4f}"
        print(line)
    if args.mrsi:
        print(f"32 x 32 MRSI slice end to end (invivo): {mrsi_end_to_end(basis, signals):.1f} s")


if __name__ == "__main__":
    main()
