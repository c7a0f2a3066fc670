"""Pieces shared by several subcommands: the acquisition flags and loading a basis."""

from __future__ import annotations

import argparse
import gc
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _config
from ..errors import ConfigError
from ..formats import ACQUISITION_VALUES
from ..formats import flag as flag_of

if TYPE_CHECKING:  # numpy loads only with a basis, not for --help
    from ..types import BasisSet

#: The grid's acquisition values, whose value is a positive number (a ppm reference is a
#: signed shift).
_GRID = ("dwell_time_s", "spectrometer_freq_mhz")


def _metavar(key: str) -> str:
    """An acquisition flag's metavar: its value's unit, upper-cased (``S``, ``MHZ``, ``PPM``)."""
    return ACQUISITION_VALUES[key].unit.upper()


def grid_flags(keywords: Sequence[str]) -> list[str]:
    """``FLAG METAVAR`` of each grid value ``keywords`` names (a
    :class:`~scaloquant.errors.MissingMetadataError`'s ``keywords``: ``("dwell_time_s",)`` ->
    ``["--dwell-time-s S"]``), in the flags' order; of both where it names neither."""
    named = [key for key in _GRID if key in keywords]
    return [f"{ACQUISITION_VALUES[key].flag} {_metavar(key)}" for key in named or _GRID]


def lacked(missing: Sequence[str]) -> str:
    """The grid values ``missing`` names, as the reader words them after "does not record the"
    (``("dwell time", "spectrometer frequency")`` -> "dwell time or the spectrometer
    frequency"); "acquisition" where it names none."""
    return " or the ".join(missing) or "acquisition"


