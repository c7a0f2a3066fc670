"""``scaloquant simulate``: write a seeded dataset of simulated signals (the paper's Eq. 1).

HDF5 output (default) is streamed chunk by chunk; see :mod:`scaloquant.io.hdf5` for its layout.
``--format nifti`` (or an output named ``*.nii``/``*.nii.gz``) writes one NIfTI-MRS voxel whose
5th dimension, tagged ``DIM_USER_0``, runs over the signals - they are independent simulated
signals, not repetitions of one acquisition, so ``DIM_DYN`` (which tools may average) would be
wrong - plus the truth as ``<stem>_truth.csv`` beside it (:mod:`scaloquant.io.truth_csv`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..defaults import SIMULATION_CHUNK_SIZE
from ..errors import ConfigError
from ..formats import flag as flag_of
from ._common import (
    acquisition_overrides,
    add_acquisition_flags,
    declare_flag_keys,
    header_override_notes,
    load_basis_as_simulated,
    number,
    path_value,
    whole_number,
)

if TYPE_CHECKING:  # the handler imports them: the parser loads neither numpy nor torch
    from ..simulate import SimulationConfig
    from ..types import BasisSet, SignalSet

#: ``--format nifti`` holds every signal in memory, several copies on the way to the file
#: (measured peak: about 4x the complex128 samples): at most this many complex samples, e.g.
#: 8192 signals of 2048 points, for a peak of about 1 GB.
MAX_NIFTI_SAMPLES = 2**24
#: Runs of at least this many signals show a progress bar even when stderr is not a terminal.
PROGRESS_MIN_SIGNALS = 100_000

#: Values of ``--preset``.
PRESETS = ("invivo",)

_RANGE_FLAGS = (
    ("--amplitude-range", "amplitude_range", "amplitudes A_m (multiples of the basis FIDs)"),
    ("--damping-range", "damping_range_per_s", "Lorentzian damping alpha_m in 1/s"),
    ("--shift-range", "shift_range_hz", "frequency shifts df_m in Hz"),
    (
        "--gaussian-damping-range",
        "gaussian_damping_range_per_s",
        "Gaussian damping g in 1/s of exp(-(g t)^2) (gaussian/voigt lineshapes)",
    ),
    ("--phase0-range", "phase0_range_deg", "zero-order phase in degrees (off by default)"),
    (
        "--phase1-range",
        "phase1_range_deg_per_ppm",
        "first-order phase in degrees per ppm from --phase1-pivot (off by default)",
    ),
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulate MRS signals from a basis set (the paper's Eq. 1)",
        description=(
            "Simulate signals S[n] = sum_m A_m X_m[n] exp((-alpha_m + i 2 pi df_m) n dT) from a "
            "basis set with parameters drawn uniformly from configured ranges, and write them "
            "with every drawn parameter. Defaults: the paper's noiseless signals, A in [0, 1] "
            "(the one range of the paper that survived), alpha in [0, 15] 1/s and df in [-3, 3] "
            "Hz (the project's choice) for all 21 basis signals. Flags override the --config "
            "file. See docs/simulation-config.yaml."
        ),
    )
    n = p.add_argument("--n", type=whole_number, required=True, help="number of signals")
    seed = p.add_argument(
        "--seed", type=whole_number, required=True, help="random seed (same seed, same file)"
    )
    p.add_argument("--out", type=path_value, required=True, help="output file (.h5, or .nii.gz)")
    p.add_argument("--config", type=path_value, help="simulation config file (YAML or TOML)")
    p.add_argument(
        "--preset",
        choices=PRESETS,
        help="a fixed, documented prior instead of the config: 'invivo' draws tissue-like 3 T "
        "brain spectra (literature concentrations in mM, group Voigt lines, macromolecules, "
        "lipids, residual water, baseline, eddy-current and zero/first-order phase, SNR 5-150; "
        "docs/invivo-prior.md)",
    )
    p.add_argument(
        "--basis",
        type=path_value,
        help="basis set file or folder (default: the embedded ISMRM 2016 basis)",
    )
    p.add_argument(
        "--grid-from",
        type=path_value,
        metavar="DATA",
        help="simulate on the acquisition grid of this data file (points, dwell time, field; "
        "any format fit reads), the basis brought to it as the fit brings it and checked as the "
        "fit checks it (nucleus, field within 5%%, TE and sequence); default: the basis' own "
        "grid",
    )
    add_acquisition_flags(
        p, applies_to="--basis files that do not record it (with --grid-from: for that file)"
    )
    p.add_argument(
        "--format",
        choices=("hdf5", "nifti"),
        help="output format (default: nifti for *.nii/*.nii.gz, else hdf5)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    chunk_size = p.add_argument(
        "--chunk-size",
        type=whole_number,
        default=SIMULATION_CHUNK_SIZE,
        help=f"signals made and written at a time (default {SIMULATION_CHUNK_SIZE}); "
        "does not change the data",
    )
    group = p.add_argument_group("overrides of the config file")
    ranges = [
        group.add_argument(
            flag, dest=key, type=number, nargs=2, metavar=("MIN", "MAX"), help=f"range of {what}"
        )
        for flag, key, what in _RANGE_FLAGS
    ]
    snr = group.add_argument(
        "--snr",
        type=number,
        nargs="+",
        metavar="SNR",
        help="add noise at this SNR, or an SNR range MIN MAX (reference peak height over "
        "the real spectral noise sd)",
    )
    phase1_pivot = group.add_argument(
        "--phase1-pivot",
        dest="phase1_pivot_ppm",
        type=number,
        metavar="PPM",
        help="ppm where the first-order phase is zero (default 4.65)",
    )
    group.add_argument(
        "--lineshape",
        choices=("lorentzian", "gaussian", "voigt"),
        help="the lines' decay: lorentzian (Eq. 1's exp(-alpha t), the default), gaussian "
        "(exp(-(g t)^2) instead) or voigt (both; g from --gaussian-damping-range, default 0-9 1/s)",
    )
    group.add_argument(
        "--global-shift-damping",
        action="store_true",
        help="one shift and damping per signal instead of one per metabolite",
    )
    group.add_argument(
        "--baseline",
        action="store_true",
        help="add a smooth random baseline (the config's, or the default one)",
    )
    declare_flag_keys(
        p,
        {
            **{key: flag for flag, key, _ in _RANGE_FLAGS},
            "snr": "--snr",
            "phase1_pivot_ppm": "--phase1-pivot",
            "n": "--n",
            "seed": "--seed",
            "chunk_size": "--chunk-size",
        },
        [*ranges, snr, phase1_pivot, n, seed, chunk_size],
    )
    p.set_defaults(handler=run)


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Config keys set by flags; unset flags leave the config file's values."""
    overrides: dict[str, Any] = {}
    for _, key, _ in _RANGE_FLAGS:
        if getattr(args, key) is not None:
            overrides[key] = list(getattr(args, key))
    if args.snr is not None:
        if len(args.snr) > 2:
            raise ConfigError(f"--snr takes one value or MIN MAX, got {len(args.snr)} values")
        overrides["snr"] = args.snr[0] if len(args.snr) == 1 else list(args.snr)
    if args.phase1_pivot_ppm is not None:
        overrides["phase1_pivot_ppm"] = args.phase1_pivot_ppm
    if args.lineshape is not None:
        overrides["lineshape"] = args.lineshape
    if args.global_shift_damping:
        overrides["per_metabolite"] = False
    return overrides


