"""The SNR and the linewidth (FWHM) of a spectrum, from the height and width of its peaks.

:func:`peak_height` is the height of the tallest peak of a window above its local baseline (a
straight line through its flanks, :data:`FLANK_PPM`), on the spectrum zero-filled
(:mod:`.qc_spectra`); :func:`snr` is NAA's (:data:`NAA_WINDOW_PPM`) over the noise SD
(:mod:`.noise`), the definition of FSL-MRS, Osprey and the consensus; :func:`fwhm_ppm` is the
width at half height of a window's tallest line, phased (NAA's by default; the quality figures
take creatine's, :data:`CR_WINDOW_PPM`, where it is taller). Their flags and thresholds
(``no_signal``, ``too_broad``) and the map of the quality checks' modules are :mod:`.quality`'s.
"""

from __future__ import annotations

import numpy as np

from .noise import noise_sd
from .qc_spectra import _columns, _spectra, _window

#: Where the NAA singlet (2.01 ppm) is sought: the tallest peak of 1.8-2.2 ppm, as Osprey and
#: FSL-MRS take "the NAA peak" for their SNR.
NAA_WINDOW_PPM = (1.8, 2.2)


#: Window of the creatine methyl singlet (3.03 ppm), whose width stands for the linewidth where
#: it is taller than NAA's peak (a creatine phantom such as the ISMRM 2016 challenge's
#: ``Cr_10mM`` spectrum, whose NAA window holds noise and was read as a 31 Hz line; tumours).
CR_WINDOW_PPM = (2.9, 3.1)


#: Distance of the two flanks of a peak from its top, ppm: their medians set the straight
#: baseline under it. 0.15 ppm is 3 half-widths of a 0.1 ppm line (its tail there is 10 % of
#: its height); 0.3 ppm is the widest a window may reach before the next metabolite's peak.
FLANK_PPM = (0.15, 0.3)


