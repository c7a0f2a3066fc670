"""``scaloquant quantify``: metabolite amplitudes, uncertainties, ratios and mM of real files
with a trained model (see :mod:`scaloquant.quantify`). Its input, matching and output flags are
shared with ``scaloquant fit``."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ._common import (
    add_threads_flag,
    declare_flag_keys,
    first_imports,
    number,
    path_value,
    whole_number,
    with_threads,
)
from ._spectra import (
    add_io_flags,
    inputs_from_args,
    options_from_args,
    print_run,
    read_inputs_ahead,
    read_user_basis,
    require_paths,
    run_provenance,
)

#: :class:`scaloquant.models.adapt.AdaptConfig`'s defaults, for the help text (kept equal by
#: tests/cli/test_cli_adapt.py; the CLI's help must not load torch).
ADAPT_DEFAULTS = {"steps": 100, "learning_rate": 1e-4}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "quantify",
        help="quantify real spectra with a trained model",
        description=(
            "Quantify every spectrum (every voxel and transient of MRSI or multi-dimensional "
            "NIfTI-MRS) with a checkpoint of scaloquant train. Each input is checked against the "
            "model's acquisition and safely converted (zero-filling, truncation...) or refused "
            "unless --force. Writes DIR/results.csv (amplitude, SD, ratio to Cr+PCr and, with a "
            "water reference, mM per metabolite; snr, fwhm, fit_residual, residual_over_noise "
            "(after a fit: --refine or a physics-head model) and qc flags per spectrum), "
            "results.json (what each column means), fit "
            "figures, NIfTI maps for MRSI, report.html (one self-contained page: overview table, "
            "figures, maps), summary.md and provenance.json."
        ),
    )
    p.add_argument(
        "--model", type=path_value, required=True, metavar="CKPT", help="trained checkpoint"
    )
    p.add_argument(
        "--basis",
        type=path_value,
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
        "--adapt",
        action="store_true",
        help="physics-head models: before quantifying, fine-tune a copy of the model's encoder "
        "on the input spectra themselves by the reconstruction loss (no labels; test-time "
        "adaptation, docs/physics-models.md); the summary gives the residual before and after",
    )
    adapt_steps = p.add_argument(
        "--adapt-steps",
        type=whole_number,
        metavar="N",
        help=f"optimiser steps of --adapt (default {ADAPT_DEFAULTS['steps']})",
    )
    adapt_lr = p.add_argument(
        "--adapt-lr",
        type=number,
        metavar="X",
        help=f"learning rate of --adapt (default {ADAPT_DEFAULTS['learning_rate']:g})",
    )
    adapt_seed = p.add_argument(
        "--adapt-seed",
        type=whole_number,
        metavar="S",
        help="seed of --adapt's mini-batch order (default 0)",
    )
    p.add_argument(
        "--save-adapted",
        type=path_value,
        metavar="CKPT",
        help="with --adapt: also write the adapted model as a checkpoint (refused if it exists, "
        "unless --overwrite)",
    )
    polish_iterations = p.add_argument(
        "--polish-iterations",
        type=whole_number,
        metavar="K",
        help="physics-head models: iterations of the fit's solver after the network (default: "
        "the checkpoint's, set by scaloquant train; 0: the network alone, fastest)",
    )
    p.add_argument(
        "--baseline-stiffness",
        choices=("adaptive", "fixed"),
        help="physics-head models with a spline baseline: adaptive (default, as fit's default) "
        "screens each polished spectrum with LCModel's F-test against a more flexible baseline "
        "and fits those that ask for one, and those whose polish may have stopped in a worse "
        "minimum than fit's, as fit does; fixed: the polish's stiffness for all (the latter "
        "flagged polish_minimum)",
    )
    batch_size = p.add_argument(
        "--batch-size",
        type=whole_number,
        metavar="N",
        help="spectra per network batch (default: the model's fastest; on CPU the most whose "
        "largest activation fits the memory budget, 16 for the cpu-preset scalogram CNN)",
    )
    device = p.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="auto",
        help="where the network runs (default: auto, a CUDA GPU when there is one)",
    )
    add_threads_flag(p, what="the network")
    add_io_flags(p)
    declare_flag_keys(
        p,
        {
            "batch_size": "--batch-size",
            "device": "--device",  # fit.batched.usable_device's
            "polish_iterations": "--polish-iterations",
            "steps": "--adapt-steps",  # AdaptConfig's keys
            "learning_rate": "--adapt-lr",
            "seed": "--adapt-seed",
        },
        [batch_size, device, polish_iterations, adapt_steps, adapt_lr, adapt_seed],
    )
    p.set_defaults(handler=handle)


def _device(name: str) -> str:
    import torch

    from ..fit.batched import usable_device

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    usable_device(name)
    return name


def handle(args: argparse.Namespace) -> int:
    require_paths(args)
    with read_inputs_ahead(args):
        with first_imports():
            _import_the_run()
        return with_threads(args, _quantify)


def _import_the_run() -> None:
    """The modules every ``quantify`` run imports (torch, scipy's FFT, the model and quantify
    packages), in one block (:func:`~scaloquant.cli._common.first_imports`); the file readers'
    (nibabel) stay with the format that needs them."""
    import scipy.fft  # noqa: F401
    import torch  # noqa: F401

    from .. import quantify  # noqa: F401
    from ..models import checkpoint  # noqa: F401


def _quantify(args: argparse.Namespace) -> int:
    from ..io.atomic import check_output_dir
    from ..models.checkpoint import load_model  # torch only: no Lightning to apply a model
    from ..quantify import quantify_inputs
    from ..report.outputs import file_sha256, write_run

    check_output_dir(args.out, overwrite=args.overwrite)  # before any work, not after it
    adapt = _adapt_config(args)
    model = load_model(args.model, map_location=_device(args.device))
    basis, basis_name = read_user_basis(args.basis)
    inputs = inputs_from_args(args)
    options = options_from_args(
        args,
        basis_metadata=model.metadata.basis_metadata,
        batch_size=args.batch_size,
        refine=args.refine,
        adapt=adapt,
        polish_iterations=args.polish_iterations,
        baseline_stiffness=args.baseline_stiffness,
    )
    import scipy.fft
    import torch

    # the quality checks on the run's threads too: their blocks of spectra side by side
    # (signal.quality.quality_figures takes scipy's workers; the model's own FFTs already take
    # torch's thread count)
    with scipy.fft.set_workers(torch.get_num_threads()):
        run = quantify_inputs(inputs, model, basis=basis, basis_name=basis_name, options=options)
    # hashed once: the run's provenance and an adapted checkpoint's source name the same file
    checkpoint = {"path": str(args.model), "sha256": file_sha256(args.model)}
    write_run(
        run,
        args.out,
        overwrite=args.overwrite,
        map_figures=args.max_figures > 0,
        provenance=run_provenance(args, checkpoint=checkpoint),
    )
    if run.adaptation is not None:
        if args.save_adapted is not None:
            from ..models.adapt import write_adapted_checkpoint

            write_adapted_checkpoint(
                model.metadata.to_dict(),
                run.adaptation,
                args.save_adapted,
                source=checkpoint,
                overwrite=args.overwrite,
            )
    print_run(run, "quantified", len(inputs), args.out)
    # after the run's lines, beside where its results are: printed before them, it came ahead
    # of the counts line that opens every run's lines (session 36, `tidy36`)
    if run.adaptation is not None and args.save_adapted is not None:
        print(f"adapted model: {args.save_adapted}")
    return 0


def _adapt_config(args: argparse.Namespace):
    """The :class:`~scaloquant.models.adapt.AdaptConfig` of the flags (None without --adapt);
    --save-adapted checked before any work."""
    given = {
        "--adapt-steps": args.adapt_steps,
        "--adapt-lr": args.adapt_lr,
        "--adapt-seed": args.adapt_seed,
        "--save-adapted": args.save_adapted,
    }
    if not args.adapt:
        stray = [flag for flag, value in given.items() if value is not None]
        if stray:
            raise ConfigError(f"{', '.join(stray)} only with --adapt")
        return None
    from ..io.atomic import check_writable
    from ..models.adapt import AdaptConfig

    if args.save_adapted is not None:
        check_writable(args.save_adapted, overwrite=args.overwrite)
    values = {
        "steps": args.adapt_steps,
        "learning_rate": args.adapt_lr,
        "seed": args.adapt_seed,
    }
    return AdaptConfig(**{k: v for k, v in values.items() if v is not None})
