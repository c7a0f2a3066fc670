"""``scaloquant scalogram``: the Morse scalogram of one FID, as an array or a picture.

``--out X.npy`` writes the float32 array ``(channels, scales, time)`` and, beside it, ``X.json``
with the resolved scalogram config, the acquisition, the row frequencies and the package version
(rows run from the highest frequency down, as in MATLAB). ``--out X.png`` draws every channel
with time in ms and frequency in Hz and ppm; the same facts go into the PNG's metadata.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..formats import fid_titles_text, is_simulation_path
from ..presets import CHANNEL_MODES, SCALOGRAM_PRESETS
from ._common import (
    acquisition_overrides,
    add_acquisition_flags,
    declare_flag_keys,
    path_value,
    refuse_acquisition_flags,
    whole_number,
)

if TYPE_CHECKING:  # the handler imports them: the parser and its refusals load no numpy
    import numpy as np

    from ..scalogram import ScalogramConfig
    from ..types import FID

_OUTPUT_SUFFIXES = (".npy", ".png")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scalogram",
        help="compute the Morse scalogram of one FID (.npy array or .png picture)",
        description=(
            "Compute the Morse-wavelet scalogram (MATLAB's cwt filter bank, Morse (3, 60)) of one "
            "FID: INPUT is a simulation file (--index picks the signal) or any FID file "
            "scaloquant reads. --out X.npy writes the float32 array (channels x scales x time) and X.json "
            "with the settings and axes; --out X.png draws it. Row 0 is the highest frequency."
        ),
    )
    p.add_argument(
        "input",
        type=path_value,
        nargs="?",
        metavar="INPUT",
        help=f"simulation file (.h5) or a FID file ({fid_titles_text()})",
    )
    p.add_argument(
        "--in",
        dest="input_flag",
        type=path_value,
        metavar="INPUT",
        help="the old spelling of INPUT (every other command takes its input as a path alone)",
    )
    p.add_argument(
        "--index",
        type=whole_number,
        default=0,
        help="which signal of the file (default 0; negative counts from the end)",
    )
    p.add_argument(
        "--preset",
        choices=SCALOGRAM_PRESETS,
        default="paper",
        help="scalogram size: paper = 2 x 340 x 1536 (default), cpu = 2 x 128 x 384",
    )
    p.add_argument(
        "--channels",
        choices=CHANNEL_MODES,
        help="channel mode (default: the preset's, abs_re_im)",
    )
    p.add_argument("--log", action="store_true", help="store ln(magnitude + 1e-6)")
    n_points = p.add_argument(
        "--n-points",
        type=whole_number,
        metavar="N",
        help="use the first N points instead of the preset's 1536",
    )
    p.add_argument(
        "--out",
        type=path_value,
        required=True,
        metavar="FILE",
        help="output .npy (array + .json beside it) or .png (picture)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_acquisition_flags(p, applies_to="FID files that do not record it")
    declare_flag_keys(p, {"n_points": "--n-points"}, [n_points])
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    args.input = _input(args)
    suffix = args.out.suffix.lower()
    if suffix not in _OUTPUT_SUFFIXES:
        raise ConfigError(f"--out must end in .npy or .png, got {args.out.name!r}")
    _require_input(args.input)
    outputs = [args.out] + ([args.out.with_suffix(".json")] if suffix == ".npy" else [])
    # these refusals need no numpy, nor the parser: scaloquant.io imports its readers (numpy,
    # h5py) on first use, not with io.atomic
    from ..io.atomic import atomic_path, check_writable

    for path in outputs:  # refuse before computing anything, and before writing either file
        check_writable(path, overwrite=args.overwrite)
    config = _config(args)
    fid = _read_one(args)
    if fid.n_points < config.n_points:
        # the transform's own refusal asked for 'a config with n_points <= ...': a flag here
        given = f"--n-points {args.n_points}" if args.n_points else f"--preset {args.preset}"
        raise ConfigError(
            f"{args.input} has {fid.n_points} points but {given} takes the first "
            f"{config.n_points}; pass --n-points {fid.n_points} (or fewer)"
        )
    # the input read first: a missing or unreadable one is refused without waiting for torch
    import numpy as np
    import torch

    from ..scalogram import scalogram

    samples = torch.tensor(fid.samples[0])  # a copy: FID samples are read-only
    data = scalogram(samples, config, dwell_time_s=fid.dwell_time_s).numpy().astype(np.float32)
    info = _description(args, config, fid, data.shape)
    if suffix == ".npy":
        with atomic_path(args.out, overwrite=args.overwrite) as tmp, open(tmp, "wb") as fh:
            np.save(fh, data)
        with atomic_path(outputs[1], overwrite=args.overwrite) as tmp:
            tmp.write_text(json.dumps(info, indent=2) + "\n")
    else:
        _write_png(args, data, config, fid, info)
    print(
        f"wrote {' and '.join(str(p) for p in outputs)}: scalogram {data.shape} of "
        f"{args.input} signal {args.index}"
    )
    return 0


def _input(args: argparse.Namespace) -> Path:
    """INPUT, given as a path alone or as ``--in INPUT`` (the old spelling), not both."""
    if args.input is not None and args.input_flag is not None:
        raise ConfigError(
            f"give the input once: {args.input} or --in {args.input_flag} (the old spelling), "
            "not both"
        )
    if args.input is None and args.input_flag is None:
        raise ConfigError(
            "give the input: scaloquant scalogram INPUT --out FILE, INPUT a simulation file "
            f"(.h5) or a FID file ({fid_titles_text()})"
        )
    return args.input if args.input is not None else args.input_flag


def _require_input(path: Path) -> None:
    """Refuse a missing INPUT in its reader's words before numpy and h5py are imported (a
    tenth of a second; torch, seconds, loads later still): the readers check the rest."""
    from ..paths import SIMULATION_HINT, require_existing, require_file

    if is_simulation_path(path):
        require_file(path, hint=SIMULATION_HINT)
    else:
        require_existing(path)


def _config(args: argparse.Namespace) -> ScalogramConfig:
    from ..scalogram import ScalogramConfig

    overrides: dict[str, Any] = {"log": args.log}
    if args.channels is not None:
        overrides["channels"] = args.channels
    if args.n_points is not None:
        overrides["n_points"] = args.n_points
    return ScalogramConfig.preset(args.preset, **overrides)


def _read_one(args: argparse.Namespace) -> FID:
    """The selected FID as samples ``(1, n_points)``."""
    from ..io import read_fid
    from ..io.hdf5 import read_simulation

    if is_simulation_path(args.input):
        refuse_acquisition_flags(
            args,
            "apply to FID files; a simulation file records its grid",
            "applies to FID files; a simulation file records its grid",
        )
        try:
            return read_simulation(args.input, index=args.index).fid
        except IndexError as err:
            raise ConfigError(f"{err}; choose another --index") from None
    fid = read_fid(args.input, override_header=args.override_header, **acquisition_overrides(args))
    flat = fid.samples.reshape(-1, fid.n_points)
    n = flat.shape[0]
    if not -n <= args.index < n:
        raise ConfigError(
            f"--index {args.index} is out of range: {args.input} holds {n} FID(s); use 0 to {n - 1}"
        )
    return fid.with_samples(flat[[args.index]], scalogram_index=args.index)


def _description(
    args: argparse.Namespace, config: ScalogramConfig, fid: FID, shape: tuple[int, ...]
) -> dict[str, Any]:
    from .. import __version__
    from ..scalogram import centre_frequencies_hz

    freqs = centre_frequencies_hz(config, fid.dwell_time_s)
    return {
        "scaloquant_version": __version__,
        "source": str(args.input),
        "index": args.index,
        "shape": list(shape),
        "axes": "channels x scales x time; row 0 = highest frequency; column t = sample "
        f"t * {config.decimation}",
        "scalogram_config": config.to_dict(),
        "dwell_time_s": fid.dwell_time_s,
        "spectrometer_freq_mhz": fid.spectrometer_freq_mhz,
        "ppm_reference": fid.ppm_reference,
        "centre_frequency_hz": [round(float(f), 6) for f in freqs],
    }


def _write_png(
    args: argparse.Namespace,
    data: np.ndarray,
    config: ScalogramConfig,
    fid: FID,
    info: dict[str, Any],
) -> None:
    from ..io.atomic import atomic_path
    from ..report.scalogram import scalogram_figure  # matplotlib loads only when drawing

    title = f"{args.input.name} signal {args.index}: Morse scalogram {data.shape}"
    fig = scalogram_figure(
        data, config, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference, title=title
    )
    short = {k: v for k, v in info.items() if k != "centre_frequency_hz"}
    with atomic_path(args.out, overwrite=args.overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Description": json.dumps(short)})
