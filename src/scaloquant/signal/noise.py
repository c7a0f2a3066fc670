"""The noise of a spectrum, its SD in the signal-free regions, and a fit's residual against it.

:func:`noise_sd` is the SD of the real spectrum's noise, from :data:`NOISE_REGIONS_PPM` (a
complex quadratic removed in each region, the regions pooled; the band's edges,
:data:`BAND_EDGE_FRACTION`, left out): what the SNR (:func:`~.snr_fwhm.snr`), the fit residual
over the noise, the singlets' strength (:func:`~.singlets.singlet_shift`) and the HLSVD's rank
(:mod:`.water`) divide by. :func:`residual_sd` is a fit residual's SD on the same scale, and
:func:`residual_over_noise` the one over the other, the ``residual_over_noise`` column (its
flag, ``misfit``, and threshold are :mod:`.quality`'s). The spectra it reads are
:mod:`.qc_spectra`'s; the map of the quality checks' modules is :mod:`.quality`'s.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ..threads import blas_threads
from . import axes
from .qc_spectra import _columns, _quality_blocks, _Spectra

#: Signal-free regions where the noise is measured, ppm: upfield of every metabolite and lipid
#: (Osprey's and LCModel's -2..0 ppm) and downfield of the amide protons (9-10 ppm). Both are
#: pooled where the spectral width covers them.
NOISE_REGIONS_PPM = ((-2.0, 0.0), (9.0, 10.0))


#: Fraction of the band left out at each edge when looking for noise: the anti-alias filter of
#: the receiver attenuates the last few per cent.
BAND_EDGE_FRACTION = 0.02


#: A noise region with fewer spectral points than this is not used (the SD of fewer is too
#: uncertain: 16 points give it to about 18 %).
MIN_NOISE_POINTS = 16


def _band_mask(ppm: np.ndarray, region: tuple[float, float]) -> np.ndarray:
    edge = BAND_EDGE_FRACTION * (ppm.max() - ppm.min())
    lo, hi = max(region[0], ppm.min() + edge), min(region[1], ppm.max() - edge)
    return (ppm >= lo) & (ppm <= hi)


def residual_sum_of_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``sum |r|^2`` over ``K`` of the residual ``r`` of ``values`` ``(K, B)`` less their
    least-squares fit on the columns of ``design`` ``(K, p)``: ``(B,)``, each spectrum's bits
    the same whatever ``B``, the last column solved and summed once more as a column that is
    dropped. Why: one column alone took LAPACK's and BLAS's matrix-vector code and numpy's
    pairwise sum of a contiguous column, which round otherwise than the code of two or more
    (numpy's twin of the solver's rule, :func:`scaloquant.fit.lm._with_copy`): a spectrum
    fitted alone had a signal-free region's noise SD 1 ulp off its SD in any batch, and so other
    ``invivo`` amplitudes (1e-12 of themselves) and polish (docs/history/fit-log.md "A
    spectrum's fit and its batch (session 36, batchinv36)")."""
    padded = np.concatenate([values, values[:, -1:]], axis=1)
    coef = np.linalg.lstsq(design, padded, rcond=None)[0]
    return (np.abs(padded - design @ coef) ** 2).sum(axis=0)[:-1]


def _noise_sd(s: _Spectra) -> np.ndarray:
    sum_sq = np.zeros(s.raw.shape[0])
    dof = 0
    for region in NOISE_REGIONS_PPM:
        sel = np.flatnonzero(_band_mask(s.ppm, region))
        if sel.size < MIN_NOISE_POINTS:
            continue
        x = s.ppm[sel] - s.ppm[sel].mean()
        design = np.stack([np.ones_like(x), x, x**2], axis=1)
        values = _columns(s.raw, sel).T.astype(np.complex128)
        sum_sq += residual_sum_of_squares(design, values)
        dof += 2 * sel.size - 6
    if dof == 0:
        return np.full(s.raw.shape[0], np.nan)
    return np.sqrt(sum_sq / dof)


def noise_sd(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
) -> np.ndarray:
    """Noise SD of each real part of the spectrum, from the signal-free regions.

    Each region of :data:`NOISE_REGIONS_PPM` inside the band (less :data:`BAND_EDGE_FRACTION`
    at each edge) with at least :data:`MIN_NOISE_POINTS` points has a complex quadratic
    removed (a baseline or water tail is not noise); the residuals of all regions are pooled:
    ``sd = sqrt(sum |r|^2 / (2 K - 6 R))`` for ``K`` points in ``R`` regions.

    Parameters
    ----------
    fids : complex FIDs, ``(..., n_points)``.
    dwell_time_s, spectrometer_freq_mhz, ppm_reference : the acquisition grid.

    Returns
    -------
    ``(...)`` SDs on the scale of ``axes.spectrum`` (unnormalised FFT, no zero-filling); NaN
    where no region is covered.
    """
    fids = np.asarray(fids)
    n = fids.shape[-1]
    ppm = axes.ppm_axis(n, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    raw = scipy.fft.fft(fids.reshape(-1, n), axis=-1)
    return _noise_sd(_Spectra(ppm, raw, ppm, raw)).reshape(fids.shape[:-1])


def residual_sd(residual: np.ndarray) -> np.ndarray:
    """SD of each real part of a fit's complex residual over its window, ``(..., K) ->
    (...)``: ``sqrt(mean |r|^2 / 2)`` over the window's finite points (a spectrum fitted over a
    narrower window than the others holds NaN past its own), NaN where none is finite.

    On the scale of :func:`noise_sd` where ``residual`` is the window of the unnormalised FFT of
    the FIDs (``data - model``, the model with its baseline), so that the two divide
    (:func:`residual_over_noise`). The complex residual's power, halved, rather than its real
    part's (Osprey's): the same for noise, and independent of the phase for a misfit (the
    absorption and dispersion of a line hold the same power). No degrees of freedom are taken
    off for the fitted parameters (as Osprey's and spant's measures): an exact model of a
    noisy spectrum gives ``sqrt(1 - P / 2K)`` of the noise SD for ``P`` real parameters."""
    power = np.abs(np.asarray(residual)) ** 2
    finite = np.isfinite(power)
    count = finite.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, power, 0.0).sum(axis=-1) / count
    return np.where(count > 0, np.sqrt(mean / 2), np.nan)


