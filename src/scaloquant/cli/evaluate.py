"""``scaloquant evaluate``: metrics, paired comparison, figures and report of trained checkpoints
on a simulated test file (see :func:`scaloquant.evaluate.run.evaluate_checkpoints`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import (
    add_acquisition_flags,
    add_output_flags,
    declare_flag_keys,
    load_basis_as_simulated,
    path_value,
    print_summary,
    whole_number,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate trained checkpoints on a simulated test file",
        description=(
            "Estimate the amplitudes of every signal of a simulation file (scaloquant simulate, "
            "or DIR/data/test.h5 of scaloquant reproduce) with each checkpoint, and write "
            "DIR/metrics.json, DIR/report.md and DIR/figures/*.png: MAE, its SD, SMAPE, RMSE and "
            "R² per metabolite, and a paired-bootstrap comparison of every pair of models. For "
            "models with uncertainty also the coverage of their 68% and 95% intervals per "
            'metabolite and SNR group (metrics.json "calibration", report.md, '
            "figures/reliability.png). A model of --simulation invivo is scored on its lipids "
            "(and parametric macromolecules) too where the file holds their truth (simulate "
            "--preset invivo); a column a model estimates without truth in the file, or the "
            "file's truth a model does not estimate, is named as not scored, with why "
            '(metrics.json "not_scored", report.md, the terminal).'
        ),
    )
    p.add_argument(
        "--model",
        type=path_value,
        action="append",
        required=True,
        metavar="CKPT",
        dest="models",
        help="a checkpoint; repeat for several models",
    )
    p.add_argument("--data", type=path_value, required=True, metavar="SIM.h5", help="test signals")
    p.add_argument("--out", type=path_value, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--basis",
        type=path_value,
        help="basis the test file was simulated with, for Fig. 2 (default: the embedded one)",
    )
    add_acquisition_flags(p, applies_to="--basis files that do not record it")
    seed = p.add_argument(
        "--seed", type=whole_number, default=0, help="bootstrap seed (default: 0)"
    )
    n_boot = add_output_flags(p)
    declare_flag_keys(p, {"n_boot": "--n-boot", "seed": "--seed"}, [n_boot, seed])
    p.set_defaults(handler=handle)


def print_calibration(doc: dict, report: Path) -> None:
    """One line per model with uncertainty: 95 % coverage over all signals."""
    for name, table in doc.get("calibration", {}).items():
        every = table["groups"]["all"]
        c95 = every["coverage"]["0.95"].values()
        print(
            f"{name}: 95% intervals cover {100 * every['mean_coverage']['0.95']:.1f}% of the "
            f"amplitudes (per metabolite {100 * min(c95):.1f}-{100 * max(c95):.1f}%); "
            f"per SNR: {report}"
        )


def require_paths(args: argparse.Namespace) -> None:
    """Refuse, before numpy and torch are imported (seconds), a path of ``args`` that does not
    exist, with the readers' words and in their order (the basis, the checkpoints, the test
    file); the readers check the rest (formats, contents)."""
    from ..paths import CHECKPOINT_HINT, SIMULATION_HINT, require_existing, require_file

    if args.basis is not None:
        require_existing(args.basis)
    for path in args.models:
        require_file(path, "checkpoint ", CHECKPOINT_HINT)
    require_file(args.data, hint=SIMULATION_HINT)


def handle(args: argparse.Namespace) -> int:
    require_paths(args)
    from ..evaluate.run import evaluate_checkpoints
    from ..io.atomic import check_output_dir, staged_directory
    from ..report.evaluation import write_evaluation

    # the basis as simulate rendered it (its reference corrected where its singlets sit off)
    basis, _, _ = load_basis_as_simulated(args.basis, args, flag="--basis")
    check_output_dir(args.out, overwrite=args.overwrite)  # before any work, not after it
    evaluation = evaluate_checkpoints(
        args.models, args.data, seed=args.seed, n_boot=args.n_boot, basis=basis
    )
    with staged_directory(args.out, overwrite=args.overwrite) as stage:
        doc = write_evaluation(evaluation, stage)
    print_summary(doc)
    if doc.get("not_scored"):  # named, not dropped unsaid: report.md and metrics.json say why
        print(f"not scored: {', '.join(doc['not_scored'])} (why: {args.out / 'report.md'})")
    print_calibration(doc, args.out / "report.md")
    print(f"report: {args.out / 'report.md'}")
    return 0
