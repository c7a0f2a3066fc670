"""Peak memory (RSS) of ``scaloquant fit`` and ``scaloquant quantify`` on MRSI slices and on many
single-voxel files, beside LCModel's, in the same run.

Inputs (written once, in a temporary folder):

* MRSI: ``--sides`` x ``--sides`` NIfTI-MRS slices (default 16, 32, 64) of SNR-``--snr``
  default-simulator spectra, as ``bench_mrsi.py`` builds them (:func:`bench_mrsi.slice_file`:
  128 spectra of seed ``--seed`` tiled);
* single voxels: ``--files`` counts (default 1, 32, 128) of single-voxel NIfTI-MRS files, the
  first of the same 128 spectra (cycled), given to one command at once.

Runs, each a new process (``python -m scaloquant ... --threads T``), its peak RSS GNU
``/usr/bin/time``'s ``%M`` (:func:`child`):

* ``scaloquant fit FILE(S) --out DIR`` (the command's defaults: the ``invivo`` preset, fit
  figures, report and maps);
* ``scaloquant quantify FILE(S) --model CKPT --out DIR`` with a ``tiny`` physics-head model
  (``scaloquant train --model spectrum_physics --preset tiny``, trained first in a child, or
  ``--model CKPT``), its polish and refits at the model's defaults (``--quantify-max-side``:
  the largest slice quantified, since its polish is the slow part);
* LCModel (``../shared/peers/lcmodel/build.sh``) on one of the spectra with the ISMRM 2016
  challenge's ``press3T_30ms.BASIS``: one process per spectrum, so a batch of any size peaks
  at ``workers`` x that process's RSS (``bench_fit_engine.py`` runs 2 at a time).

Printed: each run's peak RSS in MB, wall and CPU seconds (for each slice also the size of the
covariance bound of its spectra, which ``fit`` held before session 35, and of what it keeps in
its place: :func:`covariance_mb`); the growth per voxel (or file) between the smallest and
largest input of a kind, in kB per spectrum; and each peak as a multiple of one LCModel
process's and of 2 LCModel processes' (its per-spectrum process model on the user's 2 cores).
With ``--compare SRC`` every scaloquant run goes first with another checkout's ``src`` and then
with this one's, alternated, and their outputs (``results.csv``, ``results.json`` less its paths
and times, ``figures/*.csv``) are compared byte for byte.

Session 33 ran ``--sides 16 64``; session 35 ``--sides 16 48 --files --no-quantify`` (a 128 x 128
slice, 16384 voxels, and 256 x 256, 65536, would take ~10 and ~40 CPU minutes a fit, twice with
``--compare``, beyond that session's time on a 2-core machine at load 16): docs/history/
benchmarks-log.md, docs/history/fit-log.md.

Usage: ``PYTHONPATH=src python benchmarks/bench_memory.py [--sides 16 32 64] [--files 1 32 128]
[--quantify-max-side 32] [--threads 2] [--model CKPT] [--no-fit] [--no-quantify] [--no-lcmodel]
[--compare SRC] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import _lcmodel as lcm
from bench_lcmodel import CHALLENGE_BASIS as LCMODEL_BASIS
from bench_lcmodel import simulated_spectrum
from bench_mrsi import slice_file
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.covariance import combined_parts
from scaloquant.fit.spectra import prepared_on_grid
from scaloquant.io import default_basis
from scaloquant.io.nifti import write_nifti_mrs
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
#: GNU time, which measures a command's peak RSS (``%M``).
TIME = "/usr/bin/time"


def child(cmd: list[str], *, src: Path = HERE_SRC, cwd: Path | None = None, stdin=None):
    """Run ``cmd`` as a new process under GNU ``/usr/bin/time``: ``(peak RSS MB, wall s, CPU s,
    return code, output)``, the peak ``time``'s ``%M`` (kB).

    Not this process' ``os.wait4`` of its own child: Linux starts a forked child's high-water
    RSS at its parent's (``ru_maxrss`` of ``python -c pass`` forked from a process that once
    held 800 MB: 790 MB), so every child of this script, which writes a 64 x 64 slice, read as
    at least this script's own peak; ``time``, a 2 MB process, forks the command itself."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), *sys.path[1:]])}
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "time.txt"
        timed = [TIME, "-f", "%M %e %U %S", "-o", str(stats), *cmd]
        proc = subprocess.run(
            timed, cwd=cwd, env=env, stdin=stdin, capture_output=True, text=True, check=False
        )
        peak_kb, wall, user, system = stats.read_text().split()[-4:]
    text = proc.stdout + proc.stderr
    return int(peak_kb) / 1024, float(wall), float(user) + float(system), proc.returncode, text


