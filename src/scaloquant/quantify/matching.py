"""Each input of a run on the target grid (the model's, or its own for ``fit``), checked:
matched to the grid (:mod:`scaloquant.signal.match`), each 1H spectrum referenced from its own
singlets, and its quality figures and flags measured on that axis (:class:`Prepared`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..signal.quality import (
    QualityFigures,
    qc_flags,
    quality_figures,
    reference_correction_ppm,
    unmeasurable,
)
from ..signal.singlets import singlet_lags_ppm
from ..threads import blas_threads
from ..types import FID, Acquisition
from .inputs import SpectraInput, eddy_corrected
from .notes import referencing_note
from .rows import flat_samples


def _match(fid: FID, target: Acquisition, stated: Mapping[str, Any], force: bool, target_what: str):
    from ..signal.match import basis_sequence, match_acquisition

    sequence, echo_time_s = basis_sequence(stated)
    return match_acquisition(
        fid,
        target,
        sequence=sequence,
        echo_time_s=echo_time_s,
        force=force,
        target_what=target_what,
    )


@dataclass(frozen=True)
class Prepared:
    """One input on the target grid, checked, before estimation.

    ``quality``: the quality figures of its spectra, each ``(N,)``, on each spectrum's
    referenced axis; ``flags``: the QC flags known before estimation (all but
    ``residual_large``), one list per spectrum; ``reference_correction_ppm``: ``(N,)`` what
    the referencing added to each spectrum's ppm reference (0: nothing; None: not referenced).
    ``fid``: on the model's grid, each spectrum from its referenced axis (``quantify``); or the
    data as read, its spectra fitted on their referenced axes (``fit``, :meth:`groups`).
    """

    input: SpectraInput
    fid: FID
    conversions: tuple[str, ...]
    warnings: tuple[str, ...]
    water_quality: dict[str, float]
    quality: QualityFigures
    flags: list[list[str]]
    reference_correction_ppm: np.ndarray | None = None

    @property
    def usable(self) -> np.ndarray:
        """``(N,)`` False for the spectra with nothing to quantify."""
        return ~unmeasurable(self.flags)

    def groups(self, rows: np.ndarray) -> list[tuple[np.ndarray, FID]]:
        """The spectra ``rows`` of :attr:`fid` (the data as read) by referenced axis: ``(rows
        of one correction, fid with that ppm reference)``, the uncorrected first (the FID
        itself: one group, the FID as it was, where nothing was corrected)."""
        correction = self.reference_correction_ppm
        if correction is None or not correction[rows].any():
            return [(rows, self.fid)]
        return [
            (rows[correction[rows] == c], replace(self.fid, ppm_reference=reference))
            for c, reference in _references(self.fid, correction, rows)
        ]


def matched_inputs(
    inputs: Sequence[SpectraInput],
    target: Acquisition,
    stated: Mapping[str, Any],
    force: bool,
    target_what: str,
    *,
    referencing: bool,
    on_data_grid: bool = False,
    ecc: bool = False,
) -> list[Prepared]:
    """Each input on the target grid, checked; ``target_what`` names the target in refusals.

    ``referencing``: each 1H spectrum's ppm reference corrected from its own singlets where
    they stand clearly elsewhere (:func:`~scaloquant.signal.quality.reference_correction_ppm`),
    its quality figures measured on that axis and the correction said in the conversions;
    ``on_data_grid``: the target is each input's own grid (``fit``, where the basis goes to the
    data): the corrected spectra keep their samples, fitted on their axes
    (:meth:`Prepared.groups`), rather than matched to ``target`` from them; ``ecc``: each
    input's spectra first corrected by its water reference's phase
    (:func:`~scaloquant.quantify.inputs.eddy_corrected`, the first conversion), the
    :attr:`Prepared.input` the corrected one.
    """
    out = []
    for inp in inputs:
        water_notes, water_quality = inp.water_checks(force)
        corrected = ()
        if ecc:
            inp, note = eddy_corrected(inp, water_quality.get("water_ratio"))
            corrected = (note,)
        m = _match(inp.fid, target, stated, force, target_what)
        # measured on the data as acquired: resampling to another band would put zeros (no
        # noise) where the noise is measured; the mirror ratios from the figures' spectra (one
        # FFT of the data for both)
        raw = inp.fid
        quality = _quality(raw, flat_samples(raw))
        correction = None
        conversions = (*corrected, *m.conversions)
        fid = m.fid
        if referencing and raw.nucleus == "1H":
            correction = reference_correction_ppm(quality, _lags(raw))
            if correction.any():
                quality = _referenced_quality(raw, quality, correction)
                conversions += (referencing_note(correction),)
                if not on_data_grid:
                    fid = _referenced_match(
                        inp, m.fid, correction, target, stated, force, target_what
                    )
        out.append(
            Prepared(
                inp,
                fid,
                conversions,
                (*inp.checks(quality.mirror_ratio, quality.snr), *m.warnings, *water_notes),
                water_quality,
                quality,
                qc_flags(quality),
                correction,
            )
        )
    return out


def _quality(grid: FID, fids: np.ndarray) -> QualityFigures:
    """:func:`~scaloquant.signal.quality.quality_figures` of the flat ``fids`` ``(N, n_points)``
    on ``grid``'s axis."""
    # one BLAS thread for the noise's small least-squares fits, one per block of spectra:
    # OpenBLAS's second thread made them 7x dearer (4096 spectra 0.39 -> 2.9 s of CPU)
    with blas_threads(1):
        return quality_figures(
            fids,
            grid.dwell_time_s,
            grid.spectrometer_freq_mhz,
            grid.ppm_reference,
            proton=grid.nucleus == "1H",
        )


