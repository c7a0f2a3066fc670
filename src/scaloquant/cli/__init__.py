"""The ``scaloquant`` command: one entry point, one module per subcommand.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``handler=<function(args) -> int>``. Handlers parse, build a config, call the library and write
outputs; a :class:`~scaloquant.errors.ScaloquantError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import ScaloquantError

#: Subcommand modules under ``scaloquant.cli``, in the order ``--help`` lists them.
SUBCOMMANDS = ("basis", "simulate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaloquant",
        description="Quantify MRS metabolites with CNNs on Morse-wavelet scalograms.",
    )
    parser.add_argument("--version", action="version", version=f"scaloquant {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process (tests call this) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ScaloquantError as err:
        print(f"scaloquant {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"scaloquant {args.command}: interrupted; no output was written", file=sys.stderr)
        return 130


def run() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())