def _output_format(args: argparse.Namespace) -> str:
    """``--format``, or the one the output's name implies; refuses a contradicting name."""
    from ..formats import is_simulation_path
    from ..io.nifti import is_nifti_path

    named_nifti = is_nifti_path(args.out)
    fmt = args.format or ("nifti" if named_nifti else "hdf5")
    if fmt == "nifti" and not named_nifti:
        raise ConfigError(
            "--format nifti writes NIfTI-MRS: name the output .nii or .nii.gz, "
            f"e.g. {args.out.with_suffix('.nii.gz')}"
        )
    if fmt == "hdf5" and named_nifti:
        raise ConfigError(
            f"--format hdf5 writes HDF5, but {args.out} is named as NIfTI; name it .h5 "
            "or pass --format nifti"
        )
    if fmt == "hdf5" and not is_simulation_path(args.out) and not args.out.is_dir():
        # fit then read the HDF5 s.txt as text: 'a binary file, not text' (session 36)
        raise ConfigError(
            f"simulate writes HDF5 (or NIfTI-MRS with --format nifti), but {args.out} is "
            f"named otherwise; name it {args.out.with_suffix('.h5')} (the other commands tell "
            "a simulation file by its name)"
        )
    return fmt


def _with_progress(chunks: Iterable[SignalSet], n: int) -> Iterator[SignalSet]:
    """Pass chunks through, drawing a tqdm bar on stderr on terminals and for long runs."""
    from tqdm import tqdm

    show = sys.stderr.isatty() or n >= PROGRESS_MIN_SIGNALS
    with tqdm(total=n, unit="signal", disable=not show, file=sys.stderr) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(chunk.fids.shape[0])


