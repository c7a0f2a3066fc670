"""Where one ``scaloquant quantify --model`` run's wall and CPU time go, stage by stage.

Spectra: ``--spectra default`` writes ``--n`` default-simulator spectra at SNR 30 (seed 7, as
``bench_physics.py --quantify``) as one MRSI-like NIfTI-MRS file (uncompressed with ``--suffix
.nii``); ``--spectra invivo``: ``--n`` tissue-like ``invivo`` spectra at SNR ``--snr`` (seed
``--seed``) on the checkpoint's grid, those of ``bench_physics_baseline.py`` (its
``model_spectra``; a physics-head model trained with the ``invivo`` preset). The command runs
in this process (``scaloquant.cli.main``, ``--max-figures 0``) ``--repeat`` times with timers
around its stages: the read, the matching and quality checks, the water removal, the network
and its polish, the polish's screen for a flexible baseline and the refits it asks for, and the
writers. With ``--fit`` each repeat also runs ``scaloquant fit`` (the embedded basis, its
default ``invivo`` preset) on the same file, after ``quantify``: the peer.

Each stage's line gives its calls, wall and CPU seconds, its time including the stages it
calls (those indented under it; ``fit``'s own stages under ``fit_spectra``: ``quantify``'s
refits, or ``fit``'s whole fit; ``fit_spectra``'s ``asks_for_flexible_baseline`` is the fit's
screen, which the polish's screen calls too and counts there as well); ``other`` is the run's
time outside every stage. Stages called on the caller's thread take the process' CPU
time (every thread's); those marked ``*`` run in the polish's batch threads side by side
(``predict_estimates``' jobs) and give their wall and that thread's own CPU time summed over
the threads, so their wall adds up to more than the run's. The imports are timed once, before
the first run; CUDA's start-up falls in the first run's stages, so the last run's table is the
steady one. No profiler: the times are those of a plain run. With ``--solver`` a second table
gives the parts of the solver (:data:`SOLVER_STAGES`) summed over every caller; every line
ends with its CPU milliseconds per spectrum.

``--compare SRC`` runs this script in child processes alternating between ``SRC`` (another
checkout's ``src`` folder, e.g. main's exported by ``git archive``) and this checkout's
``src``, ``--rounds`` times each, on the same file (written once; a stage a checkout does not
have shows 0 calls).

Usage: ``PYTHONPATH=src python benchmarks/diag_quantify_stages.py CKPT [--n 16384]
[--spectra default|invivo] [--snr 30] [--seed 0] [--polish 0] [--threads 2]
[--device cpu|cuda] [--suffix .nii|.nii.gz] [--repeat 2] [--fit] [--solver]
[--compare SRC --rounds 2]``
(``--polish K``: a copy of the checkpoint with ``polish_iterations = K``; default its own)
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

IMPORT_START = time.perf_counter()

import torch  # noqa: E402

import scaloquant.cli  # noqa: E402
import scaloquant.fit.batched  # noqa: E402
import scaloquant.fit.crlb  # noqa: E402
import scaloquant.fit.evaluation  # noqa: E402
import scaloquant.fit.lm  # noqa: E402
import scaloquant.fit.problem  # noqa: E402
import scaloquant.fit.spectra  # noqa: E402
import scaloquant.io.dispatch  # noqa: E402
import scaloquant.models.physics  # noqa: E402
import scaloquant.physics.model  # noqa: E402
import scaloquant.quantify.checks  # noqa: E402
import scaloquant.quantify.gather  # noqa: E402
import scaloquant.quantify.matching  # noqa: E402
import scaloquant.quantify.run  # noqa: E402
import scaloquant.report.html  # noqa: E402
import scaloquant.report.markdown  # noqa: E402
import scaloquant.report.outputs  # noqa: E402
import scaloquant.signal.noise  # noqa: E402
import scaloquant.signal.quality  # noqa: E402
import scaloquant.signal.water  # noqa: E402

IMPORTS_S = time.perf_counter() - IMPORT_START

#: ``(module, function, depth)`` of the stages, in the order printed (``depth``: the indent,
#: 0 for the run's own); a function imported by name elsewhere is timed
#: there too (every module holding the same object gets the wrapper).
STAGES = (
    ("scaloquant.io.dispatch", "read_fid", 0),
    ("scaloquant.quantify.matching", "matched_inputs", 0),
    ("scaloquant.signal.quality", "quality_figures", 1),
    ("scaloquant.quantify.run", "_physics_estimates", 0),
    ("scaloquant.quantify.checks", "water_near_window_seen", 1),
    ("scaloquant.signal.water", "remove_water", 1),
    ("scaloquant.models.physics", "PhysicsQuantifier.predict_estimates", 1),
    ("scaloquant.models.physics", "PhysicsQuantifier.estimate", 2),
    ("scaloquant.models.physics", "PhysicsQuantifier.network_theta", 3),
    ("scaloquant.models.physics", "crlb_sd", 3),
    ("scaloquant.models.physics", "PhysicsQuantifier.checked_start", 3),
    ("scaloquant.fit.lm", "reweighted_steps", 3),
    ("scaloquant.models.physics", "PhysicsQuantifier.fit_objective_from", 3),
    ("scaloquant.fit.batched", "finish_on_the_full_grid", 3),
    ("scaloquant.models.physics", "PhysicsQuantifier.asks_for_flexible_baseline", 2),
    ("scaloquant.fit.spectra", "fit_spectra", 1),
    ("scaloquant.signal.noise", "residual_over_noise", 1),
    ("scaloquant.fit.spectra", "_solve", 2),
    ("scaloquant.fit.spectra", "asks_for_flexible_baseline", 2),
    ("scaloquant.fit.spectra", "_batched_result", 2),
    ("scaloquant.quantify.gather", "finish_run", 0),
    ("scaloquant.report.outputs", "write_run", 0),
    ("scaloquant.report.outputs", "results_csv", 1),
    ("scaloquant.report.outputs", "results_json_text", 1),
    ("scaloquant.report.outputs", "_write_maps", 1),
    ("scaloquant.report.markdown", "report_markdown", 1),
    ("scaloquant.report.html", "report_html", 1),
)

#: ``--solver``'s stages, printed in a second table: the parts of the solver that the polish,
#: its screen, the CRLBs and the refits share, summed over every caller (their own stages
#: above hold them): the model's evaluations (the columns: the lineshapes' modulated FIDs and
#: their FFTs; the amplitudes' and baseline's linear solve; the derivative columns, the
#: Jacobian), the Levenberg-Marquardt's normal equations and damped solves, the CRLBs' Fisher
#: matrices, the F-test's sums of squares and the HLSVD water removal's batched part.
SOLVER_STAGES = (
    ("scaloquant.fit.evaluation", "evaluate", 0),
    ("scaloquant.fit.evaluation", "columns", 1),
    ("scaloquant.physics.model", "modulated_fids", 2),
    ("scaloquant.physics.model", "fft", 2),
    ("scaloquant.fit.evaluation", "nnls_gram", 1),
    ("scaloquant.fit.evaluation", "_derivative_columns", 1),
    ("scaloquant.fit.lm", "_data_normal_equations", 0),
    ("scaloquant.fit.lm", "_step", 0),
    ("scaloquant.fit.crlb", "_normed_fisher", 0),
    ("scaloquant.fit.batched", "baseline_ftest_bound", 0),
    ("scaloquant.fit.batched", "baseline_ftest_ssq", 0),
    ("scaloquant.fit.problem", "make_problem", 0),
    ("scaloquant.signal.water", "_band_limited_batch", 0),
    ("scaloquant.signal.water", "_hankel_gram", 1),
)

MAIN = threading.main_thread()

#: The current run's ``{stage: [calls, wall s, CPU s, on a batch thread]}`` (a new one per run).
TOTALS: dict = defaultdict(lambda: [0, 0.0, 0.0, False])
#: Wall seconds of the caller's thread inside a stage called outside any other (``other``'s
#: complement), and how deep the caller's thread is in stages now.
OUTER = {"seconds": 0.0, "depth": 0}


def timed(label: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        main = threading.current_thread() is MAIN
        clock = time.process_time if main else time.thread_time
        start, cpu = time.perf_counter(), clock()
        if main:
            OUTER["depth"] += 1
        try:
            return fn(*args, **kwargs)
        finally:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if main:
                OUTER["depth"] -= 1
                if not OUTER["depth"]:
                    OUTER["seconds"] += time.perf_counter() - start
            total = TOTALS[label]
            total[0] += 1
            total[1] += time.perf_counter() - start
            total[2] += clock() - cpu
            total[3] = total[3] or not main

    return wrapper


def install(stages: tuple = STAGES) -> None:
    """Wrap every stage of ``stages`` where it is defined and where it was imported."""
    for module_name, qualified, _ in stages:
        module = sys.modules[module_name]
        owner_name, _, name = qualified.rpartition(".")
        owner = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, name, None)
        if original is None:  # a checkout without this stage (--compare)
            continue
        wrapper = timed(qualified, original)
        setattr(owner, name, wrapper)
        if owner_name:
            continue
        for other in list(sys.modules.values()):
            if other is not None and getattr(other, name, None) is original:
                setattr(other, name, wrapper)


def spectra_file(folder: Path, n: int, suffix: str) -> Path:
    from bench_physics import _grid_shape
    from scaloquant.io import default_basis, write_nifti_mrs
    from scaloquant.simulate import SimulationConfig, simulate_dataset
    from scaloquant.types import FID

    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [30, 30]})
    data = next(simulate_dataset(basis, config, n, 7, chunk_size=n))
    fid = FID(
        samples=data.fids.reshape(*_grid_shape(n), -1),
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
    )
    return write_nifti_mrs(folder / f"spectra{suffix}", fid)


def invivo_file(folder: Path, checkpoint: Path, n: int, snr: float, seed: int, suffix: str):
    """``bench_physics_baseline.py``'s ``n`` tissue-like spectra as one NIfTI-MRS file."""
    from bench_physics_baseline import model_spectra
    from scaloquant.io import write_nifti_mrs
    from scaloquant.simulate.prior import InvivoPrior

    prior = InvivoPrior(snr_range=(snr, snr))
    fid = model_spectra(checkpoint, None, prior, n, seed)[-1]
    return write_nifti_mrs(folder / f"invivo{suffix}", fid)


