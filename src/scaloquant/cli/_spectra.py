"""What ``scaloquant quantify`` and ``scaloquant fit`` share: their input, matching, output and
water-scaling flags, the options and provenance built from them, and what a run prints."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import defaults
from .._words import counted
from ..formats import fid_formats_text
from ._common import (
    acquisition_overrides,
    add_acquisition_flags,
    declare_flag_keys,
    number,
    path_value,
    whole_number,
)

_FORMATS = (
    f"{fid_formats_text()}; scanner files: convert them with spec2nii (given one, the error "
    "names the command)"
)


#: The defaults of :class:`scaloquant.quantify.Options` and
#: :class:`~scaloquant.quantify.WaterScaling` that the flags show and use, read from
#: :mod:`scaloquant.defaults`, the one module where the classes take them from too: importing
#: the classes would load numpy and make ``quantify --help`` (0.05 s) several times slower.
OPTION_DEFAULTS: dict[str, Any] = {
    "max_figures": defaults.MAX_FIGURES,
    "mrsi_figures": defaults.MRSI_FIGURES,
}
WATER_DEFAULTS: dict[str, Any] = {
    "tissue_fractions": defaults.TISSUE_FRACTIONS,
    "water_t2_ms": defaults.WATER_T2_MS,
    "metabolite_t2_ms": defaults.METABOLITE_T2_MS,
    "echo_time_ms": defaults.ECHO_TIME_MS,
}
TISSUES = defaults.TISSUES


def require_paths(args: argparse.Namespace) -> None:
    """Refuse, before numpy and torch are imported (3-5 s), a path of ``args`` that does not
    exist: the inputs, water references, ``fit --mm-spectrum`` files, ``--basis`` (a file or a
    folder), ``--config`` and ``--model``; the readers check the rest (formats, contents)."""
    from ..paths import CHECKPOINT_HINT, require_existing, require_file

    for path in (
        *args.inputs,
        *(args.water or ()),
        *(getattr(args, "mm_spectrum", None) or ()),
        *filter(None, [getattr(args, "basis", None)]),
    ):
        require_existing(path)
    if getattr(args, "config", None) is not None:
        require_file(args.config, "config file ")
    if getattr(args, "model", None) is not None:
        require_file(args.model, "checkpoint ", CHECKPOINT_HINT)


def read_inputs_ahead(args: argparse.Namespace):
    """A context in which the NIfTI inputs, water references and ``fit --mm-spectrum`` files of
    ``args`` are read and gunzipped on a thread while the command imports torch
    (:mod:`scaloquant.readahead`)."""
    from ..readahead import read_ahead

    paths = (*args.inputs, *(args.water or ()), *(getattr(args, "mm_spectrum", None) or ()))
    return read_ahead(p for p in paths if str(p).lower().endswith((".nii", ".nii.gz")))


def _numbers(values: Any) -> str:
    """``(0.6, 0.4, 0.0)`` -> ``"0.6 0.4 0"``, as the flags take them."""
    return " ".join(f"{v:g}" for v in (values if isinstance(values, tuple) else (values,)))


def add_io_flags(p: argparse.ArgumentParser) -> None:
    """Inputs, water, matching, output and water-scaling flags (quantify and fit); their
    defaults are those of :class:`~scaloquant.quantify.Options` and
    :class:`~scaloquant.quantify.WaterScaling`."""
    options, water = OPTION_DEFAULTS, WATER_DEFAULTS
    p.add_argument("inputs", nargs="+", type=path_value, metavar="INPUT", help=_FORMATS)
    p.add_argument("--out", type=path_value, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--water",
        type=path_value,
        action="append",
        default=[],
        metavar="FILE",
        help="unsuppressed water reference for mM: once for all inputs or once per input, "
        "in the inputs' order (--water A --water B) "
        "(default: the .H2O beside a .RAW, the water columns of a 4-column text file)",
    )
    p.add_argument(
        "--ecc",
        action="store_true",
        help="eddy-current correction: multiply each input's spectra by the conjugate phase "
        "of its water reference (Klose 1990; LCModel's DOECC, FSL-MRS's --ecc) before "
        "anything else, which also puts the water at the ppm reference; for data not "
        "corrected on the scanner; needs a water reference with the data's points and dwell "
        "time (an MRSI input: the MRSI water of its grid, each voxel by its own)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="accept an acquisition that does not match (field, dwell time, points, sequence, "
        "TE), converting where possible; warnings go to the summary",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty DIR, replacing earlier scaloquant outputs (other files kept)",
    )
    add_acquisition_flags(p, applies_to="input files that do not record it")
    p.add_argument(
        "--conjugate",
        action="store_true",
        help="read the input and water files in the other orientation than their format "
        "defines (their spectra mirrored about the reference): for files that were written "
        "conjugated, e.g. NIfTI-MRS of scaloquant < 0.2; a warning says when a spectrum looks "
        "mirrored",
    )
    p.add_argument(
        "--referencing",
        choices=("singlets", "off"),
        default="singlets",
        help="singlets (default): reference each 1H spectrum from its own NAA, creatine and "
        "choline singlets before the fit or model, as LCModel does, where they stand clearly "
        "more than 0.12 ppm from their shifts (the correction is reported); off: keep every "
        "file's ppm axis (also what --ppm-reference given does)",
    )
    max_figures = p.add_argument(
        "--max-figures",
        type=whole_number,
        default=options["max_figures"],
        metavar="N",
        help="fit figures at most, for the flagged spectra (results.csv's qc; the worst "
        "residual_over_noise first), then those of highest SNR (results.csv's snr; "
        "default: "
        f"{options['max_figures']}; fit, quantify --refine and a physics-head model draw "
        "representative voxels of an MRSI input instead, --mrsi-figures); 0 also leaves the "
        "MRSI maps out of "
        "report.html (their NIfTI files are written all the same)",
    )
    mrsi_figures = p.add_argument(
        "--mrsi-figures",
        type=whole_number,
        default=options["mrsi_figures"],
        metavar="N",
        help="fit figures per MRSI input (at most --max-figures) where there is a fit residual "
        "for every voxel (fit; quantify --refine or with a physics-head model): the voxels at "
        "N evenly spaced ranks of the "
        f"fit residual, best to worst (default: {options['mrsi_figures']}: best, quartiles, "
        "median, worst); the maps show every voxel",
    )
    w = p.add_argument_group("water scaling (defaults: ISMRM 2016 fitting challenge)")
    per_tissue = {"type": number, "nargs": 3, "metavar": TISSUES}
    fractions = water["tissue_fractions"]
    tissue_fractions = w.add_argument(
        "--tissue-fractions",
        **per_tissue,
        default=fractions,
        help=f"voxel volume fractions (default: {_numbers(fractions)})",
    )
    te_ms = w.add_argument(
        "--te-ms",
        type=number,
        metavar="MS",
        help="echo time for the relaxation terms (default: the file's, else the model's or "
        f"basis', else {_numbers(water['echo_time_ms'])})",
    )
    t2 = water["water_t2_ms"]
    water_t2_ms = w.add_argument(
        "--water-t2-ms",
        **per_tissue,
        default=t2,
        help=f"water T2 per tissue (default: {_numbers(t2)})",
    )
    metabolite_t2_ms = w.add_argument(
        "--metabolite-t2-ms",
        type=number,
        default=water["metabolite_t2_ms"],
        metavar="MS",
        help=f"metabolite T2 (default: {_numbers(water['metabolite_t2_ms'])})",
    )
    declare_flag_keys(
        p,
        {
            "max_figures": "--max-figures",
            "mrsi_figures": "--mrsi-figures",
            "tissue_fractions": "--tissue-fractions",
            "echo_time_ms": "--te-ms",
            "water_t2_ms": "--water-t2-ms",
            "metabolite_t2_ms": "--metabolite-t2-ms",
        },
        [max_figures, mrsi_figures, tissue_fractions, te_ms, water_t2_ms, metabolite_t2_ms],
    )


def options_from_args(args: argparse.Namespace, *, basis_metadata: Mapping, **extra: Any):
    """The quantify/fit options; the echo time is ``--te-ms``, else the basis metadata's, else
    :class:`~scaloquant.quantify.WaterScaling`'s default (30 ms)."""
    from ..quantify import Options, WaterScaling
    from ..signal.match import basis_sequence

    _, basis_te_s = basis_sequence(basis_metadata)
    default_te_ms = WATER_DEFAULTS["echo_time_ms"] if basis_te_s is None else basis_te_s * 1e3
    scaling = WaterScaling(
        tissue_fractions=tuple(args.tissue_fractions),
        water_t2_ms=tuple(args.water_t2_ms),
        metabolite_t2_ms=args.metabolite_t2_ms,
        echo_time_ms=args.te_ms if args.te_ms is not None else default_te_ms,
    )
    return Options(
        force=args.force,
        max_figures=args.max_figures,
        mrsi_figures=args.mrsi_figures,
        water_scaling=scaling,
        echo_time_given=args.te_ms is not None,
        # a reference the user gives is the one to use
        referencing=args.referencing == "singlets" and args.ppm_reference is None,
        ecc=args.ecc,
        **extra,
    )