def scaloquant(args: list[str], threads: int | None, src: Path = HERE_SRC):
    """``child`` of ``python -m scaloquant ARGS --threads THREADS`` (``None``: no ``--threads``,
    which ``train`` does not take); exits with its output when it fails."""
    more = [] if threads is None else ["--threads", str(threads)]
    peak, wall, cpu, rc, text = child([sys.executable, "-m", "scaloquant", *args, *more], src=src)
    if rc != 0:
        raise SystemExit(f"scaloquant {' '.join(args[:1])} failed ({rc}): {text[-2000:]}")
    return peak, wall, cpu


def single_files(folder: Path, count: int, snr: float, seed: int) -> list[Path]:
    """``count`` single-voxel NIfTI-MRS files of the slices' 128 spectra (cycled)."""
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [snr, snr]})
    fids = simulate_batch(basis, config, 128, np.random.default_rng(seed)).fids
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_nifti_mrs(
            folder / f"sv{i:04d}.nii.gz",
            FID(
                fids[i % len(fids)].reshape(1, 1, 1, -1),
                basis.dwell_time_s,
                basis.spectrometer_freq_mhz,
                basis.ppm_reference,
            ),
        )
        for i in range(count)
    ]


def lcmodel_peak(folder: Path, snr: float, seed: int) -> float | None:
    """Peak RSS (MB) of one LCModel process on the first spectrum; None (with a message) when
    LCModel cannot be built or its basis is missing."""
    try:
        exe = lcm.build()
    except lcm.LCModelError as err:
        print(f"LCModel skipped: {err}")
        return None
    if not LCMODEL_BASIS.is_file():
        print(f"LCModel skipped: its basis {LCMODEL_BASIS} is missing")
        return None
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [snr, snr]})
    samples = simulate_batch(basis, config, 1, np.random.default_rng(seed)).fids[0]
    folder.mkdir(parents=True, exist_ok=True)
    spectrum = simulated_spectrum(folder, "sim", samples, basis)
    files = lcm.run_files(spectrum, folder)
    files["control"].write_text(lcm.control_text(spectrum, files, lcm.Settings()))
    with files["control"].open() as control:
        peak, wall, cpu, _, text = child([str(exe)], cwd=folder, stdin=control)
    if not files["table"].is_file():
        print(f"LCModel wrote no table: {text.strip()[:300]}")
        return None
    print(f"LCModel, 1 spectrum: peak RSS {peak:.0f} MB ({wall:.1f} s wall, {cpu:.1f} s CPU)")
    return peak


