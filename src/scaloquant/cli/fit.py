"""``scaloquant fit``: the classical linear-combination fit with Cramér–Rao bounds, with the
inputs and outputs of ``scaloquant quantify`` (see :func:`scaloquant.quantify.fit_inputs`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import acquisition_overrides
from .quantify import add_io_flags, options_from_args, run_provenance


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fit",
        help="fit real spectra with the classical linear-combination model and its CRLB",
        description=(
            "Fit every spectrum (every voxel and transient of MRSI or multi-dimensional "
            "NIfTI-MRS) with the basis set by variable projection, with Cramér-Rao lower bounds. "
            "Inputs are matched to the basis' acquisition as in scaloquant quantify, and the "
            "outputs have its layout: DIR/results.csv (amplitude, <name>_crlb_sd, "
            "<name>_crlb_pct, ratio to Cr+PCr, mM with a water reference), results.json, fit "
            "figures, NIfTI maps for MRSI, report.html (one self-contained page: overview table, "
            "figures, maps), summary.md and provenance.json."
        ),
    )
    p.add_argument(
        "--basis",
        type=Path,
        help="basis set (.BASIS, .npz or an FSL-MRS folder; default: the embedded ISMRM 2016 "
        "PRESS 3 T TE 30 ms basis)",
    )
    add_io_flags(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from ..io.atomic import check_output_dir
    from ..io.default import DEFAULT_BASIS_NAME, default_basis
    from ..quantify import fit_inputs, read_inputs, write_run
    from ..quantify.run import quality_note
    from .quantify import read_user_basis

    check_output_dir(args.out, overwrite=args.overwrite)  # before any work, not after it
    basis, basis_name = read_user_basis(args.basis)
    if basis is None:
        basis, basis_name = default_basis(), DEFAULT_BASIS_NAME
    inputs = read_inputs(
        args.inputs,
        water=args.water,
        overrides=acquisition_overrides(args),
        override_header=args.override_header,
        conjugate=args.conjugate,
    )
    options = options_from_args(args, basis_metadata=basis.metadata)
    run = fit_inputs(inputs, basis, basis_name=basis_name, options=options)
    write_run(
        run,
        args.out,
        overwrite=args.overwrite,
        provenance=run_provenance(args, basis={"name": basis_name, "hash": basis.content_hash()}),
    )
    print(f"fitted {run.n_spectra} spectra from {len(inputs)} file(s)")
    for r in run.results:
        for line in (*r.conversions, *r.warnings):
            print(f"{r.input.label}: {line}")
    for line in quality_note(run.results):
        print(line)
    print(f"results: {args.out / 'results.csv'}; report: {args.out / 'report.html'}")
    return 0
