"""``scaloquant fit``: the classical linear-combination fit with Cramér–Rao bounds, with the
inputs and outputs of ``scaloquant quantify`` (see :func:`scaloquant.quantify.fit_inputs`).

The model is the ``--preset`` (default ``invivo``, :data:`scaloquant.fit.config.FIT_PRESETS`),
then a ``--config`` file's keys (any :class:`~scaloquant.fit.FitConfig` field), then the model
flags, each overriding the one before."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._common import (
    add_threads_flag,
    declare_flag_keys,
    number,
    path_value,
    with_threads,
)
from ._spectra import (
    add_io_flags,
    options_from_args,
    read_inputs_ahead,
    require_paths,
    run_provenance,
)

#: ``--preset``'s default: its runs' outputs carry no fit model note (:func:`model_note`).
DEFAULT_PRESET = "invivo"


def register(subparsers: Any) -> None:
    from ..fit.config import FIT_PRESETS

    p = subparsers.add_parser(
        "fit",
        help="fit real spectra with the classical linear-combination model and its CRLB",
        description=(
            "Fit every spectrum (every voxel and transient of MRSI or multi-dimensional "
            "NIfTI-MRS) with the basis set, with Cramér-Rao lower bounds. The default model "
            "(--preset invivo) is the one LCModel and FSL-MRS users expect for tissue: "
            "metabolites sharing a Voigt lineshape and shift, macromolecules in their own "
            "group (the basis' measured spectrum, plus LCModel's parametric lipids), small "
            "per-metabolite deviations under priors, a penalised spline baseline, 0.2-4.2 ppm; "
            "the basis is resampled to the data's grid (another vendor's frequency at the same "
            "field, dwell time, points), so no --force is needed for that. --preset simulated "
            "is the per-metabolite model for spectra of scaloquant's simulator "
            "(simulated-plain: the same without its spread priors). Outputs: "
            "DIR/results.csv (amplitude, <name>_crlb_sd, <name>_crlb_pct, ratio to Cr+PCr, mM "
            "with a water reference; tNAA, tCr, tCho and Glx rows with their CRLB from the "
            "covariance; snr, fwhm, fit_residual, residual_over_noise and qc flags per "
            "spectrum), results.json, fit "
            "figures, NIfTI maps for MRSI, report.html (one self-contained page: overview "
            "table, figures, maps), summary.md and provenance.json."
        ),
    )
    p.add_argument(
        "--basis",
        type=path_value,
        help="basis set (.BASIS, .npz or an FSL-MRS folder; default: the embedded ISMRM 2016 "
        "PRESS 3 T TE 30 ms basis)",
    )
    add_io_flags(p)
    p.add_argument(
        "--mm-spectrum",
        type=path_value,
        action="append",
        default=[],
        metavar="FILE",
        help="metabolite-nulled (inversion-recovery) macromolecule spectrum acquired with the "
        "data's protocol: once for all inputs or once per input, in the inputs' order; it is "
        "fitted (LCModel's parametric MM components, the metabolites the inversion left, a "
        "baseline) and the sum of its fitted MM components is the fit's macromolecule basis "
        "spectrum MM_measured (with --mm auto, the default, beside parametric lipids; --mm "
        "basis: alone); any format the inputs take",
    )
    m = p.add_argument_group("fit model (each overrides --preset and --config)")
    m.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        metavar="{" + ",".join(sorted(FIT_PRESETS)) + "}",
        help=f"named model (default: {DEFAULT_PRESET})",
    )
    m.add_argument(
        "--config",
        type=path_value,
        metavar="FILE",
        help="YAML or TOML file of fit settings (FitConfig fields) on top of the preset",
    )
    m.add_argument(
        "--lineshape",
        choices=("voigt", "lorentzian", "gaussian", "freeform"),
        help="each group's lineshape (default: the preset's, voigt for invivo); freeform: the "
        "group Voigt lines convolved with LCModel's free-form kernel",
    )
    groups = m.add_argument(
        "--groups",
        metavar="NAME|FILE",
        help="metabolites sharing a lineshape and shift: metabolites_and_mm (the invivo "
        "preset's: metabolites, macromolecules, lipids), metabolites_and_each_mm (each MM and "
        "lipid component its own, as LCModel), per_metabolite, global, or a text file with one "
        "group per line (names separated by spaces or commas; '#' starts a comment; names in no "
        "group get their own)",
    )
    baseline = m.add_argument(
        "--baseline",
        metavar="SPEC",
        help="spline[:KNOT_SPACING_PPM] (penalised cubic spline), poly:DEGREE or none",
    )
    m.add_argument(
        "--baseline-stiffness",
        choices=("fixed", "ftest", "ftest-nested", "adaptive"),
        help="spline stiffness: adaptive (the invivo preset's default: fixed, then ftest over "
        "LCModel's 0.2-4.0 ppm for the spectra whose fixed fit fails LCModel's F-test), fixed "
        "(2 effective dimensions per ppm for every spectrum, the earlier default: faster "
        "where spectra would be refitted), ftest (chosen per spectrum by LCModel's F-test rule "
        "among 2-7 per ppm) or ftest-nested (the same candidates, the F-test of nested fits on "
        "the dimensions dropped)",
    )
    m.add_argument(
        "--mm",
        choices=("auto", "basis", "parametric", "none"),
        help="macromolecules/lipids: the basis' (auto adds parametric lipids), LCModel's "
        "parametric components, or none",
    )
    m.add_argument(
        "--ratio-priors",
        choices=("none", "mm", "lcmodel"),
        help="LCModel's soft priors on amplitude ratios: mm (its macromolecule/lipid ratios), "
        "lcmodel (those and its metabolite ratios: Asp, GABA, Glc, Scyllo, Tau, GSH) or none",
    )
    ppm_range = m.add_argument(
        "--ppm-range",
        type=number,
        nargs=2,
        metavar=("LO", "HI"),
        help="the fit's chemical-shift window in ppm, low then high (default: 0.2 4.2; "
        "LCModel's is 0.2 4.0); it must hold metabolite lines of the basis",
    )
    m.add_argument(
        "--water-removal",
        choices=("none", "hlsvd"),
        help="hlsvd: subtract the residual water (HLSVD components at 4.3-5.2 ppm, at most 200 "
        "Hz wide) from the data before the fit, as Osprey and FSL-MRS do; none: fit the data as "
        "they are (default: the preset's, hlsvd for invivo, none for simulated)",
    )
    device = m.add_argument("--device", help="torch device of the solver, e.g. cpu or cuda")
    add_threads_flag(p, what="the solver")
    declare_flag_keys(
        p,
        {
            "ppm_range": "--ppm-range",
            "baseline_knot_spacing_ppm": "--baseline spline:SPACING_PPM",
            "baseline_order": "--baseline poly:DEGREE",
            "grouping": "--groups",
            "device": "--device",
        },
        [ppm_range, baseline, groups, device],
    )
    p.set_defaults(handler=handle)


def _groups(value: str) -> str | tuple[tuple[str, ...], ...]:
    from ..errors import ConfigError, InputFileError
    from ..fit.config import GROUPING_NAMES

    if value in GROUPING_NAMES:
        return value
    path = Path(value)
    if not path.is_file():
        raise ConfigError(
            f"--groups {value!r} is neither one of {', '.join(GROUPING_NAMES)} nor a file"
        )
    try:
        # 'utf-8-sig': a byte-order mark (Windows editors save one) was read as the first
        # name's first character, and 'NAA' refused as not in the basis (audit34b)
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(f"cannot read --groups file {path}: {err}") from None
    # '#' starts a comment, as in the shell and YAML files users keep beside it (audit34 found a
    # comment line read as metabolite names)
    names = (line.partition("#")[0].replace(",", " ").split() for line in lines)
    groups = tuple(g for g in map(tuple, names) if g)
    if not groups:
        # no group at all would fit every metabolite with its own lineshape and shift
        # (per_metabolite), a different model from the one asked for, without a word
        raise ConfigError(
            f"--groups file {path} names no metabolites; write one group per line (names "
            "separated by spaces or commas), or give --groups per_metabolite for that model"
        )
    return groups


def _baseline(spec: str) -> dict[str, Any]:
    from ..errors import ConfigError

    kind, _, value = spec.partition(":")
    try:
        # the flag replaces a --config file's baseline, its poly degree with it
        if kind == "none" and not value:
            return {"baseline": "none", "baseline_order": None}
        if kind == "spline":
            out: dict[str, Any] = {"baseline": "spline", "baseline_order": None}
            if value:
                out["baseline_knot_spacing_ppm"] = float(value)
            return out
        if kind == "poly":
            return {"baseline": "poly", "baseline_order": int(value or 2)}
    except ValueError:
        pass
    raise ConfigError(f"--baseline {spec!r}: give spline[:SPACING_PPM], poly:DEGREE or none")


def fit_config_from_args(args: argparse.Namespace):
    """The preset, then the ``--config`` file, then the model flags."""
    from ..errors import ConfigError
    from ..fit.batched import usable_device
    from ..fit.config import FIT_PRESETS, FitConfig
    from ..io.config import read_config

    if args.preset == "simulated-scipy":
        raise ConfigError(
            "--preset simulated-scipy no longer exists (the scipy solver was retired); use "
            "--preset simulated, the same per-metabolite model"
        )
    if args.preset not in FIT_PRESETS:
        raise ConfigError(
            f"--preset {args.preset!r} is not a preset; choose {', '.join(sorted(FIT_PRESETS))}"
        )
    config = FIT_PRESETS[args.preset]
    if args.config is not None:
        config = read_config(args.config, FitConfig.from_dict, defaults=config.to_dict())
    flags: dict[str, Any] = {}
    if args.lineshape:
        flags["lineshape"] = args.lineshape
    # `is not None`: an empty text ('') is refused with the choices, where it was the default
    if args.groups is not None:
        flags["grouping"] = _groups(args.groups)
    if args.baseline is not None:
        flags |= _baseline(args.baseline)
    if args.baseline_stiffness == "ftest-nested":
        flags["baseline_stiffness"] = "ftest"
        flags["baseline_ftest_rule"] = "nested"
    elif args.baseline_stiffness:
        flags["baseline_stiffness"] = args.baseline_stiffness
    if args.mm:
        flags["macromolecules"] = args.mm
    if args.ratio_priors:
        flags["ratio_priors"] = args.ratio_priors
    if args.ppm_range:
        flags["ppm_range"] = tuple(args.ppm_range)
    if args.device is not None:
        flags["device"] = args.device
    # refused before anything is read: a name torch does not know, or CUDA without a GPU
    usable_device(flags.get("device", config.device))
    if args.water_removal:
        flags["water_removal"] = args.water_removal
    return replace(config, **flags)


def model_note(preset: str, config) -> str | None:
    """The fit model in the run's notes (summary.md, report.html, results.json) where it is not
    the default preset (:data:`DEFAULT_PRESET`) as it stands: the preset used and each setting
    a ``--config`` file or a model flag changed from it, so that the outputs say what was
    fitted, not only the command (the file behind ``--config`` may change later); None for the
    default model, whose runs' outputs stay as they were."""
    from ..fit.config import FIT_PRESETS

    base = FIT_PRESETS[preset].to_dict()
    changed = {k: v for k, v in config.to_dict().items() if v != base[k]}
    if preset == DEFAULT_PRESET and not changed:
        return None
    settings = ", ".join(f"{k} {_setting(v)}" for k, v in changed.items())
    return (
        f"fit model: the {preset} preset"
        + (f" with {settings}" if settings else "")
        + " (every setting: provenance.json fit_config)"
    )


