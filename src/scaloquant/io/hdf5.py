"""Simulated datasets in HDF5: a streaming, deterministic writer and a reader.

Layout of a file written by :func:`write_simulation`
----------------------------------------------------
datasets (one row per signal)
    ``fids`` complex64 (N, n_points), internal convention of :mod:`scaloquant.signal.axes`;
    ``amplitudes`` float32 (N, M), columns in the order of the attribute ``metabolites``;
    one float32 dataset per other drawn or derived parameter, (N, M), (N,) or (N, H):
    ``damping_per_s``, ``shift_hz``, and when switched on ``gaussian_damping_per_s``,
    ``phase0_deg``, ``phase1_deg_per_ppm``, ``snr``, ``baseline_centre_ppm``,
    ``baseline_fwhm_ppm``, ``baseline_height``, ``reference_height``, ``noise_sd``.
root attributes
    ``format`` (``scaloquant-simulation``), ``format_version``, ``metabolites``,
    ``dwell_time_s``, ``spectrometer_freq_mhz``, ``ppm_reference``, ``nucleus``, ``config`` (the
    resolved simulation config as JSON), ``seed``, ``scaloquant_version``, ``basis_name``,
    ``basis_sha256`` (:meth:`scaloquant.types.BasisSet.content_hash`), ``n_signals``; and
    only where ``--override-header`` replaced a value the basis file records,
    ``header_overrides`` (JSON ``{key: {"recorded": v, "used": v}}``); only for ``simulate
    --grid-from``, ``grid`` (JSON: the file whose grid the signals are on, the basis'
    conversions to it and that file's ``header_overrides``); only where ``simulate`` without
    ``--grid-from`` corrected the basis' ppm reference from its singlets,
    ``basis_conversions`` (JSON list: that sentence and the shift that put the basis back on
    its own grid, :func:`scaloquant.fit.basis_grid.basis_for_data`).

The same inputs give a byte-identical file: no object keeps a creation time
(``track_times=False``), and datasets and attributes are created in a fixed order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from .. import __version__
from ..errors import InputFileError
from ..paths import SIMULATION_HINT, require_file
from ..signal.grid import Acquisition
from ..types import BasisSet, SignalSet
from .atomic import atomic_path

FORMAT_NAME = "scaloquant-simulation"
FORMAT_VERSION = 1
_REQUIRED_DATASETS = ("fids", "amplitudes")
_REQUIRED_ATTRIBUTES = (
    "metabolites",
    "dwell_time_s",
    "spectrometer_freq_mhz",
    "ppm_reference",
    "config",
    "seed",
)


class Chunk(Protocol):
    """One chunk of signals for the writer: a :class:`~scaloquant.types.SignalSet`, or the
    ``invivo`` preset's signals: (B, n_points) complex ``fids`` and per-signal ``columns()`` by
    name, each with B rows (``amplitudes`` among them)."""

    fids: np.ndarray

    def columns(self) -> Mapping[str, np.ndarray]: ...


def write_simulation(
    path: str | os.PathLike,
    chunks: Iterable[Chunk],
    *,
    n_signals: int,
    basis: BasisSet,
    basis_name: str,
    config: Mapping[str, Any],
    seed: int,
    overwrite: bool = False,
    grid: Mapping[str, Any] | None = None,
    basis_conversions: Sequence[str] = (),
) -> Path:
    """Stream ``n_signals`` simulated signals into a new HDF5 file at ``path``, atomically.

    Datasets get their final shape from the first chunk and are filled chunk by chunk, so memory
    holds one chunk at a time. The file appears at ``path`` only when complete; an existing file
    is replaced only with ``overwrite``.

    Parameters
    ----------
    chunks : signal sets in signal order; their rows must add up to ``n_signals``.
    basis : the basis set the signals were made from (names, grid and hash are recorded).
    basis_name : how the user named the basis (a path, or the default basis).
    config : the resolved simulation config (stored as JSON).
    seed : the seed the dataset was made with.
    grid : where the signals' grid came from, when not from the basis' own (module docstring).
    basis_conversions : without ``grid``, what was done to the basis on its own grid (its
        ppm reference corrected from its singlets; module docstring); empty when nothing.
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        try:
            _write(tmp, chunks, n_signals, basis, basis_name, config, seed, grid, basis_conversions)
        except OSError as err:
            raise InputFileError(
                f"cannot write {path}: {err}; check free disk space and permissions"
            ) from None
    return Path(path)