def _write_hdf5(
    args: argparse.Namespace,
    chunks: Iterable[Any],
    basis: BasisSet,
    basis_name: str,
    config: dict[str, Any],
    grid: dict[str, Any] | None,
    conversions: Sequence[str],
) -> None:
    """Stream the chunks (anything with ``fids`` and ``columns()``) to ``--out`` as HDF5."""
    from ..io.hdf5 import write_simulation

    write_simulation(
        args.out,
        chunks,
        n_signals=args.n,
        basis=basis,
        basis_name=basis_name,
        config=config,
        seed=args.seed,
        overwrite=args.overwrite,
        grid=grid,
        basis_conversions=conversions,
    )


def _refuse_with_preset(args: argparse.Namespace) -> None:
    """``--preset`` fixes every range: refuse the config file and the range flags with it."""
    given = ["--config"] if args.config is not None else []
    given += [flag_of(k) for k in _flag_overrides(args)]
    if args.baseline:
        given.append("--baseline")
    if given:
        raise ConfigError(
            f"--preset {args.preset} fixes every range; drop {', '.join(given)} "
            "(or drop --preset to use them)"
        )


class _Stream(NamedTuple):
    """What a run streams: chunks (with ``fids`` and ``columns()``), how to join them, the
    resolved config to record and the names of the truth CSV's 2-D columns."""

    chunks: Iterable[Any]
    concatenate: Callable[[list[Any]], Any]
    config: dict[str, Any]
    labels: dict[str, Sequence[str]]


def _config_stream(args: argparse.Namespace, basis: BasisSet, config: SimulationConfig) -> _Stream:
    from ..simulate import PER_METABOLITE_FIELDS, simulate_dataset
    from ..types import SignalSet

    return _Stream(
        simulate_dataset(basis, config, args.n, args.seed, chunk_size=args.chunk_size),
        SignalSet.concatenate,
        config.to_dict(),
        {name: basis.names for name in PER_METABOLITE_FIELDS},
    )


def _preset_stream(
    args: argparse.Namespace, basis: BasisSet, fitted_names: tuple[str, ...] | None
) -> _Stream:
    """``--preset invivo``: the prior of :mod:`scaloquant.simulate.prior`, with the
    macromolecules of the fit whose basis holds ``fitted_names`` (``--grid-from``:
    :meth:`~scaloquant.simulate.prior.InvivoPrior.for_fitted`, as ``train`` renders them)."""
    import numpy as np

    from ..simulate.draws import GROUPS, draw_invivo
    from ..simulate.invivo import InvivoSignals, simulate_invivo_dataset
    from ..simulate.prior import InvivoPrior

    prior = InvivoPrior() if fitted_names is None else InvivoPrior().for_fitted(fitted_names)
    layout = draw_invivo(prior, basis.names, 0, np.random.default_rng(0))
    config = {
        "preset": args.preset,
        # column labels of the (n, G) group and (n, C) component datasets
        "groups": list(GROUPS),
        "components": list(layout.component_names),
        **prior.to_dict(),
    }
    per_basis = ("amplitudes", "concentrations_mm", "damping_dev_per_s", "shift_dev_hz")
    labels: dict[str, Sequence[str]] = {name: basis.names for name in per_basis}
    labels.update({name: GROUPS for name in ("damping_per_s", "gauss_per_s2", "shift_hz")})
    labels["component_amplitudes_mm"] = layout.component_names
    return _Stream(
        simulate_invivo_dataset(basis, prior, args.n, args.seed, chunk_size=args.chunk_size),
        InvivoSignals.concatenate,
        config,
        labels,
    )