def _setting(value: Any) -> str:
    """A FitConfig value (``to_dict``'s) as a config file writes it: groups of names as
    ``NAA NAAG; Cr PCr``, pairs as ``(0.2, 4.0)``, ``true``/``false``/``null``."""
    if isinstance(value, list) and value and all(isinstance(g, list) for g in value):
        return "; ".join(" ".join(map(str, g)) for g in value)
    if isinstance(value, list):
        return "(" + ", ".join(_setting(v) for v in value) + ")"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def handle(args: argparse.Namespace) -> int:
    require_paths(args)
    _check_mm_spectra(args)
    with read_inputs_ahead(args):
        return with_threads(args, _fit)


def _check_mm_spectra(args: argparse.Namespace) -> None:
    """Refuse, before anything is read, ``--mm-spectrum`` files whose count is neither one nor
    one per input, and ``--mm parametric`` or ``none`` with them
    (:func:`~scaloquant.fit.config.require_mm_spectra_fit`, which ``fit_inputs`` makes again
    for the config file's ``macromolecules``; ``require_paths`` that they exist)."""
    from ..fit.config import require_mm_spectra_fit

    require_mm_spectra_fit(
        len(args.mm_spectrum or ()), len(args.inputs), args.mm, setting="--mm {}"
    )


def _fit(args: argparse.Namespace) -> int:
    from ..io.atomic import check_output_dir
    from ..quantify import fit_inputs, read_mm_spectra
    from ..quantify.checks import window_holds_lines
    from ..report import write_run
    from ._common import acquisition_overrides
    from ._spectra import inputs_from_args, print_run, user_basis_or_default

    check_output_dir(args.out, overwrite=args.overwrite)  # before any work, not after it
    basis, basis_name = user_basis_or_default(args.basis)
    fit_config = fit_config_from_args(args)
    # before any input is read, whether --ppm-range or --config set the window (fit_inputs
    # checks it again for the library's callers: 0.5 ms)
    window_holds_lines(basis, fit_config.ppm_range)
    inputs = inputs_from_args(args)
    mm_spectra = read_mm_spectra(
        args.mm_spectrum,
        overrides=acquisition_overrides(args),
        override_header=args.override_header,
        conjugate=args.conjugate,
    )
    options = options_from_args(
        args,
        basis_metadata=basis.metadata,
        fit_config=fit_config,
    )
    run = fit_inputs(inputs, basis, basis_name=basis_name, options=options, mm_spectra=mm_spectra)
    note = model_note(args.preset, fit_config)
    if note is not None:
        run = replace(run, notes=(*run.notes, note))
    write_run(
        run,
        args.out,
        overwrite=args.overwrite,
        map_figures=args.max_figures > 0,
        provenance=run_provenance(
            args,
            basis={"name": basis_name, "hash": basis.content_hash()},
            fit_config=fit_config.to_dict(),
        ),
    )
    print_run(run, "fitted", len(inputs), args.out)
    return 0