def _peak_segments(
    ppm: np.ndarray, raw: np.ndarray, window_ppm: tuple[float, float], remove_baseline: bool
) -> tuple[np.ndarray, int, float] | None:
    """The tallest point of ``window_ppm`` in each spectrum (``raw`` ``(B, K)``, unshifted, on
    the axis ``ppm``) and the spectrum around
    it, less its local baseline: ``(segments (B, 2R + 1) with the peak at column R, R, ppm
    per point)``, ``R`` the points in :data:`FLANK_PPM` ``[1]``; None where the window is off
    the axis.

    The baseline is the complex straight line through the medians (real and imaginary parts)
    of the two flanks :data:`FLANK_PPM` from the peak: a broad background (macromolecules,
    water tails) that a running median would follow up the peak itself, narrowing it.
    """
    sel = _window(ppm, window_ppm)
    if sel.size == 0:
        return None
    step = float(ppm[1] - ppm[0])
    peak = sel[0] + np.argmax(np.abs(_columns(raw, sel)), axis=1)
    reach = max(2, int(round(FLANK_PPM[1] / step)))
    near = min(reach - 1, max(1, int(round(FLANK_PPM[0] / step))))
    offsets = np.arange(-reach, reach + 1)
    index = np.clip(peak[:, None] + offsets, 0, ppm.size - 1)
    segments = np.take_along_axis(raw, (index - ppm.size // 2) % ppm.size, axis=1)
    segments = segments.astype(np.complex128)
    if remove_baseline:
        # offsets -reach .. -near and near .. reach, the same number of points
        flanks = (segments[:, : reach - near + 1], segments[:, reach + near :])
        parts = _medians(np.stack([p for f in flanks for p in (f.real, f.imag)]))
        left, right = parts[0] + 1j * parts[1], parts[2] + 1j * parts[3]
        middle = (reach + near) / 2  # where each flank's median sits, points from the peak
        slope = (right - left) / (2 * middle)
        segments = segments - (left[:, None] + slope[:, None] * (offsets + middle))
    return segments, reach, step


def _medians(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=-1)`` of real ``values`` ``(..., n)``, bit for bit (NaN where
    a row holds one), in one ``np.partition`` and one ``np.mean`` call, the steps of
    numpy's own median, for the whole stack: the four flank medians of
    :func:`_peak_segments` were 4 ``np.median`` calls of ~15 small numpy operations each, held
    under the GIL between them."""
    n = values.shape[-1]
    kth = [n // 2 - 1, n // 2] if n % 2 == 0 else [n // 2]
    part = np.partition(values, [*kth, -1], axis=-1)  # NaNs sort to the end
    median = np.mean(part[..., kth[0] : kth[-1] + 1], axis=-1)
    last = part[..., -1]
    np.copyto(median, last, where=np.isnan(last))
    return median


def _heights(segments: tuple[np.ndarray, int, float] | None, batch: tuple[int, ...]):
    if segments is None:
        return np.full(batch, np.nan)
    seg, reach, _ = segments
    return np.abs(seg[:, reach]).reshape(batch)


def first_below(values: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Fractional points from column 0 (the peak) to where ``values`` ``(B, R)`` first falls
    below ``half`` ``(B,)``, interpolated linearly; NaN where it does not."""
    below = values < half[:, None]
    j = np.argmax(below, axis=1)
    rows = np.arange(values.shape[0])
    before, after = values[rows, j - 1], values[rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (before - half) / (before - after)
    return np.where(below.any(axis=1) & (j > 0), j - 1 + frac, np.nan)


def _widths(segments: tuple[np.ndarray, int, float] | None, batch: tuple[int, ...]):
    if segments is None:
        return np.full(batch, np.nan)
    seg, reach, step = segments
    top = seg[:, reach]
    # zero-order phased at the top: the real part is the absorption line
    real = (seg * np.exp(-1j * np.angle(top))[:, None]).real
    half = np.abs(top) / 2
    width = first_below(real[:, reach:], half) + first_below(real[:, reach::-1], half)
    return np.where(np.abs(top) > 0, width * abs(step), np.nan).reshape(batch)


def peak_height(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    window_ppm: tuple[float, float] = NAA_WINDOW_PPM,
) -> np.ndarray:
    """Height of the tallest peak in ``window_ppm`` above its local baseline: ``|S - B|`` at the
    tallest point of the spectrum zero-filled :data:`~.qc_spectra.ZERO_FILL` x, ``B`` a straight
    line through its flanks (:data:`FLANK_PPM` from the peak). The modulus is the height of the
    phased peak whatever its phase. ``(..., n_points) -> (...)``; NaN where the band misses
    the window."""
    fids = np.asarray(fids)
    s = _spectra(fids, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    return _heights(_peak_segments(s.ppm_zf, s.raw_zf, window_ppm, True), fids.shape[:-1])


def _snr(height: np.ndarray, sd: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(height == 0, 0.0, height / sd)


def snr(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
) -> np.ndarray:
    """Signal-to-noise ratio: the NAA peak height (the tallest peak of
    :data:`NAA_WINDOW_PPM`, :func:`peak_height`) over the noise SD of the real part of the
    spectrum (:func:`~.noise.noise_sd`), the definition of FSL-MRS and Osprey and of the consensus
    (Near et al., NMR Biomed 2021;34:e4257: "the NAA peak height divided by the standard
    deviation of the noise").

    LCModel's S/N divides the height of its fitted spectrum less baseline by **twice** the RMS
    of its fit residual, so it is about half this figure for a good fit, less where the
    residual holds misfit too (the Philips spant spectrum of the shared data: 57 here, LCModel
    21). ``(..., n_points) -> (...)``; 0 for an empty FID, inf for a noiseless one, NaN where no
    noise region is covered.
    """
    fids = np.asarray(fids)
    height = peak_height(fids, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    sd = noise_sd(fids, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    return _snr(height, sd)


def fwhm_ppm(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    window_ppm: tuple[float, float] = NAA_WINDOW_PPM,
    *,
    remove_baseline: bool = True,
) -> np.ndarray:
    """Full width at half maximum of the tallest peak of ``window_ppm``, ppm.

    The spectrum is zero-filled :data:`~.qc_spectra.ZERO_FILL` x, its local baseline removed (as in
    :func:`peak_height`; not with ``remove_baseline=False``, for a water reference, whose
    peak dwarfs everything), and phased to zero order at the peak's maximum, so the real part
    is the absorption line; the half-maximum crossings on each side are interpolated linearly
    between points. For a Lorentzian line of ``1 / (pi T2*)`` Hz it gives that width (a broad
    line reads a few % narrow: its own tails lift the flanks' baseline).

    This is the width of a line in the spectrum. LCModel's ``FWHM`` is not: it is the width of
    its lineshape kernel alone, in whole kernel points, without the metabolites' Lorentzian
    broadening or the basis' own lines; on the shared scanner spectra it reads 0.79-0.89 times
    the NAA line of LCModel's own fit, and twice it on the Philips spant spectrum
    (docs/history/fit-log.md "Linewidths beside LCModel's FWHM (session 22)").

    Returns ``(...)`` widths; NaN where the window is off the band, the peak is zero or a
    crossing is not found within :data:`FLANK_PPM` ``[1]`` of the peak (only noise there).
    Multiply by the spectrometer frequency in MHz for Hz.
    """
    fids = np.asarray(fids)
    s = _spectra(fids, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    segments = _peak_segments(s.ppm_zf, s.raw_zf, window_ppm, remove_baseline)
    return _widths(segments, fids.shape[:-1])
