"""``scaloquant basis info [PATH] [--plot FILE.png]``: describe a basis set (default: the embedded
ISMRM 2016 basis) and optionally draw its spectra; ``scaloquant basis convert PATH OUTPUT.npz`` (or
``OUTPUT.BASIS``): rewrite one as a .npz that records its grid (the acquisition flags supply
what PATH lacks) or as an LCModel .BASIS, chosen by OUTPUT's suffix.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fit.basis_grid import basis_reference_from_singlets
from ..formats import basis_formats_text
from ..io.atomic import check_writable
from ..io.lcmodel import LCMODEL_NAME_CHARS
from ..signal.peaks import main_peak_ppm
from ..types import BasisSet
from ._common import add_acquisition_flags, header_override_notes, load_basis, path_value

#: The window of the main-peak column and of the plot, ppm (the paper's fitting range).
PPM_RANGE = (0.2, 4.3)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "basis",
        help="inspect basis sets, or rewrite one as .npz or LCModel .BASIS",
        description="Inspect metabolite basis sets, or rewrite one as a .npz that records its "
        "grid or as an LCModel .BASIS.",
    )
    sub = p.add_subparsers(dest="basis_command", metavar="ACTION")
    sub.required = True
    info = sub.add_parser(
        "info",
        help="print a basis set's acquisition and metabolites",
        description="Print a basis set's acquisition and a table of its metabolites with their "
        "main peak and first point; optionally draw every spectrum. Without PATH, the embedded "
        "ISMRM 2016 basis.",
    )
    info.add_argument(
        "path",
        nargs="?",
        type=path_value,
        metavar="PATH",
        help=f"{basis_formats_text()} (default: the embedded basis)",
    )
    info.add_argument(
        "--plot",
        type=path_value,
        metavar="FILE.png",
        help=f"draw every real spectrum, {PPM_RANGE[0]}-{PPM_RANGE[1]} ppm, stacked",
    )
    info.add_argument("--overwrite", action="store_true", help="replace an existing plot file")
    add_acquisition_flags(info, applies_to="files that do not record it")
    info.set_defaults(handler=handle_info)

    convert = sub.add_parser(
        "convert",
        help="rewrite a basis set as a .npz file that records its grid, or as LCModel .BASIS",
        description="Read a basis set (any format the PATH of 'basis info' takes) and write it "
        "as OUTPUT's suffix says. OUTPUT.npz: scaloquant's .npz, which records the dwell time, "
        "spectrometer frequency and ppm reference: a folder of LCModel .RAW or text files, "
        "which record none, given them here becomes a basis that fit, quantify and train take "
        "as --basis. OUTPUT.BASIS: an LCModel basis set, for LCModel's FILBAS (0 Hz moved to "
        "4.65 ppm, as LCModel takes it; names cut to LCModel's "
        f"{LCMODEL_NAME_CHARS} characters).",
    )
    convert.add_argument(
        "path",
        type=path_value,
        metavar="PATH",
        help=basis_formats_text(),
    )
    convert.add_argument(
        "out",
        type=path_value,
        metavar="OUTPUT",
        help="the file to write: OUTPUT.npz (scaloquant's) or OUTPUT.BASIS (LCModel's)",
    )
    convert.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    add_acquisition_flags(convert, applies_to="files that do not record it")
    convert.set_defaults(handler=handle_convert)


def _load(args: argparse.Namespace) -> BasisSet:
    return load_basis(args.path, args, flag="PATH")[0]


def describe(basis: BasisSet, source: str) -> str:
    """The text ``basis info`` prints: acquisition, then one row per metabolite."""
    acq = basis.acquisition
    meta = basis.metadata
    nominal = f", nominal {meta['field_strength_t']:g} T" if "field_strength_t" in meta else ""
    lines = [
        f"source:                 {source}",
        f"metabolites:            {basis.n_metabolites}",
        f"points:                 {acq.n_points}",
        f"dwell time:             {acq.dwell_time_s * 1e3:g} ms",
        f"spectral width:         {acq.spectral_width_hz:g} Hz",
        f"spectrometer frequency: {acq.spectrometer_freq_mhz:.10g} MHz",
        f"field:                  {acq.field_strength_t:.3f} T{nominal}",
        f"ppm reference:          0 Hz = {acq.ppm_reference:g} ppm",
        f"nucleus:                {acq.nucleus}",
    ]
    # what fit (and a physics-head model) make of its reference: the main peaks below are on
    # the file's own, which the fit corrects where NAA and Cr sit off together (Osprey's
    # Philips TE 35 basis: NAA at 1.978 ppm, fitted as referenced at 4.68 ppm)
    _, referenced = basis_reference_from_singlets(basis)
    lines[8:8] = [f"                        fit: {sentence}" for sentence in referenced]
    lines += [f"header:                 {note}" for note in header_override_notes(basis)]
    if "sequence" in meta or "echo_time_ms" in meta:
        seq = str(meta.get("sequence", "unknown sequence"))
        if "echo_time_ms" in meta:
            seq += f", TE {meta['echo_time_ms']:g} ms"
        if "te1_ms" in meta and "te2_ms" in meta:
            seq += f" (TE1 {meta['te1_ms']:g} ms, TE2 {meta['te2_ms']:g} ms)"
        lines.append(f"sequence:               {seq}")
    if "licence" in basis.provenance:
        lines.append(f"licence:                {basis.provenance['licence']}")
    if "citation" in basis.provenance:
        lines.append(f"cite:                   {basis.provenance['citation']}")
    peaks = main_peak_ppm(
        basis.fids,
        acq.dwell_time_s,
        acq.spectrometer_freq_mhz,
        acq.ppm_reference,
        ppm_range=PPM_RANGE,
    )
    width = max(8, *(len(n) for n in basis.names))
    lines += ["", f"{'name':<{width}}  main peak (ppm)  first point (real)"]
    for name, ppm, first in zip(basis.names, peaks, basis.fids[:, 0], strict=True):
        lines.append(f"{name:<{width}}  {ppm:15.3f}  {first.real:18.4g}")
    return "\n".join(lines)


def handle_info(args: argparse.Namespace) -> int:
    if args.plot is not None:
        check_writable(args.plot, overwrite=args.overwrite)  # fail before any work
        if args.plot.suffix.lower() != ".png":
            raise ConfigError(f"--plot {args.plot}: give a .png file name")
    basis = _load(args)
    source = (
        str(args.path)
        if args.path is not None
        else (f"embedded default basis: {basis.provenance.get('dataset', 'ISMRM 2016')}")
    )
    print(describe(basis, source))
    if args.plot is not None:
        from ..report.figures import plot_basis_spectra, save_png

        fig = plot_basis_spectra(basis, source, ppm_range=PPM_RANGE)
        save_png(fig, args.plot, overwrite=args.overwrite)
        print(f"\nplot written to {args.plot}")
    return 0


def handle_convert(args: argparse.Namespace) -> int:
    from ..io import write_basis_npz, write_lcmodel_basis
    from ..io.lcmodel import lcmodel_basis_names

    suffix = args.out.suffix.lower()
    if suffix not in (".npz", ".basis"):
        raise ConfigError(
            f"{args.out}: give a .npz (scaloquant's basis format) or .BASIS (LCModel's) file name"
        )
    check_writable(args.out, overwrite=args.overwrite)  # fail before any work
    basis = _load(args)
    if suffix == ".npz":
        write_basis_npz(args.out, _as_converted(basis, args.path), overwrite=args.overwrite)
    else:
        write_lcmodel_basis(args.out, basis, overwrite=args.overwrite)
        for name, short in zip(basis.names, lcmodel_basis_names(basis.names), strict=True):
            if short != name.strip():
                print(f"basis: {name} written as {short!r} (LCModel keeps {len(short)} characters)")
    acq = basis.acquisition
    print(
        f"wrote {args.out}: {basis.n_metabolites} metabolites, {acq.n_points} points, dwell "
        f"{acq.dwell_time_s * 1e3:g} ms, {acq.spectrometer_freq_mhz:.10g} MHz, 0 Hz = "
        f"{acq.ppm_reference:g} ppm"
    )
    for note in header_override_notes(basis):
        print(f"basis: {note}")
    return 0


def _as_converted(basis: BasisSet, source: Path) -> BasisSet:
    """``basis`` with its provenance saying where the .npz came from. An ``--override-header``
    replacement moves under ``converted_from``: left as it was, every later reader of the .npz
    reported it again ('... used instead of the 127.7861 MHz the file records', of a file that
    records 123.2) and simulate wrote it into files made without the flag."""
    provenance = dict(basis.provenance)
    overridden = provenance.pop("header_overrides", None)
    said = set(header_override_notes(basis))
    warnings = [w for w in provenance.pop("warnings", None) or () if w not in said]
    if warnings:
        provenance["warnings"] = warnings
    provenance["converted_from"] = {
        "path": str(source),
        **({"header_overrides": dict(overridden)} if overridden else {}),
    }
    return dataclasses.replace(basis, provenance=provenance)
