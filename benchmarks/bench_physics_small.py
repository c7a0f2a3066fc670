"""A physics-head model on small inputs with torch's threads: the polish of one small batch (an
SVS file, a few spectra) and the refits of the spectra its screen flags, against another
checkout in one run.

Data: ``bench_physics_baseline.py``'s ``invivo`` spectra on the checkpoint's grid (its
``model_spectra``: full prior, SNR ``--snr``, seed ``--seed``), ``--n`` of them, less the water
the fit's HLSVD removes. Lines, each timed ``--repeats`` times (wall and CPU seconds of this
process) with ``--threads`` torch threads:

* ``polish N``: ``predict_estimates`` of the first ``N`` spectra (``--polish-n``, at the
  checkpoint's ``K``), one batch;
* ``refits (M)``: ``fit_spectra`` of the ``M`` spectra that the screen
  (``asks_for_flexible_baseline``) flags among all ``--n`` at ``K = --refit-k``, with the
  fit's adaptive rule on the model's fit settings, as ``quantify`` refits them (since session
  31; before, the flexible baseline's F-test model over 0.2-4.0 ppm).

``--compare SRC`` runs this script in child processes alternating between ``SRC`` (another
checkout's ``src`` folder, e.g. main's exported by ``git archive``) and this checkout's ``src``,
``--rounds`` times each; the numbers of a line are compared between the two by their bits
(``same bits as the other checkout``: both the first child's of each).

Usage: ``PYTHONPATH=src python benchmarks/bench_physics_small.py CKPT [--n 256] [--snr 30]
[--seed 0] [--polish-n 1 8] [--refit-k 1] [--threads 2] [--repeats 2] [--compare SRC
--rounds 2]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np


def run(args: argparse.Namespace) -> None:
    import torch

    from _timing import timed
    from bench_physics_baseline import model_spectra
    from scaloquant.fit import fit_spectra
    from scaloquant.signal.water import remove_water
    from scaloquant.simulate.prior import InvivoPrior
    from scaloquant.threads import blas_threads, prefer_reproducible_mkl
    from scaloquant.types import FID

    prefer_reproducible_mkl()
    prior = InvivoPrior(snr_range=(args.snr, args.snr))
    model, _, _, _, fid = model_spectra(args.checkpoint, None, prior, args.n, args.seed)
    q = model.quantifier
    samples = fid.samples.reshape(args.n, -1)
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    seen = remove_water(samples, *grid)
    torch.set_num_threads(args.threads)
    theta = q.predict_estimates(seen, polish_iterations=args.refit_k).theta
    flagged = np.flatnonzero(q.asks_for_flexible_baseline(seen, theta))
    again = FID(samples[flagged], *grid)
    adaptive = replace(q.config.fit_config, baseline_stiffness="adaptive")
    lines = {
        f"polish {n}": (lambda n=n: q.predict_estimates(seen[:n]).amplitudes) for n in args.polish_n
    }
    lines[f"refits ({flagged.size})"] = lambda: fit_spectra(again, q.basis(), adaptive).amplitudes
    out = {}
    for label, line in lines.items():
        for _ in range(args.repeats):
            with blas_threads(1):
                result, wall, cpu = timed(line)
            print(f"{label:14s} {wall:6.2f} s wall {cpu:6.2f} s CPU", flush=True)
        out[label] = np.asarray(result)
    if args.keep is not None:
        np.savez(args.keep, **out)


def compare(args: argparse.Namespace) -> None:
    here = Path(__file__).resolve()
    sources = {"baseline": Path(args.compare).resolve(), "change": here.parents[1] / "src"}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for label, src in sources.items():
                print(
                    f"--- round {round_ + 1}, {label} ({src}), load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                cmd = [sys.executable, str(here), str(args.checkpoint), "--n", str(args.n)]
                cmd += ["--snr", str(args.snr), "--seed", str(args.seed)]
                cmd += ["--polish-n", *map(str, args.polish_n), "--refit-k", str(args.refit_k)]
                cmd += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
                cmd += ["--keep", str(Path(tmp) / f"{label}{round_}.npz")]
                subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=str(src)), check=True)
        base, change = (np.load(Path(tmp) / f"{label}0.npz") for label in sources)
        for name in base.files:
            same = np.array_equal(base[name], change[name], equal_nan=True)
            print(f"{name}: same bits as the other checkout: {same}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--snr", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--polish-n", type=int, nargs="+", default=[1, 8])
    p.add_argument("--refit-k", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--compare", default=None, help="another checkout's src folder")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--keep", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.compare is not None:
        compare(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
