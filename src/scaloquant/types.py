"""Frozen data types. Samples are complex FIDs in the internal convention of
:mod:`scaloquant.signal.axes`; acquisition metadata carry their units in their names; axes are
derived, never stored.
"""

from __future__ import annotations

import copyreg
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from .errors import IncompatibleDataError, InvalidDataError, UnknownMetaboliteError
from .signal import axes
from .signal.grid import Acquisition

__all__ = ["FID", "Acquisition", "BasisSet", "SignalSet"]


def _read_only(mapping: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(mapping)


# The frozen types keep their mappings as read-only views (MappingProxyType), which pickle
# cannot copy; registered here, a view pickles as a view of a copy of its mapping, so that these
# types (and the configs that use views too) reach other processes
# (scaloquant.threads.run_in_processes).
copyreg.pickle(MappingProxyType, lambda proxy: (_read_only, (dict(proxy),)))


def _frozen_samples(samples: Any, ndim: int, what: str) -> np.ndarray:
    """``samples`` as a read-only complex128 array: a copy, except of an array handed over (see
    :func:`_handed_over`), which is taken as it is."""
    arr = samples if _handed_over(samples) else np.array(samples, dtype=np.complex128, copy=True)
    if arr.ndim != ndim:
        raise InvalidDataError(f"{what} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.shape[-1] < 2:
        raise InvalidDataError(f"{what} has {arr.shape[-1]} point(s); at least 2 are needed")
    if not np.all(np.isfinite(arr)):
        raise InvalidDataError(f"{what} contains NaN or Inf samples; check the file or its scaling")
    arr.setflags(write=False)
    return arr


def _handed_over(samples: Any) -> bool:
    """Whether ``samples`` is a complex128 C-order array that is read-only already and owns its
    memory, or is a view of an array that owns it and is read-only too: nobody can write
    through it (no view of a writable array), so a frozen object may keep it without a copy (the
    readers hand theirs over so; a FID's own samples are such an array too, and so is their
    reshape, e.g. an MRSI input's voxels as one flat batch, which ``fit`` copied twice: 64 kB
    a voxel of 2048 points at its peak, docs/history/benchmarks-log.md "Memory of fit and
    quantify (session 33, `mem33`)"). Every other array or sequence is copied."""
    if not (
        isinstance(samples, np.ndarray)
        and samples.dtype == np.complex128
        and samples.flags.c_contiguous
        and not samples.flags.writeable
    ):
        return False
    if samples.flags.owndata:
        return True
    # numpy points a view of a view at the array that owns the memory
    base = samples.base
    return isinstance(base, np.ndarray) and base.flags.owndata and not base.flags.writeable


def _check_acquisition(dwell_time_s: float, spectrometer_freq_mhz: float) -> None:
    if not (np.isfinite(dwell_time_s) and dwell_time_s > 0):
        raise InvalidDataError(
            f"dwell time must be a positive number of seconds, got {dwell_time_s}"
        )
    if not (np.isfinite(spectrometer_freq_mhz) and spectrometer_freq_mhz > 0):
        raise InvalidDataError(
            f"spectrometer frequency must be a positive number of MHz, got {spectrometer_freq_mhz}"
        )


class _OnGrid:
    """What FID and BasisSet share: the frozen grid fields, their checks and the derived axes.

    Subclasses are frozen dataclasses with ``dwell_time_s``, ``spectrometer_freq_mhz``,
    ``ppm_reference``, ``nucleus`` and ``provenance`` fields and an ``n_points`` property.
    """

    dwell_time_s: float
    spectrometer_freq_mhz: float
    ppm_reference: float
    nucleus: str
    provenance: Mapping[str, Any]
    n_points: int

    def _freeze_grid(self) -> None:
        for name in ("dwell_time_s", "spectrometer_freq_mhz", "ppm_reference"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "provenance", MappingProxyType(dict(self.provenance)))
        _check_acquisition(self.dwell_time_s, self.spectrometer_freq_mhz)
        if not np.isfinite(self.ppm_reference):
            raise InvalidDataError(
                f"ppm reference must be a finite number, got {self.ppm_reference}"
            )

    @property
    def acquisition(self) -> Acquisition:
        return Acquisition.of(self)

    def time_axis_s(self) -> np.ndarray:
        return self.acquisition.time_axis_s()

    def frequency_axis_hz(self) -> np.ndarray:
        return self.acquisition.frequency_axis_hz()

    def ppm_axis(self) -> np.ndarray:
        return self.acquisition.ppm_axis()


@dataclass(frozen=True)
class FID(_OnGrid):
    """One or more complex FIDs on one acquisition grid.

    ``samples`` has shape ``(..., n_points)``: a single FID is 1-D, MRSI or extra NIfTI-MRS
    dimensions are leading axes. The array is read-only; methods return new objects.
    """

    samples: np.ndarray
    dwell_time_s: float
    spectrometer_freq_mhz: float
    ppm_reference: float = axes.DEFAULT_PPM_REFERENCE_1H
    nucleus: str = "1H"
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # one copy at most (_frozen_samples; it was copied twice: 16384 x 2048 samples, 0.28 s
        # each)
        ndim = np.ndim(self.samples)
        if ndim < 1:
            raise InvalidDataError("FID samples must have at least one dimension")
        object.__setattr__(self, "samples", _frozen_samples(self.samples, ndim, "FID"))
        self._freeze_grid()

    @property
    def n_points(self) -> int:
        return int(self.samples.shape[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.samples.shape[:-1])

    def spectrum(self, n_fft: int | None = None) -> np.ndarray:
        """``fftshift(fft(samples))`` along the last axis; see :mod:`scaloquant.signal.axes`."""
        return axes.spectrum(self.samples, n_fft)

    def with_samples(self, samples: np.ndarray, **provenance: Any) -> FID:
        """A new FID on the same acquisition with other samples (and extra provenance)."""
        return replace(self, samples=samples, provenance={**self.provenance, **provenance})


@dataclass(frozen=True)
class BasisSet(_OnGrid):
    """Metabolite basis FIDs, one row per metabolite, on one acquisition grid.

    ``fids`` has shape ``(n_metabolites, n_points)``. Names are unique. Extra acquisition facts
    (sequence, echo time) go in ``metadata``; file names, licences and edits go in ``provenance``.
    """

    names: tuple[str, ...]
    fids: np.ndarray
    dwell_time_s: float
    spectrometer_freq_mhz: float
    ppm_reference: float = axes.DEFAULT_PPM_REFERENCE_1H
    nucleus: str = "1H"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "fids", _frozen_samples(self.fids, 2, "basis set"))
        if len(names) != self.fids.shape[0]:
            raise InvalidDataError(
                f"basis set has {len(names)} names but {self.fids.shape[0]} FIDs"
            )
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InvalidDataError(f"basis set has duplicate metabolite names: {', '.join(dup)}")
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        self._freeze_grid()

    @property
    def n_metabolites(self) -> int:
        return len(self.names)

    @property
    def n_points(self) -> int:
        return int(self.fids.shape[1])

    def spectra(self, n_fft: int | None = None) -> np.ndarray:
        """Spectra of every basis FID, shape ``(n_metabolites, n_fft or n_points)``."""
        return axes.spectrum(self.fids, n_fft)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownMetaboliteError(
                f"unknown metabolite {name!r}; the basis set has: {', '.join(self.names)}"
            ) from None

    def subset(self, names: Sequence[str]) -> BasisSet:
        """A new basis set with only ``names``, in that order."""
        idx = [self.index(n) for n in names]
        return replace(self, names=tuple(names), fids=self.fids[idx])

    def truncated(self, n_points: int) -> BasisSet:
        """A new basis set keeping the first ``n_points`` samples."""
        if not 2 <= n_points <= self.n_points:
            raise IncompatibleDataError(
                f"cannot truncate a {self.n_points}-point basis to {n_points} points"
            )
        return replace(self, fids=self.fids[:, :n_points])

    def content_hash(self) -> str:
        """SHA-256 of names, samples and grid: identifies the basis a model was trained on."""
        h = hashlib.sha256()
        h.update("\n".join(self.names).encode())
        h.update(np.ascontiguousarray(self.fids, dtype=np.complex128).tobytes())
        h.update(
            repr(
                (self.dwell_time_s, self.spectrometer_freq_mhz, self.ppm_reference, self.nucleus)
            ).encode()
        )
        return h.hexdigest()


@dataclass(frozen=True)
class SignalSet:
    """A set of simulated signals with their truth and provenance: what the simulator makes, a
    simulation file holds (:mod:`scaloquant.io.hdf5`) and training and testing use.

    The arrays keep the dtype they are given (the simulator and the file reader give complex128
    FIDs and float64 truth; training casts to complex64 and float32) and are not copied.

    Attributes
    ----------
    fids : (n, N) complex FIDs, internal convention of :mod:`scaloquant.signal.axes`.
    amplitudes : (n, M) true amplitudes, columns in the order of ``metabolites``.
    metabolites : the M basis metabolite names.
    acquisition : the sampling grid of the FIDs (``N`` points).
    parameters : every other per-signal quantity by name, n rows each: the simulator's drawn
        parameters (``damping_per_s``, ``shift_hz``, ...) and derived ones (``reference_height``,
        ``noise_sd``), in the order a simulation file stores them.
    indices : (n,) row numbers of the signals in their file, or None (not from a file).
    config : the resolved simulation config (a mapping, as stored in a file).
    seed : the dataset's seed, or None.
    version : the scaloquant version that wrote the file ("" when not read from one).
    basis_name, basis_sha256 : which basis the signals were made from ("" when unknown).
    n_total : number of signals in the whole file (0 when not read from one).
    """

    fids: np.ndarray
    amplitudes: np.ndarray
    metabolites: tuple[str, ...]
    acquisition: Acquisition
    parameters: Mapping[str, np.ndarray] = field(default_factory=dict)
    indices: np.ndarray | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    version: str = ""
    basis_name: str = ""
    basis_sha256: str = ""
    n_total: int = 0

    def __post_init__(self) -> None:
        fids, amps = np.asarray(self.fids), np.asarray(self.amplitudes)
        if fids.ndim != 2 or amps.ndim != 2 or len(fids) != len(amps):
            raise InvalidDataError(
                f"a signal set needs fids (n, N) and amplitudes (n, M) with the same n; got "
                f"{fids.shape} and {amps.shape}"
            )
        if not np.iscomplexobj(fids):
            raise InvalidDataError("simulated FIDs must be complex")
        if not (np.all(np.isfinite(fids)) and np.all(np.isfinite(amps))):
            raise InvalidDataError("the signals contain NaN or Inf values")
        metabolites = tuple(str(m) for m in self.metabolites)
        if len(metabolites) != amps.shape[1]:
            raise InvalidDataError(
                f"{amps.shape[1]} amplitude columns for {len(metabolites)} metabolite names"
            )
        if fids.shape[1] != self.acquisition.n_points:
            raise InvalidDataError(
                f"{fids.shape[1]}-point FIDs on a {self.acquisition.n_points}-point grid"
            )
        for name, values in self.parameters.items():
            if len(values) != len(fids):
                raise InvalidDataError(f"parameter {name} has {len(values)} rows, not {len(fids)}")
        object.__setattr__(self, "fids", fids)
        object.__setattr__(self, "amplitudes", amps)
        object.__setattr__(self, "metabolites", metabolites)
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    def __len__(self) -> int:
        return len(self.fids)

    @property
    def fid(self) -> FID:
        """The FIDs as an :class:`FID` on ``acquisition`` (a complex128 copy)."""
        acq = self.acquisition
        provenance = {"signals": "simulated by scaloquant"}
        return FID(
            self.fids,
            acq.dwell_time_s,
            acq.spectrometer_freq_mhz,
            acq.ppm_reference,
            acq.nucleus,
            provenance,
        )

    def columns(self) -> dict[str, np.ndarray]:
        """Every per-signal quantity by name: ``amplitudes``, then ``parameters``."""
        return {"amplitudes": self.amplitudes, **self.parameters}

    def take(self, index: slice | np.ndarray) -> SignalSet:
        """The signals ``index`` selects (rows of every array), with the same provenance."""
        return replace(
            self,
            fids=self.fids[index],
            amplitudes=self.amplitudes[index],
            parameters={k: v[index] for k, v in self.parameters.items()},
            indices=None if self.indices is None else self.indices[index],
        )

    def with_arrays(self, fids: np.ndarray, amplitudes: np.ndarray) -> SignalSet:
        """The same set with other FID and amplitude arrays (e.g. cast for training)."""
        return replace(self, fids=fids, amplitudes=amplitudes)

    @staticmethod
    def concatenate(parts: Sequence[SignalSet]) -> SignalSet:
        """Stack sets of the same grid, names and parameters along the signal axis."""
        first = parts[0]
        indices = [p.indices for p in parts]
        return replace(
            first,
            fids=np.concatenate([p.fids for p in parts], axis=0),
            amplitudes=np.concatenate([p.amplitudes for p in parts], axis=0),
            parameters={
                k: np.concatenate([p.parameters[k] for p in parts], axis=0)
                for k in first.parameters
            },
            indices=None if any(i is None for i in indices) else np.concatenate(indices),
        )
