"""``scaloquant quantify``: metabolite amplitudes, uncertainties, ratios and mM of real files
with a trained model (see :mod:`scaloquant.quantify`). Its input, matching and output flags are
shared with ``scaloquant fit``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._common import acquisition_overrides, add_acquisition_flags

_FORMATS = "NIfTI-MRS (.nii/.nii.gz, SVS or MRSI), LCModel .RAW, jMRUI .txt or 2/4-column text"


def add_io_flags(p: argparse.ArgumentParser) -> None:
    """Inputs, water, matching, output and water-scaling flags (quantify and fit)."""
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help=_FORMATS)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--water",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="unsuppressed water reference for mM: once for all inputs or once per input "
        "(default: the .H2O beside a .RAW, the water columns of a 4-column text file)",
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
    add_acquisition_flags(p, applies_to="input files")
    p.add_argument(
        "--conjugate",
        action="store_true",
        help="read the input and water files in the other orientation than their format "
        "defines (their spectra mirrored about the reference): for files that were written "
        "conjugated, e.g. NIfTI-MRS of scaloquant < 0.2; a warning says when a spectrum looks "
        "mirrored",
    )
    p.add_argument(
        "--max-figures",
        type=int,
        default=16,
        metavar="N",
        help="fit figures at most, for the spectra of largest signal (default: 16)",
    )
    p.add_argument("--workers", type=int, default=1, metavar="N", help="fit processes (default: 1)")
    w = p.add_argument_group("water scaling (defaults: ISMRM 2016 fitting challenge)")
    w.add_argument(
        "--tissue-fractions",
        type=float,
        nargs=3,
        metavar=("GM", "WM", "CSF"),
        default=(0.6, 0.4, 0.0),
        help="voxel volume fractions (default: 0.6 0.4 0)",
    )
    w.add_argument(
        "--te-ms",
        type=float,
        metavar="MS",
        help="echo time for the relaxation terms (default: the file's, else the model's or "
        "basis', else 30)",
    )
    w.add_argument(
        "--water-t2-ms",
        type=float,
        nargs=3,
        metavar=("GM", "WM", "CSF"),
        default=(110.0, 80.0, 2030.0),
        help="water T2 per tissue (default: 110 80 2030)",
    )
    w.add_argument(
        "--metabolite-t2-ms",
        type=float,
        default=160.0,
        metavar="MS",
        help="metabolite T2 (default: 160)",
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "quantify",
        help="quantify real spectra with a trained model",
        description=(
            "Quantify every spectrum (every voxel and transient of MRSI or multi-dimensional "
            "NIfTI-MRS) with a checkpoint of scaloquant train. Each input is checked against the "
            "model's acquisition and safely converted (zero-filling, truncation...) or refused "
            "unless --force. Writes DIR/results.csv (amplitude, SD, ratio to Cr+PCr and, with a "
            "water reference, mM per metabolite), results.json (what each column means), fit "
            "figures, NIfTI maps for MRSI, report.html (one self-contained page: overview table, "
            "figures, maps), summary.md and provenance.json."
        ),
    )
    p.add_argument("--model", type=Path, required=True, metavar="CKPT", help="trained checkpoint")
    p.add_argument(
        "--basis",
        type=Path,
        help="the basis the model was trained on, if not the embedded one (for the fit "
        "figures, --refine and mM; checked against the checkpoint)",
    )
    p.add_argument(
        "--refine",
        action="store_true",
        help="also fit every spectrum with the classical fit started from the network's "
        "estimate (columns <name>_refined, _crlb_sd, _crlb_pct)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="spectra per network batch (default: the model's fastest, 16 for a scalogram CNN "
        "on CPU)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="auto",
        help="where the network runs (default: auto, a CUDA GPU when there is one)",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads of the network (default: the idle CPUs this process may use, from "
        "its CPU affinity and the load average; see scaloquant.threads)",
    )
    add_io_flags(p)
    p.set_defaults(handler=handle)


def options_from_args(args: argparse.Namespace, *, basis_metadata: Mapping, **extra: Any):
    """The quantify/fit options; the echo time is ``--te-ms``, else the basis metadata's, else
    30 ms."""
    from ..quantify import Options, WaterScaling
    from ..signal.match import basis_sequence

    _, basis_te_s = basis_sequence(basis_metadata)
    default_te_ms = 30.0 if basis_te_s is None else basis_te_s * 1e3
    scaling = WaterScaling(
        tissue_fractions=tuple(args.tissue_fractions),
        water_t2_ms=tuple(args.water_t2_ms),
        metabolite_t2_ms=args.metabolite_t2_ms,
        echo_time_ms=args.te_ms if args.te_ms is not None else default_te_ms,
    )
    return Options(
        force=args.force,
        max_figures=args.max_figures,
        n_workers=args.workers,
        water_scaling=scaling,
        echo_time_given=args.te_ms is not None,
        **extra,
    )


def run_provenance(args: argparse.Namespace, **more: Any) -> dict[str, Any]:
    """The options as given (paths as text) and ``more``, for provenance.json."""
    options = {
        k: [str(x) for x in v] if isinstance(v, list) else (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("handler",)
    }
    return {"options": options, **more}


def read_user_basis(path: Path | None):
    """The ``--basis`` file (it must record its own grid) and its name, or (None, None)."""
    if path is None:
        return None, None
    from ..io import read_basis

    return read_basis(path), str(path)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA GPU is available; use --device cpu")
    return name


def handle(args: argparse.Namespace) -> int:
    from ..threads import choose_threads, torch_threads

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    with torch_threads(choose_threads(args.threads)):  # restored for in-process callers
        return _quantify(args)


def _quantify(args: argparse.Namespace) -> int:
    from ..io.atomic import check_output_dir
    from ..models.checkpoint import load_model  # torch only: no Lightning to apply a model
    from ..quantify import quantify_inputs, write_run
    from ..quantify.outputs import file_sha256

    check_output_dir(args.out, overwrite=args.overwrite)  # before any work, not after it
    model = load_model(args.model, map_location=_device(args.device))
    basis, basis_name = read_user_basis(args.basis)
    inputs = inputs_from_args(args)
    options = options_from_args(
        args,
        basis_metadata=model.metadata.basis_metadata,
        batch_size=args.batch_size,
        refine=args.refine,
    )
    run = quantify_inputs(inputs, model, basis=basis, basis_name=basis_name, options=options)
    write_run(
        run,
        args.out,
        overwrite=args.overwrite,
        provenance=run_provenance(
            args, checkpoint={"path": str(args.model), "sha256": file_sha256(args.model)}
        ),
    )
    print_run(run, "quantified", len(inputs), args.out)
    return 0


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
    quality flags, where the results are (quantify, fit)."""
    from ..quantify.run import quality_note

    print(f"{verb} {run.n_spectra} spectra from {n_files} file(s)")
    for r in run.results:
        for line in (*r.conversions, *r.warnings):
            print(f"{r.input.label}: {line}")
    for line in quality_note(run.results):
        print(line)
    print(f"results: {out / 'results.csv'}; report: {out / 'report.html'}")
