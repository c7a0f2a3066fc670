"""The spectra to quantify: read each input file, find its water reference, label its spectra.

Every format goes through :func:`scaloquant.io.read_fid`. A water reference is, in this order:
the file given for the input (``--water``), the LCModel ``.H2O`` beside a ``.RAW`` (same stem),
or the water columns of a 4-column text file (the ISMRM 2016 challenge layout).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import (
    ConfigError,
    IncompatibleDataError,
    InputFileError,
    InvalidDataError,
    NeedsOption,
    Option,
)
from ..io import read_fid, read_text_fid
from ..io.dispatch import conjugated
from ..io.nifti import read_nifti_affine
from ..types import FID

#: Leading axes of NIfTI-MRS samples that are space; the rest (DIM_COIL, DIM_DYN...) are "extra".
N_SPATIAL = 3
#: The NIfTI-MRS tag of uncombined receive coils: each coil sees the voxel with its own phase
#: and sensitivity, so their spectra are neither one spectrum nor copies of it.
COIL_TAG = "DIM_COIL"
#: How to combine coils, for the messages (FSL-MRS's tool; spec2nii leaves them as acquired).
COMBINE_COILS = "combine the coils first (FSL-MRS: fsl_mrs_proc coilcombine)"
#: The NIfTI-MRS tag of repeated acquisitions (transients, or the time points of a dynamic
#: series): quantified one by one, which is right for functional MRS and wrong for the
#: transients of one average.
DYN_TAG = "DIM_DYN"
#: NIfTI-MRS tags of parts of one measurement that are combined before it is quantified (their
#: definitions in the standard, ``nifti_mrs/standard/definitions.json``), each with the
#: sentence of :meth:`SpectraInput.checks` after the count: quantified one by one, each part is
#: fitted as a spectrum of the basis' sequence, which it is not.
SUBSPECTRA_TAGS = {
    "DIM_EDIT": (
        "edited subspectra (DIM_EDIT: MEGA, HERMES) quantified one by one, each as a spectrum "
        "of the basis' sequence, not the edited spectrum; form it first (FSL-MRS: fsl_mrs_proc "
        "subtract --dim DIM_EDIT) and fit it with a basis set of the edited sequence"
    ),
    "DIM_ISIS": (
        "ISIS steps (DIM_ISIS) quantified one by one, though none is localised alone; add them "
        "with their signs first (FSL-MRS: fsl_mrs_proc add or subtract --dim DIM_ISIS)"
    ),
    "DIM_METCYCLE": (
        "metabolite-cycled subspectra (DIM_METCYCLE) quantified one by one, each with the water "
        "their combination removes; combine them first (FSL-MRS: fsl_mrs_proc subtract --dim "
        "DIM_METCYCLE)"
    ),
    "DIM_PHASE_CYCLE": (
        "phase-cycle steps (DIM_PHASE_CYCLE) quantified one by one, each with the signals their "
        "sum cancels; average them first (FSL-MRS: fsl_mrs_proc average --dim DIM_PHASE_CYCLE)"
    ),
    **{
        f"DIM_INDIRECT_{i}": (
            f"rows of a 2-D acquisition (DIM_INDIRECT_{i}: J-resolved, multi-TE...) quantified "
            "one by one, each as a 1-D spectrum at the header's echo time with the basis given; "
            "fit each row with a basis set of its own timing"
        )
        for i in range(3)
    },
}


def extra_axis(fid: FID, tag: str) -> int | None:
    """The axis of NIfTI-MRS samples ``(x, y, z, *extra, n_points)`` that the extra dimension
    tagged ``tag`` (``DIM_COIL``, ``DIM_DYN``...) is, None where there is none."""
    tags = list(fid.provenance.get("dim_tags") or ())
    if tag not in tags or fid.samples.ndim < N_SPATIAL + 2:
        return None
    return N_SPATIAL + tags.index(tag)


def extra_size(fid: FID, tag: str) -> int:
    """The length of :func:`extra_axis`, 1 where there is none."""
    axis = extra_axis(fid, tag)
    return 1 if axis is None else int(fid.samples.shape[axis])


def uncombined_coils(fid: FID) -> int:
    """The number of receive coils along a ``DIM_COIL`` dimension of NIfTI-MRS samples
    ``(x, y, z, *extra, n_points)``, 1 where there is none (or only one coil)."""
    return extra_size(fid, COIL_TAG)


def mirror_warning(ratio: float) -> str:
    """The sentence printed and stored for a spectrum that looks mirrored."""
    return (
        f"the spectrum looks mirrored about the reference: {ratio:.1f}x more peak signal in the "
        "mirror image of 0.5-4.2 ppm than in it; the file is probably stored in the other "
        "orientation (complex conjugate): check it, and read it with --conjugate if so"
    )


@dataclass(frozen=True)
class SpectraInput:
    """One input file, read.

    Attributes
    ----------
    path : the file.
    fid : its spectra, samples ``(..., n_points)`` (NIfTI-MRS: ``(x, y, z, *extra, n_points)``).
    water : its water reference (samples ``(n_points_w,)`` or, for NIfTI-MRS, ``(x, y, z,
        n_points_w)`` after averaging the water's extra dimensions), or None.
    water_path : where the water reference came from.
    affine : the NIfTI-MRS voxel-to-world matrix ``(4, 4)``; None for other formats.
    dim_tags : NIfTI-MRS tags of the extra dimensions (``()`` for other formats).
    label : how outputs name the file, unique within a run (:func:`input_labels`; default: the
        file name).
    """

    path: Path
    fid: FID
    water: FID | None
    water_path: Path | None
    affine: np.ndarray | None
    dim_tags: tuple[str, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.path.name)

    @property
    def is_image(self) -> bool:
        """NIfTI-MRS: spectra laid out on a voxel grid (maps can be written)."""
        return self.affine is not None

    @property
    def is_mrsi(self) -> bool:
        """An image of more than one voxel (MRSI): maps are written and drawn for it."""
        return self.is_image and int(np.prod(self.fid.batch_shape[:3], dtype=int)) > 1

    @property
    def n_spectra(self) -> int:
        return int(np.prod(self.fid.batch_shape, dtype=int))

    def labels(self) -> list[str]:
        """One label per spectrum in C order: voxel ``"x,y,z"`` plus extra-dimension indices
        for NIfTI-MRS, the index for other formats."""
        return list(self._labels)

    @cached_property
    def _labels(self) -> tuple[str, ...]:
        # formed once: the writers ask for them five times (4096 voxels: 0.05 s each)
        shape = self.fid.batch_shape
        if not shape:
            return ("0",)
        return tuple(",".join(map(str, index)) for index in np.ndindex(*shape))

    def checks(
        self, mirror_ratios: np.ndarray | None = None, snr: np.ndarray | None = None
    ) -> tuple[str, ...]:
        """What the reader noticed (e.g. a file of an old scaloquant version) and, for 1H data,
        whether any spectrum looks mirrored (:func:`scaloquant.signal.mirror.mirror_ratio`,
        ``(N,)`` in C order: ``mirror_ratios`` where the quality figures formed them already)
        and whether transients too weak to quantify one by one were left unaveraged
        (:meth:`transients_check`, from the spectra's ``snr`` ``(N,)`` where given); one
        sentence each."""
        from ..signal.mirror import looks_mirrored, mirror_ratio

        found = [str(w) for w in self.fid.provenance.get("warnings") or ()]
        fid = self.fid
        coils = uncombined_coils(fid)
        if coils > 1:
            found.append(
                f"{coils} receive coils not combined ({COIL_TAG}): each coil's spectrum is "
                "quantified on its own, so amplitudes and mM are per coil, not the voxel's "
                f"(each coil has its own sensitivity); {COMBINE_COILS}"
            )
        for tag, sentence in SUBSPECTRA_TAGS.items():
            if (count := extra_size(fid, tag)) > 1:
                found.append(f"{count} {sentence}")
        if fid.nucleus != "1H":
            return tuple(found)
        if mirror_ratios is None:
            mirror_ratios = mirror_ratio(
                fid.samples, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference
            )
        ratios = np.atleast_1d(mirror_ratios).reshape(-1)
        flagged = np.flatnonzero(looks_mirrored(ratios))
        if flagged.size:
            warning = mirror_warning(float(np.median(ratios[flagged])))
            if ratios.size > 1:
                labels = self.labels()
                which = ", ".join(labels[i] for i in flagged[:5])
                more = f" and {flagged.size - 5} more" if flagged.size > 5 else ""
                warning = f"{flagged.size} of {ratios.size} spectra ({which}{more}): {warning}"
            found.append(warning)
        if snr is not None:
            found.extend(self.transients_check(snr))
        return tuple(found)

    def transients_check(self, snr: np.ndarray) -> tuple[str, ...]:
        """For 1H NIfTI-MRS data with a ``DIM_DYN`` dimension of several transients, most of
        whose spectra are too weak to quantify one by one (``snr`` ``(N,)``, C order, below
        :data:`~scaloquant.signal.quality.NO_SIGNAL_SNR`: flagged ``no_signal``): one sentence
        that says so, with the SNR of their plain (unaligned) average, and what to do. Nothing
        where each transient has signal (a dynamic series, e.g. functional MRS, is
        quantified one time point at a time, as it should be)."""
        from ..signal.quality import NO_SIGNAL_SNR
        from ..signal.snr_fwhm import snr as snr_of

        fid = self.fid
        count = extra_size(fid, DYN_TAG)
        weak = np.asarray(snr, dtype=float).reshape(-1) < NO_SIGNAL_SNR
        if fid.nucleus != "1H" or count < 2 or weak.mean() <= 0.5:
            return ()
        axis = extra_axis(fid, DYN_TAG)
        mean = fid.samples.mean(axis=axis).reshape(-1, fid.n_points)
        averaged = snr_of(mean, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        return (
            f"{count} transients not averaged ({DYN_TAG}): {int(weak.sum())} of {weak.size} "
            f"spectra have an SNR below {NO_SIGNAL_SNR:g} (no_signal) and are not quantified, "
            f"where their plain average has SNR {float(np.nanmedian(averaged)):.0f}; if they "
            "repeat one acquisition, align and average them first (FSL-MRS: fsl_mrs_proc "
            "align, then average)",
        )

    def water_checks(self, force: bool = False) -> tuple[tuple[str, ...], dict[str, float]]:
        """Check the water reference against the data and that it is water.

        Its nucleus and field must be the data's (:func:`scaloquant.signal.match.
        compare_reference`); other points or dwell time are reported. For 1H, its dominant peak
        must lie near 4.65 ppm and dwarf the metabolites
        (:func:`scaloquant.signal.water_peak.water_ratio` above
        :data:`~scaloquant.signal.water_peak.WATER_RATIO`; for an MRSI reference, in its voxel of
        largest signal); ``force`` accepts one that does not, with a warning.

        Returns
        -------
        The sentences for the user, and the water peak's figures (``fwhm_hz``, ``fwhm_ppm``,
        ``water_ratio``; empty without a water reference or for other nuclei).

        Raises
        ------
        IncompatibleDataError
            Another nucleus or field, or (without ``force``) not water.
        """
        from ..signal import snr_fwhm, water_peak
        from ..signal.match import compare_reference

        water = self.water
        if water is None:
            return (), {}
        # a water FID handed over in-process (no file) is named by its data file
        source = self.water_path.name if self.water_path is not None else f"of {self.path.name}"
        what = f"the water reference {source}"
        notes = list(
            compare_reference(
                water.acquisition, self.fid.acquisition, what=what, data_what=self.path.name
            )
        )
        if water.nucleus != "1H":
            return tuple(notes), {}
        flat = water.samples.reshape(-1, water.n_points)
        strongest = flat[int(np.argmax(np.abs(flat[:, 0])))]
        grid = (water.dwell_time_s, water.spectrometer_freq_mhz, water.ppm_reference)
        ratio = float(water_peak.water_ratio(strongest, *grid))
        half = water_peak.WATER_HALF_WINDOW_PPM
        window = water_peak.WATER_WINDOW_PPM
        width = float(snr_fwhm.fwhm_ppm(strongest, *grid, window, remove_baseline=False))
        figures = {
            "fwhm_ppm": width,
            "fwhm_hz": width * water.spectrometer_freq_mhz,
            "water_ratio": ratio,
        }
        if flat.shape[0] > 1:
            notes.extend(self._water_voxels_without_signal(source))
        if not water_peak.looks_like_water(ratio):
            if np.isnan(ratio):
                why = "it has no signal at 4.65 ppm (empty, or its band misses it)"
            elif ratio == 0:
                why = f"its tallest peak is not within {half:g} ppm of {water_peak.WATER_PPM:g} ppm"
            else:
                why = (
                    f"its water peak is only {ratio:.3g}x the tallest metabolite peak (a water "
                    f"reference's is over {water_peak.WATER_RATIO:g}x; "
                    "is it water-suppressed data?)"
                )
            problem = f"{what} does not look like water: {why}"
            if not force:
                raise IncompatibleDataError(
                    f"{problem}; give the unsuppressed water reference of the data, or pass "
                    "--force to use it anyway"
                )
            notes.append(f"{problem}; used anyway (--force): check the mM columns")
        return tuple(notes), figures

    def _water_voxels_without_signal(self, source: str) -> tuple[str, ...]:
        """For a water reference of several spectra (MRSI voxels, transients), one sentence naming
        those without a water area (:func:`~scaloquant.quantify.water.water_area` 0: a zero sample
        in its fit span, e.g. an all-zero voxel), whose spectra get NaN in
        every mM column: their NaN was unexplained where the voxel's spectrum was fitted
        (session 36, audit36). Nothing where every voxel has signal."""
        from .water import water_area

        water = self.water
        areas = water_area(water.samples, water.acquisition).reshape(-1)
        empty = np.flatnonzero(~(areas > 0))
        if not empty.size:
            return ()
        voxels = [",".join(map(str, i)) for i in np.ndindex(*water.samples.shape[:-1])]
        which = ", ".join(voxels[i] for i in empty[:5])
        more = f" and {empty.size - 5} more" if empty.size > 5 else ""
        return (
            f"the water reference {source} gives no water area in {empty.size} of its "
            f"{areas.size} spectra ({which}{more}; a zero sample where the area is fitted, e.g. "
            "an all-zero voxel): the mM of the spectra scaled by them are NaN; check that it "
            "is the water reference of these data",
        )

    def water_areas_source(self) -> np.ndarray | None:
        """Water samples broadcastable to the spectra: ``(..., n_points_w)`` or None."""
        if self.water is None:
            return None
        samples = self.water.samples
        if self.is_image:
            # (x, y, z, n) against data (x, y, z, *extra, n): one water per voxel
            n_extra = len(self.fid.batch_shape) - N_SPATIAL
            samples = samples.reshape(*samples.shape[:-1], *([1] * n_extra), samples.shape[-1])
        return samples


def eddy_corrected(inp: SpectraInput, water_ratio: float | None = None) -> tuple[SpectraInput, str]:
    """``inp`` with its spectra corrected by its water reference's phase (Klose 1990,
    :func:`scaloquant.signal.ecc.eddy_current_corrected`; ``fit`` and ``quantify --ecc``), and
    the sentence that says so (a conversion of the input).

    An MRSI input's voxels are corrected each by its own voxel's water (the water of the same
    grid); a single-voxel water reference is refused for it: the phase of one voxel's water
    holds that voxel's frequency offset and phase, which differ from voxel to voxel with the
    shim, and would move every other voxel's spectrum by them.

    ``water_ratio``: the water's :func:`~scaloquant.signal.water_peak.water_ratio`
    (:meth:`SpectraInput.water_checks`), where known: one that does not look like water is
    refused even where ``force`` let the mM columns use it, since the phase of a spectrum whose
    water does not dominate is its lines', not the eddy currents' (Osprey's sub-01 spectrum
    given as its own water under ``--force``, ratio 4.07, was "corrected" by its own phase).

    Raises
    ------
    NeedsOption
        No water reference, a single-voxel water for MRSI, or a water that does not look like
        water (the message names the options by :data:`~scaloquant.errors.OPTION_WORDS`; the
        CLI words them as its flags).
    IncompatibleDataError
        Another number of points or dwell time.
    """
    from ..signal import water_peak
    from ..signal.ecc import eddy_current_corrected

    water = inp.water
    if water is None:
        raise NeedsOption(
            Option("ecc"),
            f" corrects the spectra by the phase of their water reference and {inp.label} has "
            "none; give the water reference (",
            Option("water"),
            "), or leave out ",
            Option("ecc"),
        )
    if water_ratio is not None and not water_peak.looks_like_water(water_ratio):
        raise NeedsOption(
            Option("ecc"),
            f": the water reference of {inp.label} does not look like water (its water peak "
            f"{water_ratio:.3g}x the tallest metabolite peak, a water reference's over "
            f"{water_peak.WATER_RATIO:g}x): its phase is its own lines', not the eddy currents' (",
            Option("force"),
            " does not change that); give the unsuppressed water reference, or leave out ",
            Option("ecc"),
        )
    samples = inp.water_areas_source()
    if inp.is_mrsi and int(np.prod(water.samples.shape[:N_SPATIAL], dtype=int)) == 1:
        named = inp.water_path.name if inp.water_path is not None else "(from its file)"
        raise NeedsOption(
            Option("ecc"),
            f": {inp.label} is MRSI and its water reference {named} a single voxel, whose phase "
            "holds that voxel's frequency offset, not every voxel's; give the MRSI water "
            "reference of the same grid, or leave out ",
            Option("ecc"),
        )
    corrected, reliable = eddy_current_corrected(
        inp.fid.samples,
        samples,
        dwell_time_s=inp.fid.dwell_time_s,
        water_dwell_time_s=water.dwell_time_s,
        spectrometer_freq_mhz=water.spectrometer_freq_mhz,
        ppm_reference=water.ppm_reference,
    )
    n = water.n_points
    short = int(np.min(reliable))
    where = "every sample" if short >= n else f"at least its first {short} of {n} samples"
    note = (
        "eddy-current correction (--ecc, Klose 1990, as LCModel's DOECC): the spectra "
        f"multiplied by conj(w)/|w| of the water reference (above its noise over {where}), "
        "which also puts the water at the ppm reference"
    )
    return replace(inp, fid=inp.fid.with_samples(corrected)), note


def input_labels(paths: Sequence[str | os.PathLike]) -> list[str]:
    """A unique label per input: its shortest trailing path that no other input shares.

    ``a/s1/metab.nii.gz`` and ``a/s2/metab.nii.gz`` -> ``s1/metab.nii.gz``, ``s2/metab.nii.gz``;
    a file name alone where it is unique. The same file given twice gets ``#2``, ``#3``...
    """
    parts = [Path(os.path.abspath(p)).parts for p in paths]
    labels = []
    for i, mine in enumerate(parts):
        others = [p for j, p in enumerate(parts) if j != i and p != mine]
        k = 1
        while k < len(mine) and any(p[-k:] == mine[-k:] for p in others):
            k += 1
        labels.append("/".join(mine[-k:]).lstrip("/") or str(paths[i]))
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label} #{seen[label]}"
    return labels


def _conjugated(fid: FID, conjugate: bool) -> FID:
    return conjugated(fid) if conjugate else fid


def read_water(
    path: Path,
    overrides: Mapping[str, float],
    conjugate: bool = False,
    override_header: bool = False,
) -> FID:
    """A water reference file; of a 4-column text file, its water columns."""
    fid = read_fid(path, conjugate=conjugate, override_header=override_header, **overrides)
    if fid.provenance.get("format") == "text" and fid.provenance.get("n_columns") == 4:
        return _conjugated(read_text_fid(path, signal="water", **overrides), conjugate)
    return fid


def _auto_water(
    path: Path, fid: FID, overrides: Mapping[str, float], conjugate: bool, override_header: bool
) -> tuple[FID, Path] | None:
    fmt = fid.provenance.get("format")
    if fmt == "lcmodel-raw" and path.suffix.lower() == ".raw":
        for suffix in (".H2O", ".h2o"):
            candidate = path.with_suffix(suffix)
            if candidate.is_file():
                water = read_fid(
                    candidate, conjugate=conjugate, override_header=override_header, **overrides
                )
                if water.n_points != fid.n_points:
                    # LCModel reads both with one NUNFIL: a difference is a cut-off file
                    raise InputFileError(
                        f"{path} holds {fid.n_points} points but its water reference "
                        f"{candidate.name} {water.n_points}; LCModel needs both the same: one of "
                        "them is truncated, re-export or copy it again"
                    )
                return water, candidate
    if fmt == "text" and fid.provenance.get("n_columns") == 4:
        water = read_text_fid(path, signal="water", **overrides)
        return _conjugated(water, conjugate), path
    return None


@dataclass(frozen=True)
class MMSpectrumFile:
    """A metabolite-nulled (macromolecule) spectrum given for the fit (``fit --mm-spectrum``):
    its file and its one spectrum (samples ``(n_points,)``, its transients averaged)."""

    path: Path
    fid: FID


def read_mm_spectra(
    paths: Sequence[str | os.PathLike],
    *,
    overrides: Mapping[str, float] | None = None,
    override_header: bool = False,
    conjugate: bool = False,
) -> list[MMSpectrumFile]:
    """The metabolite-nulled spectra of ``fit --mm-spectrum`` (one for all inputs, or one per
    input in their order: :func:`~scaloquant.quantify.fit_inputs` checks the count), each read
    as the inputs are (:func:`scaloquant.io.read_fid`, the same ``overrides``,
    ``override_header`` and ``conjugate``; of a 4-column text file its signal columns, not the
    water's that :func:`read_water` takes), its transients averaged into one spectrum.

    Raises
    ------
    IncompatibleDataError : uncombined coils, or more than one voxel.
    InputFileError, MissingMetadataError, InvalidDataError : from the readers.
    """
    out = []
    for path in map(Path, paths):
        fid = read_fid(
            path, conjugate=conjugate, override_header=override_header, **dict(overrides or {})
        )
        _require_combined(
            fid,
            f"the MM spectrum {path}",
            "its signal (each coil has its own phase)",
            "a coil-combined MM spectrum",
        )
        spatial = fid.batch_shape[:N_SPATIAL] if fid.provenance.get("format") == "nifti-mrs" else ()
        if int(np.prod(spatial, dtype=int)) > 1:
            raise IncompatibleDataError(
                f"the MM spectrum {path} holds {int(np.prod(spatial))} voxels; give the "
                "metabolite-nulled spectrum of one voxel"
            )
        out.append(
            MMSpectrumFile(path, fid.with_samples(fid.samples.reshape(-1, fid.n_points).mean(0)))
        )
    return out


def _require_combined(fid: FID, what: str, harm: str, instead: str) -> None:
    """Refuse ``what`` (a water reference, an MM spectrum) with uncombined coils (its extra
    dimensions are averaged): ``harm`` what the average would do, ``instead`` the file to give."""
    coils = uncombined_coils(fid)
    if coils > 1:
        # their mean is not the signal: each coil's has its own phase (4 coils 0-4.5 rad
        # apart gave the spant spectrum 33.1 mM NAA where its combined water gives 12.7)
        raise IncompatibleDataError(
            f"{what} holds {coils} receive coils not combined ({COIL_TAG}): their average "
            f"would cancel {harm}; {COMBINE_COILS}, or give {instead}"
        )


def _require_combined_water(water: FID, water_path: Path) -> None:
    """Refuse a water reference with uncombined coils (its extra dimensions are averaged)."""
    _require_combined(
        water,
        f"the water reference {water_path}",
        "the water signal (each coil has its own phase) and inflate every mM",
        "a coil-combined water reference",
    )


def _water_for_image(water: FID, fid: FID, water_path: Path) -> FID:
    """Average the water's extra dimensions (transients; coils were refused before) and check
    its voxel grid."""
    spatial = fid.batch_shape[:N_SPATIAL]
    samples = water.samples
    if samples.ndim - 1 > N_SPATIAL:
        samples = samples.reshape(*samples.shape[:N_SPATIAL], -1, samples.shape[-1]).mean(axis=-2)
    if samples.ndim == 1:
        samples = samples.reshape(1, 1, 1, -1)
    if samples.shape[:N_SPATIAL] not in ((1, 1, 1), spatial):
        raise IncompatibleDataError(
            f"the water reference {water_path} has voxel grid {samples.shape[:N_SPATIAL]} but "
            f"the data {spatial}; give a water reference of the same grid or a single voxel"
        )
    return water.with_samples(samples)


def _require_quadrature(samples: np.ndarray, path: Path) -> None:
    """Refuse metabolite data whose imaginary (or real) parts are all zero while the others are
    not: real numbers stored as complex (a wrong dtype on writing). Quadrature detection gives
    every measured FID both parts; with one missing the spectrum is the true one plus its
    mirror image, every peak at half height (the spec2nii PRESS TE 30 NIfTI so damaged was fitted
    with NAA 47 % low and no flag). Metabolites sit off resonance, so no real spectrum of them
    is real-valued in time; a water reference may be (on resonance, phased), and is not checked."""
    if samples.size == 0 or not np.any(samples):
        return  # all zero: the quality checks flag it ('empty')
    for part, name, other in (
        (samples.imag, "imaginary", "real"),
        (samples.real, "real", "imaginary"),
    ):
        if not np.any(part):
            raise InvalidDataError(
                f"{path}: every {name} part of its samples is zero (the {other} parts are not): "
                "real numbers stored as complex, not a metabolite FID; re-export the file with "
                "both parts"
            )


def read_inputs(
    paths: Sequence[str | os.PathLike],
    *,
    water: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, float] | None = None,
    override_header: bool = False,
    conjugate: bool = False,
) -> list[SpectraInput]:
    """Read every input file and its water reference.

    Parameters
    ----------
    paths : input files (any format :func:`scaloquant.io.read_fid` reads).
    water : no file (automatic, see the module docstring), one file for all inputs, or one per
        input in the same order.
    overrides : ``dwell_time_s``, ``spectrometer_freq_mhz``, ``ppm_reference`` for formats that
        lack them (applied to the water files too); a file's own value wins over them.
    override_header : let ``overrides`` replace values the files record (see
        :func:`scaloquant.io.dispatch.reconcile_header`); each replacement is a warning of its
        input.
    conjugate : read every input and water file in the other orientation than its format
        defines (``--conjugate``; see :func:`scaloquant.io.read_fid`).

    Raises
    ------
    ConfigError
        No inputs, or a number of water files that is neither 0, 1 nor one per input.
    InputFileError, MissingMetadataError, InvalidDataError
        From the readers (one line naming the file and what to do).
    """
    overrides = dict(overrides or {})
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("give at least one input file")
    water_paths = [Path(w) for w in water]
    if len(water_paths) not in (0, 1, len(paths)):
        raise ConfigError(
            f"{len(water_paths)} water references for {len(paths)} inputs; give one for all "
            "inputs or one per input, in the same order"
        )
    out = []
    labels = input_labels(paths)
    for i, path in enumerate(paths):
        fid = read_fid(path, conjugate=conjugate, override_header=override_header, **overrides)
        _require_quadrature(fid.samples, path)
        found: tuple[FID, Path] | None
        if water_paths:
            w_path = water_paths[0] if len(water_paths) == 1 else water_paths[i]
            found = read_water(w_path, overrides, conjugate, override_header), w_path
        else:
            found = _auto_water(path, fid, overrides, conjugate, override_header)
        is_image = fid.provenance.get("format") == "nifti-mrs"
        water_fid, water_path = found if found else (None, None)
        if water_fid is not None:
            _require_combined_water(water_fid, water_path)
        if water_fid is not None and is_image:
            water_fid = _water_for_image(water_fid, fid, water_path)
        elif water_fid is not None and water_fid.samples.ndim > 1:
            water_fid = water_fid.with_samples(
                water_fid.samples.reshape(-1, water_fid.n_points).mean(axis=0)
            )
        out.append(
            SpectraInput(
                path=path,
                fid=fid,
                water=water_fid,
                water_path=water_path,
                affine=read_nifti_affine(path) if is_image else None,
                dim_tags=tuple(fid.provenance.get("dim_tags") or ()) if is_image else (),
                label=labels[i],
            )
        )
    return out
