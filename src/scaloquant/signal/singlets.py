"""Where a spectrum's own singlets are: NAA's, total creatine's and total choline's methyls.

:func:`singlet_shift` scores every shift within :data:`SINGLET_SEARCH_PPM` of
:data:`SINGLETS_PPM` on the spectrum's lines (:mod:`.median`) and gives the best, how clearly
the singlets stand there (in noise SDs, :mod:`.noise`) and the score at every shift of
:func:`singlet_lags_ppm`: LCModel's referencing, needing no basis. What reads them, with the
thresholds: the ``reference_off`` flag (:func:`~.quality.reference_off`) and the correction of a
spectrum's ppm reference before its fit (:func:`~.quality.reference_correction_ppm`), in
:mod:`.quality`, whose docstring maps the quality checks' modules.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.ndimage import maximum_filter1d

from ..metabolites import REFERENCE_SINGLETS
from . import axes
from .median import _line_peaks, _read_range
from .noise import _noise_sd
from .qc_spectra import _Spectra

#: Where the data's own singlets are sought: NAA's (2.01 ppm), total creatine's (3.03) and total
#: choline's (3.21) methyls (:data:`scaloquant.metabolites.REFERENCE_SINGLETS`), the landmarks of
#: LCModel's referencing (its ``PPMREF`` 2.01, 3.03, 3.22) and Osprey's (Cr and Cho), ppm.
SINGLETS_PPM = (
    REFERENCE_SINGLETS["NAA"],
    (REFERENCE_SINGLETS["Cr"] + REFERENCE_SINGLETS["PCr"]) / 2,
    (REFERENCE_SINGLETS["GPC"] + REFERENCE_SINGLETS["PCho"]) / 2,
)


#: How far either way from their shifts the singlets are sought, ppm: beyond LCModel's default
#: referencing search (``SHIFMN`` -0.1, ``SHIFMX`` +0.3 ppm) and the fit's (``invivo``: +-45 Hz,
#: 0.35 ppm at 3 T), so that a reference error the fit cannot reach is still seen; below the
#: 0.82 ppm from NAA to the lowest 3 ppm singlet's alias.
SINGLET_SEARCH_PPM = 0.6


#: Each singlet's height is the tallest line within this of its place, ppm: the singlets'
#: spread about one common shift (Cho at 3.21 or 3.22 ppm, a basis' Cr at 3.027 or 3.03) and
#: half a bin of the coarsest grid here (0.015 ppm).
SINGLET_SLACK_PPM = 0.02


def _singlet_range(ppm: np.ndarray) -> np.ndarray | None:
    """``(n_points,)`` mask of the bins the singlet search reads, None where the axis does not
    cover them."""
    low = min(SINGLETS_PPM) - SINGLET_SEARCH_PPM - SINGLET_SLACK_PPM
    high = max(SINGLETS_PPM) + SINGLET_SEARCH_PPM + SINGLET_SLACK_PPM
    if ppm.min() > low or ppm.max() < high:
        return None
    return (ppm >= low) & (ppm <= high)


def singlet_lags_ppm(n_points: int, dwell_time_s: float, freq_mhz: float) -> np.ndarray:
    """The shifts (ppm) :func:`singlet_shift` scores, ``(L,)``: every bin within
    :data:`SINGLET_SEARCH_PPM` either way."""
    step = 1.0 / (n_points * dwell_time_s * freq_mhz)
    reach = int(round(SINGLET_SEARCH_PPM / step))
    return np.arange(-reach, reach + 1) * step


def _singlets_from_peaks(
    peaks: np.ndarray, ppm: np.ndarray, noise_sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(shift_ppm, strength, profile)`` of :func:`singlet_shift` from :func:`~.median._line_peaks`
    ``(B, K)`` on the axis ``ppm`` ``(K,)`` (increasing, covering :func:`_singlet_range`) and
    the noise SD ``(B,)``."""
    step = float(ppm[1] - ppm[0])
    slack = max(1, int(round(SINGLET_SLACK_PPM / step)))
    tops = maximum_filter1d(peaks, 2 * slack + 1, axis=1, mode="nearest")
    reach = int(round(SINGLET_SEARCH_PPM / step))
    lags = np.arange(-reach, reach + 1)
    centres = [int(np.argmin(np.abs(ppm - p))) for p in SINGLETS_PPM]
    score = sum(tops[:, c + lags] for c in centres)
    first = np.argmax(score, axis=1)
    rows = np.arange(score.shape[0])
    # the middle of the top's plateau (the tallest line stays tallest over 2 slack + 1 lags),
    # not its first lag, which would read every shift up to SINGLET_SLACK_PPM low
    last = lags.size - 1 - np.argmax(score[:, ::-1], axis=1)
    best = np.where(last - first <= 2 * slack, (first + last) / 2, first)  # else: two maxima
    # a pattern, not one tall line (a lipid at 1.3-1.4 ppm under NAA's place shifted by -0.6):
    # the second tallest of the three singlets' heights where they align best
    heights = np.stack([tops[rows, c + lags[first]] for c in centres], axis=1)
    background = np.median(score, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        strength = np.sort(heights, axis=1)[:, -2] / noise_sd
        profile = (score - background) / (score[rows, first][:, None] - background)
    # the best at the search's edge: no optimum within it (LCModel warns of an "extreme" shift)
    strength = np.where((first == 0) | (last == lags.size - 1), 0.0, strength)
    return (best - reach) * step, strength, profile


def singlet_shift(
    fids: np.ndarray, dwell_time_s: float, spectrometer_freq_mhz: float, ppm_reference: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a 1H brain spectrum's own singlets are: the shift (ppm, positive downfield) that
    best aligns NAA, tCr and tCho (:data:`SINGLETS_PPM`) with its lines, and how clearly.

    LCModel's referencing, on the lines: the magnitude spectrum less its running median
    (:data:`~.median.PEAK_WINDOW_PPM`, as :func:`~.mirror.mirror_ratio`), each singlet's height the
    tallest line within :data:`SINGLET_SLACK_PPM` of its shifted place, their sum scored at every
    bin shift within :data:`SINGLET_SEARCH_PPM` (LCModel cross-correlates its smoothed power
    spectrum with unit delta functions at 2.01, 3.03 and 3.22 ppm). Needs no basis: it checks the
    data against where a fit or a network put its singlets (``reference_off``,
    :func:`~.quality.fit_flags`).

    Returns
    -------
    ``(shift_ppm, strength, profile)``: the best shift, to the bin, ``(...)``; how clearly the
    singlets stand there, ``(...)``: the second tallest of their three heights, in noise SDs of
    the real spectrum (:func:`~.noise.noise_sd`; a pattern, not one line), 0 where the best shift is
    at the search's edge (no optimum within it); and the score at every shift of
    :func:`singlet_lags_ppm`, less its median over them, over the best's, ``(..., L)`` (1 at the
    best), what :func:`~.quality.reference_off` reads where a fit put the singlets. NaN (and ``L``
    0) where the axis does not reach the search; strength NaN without a noise region.
    """
    fids = np.asarray(fids)
    n = fids.shape[-1]
    ppm = axes.ppm_axis(n, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    raw = scipy.fft.fft(fids.reshape(-1, n), axis=-1)
    noise = _noise_sd(_Spectra(ppm, raw, ppm, raw))
    found = _singlets(raw, ppm, noise, n, dwell_time_s, spectrometer_freq_mhz)
    batch = fids.shape[:-1]
    return found[0].reshape(batch), found[1].reshape(batch), found[2].reshape(*batch, -1)


def _singlets(
    raw: np.ndarray,
    ppm: np.ndarray,
    noise_sd: np.ndarray,
    n_points: int,
    dwell_time_s: float,
    freq_mhz: float,
    peaks: tuple[np.ndarray, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`singlet_shift` of the unshifted FFT ``raw`` ``(B, n_points)``: ``(B,)``, ``(B,)``,
    ``(B, L)``; ``peaks``: :func:`~.median._line_peaks` ``(B, K)`` from bin ``lo`` on, where already
    formed over the singlets' range (the mirror check's)."""
    used = _singlet_range(ppm)
    if used is None:
        nan = np.full(raw.shape[0], np.nan)
        return nan, nan, np.full((raw.shape[0], 0), np.nan)
    lo, hi = _read_range(used, n_points, dwell_time_s, freq_mhz)
    if peaks is None:
        lines = _line_peaks(raw, lo, hi, n_points, dwell_time_s, freq_mhz)
    else:
        lines, start = peaks
        lines = lines[:, lo - start : hi - start]
    return _singlets_from_peaks(lines, ppm[lo:hi], noise_sd)