def residual_over_noise(
    residual_sds: np.ndarray,
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    *,
    proton: bool = True,
) -> np.ndarray:
    """A fit's residual SD over its window (:func:`residual_sd`, ``(N,)``) over the noise SD
    of the spectra it fitted (:func:`noise_sd` of ``fids`` ``(N, n_points)``, the FIDs as
    fitted, on the grid given): ``(N,)``, about 1 where the model describes the spectrum down
    to its noise, above where it leaves signal unexplained (a line or baseline it lacks, a
    lineshape it cannot take). NaN where the spectral width covers no noise region or the region
    holds nothing (an empty FID), and for other nuclei than 1H (``proton`` False: the noise
    regions are 1H ppm). A noiseless simulated spectrum's region holds only its lines' far
    tails, and its ratio compares the fit's rounding or misfit with them: it means nothing.

    The measure users of the field read for a fit's quality: its square is the fit quality
    number (FQN) of the consensus on preprocessing and of spant's ABfit (Near et al., NMR Biomed
    2021;34:e4257, "the variance in the fit residual divided by the variance in the pure
    spectral noise"), and Osprey's relative residual amplitude (``osp_fit_Quality``: the mean
    squared real residual over the fit range over the variance of the real spectrum in -2..0
    ppm, a quadratic removed; Wilson et al., MRM 2019;82:527 after Barros & Slotboom 2017).
    LCModel's S/N divides half the tallest point of the fit less its baseline by the residual's
    SD (``SIGTON`` in LCModel.f), so that for the same peak it is :func:`~.snr_fwhm.snr` / (2 x this
    ratio). Unlike the ``fit_residual`` column (``|data - model| / |data|``), it does not
    shrink as the SNR grows: at high SNR a model that misses a few per cent of the signal
    leaves a residual many noise SDs tall.

    The FIDs are read :data:`~.qc_spectra.QUALITY_BLOCK` at a time (one FFT each in double
    precision: 16384
    spectra of 2048 points at once would be 0.5 GB), each block's least squares (a quadratic
    over the noise regions, 128 right-hand sides) with numpy's BLAS on one thread, as the fit
    runs it: on 2 threads of a busy 2-core machine OpenBLAS spins, and ``quantify --model``
    called this outside any limit (512 spectra at load 15: 0.198 s of CPU, 0.71 s of wall,
    against 0.025 and 0.076 s on one thread, the same numbers; docs/history/physics-models-log.md
    "Where quantify's time goes at the default polish, and its floor (session 35,
    `polish35`)")."""
    fids = np.asarray(fids)
    n = fids.shape[-1]
    if not proton:
        return np.full(fids.shape[:-1], np.nan)
    flat = fids.reshape(-1, n)
    grid = (dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    with blas_threads(1):
        parts = [noise_sd(block, *grid) for block in _quality_blocks(flat)]
    noise = np.concatenate(parts) if parts else np.zeros(0)
    sd = np.asarray(residual_sds, dtype=np.float64).reshape(noise.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(noise > 0, sd / noise, np.nan).reshape(fids.shape[:-1])


#: The noise's own chance excess that :func:`misfit_beyond_noise` allows, in SDs of the
#: residual's power over the window: a noise-only residual of ``K`` complex points has a power
#: whose relative SD is ``1 / sqrt(K)`` (its ``2 K`` real parts, each a chi-square of one degree).
CHANCE_EXCESS_SDS = 3.0


def misfit_beyond_noise(
    relative_residual: np.ndarray, residual_over_noise: np.ndarray, n_window_points: int
) -> np.ndarray:
    """The share of the data's norm over a fit window that the model misses beyond the noise,
    ``(N,)``: ``|r| / |y| * sqrt(1 - (1 + c / sqrt(K)) / q^2)`` for the relative residual
    ``|r| / |y|`` (``relative_residual``, the ``fit_residual`` column), the residual over the
    noise ``q`` (:func:`residual_over_noise`), ``K`` = ``n_window_points`` complex points in
    the window and ``c`` = :data:`CHANCE_EXCESS_SDS`; 0 where ``q^2`` is within that chance
    excess of 1 (a residual the noise explains), NaN where either figure is.

    The residual is the misfit ``m`` plus the noise ``e``, uncorrelated, so ``|r|^2 = |m|^2 +
    |e|^2`` and ``|e|^2 / |r|^2 = 1 / q^2``: ``|m| / |y| = |r| / |y| sqrt(1 - 1 / q^2)``. Unlike
    ``q``, which grows with the SNR for the same missed share of the signal, and ``|r| / |y|``,
    which grows with the noise, this is the same share of the signal at any SNR: the model's own
    mismatch where the fit is at its minimum (the ``invivo`` model on spectra it describes:
    docs/history/physics-models-log.md "A polish in a worse minimum than the fit's (session 35,
    `polishqc35`)")."""
    rel = np.asarray(relative_residual, dtype=np.float64)
    q = np.asarray(residual_over_noise, dtype=np.float64)
    allowed = 1.0 + CHANCE_EXCESS_SDS / np.sqrt(max(int(n_window_points), 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        # NaN in either passes through clip, sqrt and the product
        return rel * np.sqrt(np.clip(1.0 - allowed / q**2, 0, None))
