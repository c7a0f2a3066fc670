"""A ``spectrum_physics`` checkpoint beside ``scaloquant fit`` on the 28 ISMRM 2016 challenge
spectra (``../shared/data/ismrm2016-challenge/datasets_JMRUI``, each with its water reference,
the challenge basis): no truth is used (it is scored elsewhere), only the two estimates compared.

Prints, per dataset, tNAA, tCho, Glx and Ins over tCr of the physics model and of the fit and
both qc flags (a ratio differing by more than 20 % is starred), then per ratio the median
relative difference, and the mean absolute difference in mM over the basis' metabolites (the
challenge's own score is a mean absolute error in mM against the truth).

Usage::

    PYTHONPATH=src python benchmarks/bench_physics_real.py CKPT OUT_DIR [--basis DIR] [--verbose]
        [--datasets 1,2,...]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

from bench_invivo_ratios import ratio_tcr, run_case

CHALLENGE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ismrm2016-challenge"
BASIS = CHALLENGE.parent / "ismrm2016" / "basis" / "jmrui"
KEYS = ("tNAA", "tCho", "Glx", "Ins")
#: relative difference of a ratio that is starred
FLAG = 0.2


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--basis", type=Path, default=BASIS, help="the basis the checkpoint has")
    parser.add_argument("--datasets", help="comma-separated numbers (default: 1-28)")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="read the results of an earlier run in OUT_DIR"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    folder = CHALLENGE / "datasets_JMRUI"
    if not folder.is_dir():
        print(f"{folder} is absent")
        return 1
    numbers = [int(n) for n in args.datasets.split(",")] if args.datasets else list(range(1, 29))
    inputs = [str(folder / f"dataset{n}_WS.txt") for n in numbers]
    water = [a for n in numbers for a in ("--water", str(folder / f"dataset{n}_nWS.txt"))]
    runs = {
        "physics": ["quantify", "--model", str(args.ckpt), "--basis", str(args.basis)],
        "fit": ["fit", "--basis", str(args.basis)],
    }
    rows: dict[str, list[dict[str, str]]] = {}
    for label, command in runs.items():
        out = args.out / label
        cmd = [sys.executable, "-m", "scaloquant", *command, *inputs, *water, "--out", str(out)]
        first = None if args.reuse else run_case([*cmd, "--overwrite"], out, args.verbose)
        if isinstance(first, str):
            print(f"{label}: failed\n{first}")
            return 1
        rows[label] = read_rows(out / "results.csv")
    header = (
        "dataset " + "".join(f" {k + '/tCr phys fit':>22s}" for k in KEYS) + "  qc physics / fit"
    )
    print(header)
    rel: dict[str, list[float]] = {k: [] for k in KEYS}
    differ: list[int] = []
    #: |physics - fit| in mM and the fit's mM, for datasets 1-21 (no artefacts) and 22-28
    mm_diff: dict[str, list[float]] = {"1-21": [], "22-28": []}
    mm_fit: dict[str, list[float]] = {"1-21": [], "22-28": []}
    for n, phys, fit in zip(numbers, rows["physics"], rows["fit"], strict=True):
        line, starred = f"{n:7d} ", False
        for key in KEYS:
            a, b = ratio_tcr(phys, key), ratio_tcr(fit, key)
            r = 0.0 if a == b else a / b - 1 if b else math.nan
            if math.isfinite(r):
                rel[key].append(abs(r))
            bad = not abs(r) <= FLAG
            starred |= bad
            line += f" {a:10.3f} {b:10.3f}{'*' if bad else ' '}"
        differ += [n] if starred else []
        print(f"{line}  {phys.get('qc') or '-'} / {fit.get('qc') or '-'}")
        names = [c[: -len("_mM")] for c in phys if c.endswith("_mM") and not c.startswith("Lip")]
        for name in names:
            x, y = float(phys[f"{name}_mM"]), float(fit.get(f"{name}_mM", "nan"))
            if math.isfinite(x) and math.isfinite(y) and name != "Mac":
                group = "1-21" if n <= 21 else "22-28"
                mm_diff[group].append(abs(x - y))
                mm_fit[group].append(y)
    for key in KEYS:
        values = rel[key]
        median = 100 * statistics.median(values) if values else math.nan
        print(f"{key}/tCr: median |relative difference| {median:.1f} % on {len(values)} datasets")
    print(f"datasets with a ratio differing by more than {100 * FLAG:.0f} %: {differ or 'none'}")
    for group, diffs in mm_diff.items():
        if diffs:
            mean, scale = statistics.fmean(diffs), statistics.fmean(mm_fit[group])
            print(
                f"datasets {group}: mean |physics - fit| {mean:.3f} mM over the metabolites "
                f"(Mac, lipids left out; {len(diffs)} values; the fit's mean {scale:.3f} mM)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
