"""``scaloquant export``: a trained model as ONNX, with a JSON of its pre- and post-processing."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import path_value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained model as ONNX (with a JSON of its pre- and post-processing)",
        description=(
            "Write the network of a checkpoint as ONNX (opset 18, dynamic batch) for ONNX "
            "Runtime or a plugin of another tool, and OUT.json beside it describing the inputs, "
            "the orientation of the samples, the per-signal scale, the transform and the "
            "outputs. A spectrum CNN's graph takes the FID (real and imaginary parts) and "
            "includes its FFT; a scalogram CNN's graph takes the Morse scalogram and the scale."
        ),
    )
    p.add_argument(
        "--model", type=path_value, required=True, metavar="CKPT", help="trained checkpoint"
    )
    p.add_argument("--onnx", type=path_value, required=True, metavar="OUT.onnx", help="output file")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.onnx and OUT.json")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from ..paths import CHECKPOINT_HINT, require_file

    # before torch is imported (seconds), in load_model's words
    require_file(args.model, "checkpoint ", CHECKPOINT_HINT)
    from ..models.checkpoint import load_model
    from ..models.export import export_onnx

    quantifier = load_model(args.model).quantifier
    onnx_path, sidecar = export_onnx(quantifier, args.onnx, overwrite=args.overwrite)
    print(
        f"wrote {onnx_path} and {sidecar} ({quantifier.config.model}, "
        f"{len(quantifier.metabolites)} outputs)"
    )
    return 0
