"""The cost of one Levenberg-Marquardt iteration of small solves, one checkout against another
in the same run, and whether they give the same solutions to the bit.

A child process fits ``--n`` default-simulator spectra (seed 1, SNR 30; ``bench_fit_engine.py``'s
``invivo`` row) with ``FIT_PRESETS["invivo"]`` at 1 torch thread once, recording the arguments
of every :func:`~scaloquant.fit.lm.levenberg_marquardt` call of the fit (its solves: the first
fits, the F-test's refits, the polish), then replays those calls ``--repeat`` times and prints
the thread CPU milliseconds per LM iteration (the replay's thread CPU time over the iterations
of its loops: the largest ``iterations`` of each call), and a SHA-256 of the solutions' ``theta``
and cost. ``--compare SRC`` alternates ``SRC`` (another checkout's ``src``) and this checkout's
``src``, ``--rounds`` times each in a rotated order (the load average printed with each).

Usage: ``PYTHONPATH=src python benchmarks/bench_lm_small.py [--n 4] [--repeat 20]
[--compare SRC --rounds 6]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def child(args: argparse.Namespace) -> None:
    """Record the fit's LM calls, replay them; one JSON line."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_fit_engine  # first: the command's OpenMP / MKL settings

    engine_spectra = bench_fit_engine.engine_spectra

    import torch

    from scaloquant.fit import batched, fit_spectra, search, stages
    from scaloquant.fit import lm as fit_lm
    from scaloquant.fit.config import FIT_PRESETS

    torch.set_num_threads(1)
    basis, _, fid, _ = engine_spectra(args.n, 30.0, 1)
    calls = []

    def copied(value):
        return value.clone() if isinstance(value, torch.Tensor) else value

    def recording(*a, **kw):
        calls.append(([copied(v) for v in a], {k: copied(v) for k, v in kw.items()}))
        return fit_lm.levenberg_marquardt(*a, **kw)

    modules = (batched, search, stages)
    for module in modules:
        module.levenberg_marquardt = recording
    fit_spectra(fid, basis, FIT_PRESETS["invivo"])
    for module in modules:
        module.levenberg_marquardt = fit_lm.levenberg_marquardt

    def replay():
        out = []
        for a, kw in calls:
            a = [copied(v) for v in a]
            out.append(fit_lm.levenberg_marquardt(*a, **{k: copied(v) for k, v in kw.items()}))
        return out

    solutions = replay()  # warm-up
    loops = sum(int(s.iterations.max()) for s in solutions)
    h = hashlib.sha256()
    for s in solutions:
        h.update(s.theta.numpy().tobytes())
        h.update(s.evaluation.cost.numpy().tobytes())
    load = os.getloadavg()[0]
    cpu = time.thread_time()
    for _ in range(args.repeat):
        replay()
    cpu = time.thread_time() - cpu
    record = {"ms": 1e3 * cpu / (args.repeat * loops), "calls": len(calls), "loops": loops}
    print(json.dumps(record | {"digest": h.hexdigest()[:16], "load": load}), flush=True)


def compare(args: argparse.Namespace) -> None:
    """Children alternating between ``--compare``'s src and this checkout's."""
    import numpy as np

    here = Path(__file__).resolve()
    sources = {"baseline": Path(args.compare).resolve(), "change": here.parents[1] / "src"}
    ms: dict[str, list[float]] = {}
    digests = set()
    for round_ in range(args.rounds):
        order = list(sources.items())
        for label, src in order if round_ % 2 == 0 else order[::-1]:
            cmd = [sys.executable, str(here), "--child", "--n", str(args.n)]
            cmd += ["--repeat", str(args.repeat)]
            env = dict(os.environ, PYTHONPATH=str(src))
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            record = json.loads(out.stdout.splitlines()[-1])
            ms.setdefault(label, []).append(record["ms"])
            digests.add(record["digest"])
            print(
                f"round {round_ + 1} {label:8s}: {record['ms']:.3f} ms thread CPU per LM "
                f"iteration ({record['calls']} calls, {record['loops']} iterations; "
                f"load {record['load']:.1f})"
            )
    for label, values in ms.items():
        print(
            f"{label:8s}: median {np.median(values):.3f} ms per iteration "
            f"({min(values):.3f}-{max(values):.3f})"
        )
    print("the same solutions to the bit" if len(digests) == 1 else f"differ: {digests}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--compare", default=None, help="another checkout's src folder")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
    else:
        if args.compare is None:
            args.compare, args.rounds = str(Path(__file__).resolve().parents[1] / "src"), 1
        compare(args)


if __name__ == "__main__":
    main()