def _lags(fid: FID) -> np.ndarray:
    """The singlet search's shifts on ``fid``'s grid (:func:`singlet_lags_ppm`)."""
    return singlet_lags_ppm(fid.n_points, fid.dwell_time_s, fid.spectrometer_freq_mhz)


def _references(
    fid: FID, correction: np.ndarray | None, rows: np.ndarray
) -> list[tuple[float, float]]:
    """``(correction, ppm reference)`` of each referenced axis among ``rows`` of ``fid``, the
    uncorrected first."""
    if correction is None:
        return [(0.0, fid.ppm_reference)]
    values = sorted(set(correction[rows].tolist()), key=lambda c: (c != 0, c))
    return [(c, fid.ppm_reference + c if c else fid.ppm_reference) for c in values]


def _referenced_quality(
    raw: FID, quality: QualityFigures, correction: np.ndarray
) -> QualityFigures:
    """``quality`` with the figures of the corrected spectra (``correction`` ``(N,)`` not 0)
    measured again on their referenced axes: the SNR's NAA window, the water and noise regions
    and the singlet search where the spectrum's lines are. Not the mirror ratio: whether the
    samples were stored conjugated is about the file's 0 Hz, which the correction does not
    move (a spectrum moved by its scanner's frequency keeps its water away from 0 Hz, and the
    metabolite window's mirror on the corrected axis would take the water for a mirrored line:
    the spant spectrum moved by +0.3 ppm). And the noise SD, which the SNR and the singlets'
    strength divide by, is the smaller of its two measurements, on the file's axis and on the
    corrected one: noise is the same on either, and a noise region can only gain signal or an
    artefact by the move (the Siemens spectrum moved by its scanner's frequency: its band edges'
    content in the corrected noise region, SNR 152 -> 7)."""
    from ..signal.noise import noise_sd

    figures = {k: np.array(v, copy=True) for k, v in quality._asdict().items()}
    flat = flat_samples(raw)
    grid = (raw.dwell_time_s, raw.spectrometer_freq_mhz)
    for c, reference in _references(raw, correction, np.flatnonzero(correction)):
        rows = np.flatnonzero(correction == c)
        again = _quality(replace(raw, ppm_reference=reference), flat[rows])
        with blas_threads(1):
            moved = noise_sd(flat[rows], *grid, reference)
            larger = moved / np.fmin(moved, noise_sd(flat[rows], *grid, raw.ppm_reference))
        larger = np.nan_to_num(larger, nan=1.0)
        for name, whole in figures.items():
            if name in ("snr", "singlet_strength"):
                whole[rows] = getattr(again, name) * larger
            elif name != "mirror_ratio":
                whole[rows] = getattr(again, name)
    return QualityFigures(**figures)


def _referenced_match(
    inp: SpectraInput,
    matched: FID,
    correction: np.ndarray,
    target: Acquisition,
    stated: Mapping[str, Any],
    force: bool,
    target_what: str,
) -> FID:
    """``matched`` (``inp`` on ``target``'s grid from its file's axis) with its corrected
    spectra matched from their referenced axes instead: the model reads every spectrum on its
    own grid, so a spectrum's reference is corrected by the frequency shift that matching makes
    between two references (:func:`scaloquant.signal.match.to_grid`)."""
    samples = np.array(flat_samples(matched), copy=True)
    flat = flat_samples(inp.fid)
    for c, reference in _references(inp.fid, correction, np.flatnonzero(correction)):
        rows = np.flatnonzero(correction == c)
        moved = replace(inp.fid.with_samples(flat[rows]), ppm_reference=reference)
        samples[rows] = flat_samples(_match(moved, target, stated, force, target_what).fid)
    return matched.with_samples(samples.reshape(matched.samples.shape))


def estimated_rows(prep: Prepared) -> np.ndarray:
    """The rows of ``prep`` to estimate: its usable spectra (in MRSI not the voxels outside
    the head: empty, no_signal, water), as LCModel's and FSL-MRS's MRSI fits take a mask;
    all of them where none or all are usable."""
    rows = np.flatnonzero(prep.usable)
    if rows.size in (0, prep.input.n_spectra):
        return np.arange(prep.input.n_spectra)
    return rows
