"""Where the time of ``scaloquant fit`` on an MRSI slice goes, stage by stage.

The slice: ``--side`` x ``--side`` voxels of SNR-``--snr`` spectra of the default simulator
(128 spectra of seed ``--seed`` tiled, as ``bench_fit_engine.py --mrsi`` builds its 32 x 32
slice), written as NIfTI-MRS and fitted by ``scaloquant fit`` in-process (``main([...])``, the
command's defaults, outputs included). Each stage is timed by wrapping the package function
that does it (wall and process CPU seconds; wrapped calls may nest: the fit checks and the
figures both rebuild fitted spectra, the report includes its map images):

* ``read``: reading the input (:func:`scaloquant.cli._spectra.inputs_from_args`);
* ``checks``: matching and the quality figures (``quantify.matching.matched_inputs``);
* ``basis``: the basis on the data's grid, prepared (``fit.spectra._prepared``);
* ``water``: HLSVD water removal (:func:`scaloquant.signal.water.remove_water`);
* ``solve``: the batched fit (``fit.spectra._solve``: the LM loop, CRLB);
* ``result``: the fit's outputs derived from it (``fit.spectra._batched_result``: linewidth,
  SNR, fit checks);
* ``fit_checks``: ``quantify.checks.fit_checks`` (where it still rebuilds the model);
* ``figure_spectra``: fitted spectra rebuilt for figures and checks (``fitted_spectra``);
* ``fit_figures``: the fit figures drawn (``report.outputs._fit_png``);
* ``map_images``: the report's map images (``report.html._map_images``);
* ``nifti_maps``: the NIfTI maps (``report.outputs._write_maps``);
* ``write_run``: every output, maps and figures included.

With ``--head`` the voxels outside the slice's inscribed circle hold noise only (a field of
view larger than the head; 21 % of the voxels). With ``--fit-stages`` the fit's own stages are
listed too, process CPU seconds of each (``diag_fit_profile.py --stages``' timers: each
``batched.solve`` with its spectra and iterations, the adaptive rule's screen, the F-test's
bound and scores, the result's assembly).

Usage: ``PYTHONPATH=src python benchmarks/bench_mrsi.py [--side 16] [--threads N] [--repeats 1]
[--head] [--fit-stages] [-- extra scaloquant fit flags]``
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from scaloquant.threads import prefer_command_settings

# before torch initialises OpenMP and allocates, as the scaloquant command does
prefer_command_settings()

import numpy as np  # noqa: E402

from scaloquant.io import default_basis  # noqa: E402
from scaloquant.io.nifti import write_nifti_mrs  # noqa: E402
from scaloquant.simulate import SimulationConfig, simulate_batch  # noqa: E402
from scaloquant.types import FID  # noqa: E402

#: (stage, module, function): wrapped where the CLI looks the function up at call time.
STAGES = (
    ("read", "scaloquant.cli._spectra", "inputs_from_args"),
    ("checks", "scaloquant.quantify.fit_run", "matched_inputs"),
    ("basis", "scaloquant.fit.spectra", "_prepared"),
    ("water", "scaloquant.signal.water", "remove_water"),
    ("solve", "scaloquant.fit.spectra", "_solve"),
    ("result", "scaloquant.fit.spectra", "_batched_result"),
    ("fit_checks", "scaloquant.quantify.fit_run", "fit_checks"),
    ("figure_spectra", "scaloquant.quantify.fit_run", "fitted_spectra"),
    ("fit_figures", "scaloquant.report.outputs", "_fit_png"),
    ("map_images", "scaloquant.report.html", "_map_images"),
    ("nifti_maps", "scaloquant.report.outputs", "_write_maps"),
    ("write_run", "scaloquant.report", "write_run"),
)


def instrument(times: dict[str, list[float]]) -> None:
    """Wrap every stage's function so that each call adds ``[wall, cpu, calls]`` to
    ``times[stage]``."""
    for stage, module_name, name in STAGES:
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            continue
        fn = getattr(module, name)
        if getattr(fn, "__wrapped__", None) is not None:
            continue

        def wrapper(*args, __fn=fn, __stage=stage, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return __fn(*args, **kwargs)
            finally:
                t = times[__stage]
                t[0] += time.perf_counter() - wall
                t[1] += time.process_time() - cpu
                t[2] += 1

        setattr(module, name, functools.wraps(fn)(wrapper))


def slice_file(folder: Path, side: int, snr: float, seed: int, head: bool = False) -> Path:
    """The ``side`` x ``side`` NIfTI-MRS slice of tiled default-simulator spectra; ``head``:
    outside the inscribed circle noise only (the noise SD of the spectra's last quarter)."""
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [snr, snr]})
    rng = np.random.default_rng(seed)
    signals = simulate_batch(basis, config, 128, rng)
    n = side * side
    reps = -(-n // signals.fids.shape[0])
    fids = np.tile(signals.fids, (reps, 1))[:n].reshape(side, side, 1, -1)
    if head:
        centre = (side - 1) / 2
        x, y = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        outside = np.hypot(x - centre, y - centre) > side / 2
        tail = signals.fids[:, -signals.fids.shape[1] // 4 :]
        sd = float(np.sqrt(np.mean(np.abs(tail - tail.mean(axis=1, keepdims=True)) ** 2) / 2))
        shape = (int(outside.sum()), fids.shape[-1])
        fids[outside, 0] = sd * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    fid = FID(fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    return write_nifti_mrs(folder / "slice.nii.gz", fid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=16)
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="scaloquant fit --threads")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--head", action="store_true", help="noise only outside the slice's inscribed circle"
    )
    parser.add_argument("--fit-stages", action="store_true", help="the fit's CPU per stage")
    parser.add_argument("extra", nargs="*", help="more scaloquant fit flags (after --)")
    args = parser.parse_args()
    from diag_fit_profile import print_stages, stage_timers
    from scaloquant.cli import main as cli

    times: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    instrument(times)
    flags = [*(["--threads", str(args.threads)] if args.threads else []), *args.extra]
    with tempfile.TemporaryDirectory() as tmp:
        path = slice_file(Path(tmp), args.side, args.snr, args.seed, args.head)
        for k in range(args.repeats):
            times.clear()
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            out = Path(tmp) / f"out{k}"
            with stage_timers() if args.fit_stages else contextlib.nullcontext() as table:
                assert cli(["fit", str(path), "--out", str(out), *flags]) == 0
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            figures = len(list((out / "figures").glob("*.png")))
            print(
                f"{args.side} x {args.side} slice, run {k + 1}: {wall:.1f} s wall, {cpu:.1f} s "
                f"CPU (load {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end), "
                f"{figures} fit figures"
            )
            for stage, *_ in STAGES:
                if stage in times:
                    w, c, n = times[stage]
                    print(f"  {stage:15s} {w:7.2f} s wall {c:7.2f} s CPU  {n:4d} calls")
            if table is not None:
                print("  the fit's stages (process CPU):")
                print_stages(table)


if __name__ == "__main__":
    main()
