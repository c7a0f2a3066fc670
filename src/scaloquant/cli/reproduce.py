"""``scaloquant reproduce``: the paper's experiment in one command (see :mod:`scaloquant.reproduce`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ConfigError
from ..presets import UNCERTAINTY_KINDS
from ..reproduce import FIT_N, N_TEST, PRESETS, parse_snrs, reproduce
from ._common import (
    add_output_flags,
    declare_flag_keys,
    path_value,
    print_summary,
    whole_number,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="simulate, train the scalogram and spectrum CNNs and their physics-head models, "
        "evaluate and compare with the fit",
        description=(
            "Reproduce the paper end to end: simulate training, validation and one held-out test "
            "set, train both CNNs on the same signals and both physics-head models (the same "
            "CNNs predicting the fit's nonlinear parameters) on the same simulator, estimate the "
            "test signals at each --snr with all four and fit the first --fit-n of them with the "
            "classical fit, and write DIR/metrics.json, DIR/report.md (which model won, with a "
            "paired-bootstrap interval; every method's accuracy, slopes, calibration and speed; "
            "whether the scalogram encoder predicts the nonlinear parameters better than the "
            "spectrum encoder; error against SNR with the fit's Cramér–Rao bounds), "
            "DIR/figures/*.png, DIR/models/{scalogram,spectrum}_{cnn,physics}.ckpt, DIR/logs/ and "
            "DIR/data/test.h5. "
            "Presets: tiny (CI, a few minutes), quick (about 5 min on 2 idle cores), cpu (the "
            "paper's 10,000 signals at a reduced scalogram size, <= 30 min on 2 cores), paper "
            "(the paper's protocol, for a GPU)."
        ),
    )
    # "--snr -5,10": argparse takes "-5,10" for a flag (it knows "-5" alone as a negative
    # number) and answers "expected one argument"; joined to its flag, the list reaches
    # parse_snrs, which says what is wrong with it
    p.dash_digit_values = True
    p.add_argument("--preset", choices=PRESETS, required=True, help="training preset")
    p.add_argument("--out", type=path_value, required=True, metavar="DIR", help="output folder")
    seed = p.add_argument("--seed", type=whole_number, help="run seed (default: the preset's)")
    p.add_argument(
        "--fresh-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw new training signals every epoch (default: the preset's choice; on when --snr "
        "makes the training noisy)",
    )
    n_test = p.add_argument(
        "--n-test",
        type=whole_number,
        help="held-out test signals (default by preset: "
        + ", ".join(f"{k} {v}" for k, v in N_TEST.items())
        + ")",
    )
    snr = p.add_argument(
        "--snr",
        default="inf",
        metavar="LIST",
        help=(
            "comma-separated SNRs of the test signals, inf = noiseless (default: inf, the "
            "paper); the same signals at each SNR. Finite SNRs also train both models on noisy "
            "signals, SNR uniform between the smallest and the largest given"
        ),
    )
    fit = p.add_mutually_exclusive_group()
    fit.add_argument(
        "--fit-n",
        type=whole_number,
        metavar="N",
        help=(
            "fit the first N test signals at each SNR with the classical fit (default by preset: "
            + ", ".join(f"{k} {v}" for k, v in FIT_N.items())
            + "); the report also gives the models on those N signals"
        ),
    )
    fit.add_argument("--no-fit", action="store_true", help="leave the classical fit out")
    p.add_argument(
        "--uncertainty",
        choices=UNCERTAINTY_KINDS,
        help="the models' uncertainty head (default: the preset's); gaussian reports calibration",
    )
    n_boot = add_output_flags(p)
    declare_flag_keys(
        p,
        {"n_boot": "--n-boot", "seed": "--seed", "n_test": "--n-test", "snrs": "--snr"},
        [n_boot, seed, n_test, snr],
    )
    p.set_defaults(handler=handle)


def print_snr_summary(by_snr: dict[str, Any]) -> None:
    """One line per SNR: mean RMSE of every method on the same signals, and the fit's bound."""
    for label, block in by_snr.items():
        same = block["subset"] or block
        parts = [f"{name} {m['mean']['rmse']:.3g}" for name, m in same["methods"].items()]
        if block["crlb"]:
            parts.append(f"CRLB (RMS) {float(block['crlb']['mean']['rms_sd']):.3g}")
        where = "noiseless" if label == "inf" else f"SNR {label}"
        print(f"{where}: mean RMSE on {same['n_signals']} signals: " + ", ".join(parts))


def handle(args: argparse.Namespace) -> int:
    if args.fit_n is not None and args.fit_n < 1:
        raise ConfigError(f"--fit-n must be >= 1, got {args.fit_n}; use --no-fit to leave it out")
    result = reproduce(
        args.preset,
        args.out,
        seed=args.seed,
        fresh_data=args.fresh_data,
        n_test=args.n_test,
        snrs=parse_snrs(args.snr),
        fit_n=0 if args.no_fit else args.fit_n,
        uncertainty=args.uncertainty,
        n_boot=args.n_boot,
        overwrite=args.overwrite,
        log=lambda line: print(f"scaloquant reproduce: {line}", file=sys.stderr, flush=True),
    )
    print_summary(result.metrics)
    print_snr_summary(result.metrics["by_snr"])
    print(f"total {result.wall_times_s['total']:.0f} s; report: {result.out_dir / 'report.md'}")
    return 0