def require_paths(args: argparse.Namespace) -> None:
    """Refuse, before numpy and torch are imported (seconds), a path of ``args`` that does not
    exist (``--config``, ``--basis``, ``--grid-from``), in the readers' words; the readers check
    the rest (formats, contents)."""
    from ..paths import require_existing

    if args.config is not None:
        require_existing(args.config, "config file ")
    for path in filter(None, (args.basis, args.grid_from)):
        require_existing(path)


def run(args: argparse.Namespace) -> int:
    require_paths(args)
    from ..io.atomic import check_writable
    from ..io.config import read_config
    from ..simulate import BaselineConfig, SimulationConfig
    from ..simulate.dataset import check_run

    if args.preset is not None:
        _refuse_with_preset(args)
        config = None
    else:
        config = read_config(
            args.config, SimulationConfig.from_dict, overrides=_flag_overrides(args)
        )
        if args.baseline and config.baseline is None:
            config = dataclasses.replace(config, baseline=BaselineConfig())
    check_run(args.n, args.seed, args.chunk_size)
    fmt = _output_format(args)
    check_writable(args.out, overwrite=args.overwrite)
    if fmt == "nifti":
        from ..io.truth_csv import truth_path_for

        check_writable(truth_path_for(args.out), overwrite=args.overwrite)
    basis, basis_name, grid, grid_notes, conversions, fitted_names = _basis_and_grid(args)
    if fmt == "nifti" and args.n * basis.n_points > MAX_NIFTI_SAMPLES:
        raise ConfigError(
            f"--format nifti keeps all signals in memory: at most "
            f"{MAX_NIFTI_SAMPLES // basis.n_points} signals of {basis.n_points} points; "
            "use --format hdf5 (streamed) for more"
        )
    stream = (
        _preset_stream(args, basis, fitted_names)
        if config is None
        else _config_stream(args, basis, config)
    )
    chunks = _with_progress(stream.chunks, args.n)
    if fmt == "hdf5":
        _write_hdf5(args, chunks, basis, basis_name, stream.config, grid, conversions)
        written = [args.out]
    else:
        provenance = {"config": stream.config, "seed": args.seed, "basis_name": basis_name}
        if conversions:
            provenance["basis_conversions"] = list(conversions)
        if basis.provenance.get("header_overrides"):
            provenance["header_overrides"] = dict(basis.provenance["header_overrides"])
        if grid:
            provenance["grid"] = grid
        written = _write_nifti(
            args.out,
            stream.concatenate(list(chunks)),
            stream.labels,
            basis,
            provenance,
            overwrite=args.overwrite,
        )
    preset = "" if args.preset is None else f"preset {args.preset}, "
    print(
        f"wrote {args.n} simulated signals ({preset}{basis.n_metabolites} basis signals, "
        f"{basis.n_points} points, seed {args.seed}) to {', '.join(map(str, written))}"
    )
    for note in header_override_notes(basis):  # also in the file's header_overrides
        print(f"basis: {note}")
    for note in grid_notes:  # also in the file's grid
        print(note)
    return 0


class _Basis(NamedTuple):
    """The basis to simulate from, its name, with ``--grid-from`` where its grid came from
    (for the file), what was done to bring the basis to it (for the terminal), and without
    ``--grid-from`` what was done to it on its own grid (for the file: its ppm reference
    corrected from its singlets; with ``--grid-from`` those sentences are the grid's
    ``basis_conversions``)."""

    basis: BasisSet
    name: str
    grid: dict[str, Any] | None = None
    notes: Sequence[str] = ()
    conversions: Sequence[str] = ()
    #: the basis names of the fit of a physics-head model trained for this grid, whose
    #: macromolecules the ``invivo`` preset renders (None without ``--grid-from`` or without
    #: ``--preset``)
    fitted_names: tuple[str, ...] | None = None


