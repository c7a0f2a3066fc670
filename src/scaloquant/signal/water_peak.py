"""How tall a spectrum's water peak is: a water reference given as data, and water beside a fit.

:func:`water_ratio` is the height of the tallest point near :data:`WATER_PPM` over the tallest
metabolite peak (:data:`WATER_TEST_WINDOW_PPM`, as :mod:`.snr_fwhm` measures peaks), where water
is the tallest point of the band: above :data:`WATER_RATIO` the spectrum is a water reference
(:func:`looks_like_water`, the ``water`` flag). :func:`water_near_window` is the same ratio for
the water just above a fit window (:data:`NEAR_WINDOW_PPM`), whose wings turn the fit's phase:
above :data:`WATER_NEAR_WINDOW_RATIO`, the ``water_near_window`` flag (:mod:`.quality`).
Residual water is removed by :mod:`.water` (HLSVD), not here; the map of the quality checks'
modules is :mod:`.quality`'s.
"""

from __future__ import annotations

import numpy as np

from .noise import _band_mask
from .qc_spectra import _columns, _quality_blocks, _side_by_side, _Spectra, _spectra, _window
from .snr_fwhm import _heights, _peak_segments

#: Chemical shift of water at body temperature, ppm (the usual ppm reference of 1H data).
WATER_PPM = 4.65


#: Half-width of the window where a water reference's peak must lie, ppm: water moves by about
#: 0.01 ppm/K and references are set to 4.65-4.7 ppm, so 0.3 ppm leaves room for a mis-set
#: reference or a shimmed frequency offset of 38 Hz at 3 T.
WATER_HALF_WINDOW_PPM = 0.3


#: The window itself, ppm.
WATER_WINDOW_PPM = (WATER_PPM - WATER_HALF_WINDOW_PPM, WATER_PPM + WATER_HALF_WINDOW_PPM)


#: Window of the metabolite signal a water reference is compared with: NAA, Cr and Cho
#: (1.8-3.4 ppm), far enough from water (1.25 ppm) that its tails do not count.
WATER_TEST_WINDOW_PPM = (1.8, 3.4)


#: Water-peak height over the tallest metabolite peak above which a spectrum is a water
#: reference (``water``; :func:`water_ratio`). Measured on the shared data: water-suppressed
#: spectra give 0 (water not the tallest peak: the challenge) to 51 (the Siemens suspect
#: spectrum's residual water; Osprey's 40, spant's 8), their unsuppressed water references
#: 680-3900; 200 is about 4x from either.
WATER_RATIO = 200.0


#: How far above the fit window's upper edge (ppm) :func:`water_near_window` looks for water the
#: fit saw (after ``--water-removal``), ...
NEAR_WINDOW_PPM = 0.2


#: ... and the height there, over the tallest metabolite peak (:data:`WATER_TEST_WINDOW_PPM`),
#: above which the spectrum is flagged ``water_near_window``: a line there that tall is water,
#: and its wings reach into the window, where the fit turns its first-order phase to follow them
#: (session 16: tissue-like spectra with residual water at 4.35-4.4 ppm, left by the water band's
#: old edge, 4.4 ppm: phi1 22-47 deg/ppm off, metabolites up to +26 mM). Measured
#: (docs/history/fit-log.md "Residual water near the window (session 16)"): the metabolites' own
#: signal there 0.17-0.69 (the 28 challenge spectra but dataset 24, 10.6, whose water lies at 4.16
#: ppm) and 0.19-0.35 (the scanner spectra of the shared data); 384 tissue-like fits with today's
#: band at most 1.56; with the old band the failed fits 0.34-22 (15 of 18 above 3).
WATER_NEAR_WINDOW_RATIO = 3.0


def _water_ratio(s: _Spectra, metabolite_height: np.ndarray) -> np.ndarray:
    water = _window(s.ppm_zf, WATER_WINDOW_PPM)
    if water.size == 0 or np.isnan(metabolite_height).all():
        return np.full(s.raw.shape[0], np.nan)
    water_height = np.abs(_columns(s.raw_zf, water)).max(axis=1).astype(np.float64)
    # the zero-filled spectrum holds the plain one's points: its water peak is at least theirs
    band = np.flatnonzero(_band_mask(s.ppm, (-np.inf, np.inf)))
    dominant = water_height >= np.abs(_columns(s.raw, band)).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(dominant, water_height / metabolite_height, 0.0)
    return np.where(water_height == 0, np.nan, ratio)


def water_ratio(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
) -> np.ndarray:
    """How much a spectrum looks like a water reference: the height of its tallest point within
    :data:`WATER_HALF_WINDOW_PPM` of :data:`WATER_PPM` over the tallest metabolite peak of
    :data:`WATER_TEST_WINDOW_PPM` (as :func:`~.snr_fwhm.peak_height`), ``(..., n_points) -> (...)``.

    Returns
    -------
    The ratio where the water window holds the tallest point of the whole band (less its
    edges), else 0 (the dominant peak is elsewhere: not a water reference); NaN for an empty
    FID or a band missing either window. Compare with :data:`WATER_RATIO`.
    """
    fids = np.asarray(fids)
    s = _spectra(fids, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    batch = (s.raw.shape[0],)
    metabolites = _heights(_peak_segments(s.ppm_zf, s.raw_zf, WATER_TEST_WINDOW_PPM, True), batch)
    return _water_ratio(s, metabolites).reshape(fids.shape[:-1])


def water_near_window(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    window_high_ppm: float,
) -> np.ndarray:
    """How much water lies just above a fit window that ends at ``window_high_ppm``: the
    tallest point of the magnitude spectrum in ``(window_high_ppm, window_high_ppm +``
    :data:`NEAR_WINDOW_PPM` ``]`` over the tallest metabolite peak of
    :data:`WATER_TEST_WINDOW_PPM` (as :func:`water_ratio`), ``(..., n_points) -> (...)``. Of
    the FIDs the fit saw (after its water removal). NaN for an empty FID or a band that misses
    either window. Compare with :data:`WATER_NEAR_WINDOW_RATIO`."""
    fids = np.asarray(fids)
    grid = (dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    # the blocks side by side as quality_figures' (16384 spectra, 2 threads: 0.50-0.57 s of
    # wall one after another; docs/history/physics-models-log.md "Residual water near the
    # window and the physics-head models (session 19, `water19`)")
    blocks = _side_by_side(
        lambda b: _near_window_block(_spectra(b, *grid), window_high_ppm), _quality_blocks(fids)
    )
    return np.concatenate(blocks or [np.zeros(0)]).reshape(fids.shape[:-1])


def _near_window_block(s: _Spectra, window_high_ppm: float) -> np.ndarray:
    """:func:`water_near_window` of one block's spectra (:func:`~.qc_spectra._spectra`), in one
    pass."""
    batch = (s.raw.shape[0],)
    near = np.flatnonzero(
        (s.ppm_zf > window_high_ppm) & (s.ppm_zf <= window_high_ppm + NEAR_WINDOW_PPM)
    )
    metabolites = _heights(_peak_segments(s.ppm_zf, s.raw_zf, WATER_TEST_WINDOW_PPM, True), batch)
    if near.size == 0 or np.isnan(metabolites).all():
        return np.full(batch, np.nan)
    height = np.abs(_columns(s.raw_zf, near)).max(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(metabolites > 0, height / metabolites, np.nan)


def looks_like_water(ratio: np.ndarray | float) -> np.ndarray:
    """Whether :func:`water_ratio` says water reference (False where it is NaN)."""
    return np.nan_to_num(np.asarray(ratio, dtype=float), nan=0.0) > WATER_RATIO
