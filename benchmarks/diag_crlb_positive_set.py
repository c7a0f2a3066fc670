"""Our %SD with the bound's amplitudes limited to the positive set, as LCModel forms its SDs,
beside LCModel's on the spectra of a ``benchmarks/bench_lcmodel.py`` run (docs/fit.md "Our %SD
beside LCModel's"; docs/history/fit-log.md, session 33).

LCModel's covariance is that of the positive set alone (``LCModel.f``: the columns ``INDCOL``
of the non-negative solver's passive set; an estimate of 0 is a constraint, held, with %SD
999). scaloquant's bound (:func:`scaloquant.fit.crlb.crlb`) keeps every amplitude's column,
those fitted at 0 too (the unconstrained bound at the fitted lineshape), so an overlapping
metabolite at 0 widens its neighbours' SDs. This script refits the scaloquant side of a
``bench_lcmodel.py`` run's set twice, with the bound as it is and with the amplitudes at 0
held (their rows and columns of the Fisher matrix those of the identity, their covariance 0,
as LCModel's), checks that the amplitudes are the run's, and prints
``bench_lcmodel._print_percent_sd`` for both: the %SD ratio to LCModel's and, on the ``tissue``
set, the calibration of each tool's SDs against the truth. A diagnostic: the library's bound
is untouched (the held variant is substituted for this process only).

Usage::

    PYTHONPATH=src:benchmarks python benchmarks/diag_crlb_positive_set.py RESULTS_JSON
        [--set invivo|tissue] [--snr 30] [--seed 0]

``RESULTS_JSON``: ``bench_lcmodel.py --out DIR``'s ``DIR/results.json``, with the set;
``--snr``/``--seed``: the tissue set's, as that run was given them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

import bench_lcmodel as bench
import scaloquant.fit.batched as batched
from scaloquant.fit import crlb as bound
from scaloquant.fit.config import FIT_PRESETS


def positive_set_crlb(problem, ev, noise_var, amplitude_prior=None):
    """:func:`scaloquant.fit.crlb.crlb` with the amplitudes at 0 (outside ``ev.passive``)
    held: their rows and columns of the normed Fisher matrix the identity's, their covariance
    0 (LCModel's covariance of the positive set)."""
    normed, outer, ident = bound._normed_fisher(problem, ev, noise_var, amplitude_prior)
    held = ~ev.passive.bool()
    held = torch.cat([held, held.new_zeros(held.shape[0], normed.shape[-1] - held.shape[1])], -1)
    mask = held[:, :, None] | held[:, None, :]
    normed.masked_fill_(mask, 0.0)
    torch.diagonal(normed, dim1=-2, dim2=-1).masked_fill_(held, 1.0)
    cov = bound._inverse(normed).mul_(noise_var[:, None, None]).div_(outer)
    return cov.masked_fill_(mask, 0.0), ident


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--set", choices=("invivo", "tissue"), default="tissue")
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())["sets"].get(args.set)
    if not results:
        print(f"{args.results} holds no {args.set!r} set")
        return 1
    folder = Path(tempfile.mkdtemp(prefix="diag-crlb-"))
    n = len(results[0]["rows"])
    groups = (
        bench.invivo_set(folder)
        if args.set == "invivo"
        else bench.tissue_set(folder, n, args.snr, args.seed)
    )
    if [g.label for g in groups] != [r["label"] for r in results]:
        print(f"the {args.set} set of {args.results} is not this script's (other groups)")
        return 1
    original = batched.crlb
    for variant, function in (("as it is", original), ("amplitudes at 0 held", positive_set_crlb)):
        batched.crlb = function
        for group, result in zip(groups, results, strict=True):
            ours = bench.fit_with_scaloquant(
                [c.fid for c in group.cases],
                [c.water for c in group.cases],
                group.basis,
                workers=2,
                force=group.force,
                fit_config=FIT_PRESETS["invivo"],
            )
            rows = []
            for i, row in enumerate(result["rows"]):
                run = np.array(list(row["scaloquant_amplitudes"].values()), dtype=np.float64)
                atol = 1e-6 * np.nanmax(np.abs(run), initial=0.0)  # a failed fit's row: NaN
                if not np.allclose(ours.amplitudes[i], run, rtol=1e-6, atol=atol, equal_nan=True):
                    print(f"{row['name']}: the refit's amplitudes are not the run's")
                    return 1
                sd = dict(zip(ours.names, ours.crlb_sd[i].tolist(), strict=True))
                rows.append(dict(row, scaloquant_crlb_sd=sd))
            print(f"\n=== bound {variant}: {result['label']}")
            bench._print_percent_sd(dict(result, rows=rows), per_spectrum=8)
    batched.crlb = original
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