def print_table(wall: float, n: int, solver: bool) -> None:
    """The stages' lines (with ``solver``, :data:`SOLVER_STAGES`' after them), each with its
    CPU milliseconds per spectrum of the ``n``."""

    def line(qualified: str, depth: int) -> None:
        calls, seconds, cpu, threaded = TOTALS.get(qualified, (0, 0.0, 0.0, False))
        mark = "*" if threaded else " "
        label = "  " * (depth + 1) + qualified
        print(
            f"{label:56s}{mark} {calls:4d} calls {seconds:7.2f} s wall {cpu:7.2f} s CPU "
            f"{1e3 * cpu / n:7.2f} ms/spectrum"
        )

    for _, qualified, depth in STAGES:
        line(qualified, depth)
    other = wall - OUTER["seconds"]
    print(f"  {'other (outside the stages above)':54s}             {other:7.2f} s wall")
    if solver:
        print("  the solver's parts, every caller (inside the stages above):")
        for _, qualified, depth in SOLVER_STAGES:
            line(qualified, depth + 1)


def run_once(argv: list[str], label: str, n: int, solver: bool = False) -> None:
    TOTALS.clear()
    OUTER.update(seconds=0.0, depth=0)
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    code = scaloquant.cli.main(argv)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"{label}: {n} spectra: {wall:.2f} s wall, {cpu:.2f} s CPU, {n / wall:.1f} spectra/s, "
        f"load {load:.1f}, exit {code}",
        flush=True,
    )
    print_table(wall, n, solver)