def _basis_and_grid(args: argparse.Namespace) -> _Basis:
    """The basis to simulate from, its name, and (``--grid-from``) where its grid came from.

    Without ``--grid-from``, the basis on its own grid as ``train`` renders a physics-head
    model's signals there (:func:`~scaloquant.cli._common.load_basis_as_simulated`: its ppm
    reference corrected from its singlets as the fit corrects it, the sentences recorded in the
    file's ``basis_conversions``). With ``--grid-from`` the acquisition flags describe that file, as they describe the inputs
    of ``fit``, and the basis must record its own grid; the basis is brought to the file's grid
    as the fit brings it (:func:`scaloquant.fit.basis_grid.basis_for_data`), after the checks
    the fit makes (:func:`scaloquant.cli._grid.check_grid_file`)."""
    if args.grid_from is None:
        # as train renders a physics-head model's signals on the basis' own grid: Osprey's TE
        # 35 basis' singlets sat 0.03 ppm upfield (docs/fit.md "A ppm reference that is off")
        basis, basis_name, conversions = load_basis_as_simulated(args.basis, args, flag="--basis")
        notes = [f"basis: {sentence}" for sentence in conversions]
        return _Basis(basis, basis_name, notes=notes, conversions=conversions)
    from ..fit.basis_grid import basis_for_data
    from ..fit.config import FIT_PRESETS
    from ..fit.spectra import prepared_on_grid
    from ._grid import check_grid_file, read_grid_file
    from ._spectra import user_basis_or_default

    fid = read_grid_file(
        args.grid_from,
        command="simulate",
        overrides=acquisition_overrides(args),
        override_header=args.override_header,
    )
    basis, basis_name = user_basis_or_default(args.basis)
    check_grid_file(
        fid,
        basis,
        path=args.grid_from,
        basis_path=args.basis,
        field_fix=None,
        why="scaloquant fit would refuse that file with this basis",
        remedy="simulate",
    )
    if args.preset == "invivo":
        # train's invivo signals (its default): the fit's model of a physics-head model
        # (build_physics_quantifier's default, FIT_PRESETS["invivo"]) decides the
        # macromolecules by the fit's one rule; the sentence on them joins the conversions
        on_grid, fitted, conversions = prepared_on_grid(
            basis, fid.acquisition, FIT_PRESETS["invivo"]
        )
        fitted_names: tuple[str, ...] | None = fitted.names
    else:
        # train's default signals are rendered on the basis on the grid, whatever its fit (a
        # config's stream takes no fitted names)
        on_grid, conversions = basis_for_data(basis, fid.acquisition)
        fitted_names = None
    grid = {
        "grid_from": str(args.grid_from),
        **on_grid.acquisition.to_dict(),
        "basis_conversions": list(conversions),
    }
    if fid.provenance.get("header_overrides"):
        grid["header_overrides"] = dict(fid.provenance["header_overrides"])
    notes = [f"basis: {sentence}" for sentence in conversions]
    notes += [f"--grid-from: {note}" for note in header_override_notes(fid)]
    if not conversions:
        notes.append(f"basis: already on the grid of {args.grid_from}")
    return _Basis(on_grid, basis_name, grid, notes, fitted_names=fitted_names)


def _write_nifti(
    out: Path,
    signals: Any,
    labels: Mapping[str, Sequence[str]],
    basis: BasisSet,
    provenance: dict[str, Any],
    *,
    overwrite: bool,
) -> list[Path]:
    """NIfTI-MRS of the signals (``fids``, ``columns()``) plus the truth CSV, whose 2-D columns
    are named by ``labels``; neither file appears unless both are written."""
    from .. import __version__
    from ..io.atomic import atomic_path
    from ..io.nifti import write_nifti_mrs
    from ..io.truth_csv import truth_path_for, write_truth_csv
    from ..types import FID

    truth = truth_path_for(out)
    fid = FID(
        samples=signals.fids,
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
        nucleus=basis.nucleus,
    )
    header = {
        "scaloquant_simulation": {
            **provenance,
            "scaloquant_version": __version__,
            "basis_sha256": basis.content_hash(),
            "metabolites": list(basis.names),
            "dim_5": f"DIM_USER_0 is the simulated signal index; the truth is in {truth.name}",
        },
    }
    # the CSV is renamed into place only after the NIfTI file was written (atomically too)
    with atomic_path(truth, overwrite=overwrite) as tmp_truth:
        write_truth_csv(tmp_truth, signals.columns(), labels)
        write_nifti_mrs(out, fid, dim_tags=["DIM_USER_0"], overwrite=overwrite, extra_header=header)
    return [out, truth]
