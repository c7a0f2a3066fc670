"""``quantify --model``'s time with and without the check of a polish stopped in a worse minimum
(``polish_minimum``: the spectra whose polish misses more than ``POLISH_MISFIT_MAX`` of the data
beyond the noise are fitted again as ``fit`` fits them), against another checkout in one run.

Data: ``bench_physics_baseline.py``'s ``invivo`` spectra on the checkpoint's grid (its
``model_spectra``: full prior, SNR ``--snr``, seed ``--seed``), ``--n`` of them, written once to
an MRSI-shaped NIfTI-MRS file. Each round runs ``python -m scaloquant quantify FILE --model CKPT
--max-figures 0`` in a child process with ``PYTHONPATH`` set to ``--compare SRC`` (another
checkout's ``src``, e.g. main's exported by ``git archive``) and to this checkout's ``src``, in
turn (the order swapped every round), ``--rounds`` times each, and times the child: wall and CPU
seconds (user + system, the child's own, start-up included).

Prints each run's times, the least CPU of each checkout and their ratio, the load, and how the
two checkouts' ``results.csv`` differ: the rows whose line differs, and how many of them this
checkout flagged or fitted again (its ``qc`` column and its run note).

Usage::

    PYTHONPATH=src python benchmarks/bench_polish_minimum.py CKPT --compare SRC [--basis B]
        [--n 256] [--snr 30] [--seed 0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child_times(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--compare", type=Path, required=True, help="another checkout's src folder")
    p.add_argument("--basis", type=Path, help="the basis the model was trained on")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--snr", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    from bench_physics_baseline import model_spectra
    from scaloquant.io import write_nifti_mrs
    from scaloquant.simulate.prior import InvivoPrior

    here = Path(__file__).resolve()
    sources = {"baseline": args.compare.resolve(), "change": here.parents[1] / "src"}
    prior = InvivoPrior(snr_range=(args.snr, args.snr))
    *_, fid = model_spectra(args.checkpoint, args.basis, prior, args.n, args.seed)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in sources}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_nifti_mrs(Path(tmp) / "spectra.nii.gz", fid)
        print(f"{args.n} spectra, SNR {args.snr:g}, seed {args.seed}, {args.checkpoint}")
        for round_ in range(args.rounds):
            order = list(sources) if round_ % 2 == 0 else list(reversed(sources))
            for label in order:
                out = Path(tmp) / label
                cmd = [sys.executable, "-m", "scaloquant", "quantify", str(data), "--model",
                       str(args.checkpoint), "--max-figures", "0", "--out", str(out),
                       "--overwrite"]  # fmt: skip
                env = dict(os.environ, PYTHONPATH=str(sources[label]))
                wall, cpu = child_times(cmd, env)
                times[label].append((wall, cpu))
                load = os.getloadavg()[0]
                print(f"round {round_ + 1} {label:8s}: {wall:7.2f} s wall, {cpu:7.2f} CPU-s, load {load:.1f}")  # fmt: skip
        best = {label: min(c for _, c in t) for label, t in times.items()}
        print(
            f"least CPU: baseline {best['baseline']:.2f} s, change {best['change']:.2f} s "
            f"({best['change'] / best['baseline']:.3f}x)"
        )
        rows = {}
        for label in sources:
            with open(Path(tmp) / label / "results.csv", newline="") as handle:
                rows[label] = list(csv.DictReader(handle))
        differ = [
            j
            for j, (a, b) in enumerate(zip(rows["baseline"], rows["change"], strict=True))
            if a != b
        ]
        flagged = sum("polish_minimum" in r["qc"] for r in rows["change"])
        notes = json.loads((Path(tmp) / "change" / "results.json").read_text())["notes"]
        minimum = [n for n in notes if n.startswith("the polish's minimum")]
        print(
            f"results.csv: {len(differ)} of {len(rows['change'])} rows differ; the change "
            f"flagged {flagged} polish_minimum; its note: {minimum[0] if minimum else 'none'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
