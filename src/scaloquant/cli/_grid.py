"""The ``--grid-from`` file of ``train`` and ``simulate``: read, and checked against the basis
before any work, as the fit would check that file against it (nucleus, field within 5 %, echo
time and sequence where both record them)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_grid_file(
    path: Path, *, command: str, overrides: Mapping[str, float] | None = None, **options: Any
) -> Any:
    """The ``--grid-from`` file's FID (its acquisition is the grid).

    ``overrides``: the acquisition flags (:func:`scaloquant.cli._common.acquisition_overrides`)
    where ``command`` has them (``options``: ``override_header``); None where it has not, and
    then a file that does not record its grid (an LCModel .RAW, a text file) is refused with
    the rewrite that records it (the reader's 'pass --dwell-time-s' named a flag the command
    does not have). A simulation file is refused with the remedy of this flag."""
    from ..errors import InputFileError, MissingMetadataError
    from ..formats import fid_suffixes_text, is_simulation_path
    from ..io import read_fid
    from ._common import grid_flags, lacked

    if is_simulation_path(path):
        raise InputFileError(
            f"--grid-from {path} is a simulation file (scaloquant simulate's signals with "
            f"their truth), whose grid is its basis': give a data file ({fid_suffixes_text()}), or "
            "leave --grid-from out to use the basis' own grid"
        )
    if overrides is not None:
        try:
            return read_fid(path, **overrides, **options)
        except MissingMetadataError as err:
            # the reader's 'PATH does not record the dwell time; pass --dwell-time-s' named
            # the path but not --grid-from, which these flags then describe
            raise MissingMetadataError(
                f"--grid-from {path} does not record the {lacked(err.missing)}: add "
                f"{' and '.join(grid_flags(err.keywords))}; the acquisition flags describe the "
                "--grid-from file",
                path=err.path,
                missing=err.missing,
            ) from None
    try:
        return read_fid(path)
    except MissingMetadataError as err:
        stem = Path(path).name.split(".")[0]
        raise MissingMetadataError(
            f"--grid-from {path} does not record the {lacked(err.missing)}, and {command} takes no "
            "acquisition flags: rewrite it as NIfTI-MRS with them, e.g. scaloquant convert "
            f"{path} {stem}.nii.gz {' '.join(grid_flags(err.keywords))}, and give that file",
            path=err.path,
            missing=err.missing,
        ) from None


def check_grid_file(
    fid: Any,
    basis: Any,
    *,
    path: Path,
    basis_path: Path | None,
    field_fix: str | None,
    why: str,
    remedy: str,
) -> None:
    """Refuse, before any work, a ``--grid-from`` file (``fid``, read from ``path``) that the
    fit would refuse with ``basis`` (read from ``basis_path``, None: the embedded one):
    another nucleus or field (:func:`scaloquant.signal.match.require_same_field`; ``field_fix``
    words its header remedy, None: the CLI's flags), another echo time or sequence family (the fit's rule:
    :func:`~scaloquant.signal.match.echo_times_differ`,
    :func:`~scaloquant.signal.match.different_families`).

    ``why`` says what would follow ("quantify would refuse this file with the model"),
    ``remedy`` starts the remedy ("train" or "simulate": "... with a basis set for TE 30 ms",
    "... from a basis set (--basis) for 297.2 MHz").
    """
    from ..errors import IncompatibleDataError, NeedsOption
    from ..signal.match import (
        basis_sequence,
        different_families,
        echo_times_differ,
        require_same_field,
        stated_sequence,
    )

    what = f"the basis set ({basis_path})" if basis_path else "the embedded basis set"
    try:
        require_same_field(
            fid.acquisition,
            basis.acquisition,
            source=f"--grid-from {path}",
            target_what=what,
            remedy=f"{remedy} from a basis set (--basis)",
        )
    except NeedsOption as err:
        if field_fix is None:
            raise  # the CLI words its option as the flags (scaloquant.cli.OPTION_FLAGS)
        raise IncompatibleDataError(err.worded({"override_freq": field_fix})) from None
    data_seq, data_te = stated_sequence(fid)
    basis_seq, basis_te = basis_sequence(basis.metadata)
    if echo_times_differ(data_te, basis_te):
        raise IncompatibleDataError(
            f"--grid-from {path} states TE {data_te * 1e3:g} ms and {what} TE "
            f"{basis_te * 1e3:g} ms; {why} (J-evolution and T2 weighting differ between echo "
            f"times): {remedy} with a basis set for TE {data_te * 1e3:g} ms, or take the grid "
            f"from a file of TE {basis_te * 1e3:g} ms"
        )
    families = different_families(data_seq, basis_seq)
    if families:
        data_family, basis_family = families
        raise IncompatibleDataError(
            f"--grid-from {path} states sequence {_named(data_seq, data_family)} and {what} "
            f"{_named(basis_seq, basis_family)}; {why} (the sequences' coupled spins evolve "
            f"differently): {remedy} with a {data_family} basis set, or take the grid from a "
            f"{basis_family} file"
        )


def _named(sequence: str | None, family: str) -> str:
    """A header's sequence name with its family where they differ (``svs_se (PRESS)``)."""
    return family if sequence in (None, family) else f"{sequence} ({family})"
