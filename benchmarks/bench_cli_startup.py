"""How long a ``scaloquant`` command takes to show its ``--help`` or to refuse a path that does not
exist (``train``: also a flag of the other kind of model), in a fresh process (``python -m scaloquant ...``), one checkout against another in the
same run.

Each case runs as a new interpreter, as a user's command does; wall seconds and the child's CPU
seconds (user + system) are printed per run, with the load average. ``--compare SRC`` alternates
``SRC`` (another checkout's ``src``) and this checkout's ``src``, ``--rounds`` times each in a
rotated order, and says whether the two gave the same exit code, stdout and stderr (the
temporary folder's name left out). ``--cases`` picks cases by the start of their label.

Usage: ``PYTHONPATH=src python benchmarks/bench_cli_startup.py [--compare SRC] [--rounds 3]
[--cases simulate scalogram train]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: (label, argv): GONE is a path that does not exist, OUT an output in an empty folder.
CASES = (
    ("simulate --help", ["simulate", "--help"]),
    ("simulate missing --basis", ["simulate", "--n", "4", "--seed", "0", "--out", "OUT.h5", "--basis", "GONE"]),
    ("simulate missing --config", ["simulate", "--n", "4", "--seed", "0", "--out", "OUT.h5", "--config", "GONE.yaml"]),
    ("scalogram --help", ["scalogram", "--help"]),
    ("scalogram missing INPUT", ["scalogram", "GONE.h5", "--out", "OUT.npy"]),
    ("train --help", ["train", "--help"]),
    ("train missing --basis", ["train", "--model", "spectrum_physics", "--basis", "GONE", "--out", "OUT"]),
    ("train missing --config", ["train", "--model", "spectrum_cnn", "--config", "GONE.yaml", "--out", "OUT"]),
    ("train --basis to a CNN", ["train", "--model", "spectrum_cnn", "--basis", "GONE", "--out", "OUT"]),
)  # fmt: skip


def run_once(src: str, argv: list[str], folder: Path) -> tuple[float, float, int, str]:
    """``(wall s, child CPU s, exit code, stdout + stderr)`` of ``python -m scaloquant ARGV`` on
    ``src``."""
    words = [
        w.replace("GONE", str(folder / "gone")).replace("OUT", str(folder / "out")) for w in argv
    ]
    env = {**os.environ, "PYTHONPATH": src}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "scaloquant", *words], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode, (proc.stdout + proc.stderr).replace(str(folder), "DIR")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="SRC", help="another checkout's src, alternated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", nargs="+", metavar="LABEL", help="cases whose label starts so")
    args = parser.parse_args()
    trees = {"this": str(SRC)}
    if args.compare:
        trees = {"base": str(Path(args.compare).resolve()), **trees}
    cases = [c for c in CASES if not args.cases or c[0].startswith(tuple(args.cases))]
    results: dict[tuple[str, str], list[tuple[float, float, int, str]]] = {}
    for r in range(args.rounds):
        order = list(trees)[r % len(trees) :] + list(trees)[: r % len(trees)]
        for label, argv in cases:
            for tree in order:
                with tempfile.TemporaryDirectory() as tmp:
                    got = run_once(trees[tree], argv, Path(tmp))
                results.setdefault((label, tree), []).append(got)
                print(
                    f"round {r} {tree:>4} {label:<28} wall {got[0]:6.2f} s  cpu {got[1]:6.2f} s  "
                    f"exit {got[2]}  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    print("\ncase: wall seconds per round (child CPU seconds)")
    for label, _ in cases:
        for tree in trees:
            runs = results[(label, tree)]
            walls = ", ".join(f"{w:.2f}" for w, _, _, _ in runs)
            cpus = ", ".join(f"{c:.2f}" for _, c, _, _ in runs)
            print(f"{label:<28} {tree:>4}: {walls} ({cpus})")
        if len(trees) == 2:
            outcomes = {(rc, err) for tree in trees for _, _, rc, err in results[(label, tree)]}
            print(f"{'':<28} same exit code and output: {len(outcomes) == 1}")


if __name__ == "__main__":
    main()