def compare(args: argparse.Namespace, path: Path) -> None:
    """Children alternating between ``--compare``'s src and this checkout's on ``path``."""
    here = Path(__file__).resolve()
    sources = {"baseline": Path(args.compare).resolve(), "change": here.parents[1] / "src"}
    for round_ in range(args.rounds):
        for label, src in sources.items():
            print(f"--- round {round_ + 1}, {label} ({src})", flush=True)
            cmd = [sys.executable, str(here), args.checkpoint, "--file", str(path)]
            cmd += ["--repeat", str(args.repeat), "--threads", str(args.threads)]
            cmd += ["--device", args.device] + (["--fit"] if args.fit else [])
            cmd += ["--solver"] if args.solver else []
            if args.polish is not None:
                cmd += ["--polish", str(args.polish)]
            env = dict(os.environ, PYTHONPATH=str(src))
            subprocess.run(cmd, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=16384)
    parser.add_argument("--spectra", default="default", choices=["default", "invivo"])
    parser.add_argument("--snr", type=float, default=30.0, help="--spectra invivo's SNR")
    parser.add_argument("--seed", type=int, default=0, help="--spectra invivo's seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--suffix", default=".nii", choices=[".nii", ".nii.gz"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--fit", action="store_true", help="also time `scaloquant fit`")
    parser.add_argument(
        "--polish", type=int, default=None, help="the polish's K (default: its own)"
    )
    parser.add_argument(
        "--solver", action="store_true", help="also time the solver's parts (SOLVER_STAGES)"
    )
    parser.add_argument("--compare", default=None, help="another checkout's src folder")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--file", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None and args.spectra == "invivo":
            path = invivo_file(
                Path(tmp), Path(args.checkpoint), args.n, args.snr, args.seed, args.suffix
            )
        elif path is None:
            path = spectra_file(Path(tmp), args.n, args.suffix)
        if args.compare is not None:
            compare(args, path)
            return
        from scaloquant.io import read_fid

        fid = read_fid(path)
        n = fid.samples.size // fid.n_points
        print(f"imports {IMPORTS_S:.2f} s", flush=True)
        install()
        if args.solver:
            install(SOLVER_STAGES)
        model = args.checkpoint
        if args.polish is not None:
            from scaloquant.models.checkpoint import CHECKPOINT_KEY

            ckpt = torch.load(model, weights_only=True)
            ckpt[CHECKPOINT_KEY]["quantifier"]["polish_iterations"] = args.polish
            model = str(Path(tmp) / f"model_k{args.polish}.ckpt")
            torch.save(ckpt, model)
        common = ["--max-figures", "0", "--threads", str(args.threads)]
        for run in range(args.repeat):
            argv = ["quantify", str(path), "--model", model, "--device", args.device]
            argv += ["--out", str(Path(tmp) / f"out{run}"), *common]
            run_once(argv, f"run {run + 1} quantify (--device {args.device})", n, args.solver)
            if args.fit:
                argv = ["fit", str(path), "--out", str(Path(tmp) / f"fit{run}"), *common]
                argv += ["--device", args.device]
                run_once(argv, f"run {run + 1} fit", n, args.solver)


if __name__ == "__main__":
    main()
