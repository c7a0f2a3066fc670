"""``scaloquant reproduce``: the paper's experiment in one command (see :mod:`scaloquant.reproduce`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..reproduce import PRESETS, reproduce
from .evaluate import add_output_flags, print_summary


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="simulate, train the scalogram CNN and the spectrum CNN, evaluate and compare",
        description=(
            "Reproduce the paper end to end: simulate training, validation and one held-out test "
            "set, train both CNNs on the same signals, and write DIR/metrics.json, DIR/report.md "
            "(which model won, with a paired-bootstrap interval), DIR/figures/*.png, "
            "DIR/models/{scalogram_cnn,spectrum_cnn}.ckpt, DIR/logs/ and DIR/data/test.h5. "
            "Presets: tiny (CI, ~1 min), quick (<= 5 min on 2 cores), cpu (the paper's 10,000 "
            "signals at a reduced scalogram size, <= 30 min on 2 cores), paper (the paper's "
            "protocol, for a GPU)."
        ),
    )
    p.add_argument("--preset", choices=PRESETS, required=True, help="training preset")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, help="run seed (default: the preset's)")
    p.add_argument(
        "--fresh-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw new training signals every epoch (default: the preset's choice)",
    )
    p.add_argument("--n-test", type=int, help="held-out test signals (default: by preset)")
    add_output_flags(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    result = reproduce(
        args.preset,
        args.out,
        seed=args.seed,
        fresh_data=args.fresh_data,
        n_test=args.n_test,
        n_boot=args.n_boot,
        overwrite=args.overwrite,
        log=lambda line: print(f"scaloquant reproduce: {line}", file=sys.stderr, flush=True),
    )
    print_summary(result.metrics)
    print(f"total {result.wall_times_s['total']:.0f} s; report: {result.out_dir / 'report.md'}")
    return 0