def number(text: str) -> float:
    """An argparse ``type``: a number, refused in words ('x' was argparse's 'invalid float
    value', Python's type)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def whole_number(text: str) -> int:
    """An argparse ``type``: a whole number, refused in words ('x' or '1.5' was argparse's
    'invalid int value', Python's type)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def finite_number(text: str) -> float:
    """An argparse ``type``: a finite number (``--ppm-reference nan`` ended in a traceback of the
    quality figures; argparse words the refusal with the flag; 'x' was argparse's 'invalid
    finite_number value', this function's name)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """An argparse ``type``: a finite number > 0 (``--dwell-time-s 0`` was refused by the FID
    type in its words, 'dwell time must be a positive number of seconds', naming no flag)."""
    value = finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def path_value(text: str) -> Path:
    """An argparse ``type``: a path, refused empty in words with its flag (``--out ''`` or
    ``convert IN ''`` was read by pathlib as ``.``, and the refusal named the current folder,
    not the flag)."""
    if not text:
        raise argparse.ArgumentTypeError("must be a path, got an empty text")
    return Path(text)


def add_acquisition_flags(parser: argparse.ArgumentParser, *, applies_to: str) -> None:
    """Add ``--dwell-time-s``, ``--spectrometer-freq-mhz``, ``--ppm-reference`` and
    ``--override-header``; ``applies_to`` ends "for ...", e.g. ``"input files that do not
    record it"``."""
    for key, value in ACQUISITION_VALUES.items():
        parser.add_argument(
            value.flag,
            dest=key,
            type=positive_number if key in _GRID else finite_number,
            metavar=_metavar(key),
            help=f"{value.help}, for {applies_to} (a file's own value wins; "
            "one that differs is refused unless --override-header)",
        )
    parser.add_argument(
        "--override-header",
        action="store_true",
        help="let the three flags above replace the values that files record (the header is "
        "wrong); each replacement is reported with the results",
    )


def acquisition_overrides(args: argparse.Namespace) -> dict[str, float]:
    """The acquisition flags the user gave, as keyword arguments of the readers."""
    return {k: getattr(args, k) for k in ACQUISITION_VALUES if getattr(args, k) is not None}


def refuse_acquisition_flags(args: argparse.Namespace, why: str, why_one: str) -> None:
    """Raise a ConfigError naming the acquisition flags given where they do not apply: ``why``
    follows several flags ('describe ...; ... drop them'), ``why_one`` a single one."""
    given = [*acquisition_overrides(args), *(["override_header"] if args.override_header else [])]
    if given:
        flags = ", ".join(flag_of(k) for k in given)
        raise ConfigError(f"{flags} {why if len(given) > 1 else why_one}")


def refuse_simulation_basis(path: Path, flag: str) -> None:
    """Refuse a simulation file (HDF5) given as the basis, naming ``flag`` (``"--basis"``; a
    positional argument's metavar is left out) and a remedy for it: the reader's 'not a FID
    file; ... evaluate a simulation file with scaloquant evaluate' was meant for an input."""
    from ..errors import InputFileError
    from ..formats import basis_formats_text, is_simulation_path

    if is_simulation_path(path):
        given = f"{flag} {path}" if flag.startswith("--") else str(path)
        raise InputFileError(
            f"{given} is a simulation file (scaloquant simulate's signals with their truth), "
            f"not a basis set: give the basis set it was simulated from ({basis_formats_text()}); "
            "scaloquant evaluate takes the simulation file itself"
        )


def declare_flag_keys(
    p: argparse.ArgumentParser, keys: Mapping[str, str], actions: Iterable[argparse.Action]
) -> None:
    """Declare which config keys ``p``'s flags give (key -> flag): a
    :class:`~scaloquant.errors.ConfigError` of the command whose message starts with such a key
    is worded with the flag where the user gave it (:func:`flag_worded`, in ``cli.main``). The
    config classes name their keys ('echo_time_ms must be ...'), right for a ``--config``
    file's keys and for a Python caller, not for the user who typed ``--te-ms -1``. A flag may
    carry the words of its value (``"--baseline poly:DEGREE"``). ``actions`` are what
    ``add_argument`` returned for those flags (their public ``dest`` and ``option_strings``); a
    flag that is not among them is a KeyError here, at registration; several calls add up."""
    dests = {flag: action.dest for action in actions for flag in action.option_strings}
    declared = dict(p.get_default("flag_keys") or {})
    declared |= {key: (flag, dests[flag.split()[0]]) for key, flag in keys.items()}
    p.set_defaults(flag_keys=declared)


#: How a config's message says a key may be left unset ('must be a whole number >= 0 or null',
#: 'positive or null'): a file's or a Python caller's words; a flag is unset by leaving it
#: out, so the words go where the message names the flag (:func:`flag_worded`).
_UNSET_WORDS = ("None or ", " or None", " or null")


def flag_worded(message: str, args: argparse.Namespace) -> str:
    """``message`` with its leading config key replaced by the flag that gave its value
    (:func:`declare_flag_keys`): the flag's value is set (not None or False; a flag with a
    default is the key's only source). A key set by a ``--config`` file while its flag is
    absent keeps its name: the user typed the key there. Named by the flag, the message drops
    the config's words for an unset key (:data:`_UNSET_WORDS`)."""
    for key, (flag, dest) in getattr(args, "flag_keys", {}).items():
        value = getattr(args, dest)  # by identity: 0 is a value given, not False
        given = value is not None and value is not False
        if given and message.startswith((f"{key} ", f"{key}:")):
            rest = message[len(key) :]
            for unset in _UNSET_WORDS:
                rest = rest.replace(unset, "")
            return flag + rest
    return message


def embedded_basis() -> tuple[BasisSet, str]:
    """The embedded default basis and the name a run records for it: what every subcommand
    takes when no basis file is given."""
    from ..io.default import DEFAULT_BASIS_NAME, default_basis

    return default_basis(), DEFAULT_BASIS_NAME


def load_basis(path: Path | None, args: argparse.Namespace, *, flag: str) -> tuple[BasisSet, str]:
    """The basis at ``path`` (or the embedded default when None) and the name to record for it.

    ``flag`` is the option or argument that names the basis file, for the error message.
    """
    if path is None:
        refuse_acquisition_flags(
            args,
            f"describe a basis file; give {flag} or drop them",
            f"describes a basis file; give {flag} or drop it",
        )
        return embedded_basis()
    from ..io import read_basis

    refuse_simulation_basis(path, flag)
    return (
        read_basis(path, override_header=args.override_header, **acquisition_overrides(args)),
        str(path),
    )


def load_basis_as_simulated(
    path: Path | None, args: argparse.Namespace, *, flag: str
) -> tuple[BasisSet, str, tuple[str, ...]]:
    """:func:`load_basis`, then on its own grid as ``fit`` and ``train`` bring it there
    (:func:`scaloquant.fit.basis_grid.basis_for_data`: its ppm reference corrected from its
    singlets where they sit off, the FIDs shifted back to its file's 0 Hz): the basis
    ``simulate`` renders without ``--grid-from``, and the one ``evaluate`` rebuilds its
    signals with. Returns ``(basis, name, the sentences of what was done)``; the embedded
    basis comes back as it is, with ``()``."""
    from ..fit.basis_grid import basis_for_data

    basis, name = load_basis(path, args, flag=flag)
    on_grid, conversions = basis_for_data(basis, basis.acquisition)
    return on_grid, name, conversions


def header_override_notes(obj: Any) -> list[str]:
    """The sentences of ``--override-header``'s replacements in what a reader returned
    (:func:`scaloquant.io.dispatch.reconcile_header` records them), for the terminal."""
    return [
        w for w in obj.provenance.get("warnings") or () if str(w).startswith("--override-header")
    ]


def add_output_flags(p: argparse.ArgumentParser) -> argparse.Action:
    """``--n-boot`` and ``--overwrite``, shared with ``scaloquant reproduce``; ``--n-boot``'s
    action returned (:func:`declare_flag_keys`)."""
    from ..evaluate.bootstrap import DEFAULT_N_BOOT  # evaluate and reproduce load it anyway

    n_boot = p.add_argument(
        "--n-boot",
        type=whole_number,
        default=DEFAULT_N_BOOT,
        help=f"bootstrap resamples (default: {DEFAULT_N_BOOT})",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty DIR, replacing earlier scaloquant outputs (other files kept)",
    )
    return n_boot


def print_summary(doc: dict[str, Any]) -> None:
    """One line per model with its mean metrics (the full tables are in report.md)."""
    n_all = max((m.get("n_signals", 0) for m in doc["models"].values()), default=0)
    for name, model in doc["models"].items():
        mean = model["mean"]
        n = model.get("n_signals", n_all)
        # %.3g: the fit's noiseless errors are many decades below the networks'
        print(
            f"{name}: mean MAE {mean['mae']:.3g}, SMAPE {mean['smape']:.3g}%, "
            f"RMSE {mean['rmse']:.3g}, R² {mean['r2']:.3f}"
            + (f" (first {n} of {n_all} signals)" if n < n_all else "")
        )


def add_threads_flag(p: argparse.ArgumentParser, *, what: str) -> None:
    """``--threads N``: the torch CPU threads of ``what`` (quantify's network, fit's solver)."""
    p.add_argument(
        "--threads",
        type=whole_number,
        metavar="N",
        help=f"CPU threads of {what} (default: the idle CPUs this process may use, from its CPU "
        "affinity and the load average; see scaloquant.threads)",
    )


@contextmanager
def first_imports() -> Iterator[None]:
    """The block's imports, where torch is not yet imported (a new process: the command), with
    Python's cyclic garbage collector off, and the objects made until then frozen afterwards
    (:func:`gc.freeze`: later full collections skip them). Importing torch, scipy and the
    package creates ~285,000 objects that live as long as the process and that no collection
    frees; with the collector on, its collections during the imports scan them again and again
    (`import torch, scipy.fft, scipy.ndimage` and the quantify modules, five alternations: 1.90
    -> 1.36 s of CPU; switched on again without the freeze, the next collections scan them
    once more: 1.66 against 1.50 s with an object churn after, 1.24 frozen;
    docs/history/physics-models-log.md "Where quantify's time goes (session 16, `quant16`)").
    Where torch is already imported (the CLI run in-process by a test or a notebook) nothing is
    changed: freezing the caller's objects would keep its garbage."""
    if "torch" in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def with_threads(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """``run(args)`` on the torch threads ``--threads`` asks for (default
    :func:`scaloquant.threads.choose_threads`), the caller's own restored afterwards (the CLI
    runs in-process in tests and notebooks)."""
    from ..threads import choose_threads, torch_threads

    if args.threads is not None:
        _config.whole_number("--threads", args.threads, 1)
    with torch_threads(choose_threads(args.threads)):
        return run(args)
