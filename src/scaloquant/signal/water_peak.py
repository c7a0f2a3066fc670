"""How tall a spectrum's water peak is: a water reference given as data, and water beside a fit.

:func:`water_ratio` is the height of the tallest point near :data:`WATER_PPM` over the tallest
metabolite singlet (NAA, Cr or Cho, each less its local baseline: :func:`_tallest_singlet`),
where water is the tallest point of the band: above :data:`WATER_RATIO` the spectrum is a water
reference (:func:`looks_like_water`, the ``water`` flag). :func:`water_near_window` is the height
of the water just above a fit window (:data:`NEAR_WINDOW_PPM`), whose wings turn the fit's
phase, over the same tallest singlet: above :data:`WATER_NEAR_WINDOW_RATIO`, the
``water_near_window`` flag (:mod:`.quality`).
Residual water is removed by :mod:`.water` (HLSVD), not here; the map of the quality checks'
modules is :mod:`.quality`'s."""

from __future__ import annotations

import numpy as np

from .noise import _band_mask
from .qc_spectra import _columns, _quality_blocks, _side_by_side, _Spectra, _spectra, _window
from .snr_fwhm import CR_WINDOW_PPM, NAA_WINDOW_PPM, _heights, _peak_segments

#: Chemical shift of water at body temperature, ppm (the usual ppm reference of 1H data).
WATER_PPM = 4.65


#: Half-width of the window where a water reference's peak must lie, ppm: water moves by about
#: 0.01 ppm/K and references are set to 4.65-4.7 ppm, so 0.3 ppm leaves room for a mis-set
#: reference or a shimmed frequency offset of 38 Hz at 3 T.
WATER_HALF_WINDOW_PPM = 0.3


#: The window itself, ppm.
WATER_WINDOW_PPM = (WATER_PPM - WATER_HALF_WINDOW_PPM, WATER_PPM + WATER_HALF_WINDOW_PPM)


#: Window of the choline singlet (3.21 ppm): with NAA's and Cr's
#: (:data:`~.snr_fwhm.NAA_WINDOW_PPM`, :data:`~.snr_fwhm.CR_WINDOW_PPM`) the singlets whose
#: tallest is the metabolite height of :func:`water_ratio` and :func:`water_near_window`.
CHO_WINDOW_PPM = (3.1, 3.3)


#: Water-peak height over the tallest metabolite singlet above which a spectrum is a water
#: reference (``water``; :func:`water_ratio`). Measured (docs/history/physics-models-log.md
#: "Residual water and the quality check's water flag (session 35, `evalinv35`)",
#: ``benchmarks/diag_water_ratio.py``): water-suppressed spectra 0 (water not the tallest peak:
#: the challenge's but dataset 23, 6.3) to 51 (the Siemens suspect spectrum's residual water,
#: 28x its NAA peak; Osprey's 2.7-42, spant's 8), the tissue-like ``invivo`` prior at most 53 and
#: 64 (2048 spectra each, seeds 0 and 1); their unsuppressed water references 213 (the
#: challenge's dataset 28, whose voxel holds lipids: its 2.0 ppm lipid line is 1/213 of its
#: water) and 1015-3300 otherwise. 120 is about 1.8x from either. Until session 35 the
#: metabolite height was the tallest point of 1.8-3.4 ppm less its local baseline, which under
#: a tall residual water is the water's tail at 3.4 ppm less the line of its flanks, a few
#: hundredths of NAA's: 12-14 of 2048 prior spectra (water 9.5-29 H) measured 218-1267 and were
#: flagged ``water`` (not quantified), against 200.
WATER_RATIO = 120.0


#: How far above the fit window's upper edge (ppm) :func:`water_near_window` looks for water the
#: fit saw (after ``--water-removal``), ...
NEAR_WINDOW_PPM = 0.2


