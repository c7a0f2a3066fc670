"""Speed of the fit engine against LCModel, in the same run (the scipy fit it replaced, before
it was retired: docs/history/fit-log.md "The scipy solver retired").

Spectra: the default simulator (ISMRM 2016 basis, 21 signals x 2048 points, amplitudes U[0, 1],
per-metabolite damping U[0, 15] 1/s and shift U[-3, 3] Hz) with noise at ``--snr``. Fitted by

1. ``invivo``: ``FIT_PRESETS["invivo"]`` (groups + Voigt + priors + spline baseline +
   measured MM and parametric lipids);
2. ``simulated``: the per-metabolite model (with ``--plain`` also ``simulated-plain``, the same
   without its spread priors);
3. ``invivo`` on ``--n`` tissue-like spectra of the ``invivo`` simulation preset
   (:func:`scaloquant.simulate.simulate_invivo_batch`: group lineshapes, macromolecules, lipids,
   residual water, baseline), the family the in-vivo model is made for: on the default
   simulator's spectra its groups cannot follow each metabolite's own lineshape and the fit
   crawls (more iterations);
4. LCModel (``../shared/peers/lcmodel/build.sh``, default control file plus the grid keys,
   ``--lcmodel-workers`` processes) on the first ``--lcmodel-n`` default-simulator spectra, with
   ``press3T_30ms.BASIS``; skipped with a message when it cannot be built.

each reported as spectra per second of wall time and of process CPU time (a busy shared machine
disturbs the second less; LCModel's runs are child processes, so only its wall time counts),
with the amplitude MAE against the truth for the per-metabolite models (the in-vivo model does
not match these spectra's per-metabolite lineshapes, so its MAE is not an accuracy figure), and
each run's speed as a multiple of LCModel's. With ``--mrsi`` also a 32 x 32 MRSI slice end
to end: ``scaloquant fit`` in-process on a NIfTI-MRS file of 1024 such spectra, outputs included.

Device: ``--device`` (``cpu``, the default, or ``cuda``) for every scaloquant run, the fit's
``FitConfig.device`` (chunks of ``GPU_CHUNK`` spectra on a GPU, ``--gpu-chunk`` to try another)
and the slice's ``--device``; LCModel runs on the CPU whatever it is.

Torch threads: ``--threads``, by default :func:`scaloquant.threads.choose_threads` (2 on an idle
2-core machine, 1 when other processes keep a core busy), with OpenMP's passive wait
(:func:`scaloquant.threads.prefer_passive_wait`) and transparent huge pages for torch's tensors
(:func:`scaloquant.threads.prefer_huge_pages`), as the ``scaloquant`` command runs.

Usage: ``python benchmarks/bench_fit_engine.py [--n 64] [--snr 30] [--threads N]
[--seed 1] [--lcmodel-n 16] [--lcmodel-workers 2] [--mrsi] [--plain] [--device cuda]
[--baseline-stiffness adaptive]`` (the last: the ``invivo`` runs' and the slice's
``FitConfig.baseline_stiffness``, ``scaloquant fit --baseline-stiffness``)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from scaloquant.threads import choose_threads, prefer_command_settings

# before torch initialises OpenMP and allocates, as the scaloquant command does
prefer_command_settings()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import _lcmodel as lcm  # noqa: E402
from _timing import timed  # noqa: E402
from bench_lcmodel import CHALLENGE_BASIS as LCMODEL_BASIS  # noqa: E402
from bench_lcmodel import simulated_spectrum  # noqa: E402
from scaloquant.fit import batched, fit_spectra  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402
from scaloquant.io import default_basis  # noqa: E402
from scaloquant.simulate import (  # noqa: E402
    InvivoPrior,
    SimulationConfig,
    simulate_batch,
    simulate_invivo_batch,
)
from scaloquant.types import FID  # noqa: E402


def engine_spectra(n: int, snr: float, seed: int):
    """The benchmark's spectra, ``(basis, signals, fid, tissue_fid)``: ``n`` spectra of the
    default simulator at ``snr`` (``signals``, also as the :class:`FID` ``fid``) and ``n``
    tissue-like ones of the ``invivo`` simulation preset, each drawn from ``seed``."""
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [snr, snr]})
    signals = simulate_batch(basis, config, n, np.random.default_rng(seed))
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    tissue = simulate_invivo_batch(basis, InvivoPrior(), n, np.random.default_rng(seed))
    return basis, signals, fid, fid.with_samples(tissue.fids)


def mrsi_end_to_end(
    basis, signals, threads: int, shape=(32, 32), device: str = "cpu", stiffness: str | None = None
) -> float:
    """Seconds of ``scaloquant fit --threads threads --device device`` (with
    ``--baseline-stiffness stiffness`` where given) on a ``shape`` NIfTI-MRS slice, in-process (the benchmark's threads: the command's default reads the load average, which
    this process's own fits have just raised, and took 1 thread on an idle machine); its
    process CPU seconds in :data:`LAST_MRSI_CPU_S`."""
    global LAST_MRSI_CPU_S
    from scaloquant.cli import main
    from scaloquant.io.nifti import write_nifti_mrs

    n = shape[0] * shape[1]
    reps = -(-n // signals.fids.shape[0])
    fids = np.tile(signals.fids, (reps, 1))[:n].reshape(*shape, 1, -1)
    fid = FID(fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nifti_mrs(Path(tmp) / "slice.nii.gz", fid)
        start, cpu = time.perf_counter(), time.process_time()
        args = ["fit", str(path), "--out", str(Path(tmp) / "out"), "--threads", str(threads)]
        args += ["--device", device]
        if stiffness is not None:
            args += ["--baseline-stiffness", stiffness]
        assert main(args) == 0
        LAST_MRSI_CPU_S = time.process_time() - cpu
        return time.perf_counter() - start


#: CPU seconds of the last :func:`mrsi_end_to_end` (a busy shared machine moves its wall time).
LAST_MRSI_CPU_S = float("nan")


def lcmodel_speed(signals, basis, n: int, workers: int) -> tuple[float | None, str]:
    """LCModel's spectra per second of wall time on the first ``n`` spectra, and a note."""
    try:
        exe = lcm.build()
    except lcm.LCModelError as err:
        return None, f"LCModel skipped: {err}"
    if not LCMODEL_BASIS.is_file():
        return None, f"LCModel skipped: its basis {LCMODEL_BASIS} is missing"
    with tempfile.TemporaryDirectory() as tmp:
        spectra = [
            simulated_spectrum(Path(tmp), f"sim{i:04d}", samples, basis)
            for i, samples in enumerate(signals.fids[:n])
        ]
        outcomes, wall = lcm.run_many(
            exe, spectra, Path(tmp) / "runs", lcm.Settings(), workers=workers
        )
    failed = sum(o.result is None for o in outcomes)
    note = f"{workers} processes" + (f", {failed} of {n} without a table" if failed else "")
    return n / wall, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="spectra of the batched runs")
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: choose_threads())"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lcmodel-n", type=int, default=16, help="spectra for LCModel (0: none)")
    parser.add_argument("--lcmodel-workers", type=int, default=2, help="LCModel processes")
    parser.add_argument("--mrsi", action="store_true", help="also time a 32 x 32 MRSI slice")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="also fit with simulated-plain (the per-metabolite model without spread priors)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="torch device of the fits (cpu, cuda)",
    )
    parser.add_argument(
        "--gpu-chunk", type=int, default=None, help="spectra per tensor program on a GPU"
    )
    parser.add_argument(
        "--baseline-stiffness",
        choices=("fixed", "ftest", "adaptive"),
        default=None,
        help="the invivo runs' and the slice's baseline rule (default: the preset's)",
    )
    args = parser.parse_args()
    if args.gpu_chunk:
        batched.GPU_CHUNK = args.gpu_chunk
    threads = choose_threads(args.threads)
    torch.set_num_threads(threads)
    basis, signals, fid, tissue_fid = engine_spectra(args.n, args.snr, args.seed)
    truth = signals.amplitudes
    chunk = f" (chunks of {batched.GPU_CHUNK})" if args.device == "cuda" else ""
    print(
        f"{args.n} spectra at SNR {args.snr:g}, torch threads {threads}, device {args.device}"
        + chunk
    )
    lcmodel_rate = None
    if args.lcmodel_n > 0:
        lcmodel_rate, note = lcmodel_speed(signals, basis, args.lcmodel_n, args.lcmodel_workers)
        if lcmodel_rate is None:
            print(note)
        else:
            print(f"{'LCModel (' + note + ')':28s} {lcmodel_rate:7.2f} spectra/s wall")
    runs = [
        ("invivo", "invivo", args.n),
        ("simulated", "simulated", args.n),
        *([("simulated-plain", "simulated-plain", args.n)] if args.plain else []),
        ("invivo, tissue-like", "invivo", args.n),
    ]
    for label, preset, n in runs:
        source = tissue_fid if "tissue" in label else fid
        part = source.with_samples(source.samples[:n])
        config = replace(FIT_PRESETS[preset], device=args.device)
        if preset == "invivo" and args.baseline_stiffness is not None:
            config = replace(config, baseline_stiffness=args.baseline_stiffness)
        result, wall, cpu = timed(fit_spectra, part, basis, config)
        line = f"{label:28s} {n / wall:7.2f} spectra/s wall, {n / cpu:7.2f} per CPU-s"
        if preset != "invivo":
            mae = np.mean(np.abs(result.amplitudes - truth[:n]))
            line += f", amplitude MAE {mae:.4f}"
        if lcmodel_rate is not None:
            line += f", {n / wall / lcmodel_rate:.0f}x LCModel"
        print(line)
    if args.mrsi:
        stiffness = args.baseline_stiffness
        wall = mrsi_end_to_end(basis, signals, threads, device=args.device, stiffness=stiffness)
        rule = "" if stiffness is None else f", {stiffness}"
        print(
            f"32 x 32 MRSI slice end to end (invivo{rule}, {args.device}): {wall:.1f} s "
            f"({LAST_MRSI_CPU_S:.1f} CPU s)"
        )


if __name__ == "__main__":
    main()