def run_provenance(args: argparse.Namespace, **more: Any) -> dict[str, Any]:
    """The command line as given (``command_line``, shell-quoted, when ``cli.main`` parsed it),
    the options it gave (paths as text) and ``more``, for provenance.json and the report."""
    options = {
        k: [str(x) for x in v] if isinstance(v, list) else (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("handler", "argv")
    }
    argv = getattr(args, "argv", None)
    line = {} if argv is None else {"command_line": shlex.join(["scaloquant", *argv])}
    return {**line, "options": options, **more}


def user_basis_or_default(path: Path | None):
    """The ``--basis`` file as :func:`read_user_basis` reads it, or the embedded default and its
    name (:func:`~scaloquant.cli._common.embedded_basis`) when the flag is absent (fit, simulate
    --grid-from, train; quantify takes the model's basis instead)."""
    if path is None:
        from ._common import embedded_basis

        return embedded_basis()
    return read_user_basis(path)


def read_user_basis(path: Path | None):
    """The ``--basis`` file (it must record its own grid) and its name, or (None, None).

    A basis that does not record its grid is refused saying what it lacks: the reader's 'pass
    --dwell-time-s' sent the user to a flag that describes the inputs, and the same refusal
    followed with it given (quantify, fit; train has no such flag). The remedy is ``scaloquant
    basis convert``, which takes the grid as flags (the last message named NIfTI-MRS, which is
    not read as a basis)."""
    if path is None:
        return None, None
    from ..errors import MissingMetadataError
    from ..io import read_basis
    from ._common import grid_flags, lacked, refuse_simulation_basis

    refuse_simulation_basis(path, "--basis")
    try:
        return read_basis(path), str(path)
    except MissingMetadataError as err:
        # a folder's file is named beside the folder given
        where = f"--basis {path}" + (
            f": {Path(err.path).name}" if err.path and Path(err.path) != Path(path) else ""
        )
        raise MissingMetadataError(
            f"{where} does not record the {lacked(err.missing)}, and "
            "a basis must record its own grid: give one that does (LCModel .BASIS, .npz, a "
            "folder of FSL-MRS .json), or write this one with its grid: scaloquant basis "
            f"convert {path} basis.npz {' '.join(grid_flags(err.keywords))}",
            path=err.path,
            missing=err.missing,
        ) from None


def inputs_from_args(args: argparse.Namespace) -> list:
    """The input files and their water references, read as the io flags say (quantify, fit)."""
    from ..quantify import read_inputs

    return read_inputs(
        args.inputs,
        water=args.water,
        overrides=acquisition_overrides(args),
        override_header=args.override_header,
        conjugate=args.conjugate,
    )


def print_run(run: Any, verb: str, n_files: int, out: Path) -> None:
    """What a run did, for the terminal: counts, each input's conversions and warnings, the
    quality flags, the pairs the fit cannot tell apart, where the results are (quantify,
    fit): the run's :attr:`~scaloquant.quantify.Run.terminal_notes`, not worded again."""
    print(f"{verb} {counted(run.n_spectra, 'spectrum', 'spectra')} from {counted(n_files, 'file')}")
    for r in run.results:
        for line in (*r.conversions, *r.warnings):
            print(f"{r.input.label}: {line}")
    for line in run.terminal_notes:
        print(line)
    print(f"results: {out / 'results.csv'}; report: {out / 'report.html'}")
