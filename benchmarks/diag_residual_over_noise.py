"""The ``residual_over_noise`` quality column against how far the estimates are off the truth.

Data: the spectra of :mod:`diag_quantify_outliers` (``--n`` ``invivo`` spectra on the
checkpoint's grid, SNR 5-150 as the prior draws it, or ``--snr`` one value; with
``--default-simulator`` the default simulator's, SNR 30), in one file, run by each of
``--runs``: ``fit`` (``scaloquant fit``'s default, the ``invivo`` preset), ``fit-simulated``
(``fit`` with the per-metabolite ``simulated`` preset), ``model`` (``quantify --model CKPT``,
its default polish and ``adaptive`` stiffness).

Prints per run, for two kinds of rows far off the truth (a metabolite more than 10 of its CRLB
SDs, the ``_crlb_sd`` column, off it; a metabolite more than ``--far-units`` off it; of the
metabolites the truth draws: not the macromolecules and lipids of the default simulator's
spectra, which it does not draw): how many, and of
those and of the others the range and percentiles of ``residual_over_noise``; then, for
thresholds on it, how many of those rows it would flag and how many others, with and without
the rows some other ``qc`` flag already marks; then its percentiles by SNR band. ``--csv FILE``
writes every row (run, row, SNR, fit_residual, residual_over_noise, largest error in SDs, the
error in units there and its metabolite, the largest error in units, qc).

Usage::

    PYTHONPATH=src:benchmarks python benchmarks/diag_residual_over_noise.py CKPT [--n 256]
        [--seed 0] [--snr SNR] [--default-simulator] [--runs fit fit-simulated model]
        [--csv FILE]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from diag_quantify_outliers import add_spectra_flags, spectra_with_truth
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import write_nifti_mrs
from scaloquant.quantify import Options, fit_inputs, quantify_inputs, read_inputs

#: Thresholds on ``residual_over_noise`` whose catches and false alarms are counted.
THRESHOLDS = (1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 8.0)
#: A row is far off where a metabolite is more than this many of its CRLB SDs from the truth
#: (or more than ``--far-units`` from it).
FAR_SDS = 10.0


def errors(result, names: tuple[str, ...], truth: np.ndarray):
    """``(z (N,), units (N,), which (N,), largest (N,))``: each row's largest error in CRLB SDs
    over the metabolites of ``names`` the run has and the truth draws (not 0 in every row), its
    error in units there, that metabolite, and the row's largest error in units over them."""
    res = result.results[0]
    drawn = np.any(truth != 0, axis=0)  # the default simulator draws no MM or lipids
    have = [m for m, d in zip(names, drawn, strict=True) if d and m in result.names]
    index = [result.names.index(m) for m in have]
    t = truth[:, [names.index(m) for m in have]]
    amp = np.asarray(res.columns[""], float)[:, index]
    sd = np.asarray(res.columns["_crlb_sd"], float)[:, index]
    err = np.abs(amp - t)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, err / sd, 0.0)
    z = np.where(np.isfinite(z), z, 0.0)
    j = z.argmax(axis=1)
    rows = np.arange(len(z))
    return z[rows, j], err[rows, j], [have[k] for k in j], np.nan_to_num(err).max(axis=1)


def percentiles(values: np.ndarray) -> str:
    v = values[np.isfinite(values)]
    if not v.size:
        return "none"
    p = np.percentile(v, [0, 50, 90, 99, 100])
    return (
        f"n {v.size}: min {p[0]:.2f} median {p[1]:.2f} p90 {p[2]:.2f} p99 {p[3]:.2f} max {p[4]:.2f}"
    )


def report(label: str, result, names, truth, writer, far_units: float) -> None:
    res = result.results[0]
    ron = np.asarray(res.quality["residual_over_noise"], float)
    snr = np.asarray(res.quality["snr"], float)
    fres = np.asarray(res.quality["fit_residual"], float)
    z, units, which, largest = errors(result, names, truth)
    flagged = np.array([bool(q) for q in res.qc])
    kinds = {f"{FAR_SDS:g} CRLB SDs": z > FAR_SDS, f"{far_units:g} units": largest > far_units}
    for kind, far in kinds.items():
        print(
            f"{label}: rows more than {kind} off {far.sum()} of {far.size}, "
            f"{(far & ~flagged).sum()} of them without a qc flag"
        )
        print(f"  they:   {percentiles(ron[far])}")
        print(f"  others: {percentiles(ron[~far])}")
        for t in THRESHOLDS:
            above = ron > t
            print(
                f"  > {t:4.1f}: they {int((above & far).sum()):4d} "
                f"(unflagged {int((above & far & ~flagged).sum()):4d})  others "
                f"{int((above & ~far).sum()):4d} (unflagged {int((above & ~far & ~flagged).sum()):4d})"
            )
    for lo, hi in ((0, 15), (15, 30), (30, 60), (60, 100), (100, 1e9)):
        band = (snr >= lo) & (snr < hi)
        if band.any():
            print(f"  SNR {lo}-{hi if hi < 1e9 else 'up'}: {percentiles(ron[band])}")
    if writer is not None:
        for i in range(len(z)):
            writer.writerow(
                [label, i, f"{snr[i]:.1f}", f"{fres[i]:.4f}", f"{ron[i]:.3f}", f"{z[i]:.1f}",
                 f"{units[i]:.2f}", which[i], f"{largest[i]:.2f}", res.qc[i]]
            )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_spectra_flags(p)
    p.add_argument(
        "--runs", nargs="+", default=["fit", "model"], choices=("fit", "fit-simulated", "model")
    )
    p.add_argument("--csv", type=Path)
    p.add_argument(
        "--far-units",
        type=float,
        default=0.5,
        help="units off the truth that count as far (default 0.5: half the default "
        "simulator's amplitude range, 0-1)",
    )
    args = p.parse_args(argv)
    model, basis, fid, truth, names = spectra_with_truth(args)
    what = "default-simulator" if args.default_simulator else "invivo"
    print(
        f"{args.n} {what} spectra, seed {args.seed}, SNR {args.snr or 'as drawn'}, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    handle = open(args.csv, "a", newline="") if args.csv else None  # noqa: SIM115
    writer = csv.writer(handle) if handle else None
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nifti_mrs(Path(tmp) / "sim.nii.gz", fid)
        for run in args.runs:
            if run == "model":
                result = quantify_inputs(read_inputs([path]), model, options=Options(max_figures=0))
            else:
                preset = "invivo" if run == "fit" else "simulated"
                options = Options(fit_config=FIT_PRESETS[preset], max_figures=0)
                result = fit_inputs(read_inputs([path]), basis, basis_name="diag", options=options)
            report(f"{what} {run}", result, names, truth, writer, args.far_units)
            if handle:
                handle.flush()
    if handle:
        handle.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