#: ... and the height there, over the tallest metabolite singlet (:func:`_tallest_singlet`),
#: above which the spectrum is flagged ``water_near_window``: a line there that tall is water,
#: and its wings reach into the window, where the fit turns its first-order phase to follow them
#: (session 16: tissue-like spectra with residual water at 4.35-4.4 ppm, left by the water band's
#: old edge, 4.4 ppm: phi1 22-47 deg/ppm off, metabolites up to +26 mM). Measured (session 16;
#: again in session 36, docs/history/fit-log.md "The water near the window over the metabolite
#: singlets (session 36, `water36`)", ``benchmarks/diag_water_near_ratio.py``): not to flag, the
#: data as the fit sees them, 1.45 at most on 384 tissue-like fits with today's band, 99th
#: percentile 1.13-1.17 on 4096 spectra of the ``invivo`` prior less the fit's water removal (2
#: above 3: water the removal left at 4.38 ppm), the default simulator's at most 0.90, the
#: challenge's 0.17-0.60 (but dataset 24, 10.6, whose water lies at 4.16 ppm) and the scanners'
#: 0.19-1.36; to flag, the failed fits with the old band 0.34-13.5 (5 of 7 above 3; session 16:
#: 15 of 18), water references as read 20-290. Until session 36 the metabolite height was the
#: tallest point of 1.8-3.4 ppm less its local baseline: under a water in the data (``quantify
#: --model``'s choice at ``K = 0``, ``--water-removal none``) the water's tail or a line it
#: raised, the ratio up to 55x too high, and 12 of 4096 prior spectra flagged at 3.0-16 whose
#: singlets say 2.2-3.0.
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


def _tallest_singlet(
    s: _Spectra, naa_height: np.ndarray | None = None, cr_height: np.ndarray | None = None
) -> np.ndarray:
    """The metabolite height of :func:`water_ratio` ``(B,)``: the tallest of the NAA, Cr and
    Cho singlets' peaks (:data:`~.snr_fwhm.NAA_WINDOW_PPM`, :data:`~.snr_fwhm.CR_WINDOW_PPM`,
    :data:`CHO_WINDOW_PPM`), each less its local baseline (as :func:`~.snr_fwhm.peak_height`);
    NaN where no window is on the axis. ``naa_height``, ``cr_height``: those two already
    measured (:mod:`.quality` has them), else measured here.

    Not the tallest point of one window across them: under a residual water of tens of NAA's
    height that is the water's tail at the window's top, not a line (session 35)."""
    batch = (s.raw.shape[0],)

    def height(window: tuple[float, float]) -> np.ndarray:
        return _heights(_peak_segments(s.ppm_zf, s.raw_zf, window, True), batch)

    naa = height(NAA_WINDOW_PPM) if naa_height is None else naa_height
    cr = height(CR_WINDOW_PPM) if cr_height is None else cr_height
    return np.fmax(np.fmax(naa, cr), height(CHO_WINDOW_PPM))


def water_ratio(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
) -> np.ndarray:
    """How much a spectrum looks like a water reference: the height of its tallest point within
    :data:`WATER_HALF_WINDOW_PPM` of :data:`WATER_PPM` over its tallest metabolite singlet
    (:func:`_tallest_singlet`), ``(..., n_points) -> (...)``.

    Returns
    -------
    The ratio where the water window holds the tallest point of the whole band (less its
    edges), else 0 (the dominant peak is elsewhere: not a water reference); NaN for an empty
    FID or a band missing the water window or every singlet's. Compare with
    :data:`WATER_RATIO`.
    """
    fids = np.asarray(fids)
    s = _spectra(fids, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    return _water_ratio(s, _tallest_singlet(s)).reshape(fids.shape[:-1])


def water_near_window(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    window_high_ppm: float,
) -> np.ndarray:
    """How much water lies just above a fit window that ends at ``window_high_ppm``: the
    tallest point of the magnitude spectrum in ``(window_high_ppm, window_high_ppm +``
    :data:`NEAR_WINDOW_PPM` ``]`` over the tallest metabolite singlet (:func:`_tallest_singlet`,
    as :func:`water_ratio`'s), ``(..., n_points) -> (...)``. Of the FIDs the fit saw (after its
    water removal). NaN for an empty FID or a band that misses the first window or every
    singlet's. Compare with :data:`WATER_NEAR_WINDOW_RATIO`."""
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
    metabolites = _tallest_singlet(s)
    if near.size == 0 or np.isnan(metabolites).all():
        return np.full(batch, np.nan)
    height = np.abs(_columns(s.raw_zf, near)).max(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(metabolites > 0, height / metabolites, np.nan)


def looks_like_water(ratio: np.ndarray | float) -> np.ndarray:
    """Whether :func:`water_ratio` says water reference (False where it is NaN)."""
    return np.nan_to_num(np.asarray(ratio, dtype=float), nan=0.0) > WATER_RATIO
