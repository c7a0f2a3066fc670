"""``scaloquant convert``: rewrite a FID file as NIfTI-MRS or LCModel ``.RAW``.

Every reader converts its format's orientation to the internal one and every writer converts it
back (see :mod:`scaloquant.io`), so a converted file shows its peaks where the input did in every
tool that follows the formats. ``--conjugate`` reads the input the other way: the repair for a
file written in the wrong orientation, such as the NIfTI-MRS files of scaloquant < 0.2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..formats import fid_formats_text
from ._common import acquisition_overrides, add_acquisition_flags, path_value

_OUTPUTS = ".nii, .nii.gz (NIfTI-MRS) or .RAW (LCModel)"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "convert",
        help="rewrite a FID file as NIfTI-MRS or LCModel .RAW",
        description=(
            f"Read a FID file and write it as {_OUTPUTS}, chosen by OUTPUT's extension. The "
            "header keeps the acquisition (dwell time, spectrometer frequency, ppm reference, "
            "nucleus, sequence and TE where known) and names the source file. INPUT: "
            f"{fid_formats_text()}."
        ),
    )
    p.add_argument("input", type=path_value, metavar="INPUT", help="the FID file to read")
    p.add_argument(
        "output", type=path_value, metavar="OUTPUT", help=f"the file to write: {_OUTPUTS}"
    )
    p.add_argument(
        "--conjugate",
        action="store_true",
        help="read INPUT in the other orientation than its format defines (its spectrum "
        "mirrored about the reference), e.g. a NIfTI-MRS file of scaloquant < 0.2",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    add_acquisition_flags(p, applies_to="an INPUT that does not record it")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from ..io import read_fid, write_lcmodel_raw, write_nifti_mrs
    from ..io.nifti import is_nifti_path

    out: Path = args.output
    is_raw = out.suffix.lower() == ".raw"
    if not (is_raw or is_nifti_path(out)):
        raise ConfigError(f"OUTPUT {out} must end in {_OUTPUTS}")
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it")
    fid = read_fid(
        args.input,
        conjugate=args.conjugate,
        override_header=args.override_header,
        **acquisition_overrides(args),
    )
    extra = {}
    if "sequence" in fid.provenance:
        extra["SequenceName"] = fid.provenance["sequence"]
    if "echo_time_s" in fid.provenance:
        extra["EchoTime"] = fid.provenance["echo_time_s"]
    if is_raw:
        write_lcmodel_raw(out, fid, name=str(fid.provenance.get("name", out.stem)), overwrite=True)
    else:
        write_nifti_mrs(out, fid, overwrite=True, extra_header=extra)
    if not args.conjugate:  # the reader's warnings ask for --conjugate where it applies
        for warning in fid.provenance.get("warnings") or ():
            print(f"{args.input.name}: {warning}")
    flipped = " (conjugated)" if args.conjugate else ""
    shape = fid.samples.shape[:-1]
    n = math.prod(shape)
    count = "1 FID" if n == 1 else f"{n} FIDs ({' x '.join(map(str, shape))})"
    print(f"wrote {out}{flipped}: {count} of {fid.n_points} points")
    return 0
