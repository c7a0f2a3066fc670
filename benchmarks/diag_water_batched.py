"""The batched water removal (``signal.water.remove_water``) against another tree's, FID by FID.

Reads every in-vivo metabolite file of ``../shared/data/invivo`` (NIfTI-MRS, every transient),
the challenge's datasets 1-28 (``datasets_LCModel/*.RAW``) and the 128 + 128 spectra of
``bench_fit_engine.py`` (default simulator and tissue-like, SNR 30, seed 1), removes the water
with this tree's ``remove_water`` and with the one of ``--other`` (a ``src`` folder, e.g. main's),
and prints per source the largest difference of the removed signal, relative to the largest
removed signal of that FID and to the FID's noise SD per sample, and the CPU seconds of each
(``--threads``: torch's threads and ``remove_water``'s, as ``scaloquant fit --threads`` sets
them, default 1; ``--repeats``: runs of each, alternated, the least CPU and wall counting),
with the total CPU and wall seconds of each tree over all sources at the end.

Usage: ``PYTHONPATH=src python benchmarks/diag_water_batched.py --other /work/main/src
[--threads 2] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bench_fit_engine
from bench_lcmodel import CHALLENGE_GRID  # noqa: E402
from scaloquant.io import read_fid  # noqa: E402
from scaloquant.signal.noise import noise_sd  # noqa: E402
from scaloquant.signal.water import remove_water  # noqa: E402
from scaloquant.threads import prefer_command_settings  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def other_remove_water(src: str):
    """``remove_water`` of the tree whose package lies in ``src`` (loaded under another name,
    with this tree's other modules)."""
    path = Path(src) / "scaloquant" / "signal" / "water.py"
    spec = importlib.util.spec_from_file_location("scaloquant.signal._other_water", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.remove_water


def sources():
    basis, _, fid, tissue = bench_fit_engine.engine_spectra(128, 30.0, 1)
    yield "default simulator (128)", fid
    yield "tissue-like (128)", tissue
    invivo = SHARED / "invivo"
    for path in sorted(invivo.rglob("*.nii.gz")):
        if "act" in path.name or path.name in ("metab.nii.gz", "SVS_30_rda.nii.gz"):
            yield str(path.relative_to(invivo)), read_fid(path)
    folder = SHARED / "ismrm2016-challenge" / "datasets_LCModel"
    challenge = [folder / f"dataset{i}.RAW" for i in range(1, 29)]
    if all(p.is_file() for p in challenge):
        fids = [read_fid(p, **CHALLENGE_GRID) for p in challenge]
        if len({f.n_points for f in fids}) == 1:
            yield (
                f"challenge datasets ({len(fids)})",
                fids[0].with_samples(np.stack([f.samples.reshape(-1) for f in fids])),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="the other tree's src folder")
    parser.add_argument("--threads", type=int, default=1, help="torch's and remove_water's")
    parser.add_argument("--repeats", type=int, default=1, help="alternated runs of each")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.1f} at the start, {args.threads} thread(s)")
    other = other_remove_water(args.other)
    totals = np.zeros(4)  # CPU old, new; wall old, new

    def timed(work, x, grid):
        wall, cpu = time.perf_counter(), time.process_time()
        out = work(x, *grid, threads=args.threads)
        return out, time.process_time() - cpu, time.perf_counter() - wall

    for label, fid in sources():
        x = fid.samples.reshape(-1, fid.n_points)
        grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        runs = [(timed(other, x, grid), timed(remove_water, x, grid)) for _ in range(args.repeats)]
        (old, _, _), (new, _, _) = runs[0]
        cpu_old, cpu_new = (min(run[i][1] for run in runs) for i in (0, 1))
        wall_old, wall_new = (min(run[i][2] for run in runs) for i in (0, 1))
        totals += (cpu_old, cpu_new, wall_old, wall_new)
        removed = np.abs(x - old).max(axis=-1)
        diff = np.abs(new - old).max(axis=-1)
        sigma = noise_sd(x, *grid) * np.sqrt(2.0 / fid.n_points)  # per complex sample
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(removed > 0, diff / removed, 0.0)
            noise = np.where(sigma > 0, diff / sigma, 0.0)
        print(
            f"{label:70s} {x.shape[0]:4d} FIDs: |diff| max {rel.max():.1e} of the removed water, "
            f"{noise.max():.1e} of the noise SD; CPU s {cpu_old:.3f} -> {cpu_new:.3f}, wall s "
            f"{wall_old:.3f} -> {wall_new:.3f}"
        )
    print(
        f"all: CPU s {totals[0]:.3f} -> {totals[1]:.3f}, wall s {totals[2]:.3f} -> "
        f"{totals[3]:.3f}; load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    prefer_command_settings()  # MKL_CBWR=AUTO as the command runs it, before MKL's first call
    main()
