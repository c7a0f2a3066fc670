"""Where one ``scaloquant quantify --model`` run's wall time goes, stage by stage.

Writes ``--n`` default-simulator spectra at SNR 30 (seed 7, as ``bench_physics.py --quantify``)
as one MRSI-like NIfTI-MRS file (uncompressed with ``--suffix .nii``), then runs the command in
this process (``scaloquant.cli.main``) ``--repeat`` times with timers around its stages: the
read, the quality checks, the water-near-window check, the network (and polish), and the
writers. A stage's time includes the stages it calls (the writers' lines are part of
``write_run``'s); ``other`` is the run's time outside the stages named. The imports are timed
once, before the first run; CUDA's start-up falls in the first run's stages, so the last
run's table is the steady one. No profiler: the times are those of a plain run.

Usage: ``PYTHONPATH=src python benchmarks/diag_quantify_stages.py CKPT [--n 16384]
[--polish 0] [--threads 2] [--device cpu|cuda] [--suffix .nii|.nii.gz] [--repeat 2]``
(``--polish K``: a copy of the checkpoint with ``polish_iterations = K``; default its own)
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

IMPORT_START = time.perf_counter()

import torch  # noqa: E402

import scaloquant.cli  # noqa: E402
import scaloquant.io.dispatch  # noqa: E402
import scaloquant.models.physics  # noqa: E402
import scaloquant.quantify.run  # noqa: E402
import scaloquant.report.html  # noqa: E402
import scaloquant.report.markdown  # noqa: E402
import scaloquant.report.outputs  # noqa: E402
import scaloquant.signal.quality  # noqa: E402

IMPORTS_S = time.perf_counter() - IMPORT_START

#: ``(module, function)`` of the stages, in the order printed; a function imported by name
#: elsewhere is timed there too (every module holding the same object gets the wrapper).
STAGES = (
    ("scaloquant.io.dispatch", "read_fid"),
    ("scaloquant.signal.quality", "quality_figures"),
    ("scaloquant.signal.quality", "water_near_window"),
    ("scaloquant.models.physics", "PhysicsQuantifier.predict_estimates"),
    ("scaloquant.report.outputs", "write_run"),
    ("scaloquant.report.outputs", "results_csv"),
    ("scaloquant.report.outputs", "results_json_text"),
    ("scaloquant.report.outputs", "_write_maps"),
    ("scaloquant.report.markdown", "report_markdown"),
    ("scaloquant.report.html", "report_html"),
)


#: The current run's ``{stage: [calls, seconds]}`` (a new one per run).
TOTALS: dict = defaultdict(lambda: [0, 0.0])


def timed(label: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            TOTALS[label][0] += 1
            TOTALS[label][1] += time.perf_counter() - start

    return wrapper


def install() -> None:
    """Wrap every stage of :data:`STAGES` where it is defined and where it was imported."""
    for module_name, qualified in STAGES:
        module = sys.modules[module_name]
        owner_name, _, name = qualified.rpartition(".")
        owner = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, name)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--suffix", default=".nii", choices=[".nii", ".nii.gz"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--polish", type=int, default=None, help="the polish's K (default: its own)"
    )
    args = parser.parse_args()
    print(f"imports {IMPORTS_S:.2f} s")
    install()
    outer = ("read_fid", "quality_figures", "water_near_window")
    outer += ("PhysicsQuantifier.predict_estimates", "write_run")
    with tempfile.TemporaryDirectory() as tmp:
        path = spectra_file(Path(tmp), args.n, args.suffix)
        model = args.checkpoint
        if args.polish is not None:
            from scaloquant.models.checkpoint import CHECKPOINT_KEY

            ckpt = torch.load(model, weights_only=True)
            ckpt[CHECKPOINT_KEY]["quantifier"]["polish_iterations"] = args.polish
            model = str(Path(tmp) / f"model_k{args.polish}.ckpt")
            torch.save(ckpt, model)
        for run in range(args.repeat):
            TOTALS.clear()
            argv = ["quantify", str(path), "--model", model]
            argv += ["--out", str(Path(tmp) / f"out{run}"), "--max-figures", "0"]
            argv += ["--threads", str(args.threads), "--device", args.device]
            start = time.perf_counter()
            code = scaloquant.cli.main(argv)
            wall = time.perf_counter() - start
            print(
                f"run {run + 1}: {args.n} spectra ({args.suffix}, --threads {args.threads}, "
                f"--device {args.device}): {wall:.2f} s, {args.n / wall:.0f} spectra/s, exit {code}"
            )
            for _, qualified in STAGES:
                calls, seconds = TOTALS.get(qualified, (0, 0.0))
                indent = "  " if qualified in outer else "    "
                print(f"{indent}{qualified:40s} {calls:3d} calls {seconds:7.2f} s")
            other = wall - sum(TOTALS[label][1] for label in outer if label in TOTALS)
            print(f"  {'other (outside the stages above)':40s}           {other:7.2f} s")


if __name__ == "__main__":
    main()
