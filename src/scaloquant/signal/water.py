"""Residual water removed from FIDs by HLSVD before the fit, as Osprey, FSL-MRS and TARQUIN do.

A water-suppressed spectrum keeps a residual water line near 4.7 ppm that is often tens of times
the NAA singlet (the suspect Siemens PRESS spectrum: 25 times). Its tails reach into the fit's
window (to 4.2 ppm and below), where the penalised baseline, stiff by design, cannot follow them
and the metabolites and macromolecules absorb them instead. HLSVD (Barkhuijsen et al., J Magn
Reson 73:553, 1987; Pijnappel et al., J Magn Reson 97:122, 1992) models the FID as a sum of
:data:`HLSVD_COMPONENTS` damped complex exponentials from the leading singular vectors of its
Hankel matrix (here from its Gram matrix, :func:`_signal_subspace`: the SVD's to rounding at
less than half its cost, docs/history/fit-log.md "How the HLSVD is computed"); the components whose
frequency lies in the water band (:data:`WATER_BAND_PPM`) and whose width is a water line's
(:data:`WATER_MAX_FWHM_HZ`, since session 20) are subtracted from the whole FID.
Only those are touched: a metabolite line below the band stays in the data.
:func:`remove_water` decomposes only the band and its surroundings
(:func:`band_limited_components`: mixed to 0 Hz, low-pass filtered and decimated, a
frequency-selective HLSVD whose filter leaves the first samples undistorted, as Sundin et al.'s
maximum-phase FIR filters do, J Magn Reson 1999): a Hankel matrix of ~48 rows instead of 256 at
4000 Hz, exact on sums of exponentials, 8-12 times cheaper, and as close to the true water as
the full band's (docs/history/fit-log.md "Band-limited HLSVD (session 9)").

The same decomposition measures a line's signal at t = 0 apart from the rest of the FID
(:func:`band_amplitude`): the singlet metabolite of a simulated basis set whose FID also holds a
reference peak (the ISMRM 2016 basis' 0 ppm singlet) or a first point that is not the signal's
value at t = 0 (LCModel's makebasis halves it). Not for in-vivo water references: their lines are
no sum of a few exponentials and their first samples are altered, and on the Philips ones the
value at t = 0 moved by 10-30 % with the samples the decomposition started from
(:func:`scaloquant.quantify.water.water_area` extrapolates their magnitude instead).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from ..threads import map_on_threads
from . import axes
from .decimate import lowpass_taps

#: Damped exponentials of the HLSVD model (Osprey and FSL-MRS use 20-25).
HLSVD_COMPONENTS = 25
#: Samples of the FID the Hankel matrix is built from (the signal has decayed by then).
HLSVD_POINTS = 512
#: Components with a frequency in this band (ppm) are taken as water and removed: above the
#: fit's window (LCModel's and FSL-MRS's end at 4.0-4.2 ppm; the highest brain metabolite line
#: in it, Ins/Cr near 4.05-4.1 ppm, lies well below), up to beyond any referencing error. The
#: lower edge lies 0.1 ppm above the default window's end (4.2 ppm), not 0.2 (4.4 until session
#: 16): a residual water line at 4.3-4.4 ppm (the invivo prior draws them from 4.35 ppm; a
#: scanner's water moves with temperature and referencing) was left in, and its wings, 3-25 Hz
#: wide, reach into the window, where the fit turned phi1 by 22-47 deg/ppm to follow them (on
#: 128 tissue-like spectra at SNR 30, seed 5: 4 failed phases and MAE 1.756 mM with 4.4; none
#: and 1.480 with 4.3; seeds 6 and 7: 2.885 -> 1.587 and 1.848 -> 1.507;
#: docs/history/fit-log.md "Residual water near the window (session 16)").
WATER_BAND_PPM = (4.3, 5.2)
#: ... and of those only the components no broader than this (Hz, the Lorentzian FWHM
#: ``-ln|z| / (pi dt)`` of a pole ``z``) are removed: a component far broader than any water
#: line is not residual water but the decomposition's model of what else lies under the band,
#: and subtracting it leaves a hole in the data. Measured (session 20,
#: ``benchmarks/diag_water_widths.py``; components at least 0.1 x the tallest metabolite
#: peak): the 6 scanner spectra of ``../shared/data/invivo`` 4.4-50.9 Hz (2-5 each); the ISMRM
#: 2016 challenge's 5.4-24 Hz, and 124 and 209 Hz (0.15-0.26 x, datasets 12 and 13); the
#: ``invivo`` prior's water (3-25 Hz lines under eddy currents) median 13-14 Hz, p99 85-89 Hz,
#: up to 165 Hz in components that belong to the water (removing them helps: bounds of 60-150
#: Hz cost single spectra 2.4-23 mM); the same spectra without water 280 and 490 Hz, 1.0-1.5 x,
#: whose removal the fit flagged (``water_near_window`` 6.0 and 36.6; one 4.3 mM off). With
#: 200 Hz, 3 x 400 such spectra (SNR 30, seeds 11-13): without water 3 false flags -> 0, MAE
#: 1.521 -> 1.519 mM; with the prior's water 1.5332 -> 1.5336 mM, flags 0 -> 0; with water
#: at 4.30-4.45 ppm 2.227 -> 2.223 mM, flags 29 -> 28; the scanner fits the same to the bit
#: (docs/history/fit-log.md "A width bound on the removed water (session 20, `hlsvd20`)"). Osprey,
#: FSL-MRS and spant select the water's components by frequency only.
WATER_MAX_FWHM_HZ = 200.0

T = TypeVar("T")


def hlsvd_components(
    fid: np.ndarray, dwell_time_s: float, n_components: int = HLSVD_COMPONENTS
) -> tuple[np.ndarray, np.ndarray]:
    """HLSVD of one FID ``(N,)`` (its first :data:`HLSVD_POINTS` samples) as
    ``sum_k c_k z_k^n``: ``(frequencies Hz (K,), stacked (c, z) (2, K))``.

    The signal subspace comes from :func:`_signal_subspace` (the Gram matrix' leading
    eigenvectors where that is exact to rounding, else the full SVD); the poles follow from
    it by shift invariance and the amplitudes by least squares over the samples."""
    n = min(fid.shape[-1], HLSVD_POINTS)
    x = np.asarray(fid[:n], dtype=np.complex128)
    uk = _signal_subspace(x, n // 2, n_components)
    poles = np.linalg.eigvals(np.linalg.lstsq(uk[:-1], uk[1:], rcond=None)[0])
    # growing components (noise, truncation) are given no growth, so the powers stay finite
    poles = np.where(np.abs(poles) > 1.0, poles / np.abs(poles), poles)
    amps = np.linalg.lstsq(_powers(poles, n), x, rcond=None)[0]
    freq_hz = np.angle(poles) / (2 * np.pi * dwell_time_s)
    return freq_hz, np.stack([amps, poles])


#: The Gram matrix' subspace is used while the K-th singular value of the Hankel matrix is at
#: least this fraction of the first: its error is the SVD's times ``s_1 / (2 s_K)`` (the
#: squared condition), here at most 5e3 times (scanner and tissue-like spectra: ``s_1 / s_25``
#: 5-1200, FIDs equal to the SVD's to 1e-10 of their water); below it, on noiseless signals of
#: a few lines (a simulated basis set's singlets), rounding decides the small components and
#: the full SVD is taken.
GRAM_MIN_SINGULAR_RATIO = 1e-4


def _signal_subspace(x: np.ndarray, rows: int, n_components: int) -> np.ndarray:
    """The ``K = min(n_components, rows)`` leading left singular vectors ``(rows, K)`` of the
    Hankel matrix ``H[i, j] = x[i + j]`` ``(rows, n - rows + 1)`` of ``x`` ``(n,)``, as an
    orthonormal basis of their span, in order (the span is what HLSVD uses).

    From the leading eigenvectors of ``G = H H^H`` (:func:`_hankel_gram`, O(n^2) from the
    Hankel structure) by LAPACK's subset eigensolver (``zheevr``): the same span as the SVD's
    to rounding at 2-2.7 times less time (``benchmarks/bench_water.py``), when
    ``s_K / s_1 >= GRAM_MIN_SINGULAR_RATIO``; else from the full SVD of ``H``."""
    k = min(n_components, rows)
    # eigenvalues ascending: the last k, reversed, are the leading singular directions
    values, vectors = _leading_eigh(_hankel_gram(x, rows), k)
    if values[0] >= GRAM_MIN_SINGULAR_RATIO**2 * values[-1] > 0:
        return vectors[:, ::-1]
    hankel = np.lib.stride_tricks.sliding_window_view(x, x.shape[0] - rows + 1)[:rows]
    return np.linalg.svd(hankel, full_matrices=False)[0][:, :k]


def _capsule_function(capsule: object, nargs: int) -> ctypes._CFuncPtr:
    """The C function of a ``scipy.linalg.cython_lapack`` capsule, callable through ctypes
    with ``nargs`` pointer arguments (ctypes releases the GIL for the call)."""
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * nargs)(pointer(capsule, name(capsule)))


@functools.cache
def _zheevr() -> ctypes._CFuncPtr | None:
    """LAPACK's ``zheevr`` (a subset of a Hermitian eigenproblem, MRRR), from scipy's Cython
    LAPACK (imported on first use: scipy.linalg takes a while); ``None`` where this scipy
    does not expose it so (then scipy's own wrapper is used, same result, GIL held)."""
    import scipy.linalg.cython_lapack

    try:
        return _capsule_function(scipy.linalg.cython_lapack.__pyx_capi__["zheevr"], 23)
    except (AttributeError, KeyError, TypeError, ValueError, OSError):
        return None


def _leading_eigh(lower: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues ``(k,)``, ascending, and their eigenvectors ``(n, k)`` of
    the Hermitian matrix whose lower triangle is ``lower`` ``(n, n)`` (C order; overwritten).

    What ``scipy.linalg.eigh(lower, lower=True, subset_by_index=[n - k, n - 1],
    driver="evr")`` computes (LAPACK's ``zheevr``; the same to rounding), but called through
    ctypes, which releases the GIL: scipy's wrapper holds it for the whole call, so threads
    decomposing other FIDs (:func:`_each_fid`) would wait on it (measured: a 0.9 s call let
    the interpreter's other thread run 21 ticks, this one 774). Read in Fortran order the
    C-order lower triangle is the upper triangle of the conjugate matrix, whose eigenvectors
    are the conjugates."""
    n = lower.shape[0]
    if lower.dtype != np.complex128 or not lower.flags.c_contiguous or not 1 <= k <= n:
        raise ValueError(f"need a C-ordered complex128 (n, n) matrix and 1 <= k <= n, got k={k}")
    if _zheevr() is None:
        import scipy.linalg

        return scipy.linalg.eigh(
            lower, lower=True, subset_by_index=[n - k, n - 1], driver="evr", overwrite_a=True
        )
    values = np.zeros(n)
    vectors = np.zeros((k, n), dtype=np.complex128)  # Fortran (n, k)
    support = np.zeros(2 * k, dtype=np.int32)
    found, info = ctypes.c_int(0), ctypes.c_int(0)
    zero = ctypes.c_double(0.0)

    def call(work: np.ndarray, rwork: np.ndarray, iwork: np.ndarray, query: bool) -> None:
        sizes = [-1, -1, -1] if query else [work.size, rwork.size, iwork.size]
        ints = [ctypes.c_int(v) for v in (n, n, n - k + 1, n, n, *sizes)]
        _zheevr()(
            *(ctypes.byref(ctypes.c_char(c)) for c in (b"V", b"I", b"U")),
            ctypes.byref(ints[0]), lower.ctypes.data, ctypes.byref(ints[1]),
            ctypes.byref(zero), ctypes.byref(zero), ctypes.byref(ints[2]), ctypes.byref(ints[3]),
            ctypes.byref(zero), ctypes.byref(found), values.ctypes.data, vectors.ctypes.data,
            ctypes.byref(ints[4]), support.ctypes.data, work.ctypes.data, ctypes.byref(ints[5]),
            rwork.ctypes.data, ctypes.byref(ints[6]), iwork.ctypes.data, ctypes.byref(ints[7]),
            ctypes.byref(info),
        )  # fmt: skip
        if info.value != 0:
            raise np.linalg.LinAlgError(f"LAPACK zheevr failed (info {info.value})")

    sizes = np.zeros(1, np.complex128), np.zeros(1), np.zeros(1, np.int32)
    call(*sizes, query=True)
    work = np.zeros(int(sizes[0][0].real), np.complex128)
    call(work, np.zeros(int(sizes[1][0])), np.zeros(int(sizes[2][0]), np.int32), query=False)
    if found.value != k:
        raise np.linalg.LinAlgError(f"LAPACK zheevr found {found.value} of {k} eigenvalues")
    return values[:k], vectors.conj().T


def _hankel_gram(x: np.ndarray, rows: int) -> np.ndarray:
    """The lower triangle of ``G = H H^H`` ``(..., rows, rows)`` for the Hankel matrix
    ``H[i, j] = x[i + j]`` of each ``x`` ``(..., n)`` with ``c = n - rows + 1`` columns (upper triangle
    left 0), in O(n^2) from the structure: ``G[i + 1, j + 1] = G[i, j] + x[i + c] x*[j + c]
    - x[i] x*[j]``, so column ``j + 1`` is column ``j`` shifted down one plus a rank-2 term,
    from the first column ``G[:, 0]`` (one matrix-vector product), instead of an O(n^3)
    matrix product (the same to rounding: 1.5e-15 of ``max |G|`` on a tissue-like FID)."""
    cols = x.shape[-1] - rows + 1
    gram = np.zeros((*x.shape[:-1], rows, rows), dtype=np.complex128)
    windows = np.lib.stride_tricks.sliding_window_view(x, cols, axis=-1)[..., :rows, :]
    gram[..., :, 0] = (windows @ x[..., :cols, None].conj())[..., 0]
    late, early = x[..., cols : cols + rows - 1], x[..., : rows - 1]
    steps = late[..., :, None] * late[..., None, :].conj()
    steps -= early[..., :, None] * early[..., None, :].conj()
    for j in range(1, rows):
        gram[..., j:, j] = gram[..., j - 1 : rows - 1, j - 1] + steps[..., j - 1 :, j - 1]
    return gram


def _powers(poles: np.ndarray, n: int) -> np.ndarray:
    """``poles ** arange(n)`` as columns ``(..., n, K)`` of poles ``(..., K)``, by running
    products (numpy's complex power calls ``exp`` and ``log`` per entry: 10-20 times slower;
    the products agree with it to ``n`` roundings, and a pole 0 gives 1, 0, 0, ... as the
    power does)."""
    out = np.empty((*poles.shape[:-1], n, poles.shape[-1]), dtype=np.complex128)
    if n:
        out[..., 0, :] = 1.0
        out[..., 1:, :] = poles[..., None, :]
        np.cumprod(out, axis=-2, out=out)
    return out


def band_components(
    fid: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float],
    n_points: int = HLSVD_POINTS,
    skip: int = 0,
    max_fwhm_hz: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """The HLSVD components of one FID ``(N,)`` whose frequency lies in ``band_ppm``, as
    ``sum_k c_k z_k^n`` over the FID's samples ``n``: ``(c (K,), z (K,))``. The decomposition
    uses samples ``skip .. skip + n_points`` only (``skip = 1`` leaves out a first point that is
    not the signal's value at t = 0) and its amplitudes are carried back to ``n = 0``. Only
    the components no broader than ``max_fwhm_hz`` (:func:`narrow_enough`; default: any)."""
    start = min(skip, fid.shape[-1] - 1)
    freq_hz, (amps, poles) = hlsvd_components(fid[start : start + n_points], dwell_time_s)
    ppm = axes.hz_to_ppm(freq_hz, spectrometer_freq_mhz, ppm_reference)
    inside = (ppm >= band_ppm[0]) & (ppm <= band_ppm[1]) & (np.abs(poles) > 0)
    inside &= narrow_enough(poles, dwell_time_s, max_fwhm_hz)
    return amps[inside] * poles[inside] ** (-start), poles[inside]


def narrow_enough(poles: np.ndarray, dwell_time_s: float, max_fwhm_hz: float) -> np.ndarray:
    """Whether the components of poles ``z`` (any shape; samples ``dwell_time_s`` apart) are at
    most ``max_fwhm_hz`` wide: their Lorentzian FWHM ``-ln|z| / (pi dt)`` (Hz), as
    ``|z| >= exp(-pi max_fwhm_hz dt)`` (``inf``: every pole, ``|z| >= 0``)."""
    return np.abs(poles) >= np.exp(-np.pi * max_fwhm_hz * dwell_time_s)


#: The band-limited HLSVD of :func:`remove_water` (:func:`band_limited_components`): the
#: band's centre mixed to 0 Hz, a low-pass filter that keeps the band and this margin (ppm) on
#: each side of it (3.6-6.0 ppm for the water band: the components whose tails reach into the
#: band are modelled, not left to bias the water's), ...
BAND_MARGIN_PPM = 0.8
#: ... the filtered samples decimated to a sampling rate of at least this many ppm (5.5 ppm:
#: 700 Hz at 3 T, so 4000 Hz data are decimated by 5, 2000 Hz by 2; a rate that decimation
#: would not at least halve keeps the full-band HLSVD), ...
DECIMATED_BANDWIDTH_PPM = 5.5
#: ... and decomposed into this many damped exponentials (the full band's 25 span 8-30 ppm;
#: 12 over the decimated band's 5.5-6.5 ppm give the water and its neighbours the same room or
#: more; docs/history/fit-log.md "Band-limited HLSVD (session 9)").
BAND_HLSVD_COMPONENTS = 12
#: Fewer decimated samples than this (a FID of fewer than ~250 samples at 4000 Hz) and the
#: full-band HLSVD is taken instead: the 12 components need a Hankel matrix of 24 rows or more.
MIN_DECIMATED_SAMPLES = 4 * BAND_HLSVD_COMPONENTS
#: Stop-band attenuation (dB) of the filter: what it lets through of a line that it aliases
#: into the band (the NAA singlet at 2 ppm: 1e-3 of it).
FILTER_ATTENUATION_DB = 60.0
#: The band-limited model is kept while its residual over the decimated samples is at most this
#: many times what the FID's noise alone would leave there (``sigma ||h|| sqrt(M)``, ``sigma``
#: from the spectrum's signal-free regions, :func:`scaloquant.signal.noise.noise_sd`); above,
#: the band holds more than 12 damped exponentials model (a water with broad non-Lorentzian
#: skirts) and the full-band HLSVD is taken. Measured: tissue-like 99 % at 3.8-3.9, max 4.4-4.9;
#: scanner 1.9-7.4 (docs/history/fit-log.md "Band-limited HLSVD (session 9)").
MAX_BAND_RESIDUAL_TO_NOISE = 4.0


def band_limited_components(
    fid: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float],
    max_fwhm_hz: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`band_components` returns, ``(c (K,), z (K,))`` with the FID's components
    in ``band_ppm`` as ``sum_k c_k z_k^n``, from a frequency-selective HLSVD of its first
    :data:`HLSVD_POINTS` samples ``x``: mixed by ``exp(-i w_c n)`` (``w_c`` the band's centre),
    filtered by the low-pass ``h`` (:func:`~scaloquant.signal.decimate.lowpass_taps`: the band and
    :data:`BAND_MARGIN_PPM` pass) and decimated by ``D``,
    ``y[m] = sum_j h[j] x[mD + j] exp(-i w_c (mD + j))``.

    Filtering keeps the poles: a component ``c z^n`` of ``x`` becomes ``c G(z') z'^(mD)`` of
    ``y`` with ``z' = z exp(-i w_c)`` and ``G(z') = sum_j h[j] z'^j``, exactly (the filter
    reads samples after ``mD``, so no sample at the FID's start is lost to its transient). So
    the HLSVD of ``y`` (:func:`hlsvd_components`, :data:`BAND_HLSVD_COMPONENTS`) gives
    ``w = z'^D`` and ``d = c G(z')``; ``z'`` is the ``D``-th root of ``w`` whose frequency lies
    in the decimated band (the band with its margins lies well inside it) and ``c = d / G(z')``.
    The Hankel matrix has ``M / 2`` rows for ``M ~ 512 / D`` decimated samples (4000 Hz: 48, not
    256). Where ``D`` would be 1 (a sampling rate below twice :data:`DECIMATED_BANDWIDTH_PPM`),
    the band with its margins does not fit the decimated band, or fewer than
    :data:`MIN_DECIMATED_SAMPLES` would be left, or where the 12 components leave more than
    :data:`MAX_BAND_RESIDUAL_TO_NOISE` times the noise's residual in ``y``
    (:func:`band_residual_to_noise`): the full-band HLSVD (:func:`band_components`)."""
    plan = _band_plan(
        fid.shape[-1], dwell_time_s, spectrometer_freq_mhz, ppm_reference, tuple(band_ppm)
    )
    if plan is None:
        # nothing to gain (D = 1), a band too wide for its margins, or too few samples left
        return band_components(fid, dwell_time_s, spectrometer_freq_mhz, ppm_reference, band_ppm,
                               max_fwhm_hz=max_fwhm_hz)  # fmt: skip
    y = plan.decimated(fid)
    freq_hz, (d, w) = hlsvd_components(y, plan.step * dwell_time_s, BAND_HLSVD_COMPONENTS)
    if not band_residual_to_noise(fid, y, d, w, plan.taps, dwell_time_s, spectrometer_freq_mhz,
                                  ppm_reference) <= MAX_BAND_RESIDUAL_TO_NOISE:  # fmt: skip
        # the band is no sum of 12 damped exponentials to the noise (or no noise estimate)
        return band_components(fid, dwell_time_s, spectrometer_freq_mhz, ppm_reference, band_ppm,
                               max_fwhm_hz=max_fwhm_hz)  # fmt: skip
    inside = plan.inside(freq_hz, w, max_fwhm_hz)
    return plan.undone(d[inside], w[inside])


class _BandPlan(NamedTuple):
    """The band-limited HLSVD's filter and decimation for one grid and band (see
    :func:`band_limited_components`): the band's centre ``centre_hz`` mixed to 0 Hz by
    ``shift = exp(-i w_c)`` per sample, the low-pass ``taps``, the decimation ``step``, over
    the first ``n`` samples ``dwell_time_s`` apart."""

    n: int
    step: int
    taps: np.ndarray
    centre_hz: float
    shift: complex
    spectrometer_freq_mhz: float
    ppm_reference: float
    band_ppm: tuple[float, float]
    dwell_time_s: float

    def decimated(self, fids: np.ndarray) -> np.ndarray:
        """``y[m] = sum_j h[j] x[mD + j] exp(-i w_c (mD + j))`` ``(..., M)`` of FIDs
        ``(..., N)``."""
        x = np.asarray(fids[..., : self.n], dtype=np.complex128)
        x = x * _powers(np.array([self.shift]), self.n)[:, 0]
        windows = np.lib.stride_tricks.sliding_window_view(x, self.taps.size, axis=-1)
        return windows[..., :: self.step, :] @ self.taps

    def inside(self, freq_hz: np.ndarray, poles: np.ndarray, max_fwhm_hz: float) -> np.ndarray:
        """Which decimated components (frequencies relative to the centre, poles ``w``) lie in
        the band and are at most ``max_fwhm_hz`` wide (:func:`narrow_enough` of ``w``, whose
        samples are ``step`` FID samples apart)."""
        ppm = axes.hz_to_ppm(freq_hz + self.centre_hz, self.spectrometer_freq_mhz,
                             self.ppm_reference)  # fmt: skip
        narrow = narrow_enough(poles, self.step * self.dwell_time_s, max_fwhm_hz)
        return (ppm >= self.band_ppm[0]) & (ppm <= self.band_ppm[1]) & (np.abs(poles) > 0) & narrow

    def undone(self, d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The FID's ``(c, z)`` of decimated components ``(d, w)`` (any shape): ``z'`` the
        ``D``-th root of ``w`` in the decimated band, ``c = d / G(z')``, ``z = z' e^{i w_c}``."""
        mixed = np.abs(w) ** (1.0 / self.step) * np.exp(1j * np.angle(w) / self.step)
        # G(z') = sum_j h[j] z'^j by Horner's rule, element by element (a matrix product's or
        # a reduction's rounding would depend on how many components are stacked with it)
        gain = np.full(mixed.shape, self.taps[-1], dtype=np.complex128)
        for tap in self.taps[-2::-1]:
            gain = gain * mixed + tap
        return d / gain, mixed / self.shift


@functools.lru_cache(maxsize=16)
def _band_plan(
    n_points: int,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float],
) -> _BandPlan | None:
    """The :class:`_BandPlan` of ``n_points``-sample FIDs on this grid (the same for every
    FID of a batch: computed once), or ``None`` where decimation cannot serve (see
    :func:`band_limited_components`)."""
    sampling_hz = 1.0 / dwell_time_s
    edges = np.sort(
        axes.ppm_to_hz(np.asarray(band_ppm, float), spectrometer_freq_mhz, ppm_reference)
    )
    centre_hz = float(edges.mean())
    pass_hz = float(edges[1] - edges[0]) / 2 + BAND_MARGIN_PPM * spectrometer_freq_mhz
    step = int(sampling_hz // (DECIMATED_BANDWIDTH_PPM * spectrometer_freq_mhz))
    # a line aliased by the decimation lands in the band only from beyond rate - pass_hz
    stop_hz = sampling_hz / max(step, 1) - pass_hz
    n = min(n_points, HLSVD_POINTS)
    if step < 2 or stop_hz <= pass_hz:
        return None
    taps = lowpass_taps(pass_hz, stop_hz, sampling_hz, FILTER_ATTENUATION_DB)
    if (n - taps.size) // step + 1 < MIN_DECIMATED_SAMPLES:
        return None
    taps.setflags(write=False)
    shift = complex(np.exp(-2j * np.pi * centre_hz * dwell_time_s))  # e^{-i w_c}
    return _BandPlan(n, step, taps, centre_hz, shift, spectrometer_freq_mhz, ppm_reference,
                     band_ppm, dwell_time_s)  # fmt: skip


def _band_limited_batch(
    fids: np.ndarray, plan: _BandPlan, dwell_time_s: float, max_fwhm_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`band_limited_components` of many FIDs ``(B, N)`` at once: ``(c (B, K), z (B, K),
    left (B,))``, the band's components first, ``c = 0`` and ``z = 0`` after them, with the
    decompositions batched (the Hankel Gram matrices, one batched eigendecomposition in numpy,
    the shift-invariance and amplitude least squares batched in torch): the same components to
    rounding. ``left`` 0: done; 1: its Gram matrix too ill-conditioned, left to
    :func:`band_limited_components` (the SVD); 2: its residual above
    :data:`MAX_BAND_RESIDUAL_TO_NOISE`, left to the full band (:func:`band_components`); the
    components of both are 0."""
    import torch

    y = plan.decimated(fids)  # (B, M)
    m = y.shape[-1]
    rows = m // 2
    k = min(BAND_HLSVD_COMPONENTS, rows)
    # numpy's eigh (LAPACK's zheevd matrix by matrix, numpy's BLAS on one thread here), not
    # torch's: under the command's MKL_CBWR=AUTO torch's (MKL's) eigenvectors moved by an ulp
    # with torch's threads, and the fit carried that to up to 4e-6 of some amplitudes
    # (docs/history/fit-log.md "The same numbers on any number of threads (session 30,
    # threads30)")
    values, vectors = np.linalg.eigh(_hankel_gram(y, rows), UPLO="L")
    vectors = torch.from_numpy(vectors)
    # the Gram matrix' subspace where _signal_subspace takes it
    gram = (values[:, -k] >= GRAM_MIN_SINGULAR_RATIO**2 * values[:, -1]) & (values[:, -1] > 0)
    uk = vectors[:, :, -k:]
    shifted = torch.linalg.lstsq(uk[:, :-1], uk[:, 1:], driver="gelsd").solution
    w = np.linalg.eigvals(shifted.numpy())
    w = np.where(np.abs(w) > 1.0, w / np.abs(w), w)
    vandermonde = torch.from_numpy(_powers(w, m))
    d = torch.linalg.lstsq(vandermonde, torch.from_numpy(y)[..., None], driver="gelsd")
    d = d.solution[..., 0].numpy()
    ratio = band_residual_to_noise(fids, y, d, w, plan.taps, dwell_time_s,
                                   plan.spectrometer_freq_mhz, plan.ppm_reference)  # fmt: skip
    done = gram & (ratio <= MAX_BAND_RESIDUAL_TO_NOISE)
    freq_hz = np.angle(w) / (2 * np.pi * plan.step * dwell_time_s)
    inside = plan.inside(freq_hz, w, max_fwhm_hz) & done[:, None]
    # the band's components first, as few columns as the FID with the most of them needs
    order = np.argsort(~inside, axis=-1, kind="stable")[:, : max(int(inside.sum(-1).max()), 1)]
    inside, d, w = (np.take_along_axis(a, order, axis=-1) for a in (inside, d, w))
    c, z = plan.undone(np.where(inside, d, 0.0), np.where(inside, w, 1.0))
    return (
        np.where(inside, c, 0.0),
        np.where(inside, z, 0.0),
        np.where(done, 0, np.where(gram, 2, 1)),
    )


def band_residual_to_noise(
    fid: np.ndarray,
    decimated: np.ndarray,
    amps: np.ndarray,
    poles: np.ndarray,
    taps: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
) -> float:
    """How well the band-limited HLSVD models its band: ``||y - sum_k d_k w_k^m||`` over the
    ``M`` decimated samples ``y`` (``decimated``; ``amps`` ``d``, ``poles`` ``w``; one FID
    ``(N,)``, a float, or many ``(B, N)``, ``(B,)``), over what
    the FID's noise alone leaves there, ``sigma ||h|| sqrt(M)`` (``h``: ``taps``; ``sigma``:
    the complex noise SD per sample of ``fid``, from :func:`scaloquant.signal.noise.noise_sd`
    of its spectrum, ``sqrt(2 / N)`` times it). About 1 where the band is a few damped
    exponentials in noise; infinite where the spectrum has no signal-free region."""
    from .noise import noise_sd

    sigma = noise_sd(fid, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    sigma = sigma * np.sqrt(2.0 / fid.shape[-1])
    m = decimated.shape[-1]
    residual = np.linalg.norm(decimated - (_powers(poles, m) @ amps[..., None])[..., 0], axis=-1)
    expected = sigma * np.linalg.norm(taps) * np.sqrt(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, residual / expected, np.where(residual == 0, 0.0, np.inf))
    return float(ratio) if ratio.ndim == 0 else ratio


def band_amplitude(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float],
    n_points: int = HLSVD_POINTS,
    threads: int = 1,
) -> np.ndarray:
    """The value at t = 0 of the lines of FIDs ``(..., N)`` in ``band_ppm``: the sum of their
    HLSVD components' amplitudes (:func:`band_components`, first point left out: it is the
    extrapolation of samples 1, 2, ... back to t = 0). The integral of those lines' spectrum,
    whatever their shape, without the signal outside the band. Shape ``(...)``, complex; 0 for
    an all-zero FID. ``threads``: FIDs decomposed at once (:func:`_each_fid`)."""
    x = np.asarray(fids, dtype=np.complex128)
    flat = x.reshape(-1, x.shape[-1])

    def amplitude(fid: np.ndarray) -> complex:
        amps, _ = band_components(
            fid, dwell_time_s, spectrometer_freq_mhz, ppm_reference, band_ppm, n_points, skip=1
        )
        return amps.sum()

    out = np.zeros(flat.shape[0], dtype=np.complex128)
    for b, value in _each_fid(amplitude, flat, threads):
        out[b] = value
    return out.reshape(x.shape[:-1])


def remove_water(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float] | None = None,
    threads: int = 1,
    full_band: bool = False,
    max_fwhm_hz: float | None = None,
) -> np.ndarray:
    """FIDs ``(B, N)`` (the orientation of :mod:`scaloquant.signal.axes`) less their HLSVD
    components in ``band_ppm`` (``None``: :data:`WATER_BAND_PPM`, read at the call) no broader
    than ``max_fwhm_hz`` (``None``: :data:`WATER_MAX_FWHM_HZ`, read at the call; ``inf``: any
    width, as before session 20), from the
    band-limited HLSVD (:func:`band_limited_components`; ``full_band=True``: the HLSVD of the
    whole band, :func:`band_components`, as before session 9). The band-limited HLSVDs of :data:`WATER_CHUNK` FIDs at a time are batched
    (:func:`_band_limited_batch`: 1.7-2.8 times less CPU than one FID at a time, the removed
    water the same to 1e-11 of it on the benchmark's, the in-vivo and the challenge's FIDs,
    ``benchmarks/diag_water_batched.py``); the FIDs it leaves (an ill-conditioned Gram matrix,
    a band that 12 components do not model) are decomposed one at a time as before.
    ``threads``: batches (at least one per thread, of at most :data:`WATER_CHUNK` FIDs) and
    FIDs decomposed at once (:func:`_each_fid`); the result depends neither on it nor on
    torch's threads (each FID's decomposition is the same to the bit in any batch, on any
    number of threads: ``tests/unit/test_signal_water.py``; until session 30 torch's
    eigendecomposition moved it by ~1e-13 of the water with torch's threads,
    docs/history/fit-log.md "The same numbers on any number of threads (session 30,
    threads30)")."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if band_ppm is None:
        band_ppm = WATER_BAND_PPM
    if max_fwhm_hz is None:
        max_fwhm_hz = WATER_MAX_FWHM_HZ
    out = np.array(fids, dtype=np.complex128, copy=True)
    n = out.shape[-1]
    plan = _band_plan(n, dwell_time_s, spectrometer_freq_mhz, ppm_reference, tuple(band_ppm))
    # 0: done; 1: left to `components`; 2: left to the full band
    left = np.full(out.shape[0], 2 if full_band else 1)
    if not full_band and plan is not None:
        nonzero = np.flatnonzero(np.any(out, axis=-1))
        size = min(WATER_CHUNK, -(-nonzero.size // threads))  # a chunk per thread at least

        def batch(lo: int) -> None:
            rows = nonzero[lo : lo + size]
            amps, poles, left[rows] = _band_limited_batch(out[rows], plan, dwell_time_s,
                                                          max_fwhm_hz)  # fmt: skip
            powers = _powers(poles, n)
            # one component after the other: a FID's result does not depend on how many
            # all-zero components its batch pads it with (a matrix product's rounding would)
            for k in range(amps.shape[-1]):
                out[rows] -= powers[..., k] * amps[:, k, None]

        with threadpool_limits(limits=1, user_api="blas"):
            # numpy's and torch's batched kernels release the GIL
            map_on_threads(batch, range(0, nonzero.size, max(size, 1)), threads)

    for status, components in ((1, band_limited_components), (2, band_components)):

        def water(fid: np.ndarray, components=components) -> np.ndarray:
            amps, poles = components(fid, dwell_time_s, spectrometer_freq_mhz, ppm_reference,
                                     band_ppm, max_fwhm_hz=max_fwhm_hz)  # fmt: skip
            return _powers(poles, n) @ amps

        if np.any(left == status):
            for b, fitted in _each_fid(water, np.where(left[:, None] == status, out, 0), threads):
                out[b] -= fitted
    return out


#: FIDs whose band-limited HLSVD :func:`remove_water` computes at a time, batched
#: (:func:`_band_limited_batch`; bounds the ``(B, N, K)`` powers of their poles).
WATER_CHUNK = 128


def _each_fid(
    work: Callable[[np.ndarray], T], fids: np.ndarray, threads: int
) -> list[tuple[int, T]]:
    """``(b, work(fids[b]))`` for the FIDs ``(B, N)`` that are not all zero, in order.

    BLAS and LAPACK on one thread (the matrices are small; the fit does the same), and with
    ``threads > 1`` the FIDs shared among that many threads: the decomposition's LAPACK calls
    release the GIL (:func:`_leading_eigh`, numpy's), and each FID is computed whole by one
    thread, so the results are bit for bit those of one thread whatever the count."""
    rows = [b for b in range(fids.shape[0]) if np.any(fids[b])]
    with threadpool_limits(limits=1, user_api="blas"):
        return list(zip(rows, map_on_threads(lambda b: work(fids[b]), rows, threads), strict=True))