def covariance_mb(n: int) -> tuple[int, int, float, float, float]:
    """``(M, M + P_free, MB of the (n, M, M) covariance, MB of the whole (n, M + P_free,
    M + P_free) bound, MB of what the fit keeps instead)`` for ``n`` of the slices' spectra
    fitted as the command does (the default basis under the ``invivo`` preset: ``M``
    components, ``P_free`` free nonlinear parameters of its last pass); before session 35 the
    solver's chunks held the whole bound until they were joined (the block a view of it), the
    result the block; now both keep every pair's correlation coefficient ``(n, M (M - 1) / 2)``
    and the combined rows' SDs ``(n, C)``, float64."""
    from scaloquant.fit.problem import make_problem

    basis = default_basis()
    config = FIT_PRESETS["invivo"]
    prepared = prepared_on_grid(basis, basis.acquisition, config)[1]
    m, c = prepared.n_metabolites, len(combined_parts(prepared.names))
    k = m + int(make_problem(prepared, config, device="cpu").free_index.numel())
    mb = n * 8 / 2**20
    return m, k, mb * m * m, mb * k * k, mb * (m * (m - 1) // 2 + c)


def same_outputs(a: Path, b: Path) -> str:
    """Whether two runs' ``results.csv``, ``results.json`` (its paths and times aside) and
    figure CSVs are the same bytes: ``"same"`` or what differs."""
    differ = []
    if not filecmp.cmp(a / "results.csv", b / "results.csv", shallow=False):
        differ.append("results.csv")

    def json_of(path: Path) -> str:
        text = (path / "results.json").read_text()
        return text.replace(str(path), "OUT")

    if json_of(a) != json_of(b):
        differ.append("results.json")
    csvs_a = sorted(p.relative_to(a) for p in (a / "figures").glob("*.csv"))
    csvs_b = sorted(p.relative_to(b) for p in (b / "figures").glob("*.csv"))
    if csvs_a != csvs_b:
        differ.append(f"figure CSVs {len(csvs_a)} and {len(csvs_b)}")
    else:
        differ += [str(p) for p in csvs_a if not filecmp.cmp(a / p, b / p, shallow=False)]
    return "same" if not differ else "differ: " + ", ".join(differ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="*", default=[16, 32, 64])
    parser.add_argument("--files", type=int, nargs="*", default=[1, 32, 128])
    parser.add_argument(
        "--quantify-max-side", type=int, default=32, help="largest slice quantified (0: none)"
    )
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="scaloquant --threads")
    parser.add_argument("--model", type=Path, default=None, help="a physics-head checkpoint")
    parser.add_argument("--no-quantify", action="store_true")
    parser.add_argument("--no-fit", action="store_true")
    parser.add_argument("--no-lcmodel", action="store_true")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout's src")
    parser.add_argument("--keep", type=Path, default=None, help="keep the outputs here")
    args = parser.parse_args()
    sources = {"": HERE_SRC}
    if args.compare is not None:
        sources = {"baseline": args.compare.resolve(), "change": HERE_SRC}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.keep or Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        print(
            f"load average {os.getloadavg()[0]:.1f}; --threads {args.threads}; "
            + ", ".join(f"{k or 'src'} {v}" for k, v in sources.items())
        )
        lcmodel = None if args.no_lcmodel else lcmodel_peak(tmp / "lcmodel", args.snr, args.seed)
        model = args.model
        if model is None and not args.no_quantify:
            peak, wall, _ = scaloquant(
                ["train", "--model", "spectrum_physics", "--preset", "tiny"]
                + ["--out", str(tmp / "tiny"), "--overwrite"],
                None,
            )
            model = tmp / "tiny/models/spectrum_physics.ckpt"
            print(f"trained the tiny physics-head model in {wall:.0f} s (peak RSS {peak:.0f} MB)")
        inputs: list[tuple[str, int, list[Path], bool]] = []
        for side in args.sides:
            folder = tmp / f"slice{side}"
            folder.mkdir(exist_ok=True)
            path = slice_file(folder, side, args.snr, args.seed)
            quantified = not args.no_quantify and side <= args.quantify_max_side
            inputs.append((f"{side} x {side} slice", side * side, [path], quantified))
        for count in args.files:
            paths = single_files(tmp / f"files{count}", count, args.snr, args.seed)
            inputs.append((f"{count} single-voxel files", count, paths, not args.no_quantify))
        peaks: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
        for label, n, paths, quantified in inputs:
            commands = [] if args.no_fit else [("fit", [])]
            if quantified:
                commands.append(("quantify", ["--model", str(model)]))
            for command, extra in commands:
                outs = {}
                for name, src in sources.items():
                    out = tmp / f"out_{command}_{label.replace(' ', '_')}_{name or 'src'}"
                    cmd = [command, *map(str, paths), "--out", str(out), "--overwrite", *extra]
                    peak, wall, cpu = scaloquant(cmd, args.threads, src)
                    outs[name] = out
                    peaks.setdefault((command, label.split()[-1], name), []).append((n, peak))
                    ratio = f", {peak / lcmodel:.1f}x LCModel's" if lcmodel else ""
                    print(
                        f"{command:8s} {label:24s} {name:8s} peak RSS {peak:6.0f} MB "
                        f"({wall:6.1f} s wall, {cpu:6.1f} s CPU){ratio}"
                    )
                if len(outs) == 2:
                    print(f"  outputs: {same_outputs(*outs.values())}")
                if command == "fit" and "slice" in label:
                    m, k, block, whole, kept = covariance_mb(n)
                    print(
                        f"  covariance bound of {n} spectra: {n} x {k} x {k} {whole:.0f} MB, "
                        f"its amplitudes' {m} x {m} {block:.0f} MB (held by the solve's chunks "
                        f"and the result before session 35), kept in its place {kept:.0f} MB"
                    )
        print("growth of the peak between the smallest and largest input of a kind:")
        for (command, kind, name), points in peaks.items():
            (n0, p0), (n1, p1) = min(points), max(points)
            if n1 > n0:
                per = (p1 - p0) * 1024 / (n1 - n0)
                print(
                    f"  {command:8s} {kind:8s} {name:8s} {n0} -> {n1}: {p0:.0f} -> {p1:.0f} MB, "
                    f"{per:.0f} kB per spectrum"
                )
        if lcmodel:
            print(
                f"LCModel: {lcmodel:.0f} MB per process whatever the batch (one process per "
                f"spectrum), {2 * lcmodel:.0f} MB with 2 at a time"
            )


if __name__ == "__main__":
    main()