def _write(
    tmp: Path,
    chunks: Iterable[Chunk],
    n_signals: int,
    basis: BasisSet,
    basis_name: str,
    config: Mapping[str, Any],
    seed: int,
    grid: Mapping[str, Any] | None = None,
    basis_conversions: Sequence[str] = (),
) -> None:
    with h5py.File(tmp, "w") as f:
        attrs = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "metabolites": list(basis.names),
            "dwell_time_s": basis.dwell_time_s,
            "spectrometer_freq_mhz": basis.spectrometer_freq_mhz,
            "ppm_reference": basis.ppm_reference,
            "nucleus": basis.nucleus,
            "config": json.dumps(dict(config), sort_keys=True),
            "seed": np.int64(seed),
            "scaloquant_version": __version__,
            "basis_name": basis_name,
            "basis_sha256": basis.content_hash(),
            "n_signals": np.int64(n_signals),
        }
        overridden = basis.provenance.get("header_overrides")
        if overridden:  # --override-header: the values above are the user's, not the file's
            attrs["header_overrides"] = json.dumps(dict(overridden), sort_keys=True)
        if grid:
            attrs["grid"] = json.dumps(dict(grid), sort_keys=True)
        if basis_conversions:
            attrs["basis_conversions"] = json.dumps(list(basis_conversions))
        for key, value in attrs.items():
            f.attrs[key] = value
        fids = f.create_dataset(
            "fids", shape=(n_signals, basis.n_points), dtype=np.complex64, track_times=False
        )
        columns: dict[str, h5py.Dataset] = {}
        row = 0
        for chunk in chunks:
            chunk_fids, chunk_columns = chunk.fids, chunk.columns()
            stop = row + chunk_fids.shape[0]
            if stop > n_signals:
                raise ValueError(f"chunks hold more than the announced {n_signals} signals")
            fids[row:stop] = np.asarray(chunk_fids, dtype=np.complex64)
            for name, values in chunk_columns.items():
                if name not in columns:
                    columns[name] = f.create_dataset(
                        name,
                        shape=(n_signals, *np.shape(values)[1:]),
                        dtype=np.float32,
                        track_times=False,
                    )
                columns[name][row:stop] = np.asarray(values, dtype=np.float32)
            row = stop
        if row != n_signals:
            raise ValueError(f"chunks held {row} signals, {n_signals} were announced")


def _rows(index: int | slice | np.ndarray | None, n_total: int) -> np.ndarray:
    """Row numbers selected by ``index`` (numpy rules: negative ints count from the end)."""
    if index is None:
        return np.arange(n_total)
    if isinstance(index, slice):
        return np.arange(n_total)[index]
    rows = np.atleast_1d(np.asarray(index))
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise TypeError(f"index must be an int, a slice or a 1-D array of ints, got {index!r}")
    if rows.size and (rows.min() < -n_total or rows.max() >= n_total):
        raise IndexError(f"index {index!r} is out of range for a file of {n_total} signals")
    return np.where(rows < 0, rows + n_total, rows)


def _read_rows(dataset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """``dataset[rows]`` for any rows; h5py needs increasing, unique indices."""
    if rows.size == 0:
        return np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)
    if rows.size == rows[-1] - rows[0] + 1 and np.all(np.diff(rows) == 1):
        return dataset[rows[0] : rows[-1] + 1]  # a contiguous block: one read
    unique, inverse = np.unique(rows, return_inverse=True)
    return dataset[unique][inverse]


def read_simulation(
    path: str | os.PathLike, *, index: int | slice | np.ndarray | None = None
) -> SignalSet:
    """Read the signals ``index`` selects (all by default) from a file of :func:`write_simulation`.

    An int selects one signal but keeps the leading axis (k = 1). Missing, unreadable, garbled or
    truncated files and files without the datasets above raise
    :class:`~scaloquant.errors.InputFileError`.
    """
    path = require_file(path, hint=SIMULATION_HINT)
    if not h5py.is_hdf5(path):  # another format (simulate's NIfTI, a FID file), not damage
        raise InputFileError(
            f"{path} is not an HDF5 file; give a simulation file (.h5) written by scaloquant "
            "simulate"
        )
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputFileError(
            f"{path} is not a readable HDF5 file (truncated or garbled?); simulate it again"
        ) from None
    try:
        with f:
            return _read(f, path, index)
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
        raise InputFileError(f"{path} is damaged ({err}); simulate it again") from None


def _read(f: h5py.File, path: Path, index: Any) -> SignalSet:
    for name in _REQUIRED_DATASETS:
        if not isinstance(f.get(name), h5py.Dataset):
            raise InputFileError(
                f"{path} has no dataset {name!r}; it is not a scaloquant simulation file"
            )
    missing = [a for a in _REQUIRED_ATTRIBUTES if a not in f.attrs]
    if missing:
        raise InputFileError(
            f"{path} lacks attribute(s) {', '.join(missing)}; it is not a scaloquant "
            "simulation file"
        )
    attrs = f.attrs
    n_total = int(f["fids"].shape[0])
    rows = _rows(index, n_total)
    parameters = {
        name: _read_rows(ds, rows).astype(np.float64)
        for name, ds in f.items()
        if isinstance(ds, h5py.Dataset) and name not in _REQUIRED_DATASETS
    }
    fids = _read_rows(f["fids"], rows).reshape(rows.size, -1)
    return SignalSet(
        # complex128, as the simulator makes them (the file stores complex64)
        fids=fids.astype(np.complex128),
        amplitudes=_read_rows(f["amplitudes"], rows).astype(np.float64),
        metabolites=tuple(str(m) for m in attrs["metabolites"]),
        acquisition=Acquisition(
            n_points=fids.shape[-1],
            dwell_time_s=float(attrs["dwell_time_s"]),
            spectrometer_freq_mhz=float(attrs["spectrometer_freq_mhz"]),
            ppm_reference=float(attrs["ppm_reference"]),
            nucleus=str(attrs.get("nucleus", "1H")),
        ),
        parameters=parameters,
        indices=rows,
        config=json.loads(attrs["config"]),
        seed=int(attrs["seed"]),
        version=str(attrs.get("scaloquant_version", "")),
        basis_name=str(attrs.get("basis_name", "")),
        basis_sha256=str(attrs.get("basis_sha256", "")),
        n_total=n_total,
    )
