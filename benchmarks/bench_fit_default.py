"""The in-vivo default's speed on ``bench_fit_engine.py``'s spectra, one checkout against
another in the same run, and whether they give the same fits to the bit.

``fit_spectra`` with ``FIT_PRESETS["invivo"]`` (the ``adaptive`` baseline) of ``--n``
default-simulator spectra (seed ``--seed``, SNR 30; ``bench_fit_engine.py``'s ``invivo`` row)
and, with ``--tissue``, of as many tissue-like ones (its third row), at ``--threads`` torch
threads (2, as ``bench_fit_engine.py --threads 2``). Each measurement is a child process (a
warm-up call, then ``--repeat`` timed calls: wall and process CPU seconds, the load average
before and after, and a SHA-256 of every array of the ``FitResult``). ``--compare SRC``
alternates ``SRC`` (another checkout's ``src``, e.g. main's exported by ``git archive``) and
this checkout's ``src``, ``--rounds`` times each in a rotated order, and prints each one's
median spectra/s (wall and per CPU-s), its median system CPU seconds and page faults a call
(``getrusage``), and whether every call of both gave the same digest.

Usage: ``PYTHONPATH=src python benchmarks/bench_fit_default.py [--n 128] [--seed 1]
[--tissue] [--threads 2] [--repeat 3] [--compare SRC --rounds 6]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def digest(result) -> str:
    """SHA-256 of every array field of a ``FitResult`` (names sorted)."""
    import numpy as np

    h = hashlib.sha256()
    for name in sorted(vars(result)):
        value = getattr(result, name)
        if isinstance(value, np.ndarray) and value.dtype != object:
            h.update(name.encode())
            h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


def child(args: argparse.Namespace) -> None:
    """Time ``--repeat`` calls in this process; one JSON line per run (spectra set)."""
    # first: OpenMP's passive wait, huge pages and MKL's reproducible mode, as the command
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_fit_engine

    engine_spectra = bench_fit_engine.engine_spectra

    import torch

    from scaloquant.fit import fit_spectra
    from scaloquant.fit.config import FIT_PRESETS

    torch.set_num_threads(args.threads)
    basis, _, fid, tissue_fid = engine_spectra(args.n, 30.0, args.seed)
    runs = {"invivo": fid, **({"tissue": tissue_fid} if args.tissue else {})}
    config = FIT_PRESETS["invivo"]
    for run, data in runs.items():
        fit_spectra(data, basis, config)  # warm-up
        calls = []
        for _ in range(args.repeat):
            load = os.getloadavg()[0]
            before = resource.getrusage(resource.RUSAGE_SELF)
            wall, cpu = time.perf_counter(), time.process_time()
            result = fit_spectra(data, basis, config)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            after = resource.getrusage(resource.RUSAGE_SELF)
            calls.append({"wall": wall, "cpu": cpu, "load": [load, os.getloadavg()[0]]})
            calls[-1]["sys"] = after.ru_stime - before.ru_stime
            calls[-1]["faults"] = after.ru_minflt - before.ru_minflt
            calls[-1]["digest"] = digest(result)
        print(json.dumps({"run": run, "calls": calls}), flush=True)


def compare(args: argparse.Namespace) -> None:
    """Children alternating between ``--compare``'s src and this checkout's."""
    import numpy as np

    here = Path(__file__).resolve()
    sources = {"baseline": Path(args.compare).resolve(), "change": here.parents[1] / "src"}
    rates: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    kernel: dict[tuple[str, str], list[tuple[float, int]]] = {}
    digests: dict[str, set[str]] = {}
    for round_ in range(args.rounds):
        order = list(sources.items())
        for label, src in order if round_ % 2 == 0 else order[::-1]:
            cmd = [sys.executable, str(here), "--child", "--n", str(args.n)]
            cmd += ["--seed", str(args.seed), "--threads", str(args.threads)]
            cmd += ["--repeat", str(args.repeat)] + (["--tissue"] if args.tissue else [])
            env = dict(os.environ, PYTHONPATH=str(src))
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            for line in out.stdout.splitlines():
                record = json.loads(line)
                run = record["run"]
                for call in record["calls"]:
                    rates.setdefault((run, label), []).append(args.n / call["wall"])
                    cpus.setdefault((run, label), []).append(args.n / call["cpu"])
                    kernel.setdefault((run, label), []).append((call["sys"], call["faults"]))
                    digests.setdefault(run, set()).add(call["digest"])
                walls = ", ".join(f"{args.n / c['wall']:.2f}" for c in record["calls"])
                loads = ", ".join(f"{c['load'][0]:.1f}" for c in record["calls"])
                print(f"round {round_ + 1} {label:8s} {run:6s}: {walls} spectra/s (load {loads})")
    for (run, label), values in sorted(rates.items()):
        print(
            f"{run:6s} {label:8s}: median {np.median(values):.2f} spectra/s wall "
            f"({min(values):.2f}-{max(values):.2f}), {np.median(cpus[(run, label)]):.2f} per CPU-s; "
            f"system CPU {np.median([k[0] for k in kernel[(run, label)]]):.2f} s, "
            f"{np.median([k[1] for k in kernel[(run, label)]]):.0f} page faults a call (medians)"
        )
    for run, found in digests.items():
        print(f"{run}: {'the same fits to the bit in every call' if len(found) == 1 else found}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tissue", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", default=None, help="another checkout's src folder")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
    elif args.compare is not None:
        compare(args)
    else:
        args.compare = str(Path(__file__).resolve().parents[1] / "src")
        args.rounds = 1
        compare(args)


if __name__ == "__main__":
    main()
