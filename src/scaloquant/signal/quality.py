"""The quality figures of a batch of spectra, and the QC flags they and a fit raise.

What a user checks before trusting an estimate (LCModel prints them under its table, FSL-MRS
and Osprey in their QC reports): the signal-to-noise ratio, the linewidth and, after a fit,
the residual; and, before anything, whether there is a brain spectrum at all (not an empty
FID, not a water reference). Everything here works on the unnormalised spectrum of
:func:`scaloquant.signal.axes.spectrum` and on the last axis of a batch ``(..., n_points)``.

:func:`quality_figures` forms every figure of :class:`QualityFigures` from one pair of FFTs a
block of spectra; :func:`qc_flags` and :func:`fit_flags` turn them, and a fit's figures, into
the flags of :data:`FLAG_NAMES` (:func:`water_scale_flags` the water-scaled concentrations); :func:`reference_off` and :func:`reference_correction_ppm`
read the data's own singlets against where an estimate put them (LCModel's referencing).

The measures are in the modules below this one (each imports only those before it):

* :mod:`.qc_spectra`: the spectra the checks read (an FFT and a zero-filled one, formed once),
  their columns in ppm order, the blocks a batch is read in and their threads;
* :mod:`.median`: a spectrum's lines, its magnitude less its running median;
* :mod:`.noise`: the noise SD, and a fit residual's SD over it (``residual_over_noise``);
* :mod:`.mirror`: the mirror test;
* :mod:`.singlets`: where the data's own NAA, Cr and Cho singlets are;
* :mod:`.snr_fwhm`: peak heights, the SNR and the FWHM;
* :mod:`.water_peak`: a water reference given as data, and water just above a fit window.

Each flag's threshold, with its measurements on the shared spectra: ``empty`` (the FID is all
zeros), ``no_signal`` :data:`NO_SIGNAL_SNR`, ``water`` :data:`~.water_peak.WATER_RATIO`,
``mirrored`` :data:`~.mirror.MIRRORED_RATIO`, ``too_broad`` :data:`TOO_BROAD_PPM`, ``lipids``
:data:`LIPIDS_RATIO`,
``residual_large`` :data:`RESIDUAL_LARGE`, ``misfit`` :data:`RESIDUAL_OVER_NOISE_MAX`,
``baseline_cancels`` and ``no_metabolites`` :data:`METABOLITES_OVER_DATA` and
:data:`METABOLITES_OVER_DATA_MIN`, ``water_near_window``
:data:`~.water_peak.WATER_NEAR_WINDOW_RATIO`, ``reference_off`` :data:`REFERENCE_OFF_PPM`,
:data:`REFERENCE_OFF_UNFITTED_PPM`, :data:`REFERENCE_PROFILE_MIN` and
:data:`REFERENCE_SINGLET_SNR`, ``water_scale_off`` :data:`WATER_SCALED_MM_MIN` and
:data:`WATER_SCALED_MM_MAX`. The three that the mirror and water tests read themselves sit
beside those tests.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import qc_spectra
from .median import _line_peaks, _read_range
from .mirror import METABOLITE_WINDOW_PPM, _mirror_from_peaks, looks_mirrored
from .noise import _noise_sd
from .qc_spectra import (
    _quality_blocks,
    _side_by_side,
    _Spectra,
    _spectra,
)
from .singlets import SINGLET_SLACK_PPM, _singlets
from .snr_fwhm import CR_WINDOW_PPM, NAA_WINDOW_PPM, _heights, _peak_segments, _snr, _widths
from .water_peak import (
    WATER_NEAR_WINDOW_RATIO,
    WATER_WINDOW_PPM,
    _tallest_singlet,
    _water_ratio,
    looks_like_water,
)

#: SNR below which a spectrum has nothing to measure (``no_signal``). Pure complex Gaussian
#: noise gives SNRs of 2-6 by this definition (the largest of a few hundred Rayleigh values
#: over the NAA window: median 2.9-3.2, 99.9th percentile 4.7-5.4, largest 5.9 over 2000 noise
#: spectra on each of five 3 T grids of the shared data); the weakest real spectra give 11.5
#: (the lowest-SNR ISMRM 2016 challenge spectrum, dataset27, and the metabolite-nulled
#: macromolecule spectra of the Osprey examples), brain spectra usually 30-150. 8 sits between
#: (about LCModel's S/N 3-4, see :func:`~.snr_fwhm.snr`).
NO_SIGNAL_SNR = 8.0
#: NAA FWHM above which the lines are too broad for a reliable fit (``too_broad``), ppm: the
#: limit of LCModel's manual for a 1H brain spectrum (its FWHM "should be < 0.1 ppm"). The
#: shared in-vivo spectra give 0.043-0.056 ppm; the ISMRM 2016 challenge spectra 0.040-0.16,
#: its broadened ones (datasets 3, 25, 26, 28) above the limit.
TOO_BROAD_PPM = 0.1
#: Where the lipids' 1.3 ppm line (and lactate's 1.31 ppm doublet) stands, ppm: between MM12's
#: and MM14's peaks (1.21, 1.43 ppm), which brain spectra hold at a fraction of NAA's height.
LIPID_WINDOW_PPM = (1.2, 1.45)
#: The tallest line of :data:`LIPID_WINDOW_PPM` over the taller of NAA's and creatine's
#: (``lipid_ratio``) above which lipids or lactate dominate the spectrum (``lipids``): scalp lipids
#: let in by the voxel's placement or its outer-volume suppression, or a lesion's lipids and
#: lactate. Measured (session 34, newcomer34; each file's average of its transients): the
#: scanner spectra of the shared data 0.06-0.24, their metabolite-nulled macromolecule spectra
#: 0.52-0.56, the ISMRM 2016 challenge datasets 1-24 0.02-0.26 and its tumour-like spectra with
#: lipids, datasets 25-28, 2.73-4.16; 512 ``invivo`` simulations (SNR 5-150, seed 0) 0.01-0.77
#: without lipids, 0.04-2.54 with (17 of 111 above 1). A line as tall as the tallest singlet:
#: twice the metabolite-nulled spectra's, 2.7 times under the challenge's lipid spectra.
LIPIDS_RATIO = 1.0
#: Relative fit residual ``|data - model| / |data|`` over the fit window above which the fit did
#: not explain the spectrum (``residual_large``). ``scaloquant fit`` with the embedded basis
#: gives 0.03-0.30 on the shared spectra (ISMRM 2016 challenge datasets 1, 3, 7, 12, 25, 27,
#: 28; the spant, suspect and Osprey in-vivo spectra, the last two with --force): the highest
#: for low SNR (residual mostly noise) and in-vivo baselines. Twice the largest.
RESIDUAL_LARGE = 0.6
#: The fit residual's SD over the data's noise SD (:func:`~.noise.residual_over_noise`) above which
#: the model does not describe the spectrum down to its noise (``misfit``): a line, lineshape or
#: baseline it lacks, whose share of the signal the estimates may carry beyond their CRLB.
#: Measured (docs/history/fit-log.md "The residual against the noise (session 32,
#: `misfit32`)"): the scanner spectra of the shared data, whose ratios agree with LCModel's,
#: 1.24-1.54; the 28 ISMRM 2016 challenge spectra 0.87-2.73; 1024 tissue-like ``invivo`` spectra
#: (SNR 5-150) fitted 0.83-2.64, by a physics-head model 0.83-2.19. The default simulator's
#: spectra (amplitudes 0-1) fitted with the ``invivo`` model, which lacks their per-metabolite
#: lineshapes: the rows with a metabolite more than 0.5 off the truth 0.93-16, the others
#: 0.89-1.84; above 3, 72 of 192 such rows (26 of them flagged by nothing else) and none of the
#: others (a physics-head model's: 48 of 191, 38; none). Above every spectrum of the first
#: three sets.
RESIDUAL_OVER_NOISE_MAX = 3.0
#: A physics-head model's polish whose final model misses more than this share of the data's
#: norm over the fit window beyond the noise (:func:`~.noise.misfit_beyond_noise`) may have
#: stopped in a worse minimum than the fit reaches (``polish_minimum``; ``quantify``'s default
#: fits such a spectrum again as ``fit`` fits it). The rule: above the largest share the fit
#: itself leaves at its own minimum on the spectra it describes, so that a polish that ends
#: where the fit ends is not sent to the fit: the seven scanner spectra of the shared data
#: (0.046-0.078; their ratios agree with LCModel's) and 600 tissue-like ``invivo`` spectra at
#: SNR 10, 30 and 100 (at most 0.054, 99 % below 0.023), rounded up. Where a polish stopped in
#: a worse minimum (its residual SD 10 % above the fit's on the same spectrum), a 3-step
#: ``tiny`` model's on the 28 ISMRM 2016 challenge spectra left 0.088-0.36 (dataset 9: 0.088),
#: where the fit leaves 0 on datasets 1-21. docs/history/physics-models-log.md "A polish in a
#: worse minimum than the fit's (session 35, `polishqc35`)".
POLISH_MISFIT_MAX = 0.08

#: The fitted metabolites' norm over the data's (over the fit window) above which they and the
#: baseline cancel each other (``baseline_cancels``). ``scaloquant fit`` gives 0.41-1.18 on the
#: shared spectra (ISMRM 2016 challenge datasets 1-23 and 25-28: 0.76-1.09; the spant, Osprey
#: TE 30/35 and metabolite-nulled, and suspect in-vivo spectra: 0.41-1.18) and 7.95 on challenge
#: dataset 24, whose metabolites drown in a water artefact. Between them.
METABOLITES_OVER_DATA = 2.0
#: ... and below which the fitted metabolites (macromolecules and lipids included) explain
#: almost none of a spectrum that has signal (``no_metabolites``): what ``baseline_cancels``
#: misses, a baseline or an artefact that took the signal with no metabolites of the opposite
#: sign under it, the amplitudes near 0. The same shared spectra give 0.41 and above,
#: metabolite-nulled ones included (their macromolecules are in the model): none is flagged.
#: About 4x below the lowest.
METABOLITES_OVER_DATA_MIN = 0.1

#: The total water-scaled concentration of a spectrum (the sum of its ``_mM`` columns: every
#: metabolite with a molarity, macromolecules and lipids left out), mM, outside which it cannot
#: be tissue's or a phantom's (``water_scale_off``): the water reference is not this spectrum's
#: (a wrong scale, a wrong MRSI voxel, a file that is not its water). ``scaloquant fit`` with
#: each file's own water reference (session 36, conc36): the 28 ISMRM 2016 challenge spectra
#: 52.8-82.4 mM for datasets 1-24, 117-169 mM for the tumour-like 25-27 and 1690 mM for 28 (its
#: broad lines and lipids fitted as metabolites), its Cr_10mM phantom 10.8 mM; the scanner
#: spectra with a water reference 46.5-74.5 mM (spant's Philips TE 30, Osprey's TE 35 with its
#: basis, Osprey's TE 30 and their metabolite-nulled spectra, whose macromolecules the fit
#: takes partly as metabolites). The literature (de Graaf, In Vivo NMR Spectroscopy, brain
#: tCr about 5-10 mM and tNAA 8-17 mM) puts a brain's tCr and tNAA alone at 13-27 mM. A wide
#: margin on both sides, so that no real spectrum is flagged: the lower limit is 10.8x under
#: the phantom's (the lowest measured) and 13x under the brain's tCr + tNAA; the upper one is
#: 12x over challenge dataset 28's and 240x over the brain spectra's largest. A water
#: reference scaled by 1e-6 (session 36's audit: NAA 13,037,523 mM) or 1e6 is flagged, and so
#: is any error of 1000x on a brain spectrum.
WATER_SCALED_MM_MIN = 1.0
#: ... and above which.
WATER_SCALED_MM_MAX = 20000.0


#: How far (ppm) the data's own singlets (:func:`~.singlets.singlet_shift`) may sit from where the
#: estimate put them before the spectrum is flagged ``reference_off``: about one linewidth of a
#: brain spectrum (NAA FWHM 0.043-0.056 ppm in the shared scanner spectra), so singlets further off
#: were not fitted. Where a fit put them: unmoved and moved spectra that it fitted right are
#: 0.01-0.03 ppm from it (docs/history/fit-log.md "A reference that is off (session 24)").
REFERENCE_OFF_PPM = 0.03
#: Where no fit says where the singlets are (a network's estimate, or a spectrum not fitted),
#: they are expected at their own shifts within this, ppm: the referencing errors and drift the
#: default simulator trains the networks with (+-0.1 ppm,
#: :class:`scaloquant.simulate.prior.InvivoPrior`'s ``shift_range_ppm``).
REFERENCE_OFF_UNFITTED_PPM = 0.1
#: ... that is, where the singlets' score (:func:`~.singlets.singlet_shift`'s profile) stays below
#: this fraction of its best within that distance: the pattern that stands out is elsewhere.
REFERENCE_PROFILE_MIN = 0.5
#: ... provided they stand clearly: the second tallest singlet at least this many noise SDs
#: (:func:`~.singlets.singlet_shift`'s strength; the ``no_signal`` limit, a line as tall as a
#: spectrum needs to count as signal). Pure complex Gaussian noise gives at most 3.3 (4000 spectra
#: on each of four grids of the shared data), brain spectra 40-190.
REFERENCE_SINGLET_SNR = NO_SIGNAL_SNR

#: Every quality flag (the ``qc`` column holds them separated by ``;``); their meanings for
#: users are :data:`scaloquant.quantify.results.QC_FLAGS`.
FLAG_NAMES: tuple[str, ...] = (
    "empty",
    "no_signal",
    "water",
    "mirrored",
    "too_broad",
    "lipids",
    "residual_large",
    "misfit",
    "polish_minimum",
    "baseline_cancels",
    "no_metabolites",
    "water_near_window",
    "reference_off",
    "water_scale_off",
)
#: Flags whose spectra are not quantified: their estimates are NaN, never a number.
UNMEASURABLE_FLAGS = ("empty", "no_signal", "water")


class QualityFigures(NamedTuple):
    """The quality figures of a batch of spectra, each ``(...)`` (see the functions named).

    ``snr``: :func:`~.snr_fwhm.snr`; ``fwhm_ppm``: NAA FWHM (:func:`~.snr_fwhm.fwhm_ppm`), or the
    water peak's for a spectrum that looks like water (:func:`~.water_peak.looks_like_water`);
    ``fwhm_hz``: the same in Hz; ``water_ratio``: :func:`~.water_peak.water_ratio`;
    ``lipid_ratio``: the tallest line of :data:`LIPID_WINDOW_PPM` over the taller of NAA's and
    creatine's, each less its local baseline (:func:`~.snr_fwhm.peak_height`'s measure; NaN where
    the axis misses both singlets' windows); ``mirror_ratio``: :func:`~.mirror.mirror_ratio` (1H only, else NaN); ``empty``: the FID is all
    zeros; ``singlet_shift_ppm``, ``singlet_strength``, ``singlet_profile``:
    :func:`~.singlets.singlet_shift` (1H only, else NaN; the profile ``(..., L)``, ``L`` 0 where the
    axis misses the search).
    """

    snr: np.ndarray
    fwhm_ppm: np.ndarray
    fwhm_hz: np.ndarray
    water_ratio: np.ndarray
    lipid_ratio: np.ndarray
    mirror_ratio: np.ndarray
    empty: np.ndarray
    singlet_shift_ppm: np.ndarray
    singlet_strength: np.ndarray
    singlet_profile: np.ndarray


def quality_figures(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    *,
    proton: bool = True,
) -> QualityFigures:
    """Every figure of :class:`QualityFigures` for FIDs ``(..., n_points)``, from one pair of
    FFTs. ``proton``: the data are 1H (the ppm windows are those of 1H brain spectra; other
    nuclei get NaN); :func:`~.mirror.mirror_ratio` from the same single-precision spectra.

    Every figure is a spectrum's own, so the batch is taken :data:`~.qc_spectra.QUALITY_BLOCK`
    spectra at a time (the same numbers, bit for bit, as in one pass), and the blocks side by side
    on as many threads as ``scipy.fft`` has workers (the caller's ``scipy.fft.set_workers``; 1 by
    default), each block's FFTs then on its thread alone: with the blocks one after another the
    FFT's workers sat idle through the rest of each block (16384 spectra, 2 threads: 1.05 ->
    0.78 s of wall, the CPU the same;
    docs/history/physics-models-log.md "quantify's CPU work around the network (session 19,
    `qspeed19`)")."""
    fids = np.asarray(fids)
    batch = fids.shape[:-1]
    if not proton:
        # every figure NaN by name (a new field is NaN here too), but the empty flag, which
        # needs no ppm window, and the singlet profile, of no points
        figures = dict.fromkeys(QualityFigures._fields, np.full(batch, np.nan))
        figures["empty"] = ~np.any(fids != 0, axis=-1)
        figures["singlet_profile"] = np.full((*batch, 0), np.nan)
        return QualityFigures(**figures)
    grid = (dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    # the block size read where it is set (tests set it there)
    if int(np.prod(batch, dtype=int)) <= qc_spectra.QUALITY_BLOCK:
        flat = fids.reshape(-1, fids.shape[-1])
        figures = _block_figures(flat, *grid)
        return QualityFigures(*(v.reshape(batch + v.shape[1:]) for v in figures))
    figures = _side_by_side(lambda b: _block_figures(b, *grid), _quality_blocks(fids))
    return QualityFigures(
        *(np.concatenate(v).reshape(batch + v[0].shape[1:]) for v in zip(*figures, strict=True))
    )


def _block_figures(
    fids: np.ndarray, dwell_time_s: float, spectrometer_freq_mhz: float, ppm_reference: float
) -> QualityFigures:
    """:func:`quality_figures` of 1H FIDs ``(B, n_points)``, in one pass."""
    batch = fids.shape[:-1]
    empty = ~np.any(fids != 0, axis=-1)
    grid = (dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    s = _spectra(fids, *grid)
    flat = (s.raw.shape[0],)
    naa = _peak_segments(s.ppm_zf, s.raw_zf, NAA_WINDOW_PPM, True)
    width = _widths(naa, batch)
    cr = _peak_segments(s.ppm_zf, s.raw_zf, CR_WINDOW_PPM, True)
    naa_height, cr_height = _heights(naa, flat), _heights(cr, flat)
    ratio = _water_ratio(s, _tallest_singlet(s, naa_height, cr_height)).reshape(batch)
    if cr is not None:
        taller = (cr_height > naa_height).reshape(batch)
        width = np.where(taller, _widths(cr, batch), width)
    lipids = _heights(_peak_segments(s.ppm_zf, s.raw_zf, LIPID_WINDOW_PPM, True), flat)
    with np.errstate(divide="ignore", invalid="ignore"):
        lipid_ratio = (lipids / np.fmax(naa_height, cr_height)).reshape(batch)
    if looks_like_water(ratio).any():  # a water reference's width is its water peak's
        water = _peak_segments(s.ppm_zf, s.raw_zf, WATER_WINDOW_PPM, False)
        width = np.where(looks_like_water(ratio), _widths(water, batch), width)
    noise = _noise_sd(s)
    mirror, shift, strength, profile = _lines(s, noise, fids.shape[-1], *grid)
    return QualityFigures(
        snr=_snr(naa_height, noise).reshape(batch),
        fwhm_ppm=width,
        fwhm_hz=width * spectrometer_freq_mhz,
        water_ratio=ratio,
        lipid_ratio=lipid_ratio,
        mirror_ratio=mirror.reshape(batch),
        empty=empty,
        singlet_shift_ppm=shift.reshape(batch),
        singlet_strength=strength.reshape(batch),
        singlet_profile=profile.reshape(*batch, -1),
    )


def _lines(
    s: _Spectra,
    noise_sd: np.ndarray,
    n_points: int,
    dwell_time_s: float,
    freq_mhz: float,
    ppm_reference: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~.mirror.mirror_ratio` and :func:`~.singlets.singlet_shift` of the spectra ``s``, from
    one running median where the mirror check's covers the singlets' (it does wherever the
    spectral width reaches the mirror window)."""
    low, high = METABOLITE_WINDOW_PPM
    grid = (n_points, dwell_time_s, freq_mhz)
    if s.ppm.min() > low or s.ppm.max() < 2 * ppm_reference - low:
        mirror = np.full(s.raw.shape[0], np.nan)
        return (mirror, *_singlets(s.raw, s.ppm, noise_sd, *grid))
    inside = (s.ppm >= low) & (s.ppm <= high)
    mirrored = (s.ppm >= 2 * ppm_reference - high) & (s.ppm <= 2 * ppm_reference - low)
    lo, hi = _read_range(inside | mirrored, *grid)
    peaks = _line_peaks(s.raw, lo, hi, *grid)
    mirror = _mirror_from_peaks(peaks, inside[lo:hi], mirrored[lo:hi])
    return (mirror, *_singlets(s.raw, s.ppm, noise_sd, *grid, peaks=(peaks, lo)))


def qc_flags(figures: QualityFigures) -> list[list[str]]:
    """The :data:`FLAG_NAMES` of each spectrum known before any fit (all but
    ``residual_large``, see :func:`fit_flags`), in C order of the batch.

    An empty spectrum gets ``empty`` alone; one that looks like water gets ``water`` without
    ``no_signal`` (its NAA window holds noise beside a huge peak); ``too_broad`` and ``lipids``
    only for a spectrum with none of the others (the width and the lines of noise, of a water
    reference or of a mirrored spectrum mean nothing).
    """
    n = int(np.size(figures.empty))
    names = ("empty", "water_ratio", "snr", "mirror_ratio", "fwhm_ppm", "lipid_ratio")
    flat = {name: np.asarray(getattr(figures, name)).reshape(n) for name in names}
    # each test on the whole batch at once (a loop of scalar tests took 0.5 s for 4096 spectra)
    empty = flat["empty"].tolist()
    water = looks_like_water(flat["water_ratio"]).tolist()
    no_signal = (flat["snr"] < NO_SIGNAL_SNR).tolist()  # NaN (no noise region): not flagged
    mirrored = looks_mirrored(flat["mirror_ratio"]).tolist()
    broad = (flat["fwhm_ppm"] > TOO_BROAD_PPM).tolist()
    lipids = (flat["lipid_ratio"] > LIPIDS_RATIO).tolist()  # NaN: not flagged
    out = []
    for i in range(n):
        if empty[i]:
            out.append(["empty"])
            continue
        flags = []
        if water[i]:
            flags.append("water")
        elif no_signal[i]:
            flags.append("no_signal")
        if mirrored[i]:
            flags.append("mirrored")
        measured = not flags
        if measured and broad[i]:
            flags.append("too_broad")
        if measured and lipids[i]:
            flags.append("lipids")
        out.append(flags)
    return out


def fit_flags(
    flags: list[list[str]],
    fit_residual: np.ndarray | None,
    fit_linewidth_ppm: np.ndarray | None = None,
    metabolites_over_data: np.ndarray | None = None,
    water_near_window: np.ndarray | None = None,
    *,
    singlets: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    placed_shift_ppm: np.ndarray | None = None,
    no_creatine: np.ndarray | None = None,
    residual_over_noise: np.ndarray | None = None,
    polish_stopped: np.ndarray | None = None,
) -> list[list[str]]:
    """``flags`` with what a fit tells (new lists; ``None``: no such figure, nothing added):
    ``residual_large`` where the relative fit residual ``(N,)`` exceeds
    :data:`RESIDUAL_LARGE`; ``misfit`` where the residual over the noise
    (:func:`~.noise.residual_over_noise` ``(N,)``; NaN: nothing added) exceeds
    :data:`RESIDUAL_OVER_NOISE_MAX`; ``too_broad`` where the fitted lineshape's FWHM ``(N,)`` (of
    its NAA singlet) exceeds :data:`TOO_BROAD_PPM` though the spectrum's own NAA did not show it (a
    spectrum whose metabolites drown in an artefact: the fit broadened them to follow it, and a
    baseline of the opposite sign cancelled them, ISMRM 2016 challenge dataset 24);
    ``baseline_cancels`` where the fitted metabolites' norm over the data's ``(N,)`` exceeds
    :data:`METABOLITES_OVER_DATA`, ``no_metabolites`` where it is below
    :data:`METABOLITES_OVER_DATA_MIN` (NaN: nothing added); ``water_near_window`` where the
    water just above the fit window that the fit saw (:func:`~.water_peak.water_near_window`
    ``(N,)``) exceeds :data:`~.water_peak.WATER_NEAR_WINDOW_RATIO`; ``reference_off``
    (:func:`reference_off`) from the data's ``singlets`` (:func:`~.singlets.singlet_shift`'s profile
    ``(N, L)``, :func:`~.singlets.singlet_lags_ppm` ``(L,)`` and strength ``(N,)``), where the
    estimate put them (``placed_shift_ppm`` ``(N,)``, NaN: not fitted; ``None``: no fit) and
    whether it left no creatine (``no_creatine`` ``(N,)``); ``polish_minimum`` where
    ``polish_stopped`` ``(N,)`` (a physics-head model's polish kept where it may have stopped in
    a worse minimum than the fit's: :func:`scaloquant.quantify.checks.polish_stopped`)."""
    n = len(flags)
    off = (
        reference_off(*singlets, placed_shift_ppm, no_creatine)
        if singlets is not None
        else np.zeros(n, dtype=bool)
    ).reshape(n)
    residual = None if fit_residual is None else np.asarray(fit_residual).reshape(n)
    misfit = (
        np.zeros(n, dtype=bool)
        if residual_over_noise is None
        else np.nan_to_num(np.asarray(residual_over_noise, dtype=float).reshape(n))
        > RESIDUAL_OVER_NOISE_MAX
    )
    width = None if fit_linewidth_ppm is None else np.asarray(fit_linewidth_ppm).reshape(n)
    over = None if metabolites_over_data is None else np.asarray(metabolites_over_data).reshape(n)
    near = None if water_near_window is None else np.asarray(water_near_window).reshape(n)
    out = []
    for i, f in enumerate(flags):
        f = list(f)
        if "empty" not in f:
            if residual is not None and residual[i] > RESIDUAL_LARGE:
                f.append("residual_large")
            if misfit[i]:
                f.append("misfit")
            if polish_stopped is not None and polish_stopped[i]:
                f.append("polish_minimum")
            measurable = not any(flag in UNMEASURABLE_FLAGS for flag in f)
            if width is not None and measurable and "too_broad" not in f:
                if width[i] > TOO_BROAD_PPM:
                    f.append("too_broad")
            if over is not None and measurable and over[i] > METABOLITES_OVER_DATA:
                f.append("baseline_cancels")
            if over is not None and measurable and over[i] < METABOLITES_OVER_DATA_MIN:
                f.append("no_metabolites")
            if near is not None and measurable and near[i] > WATER_NEAR_WINDOW_RATIO:
                f.append("water_near_window")
            if off[i] and "water" not in f:
                f.append("reference_off")
        out.append(f)
    return out


def water_scale_flags(flags: list[list[str]], concentrations_mM: np.ndarray) -> list[list[str]]:
    """``flags`` with ``water_scale_off`` (new lists) where the total water-scaled
    concentration, the sum of ``concentrations_mM`` ``(N, M)`` (NaN columns left out: the
    macromolecules and lipids), lies outside :data:`WATER_SCALED_MM_MIN` ..
    :data:`WATER_SCALED_MM_MAX`. Nothing where every column is NaN (no water reference, a
    voxel without water signal, a spectrum not quantified) or where the fit found no metabolites
    (``no_metabolites`` already says so)."""
    mM = np.asarray(concentrations_mM, dtype=float).reshape(len(flags), -1)
    known = np.isfinite(mM).any(axis=1)
    total = np.nansum(mM, axis=1)
    off = known & ((total < WATER_SCALED_MM_MIN) | (total > WATER_SCALED_MM_MAX))
    return [
        [*f, "water_scale_off"] if off[i] and "no_metabolites" not in f else list(f)
        for i, f in enumerate(flags)
    ]


def reference_off(
    singlet_profile: np.ndarray,
    lags_ppm: np.ndarray,
    singlet_strength: np.ndarray,
    placed_shift_ppm: np.ndarray | None = None,
    no_creatine: np.ndarray | None = None,
) -> np.ndarray:
    """``(N,)`` True where a spectrum's own singlets (:func:`~.singlets.singlet_shift`: its profile
    ``(N, L)`` over the shifts ``lags_ppm`` ``(L,)``, its strength ``(N,)``) stand clearly
    (:data:`REFERENCE_SINGLET_SNR`) and either are not where the estimate put them, or a fit
    left no creatine (``no_creatine`` ``(N,)``: total creatine 0 beside clear singlets, every
    ratio NaN; read only where ``placed_shift_ppm`` is known: a network that gives no creatine
    fails on its own, the reference aside: a 6-step physics model did on 2 of 3 spectra of the
    default simulator).

    Not where the estimate put them: within :data:`REFERENCE_OFF_PPM` of ``placed_shift_ppm``
    ``(N,)`` (a fit's; where NaN or ``None``, no fit: within :data:`REFERENCE_OFF_UNFITTED_PPM`
    of their own shifts) the profile stays below :data:`REFERENCE_PROFILE_MIN` of its best: the
    pattern that stands out is elsewhere. A spectrum whose lines also give a near-equal pattern
    where the estimate put them (a spectrum unlike a brain's, whose Cho lines at Cr's place and
    another line at Cho's give one 0.15-0.2 ppm off) is not flagged.

    What LCModel checks before its fit (its referencing, and its warning when the shift it needs
    is at the edge of its search), and what a wrong ``ppm_reference`` or scanner frequency gives:
    a fit started at the wrong alignment, whose singlets sit on the wrong lines."""
    profile = np.asarray(singlet_profile, dtype=float)
    n = profile.shape[0]
    if profile.shape[1] == 0:  # the axis missed the search: nothing known
        return np.zeros(n, dtype=bool)
    clear = np.nan_to_num(np.asarray(singlet_strength, dtype=float)) >= REFERENCE_SINGLET_SNR
    if placed_shift_ppm is None:
        placed_shift_ppm = np.full(n, np.nan)
    placed = np.asarray(placed_shift_ppm, dtype=float).reshape(n)
    limit = np.where(np.isnan(placed), REFERENCE_OFF_UNFITTED_PPM, REFERENCE_OFF_PPM)
    near = np.abs(np.asarray(lags_ppm)[None, :] - np.nan_to_num(placed)[:, None]) <= limit[:, None]
    there = np.where(near, np.nan_to_num(profile, nan=-np.inf), -np.inf).max(
        axis=1, initial=-np.inf
    )
    off = there < REFERENCE_PROFILE_MIN
    if no_creatine is not None:  # a fit's: a network's zero is the network's own failure
        off |= np.asarray(no_creatine, dtype=bool).reshape(n) & ~np.isnan(placed)
    return clear.reshape(n) & off


#: A spectrum's singlets further than this from their shifts (ppm) are corrected by the
#: referencing (:func:`reference_correction_ppm`): the referencing range the simulators draw
#: and the networks train with (:data:`REFERENCE_OFF_UNFITTED_PPM`, +-0.1 ppm) and the singlet
#: search's slack (:data:`~.singlets.SINGLET_SLACK_PPM`), so that no spectrum of theirs is moved;
#: the unmoved scanner spectra of the shared data stand at -0.048..-0.015 ppm, the 28 challenge
#: spectra at -0.01..+0.03.
REFERENCING_PPM = REFERENCE_OFF_UNFITTED_PPM + SINGLET_SLACK_PPM


def reference_correction_ppm(figures: QualityFigures, lags_ppm: np.ndarray) -> np.ndarray:
    """``(N,)`` the correction (ppm) to add to each spectrum's ppm reference so that its own
    singlets (:func:`~.singlets.singlet_shift`) read at their shifts, 0 where none is made:
    LCModel's referencing before its fit (its ``DOREFS``), on the quality figures ``figures`` (flat,
    ``(N,)`` and ``(N, L)``) over the shifts ``lags_ppm`` ``(L,)``.

    Made where the singlets stand clearly (:data:`REFERENCE_SINGLET_SNR`), more than
    :data:`REFERENCING_PPM` from their shifts, and not at their shifts too: the score within
    :data:`REFERENCE_OFF_PPM` of 0 stays below :data:`REFERENCE_PROFILE_MIN` of its best
    (:func:`reference_off` as if a fit had put them there), so that a spectrum whose lines give
    a near-equal pattern at their own shifts (the default simulator's random concentrations:
    Cho's lines at Cr's place) is not moved. Not for a spectrum that looks like water or is
    empty (its singlets are not metabolites'). The correction is minus the data's singlet
    shift, to the half bin; a spectrum left as it is gets exactly 0."""
    profile = np.asarray(figures.singlet_profile, dtype=float)
    n = profile.shape[0]
    strength = np.asarray(figures.singlet_strength).reshape(n)
    off = reference_off(profile, lags_ppm, strength, np.zeros(n))
    shift = np.asarray(figures.singlet_shift_ppm, dtype=float).reshape(n)
    off &= np.abs(np.nan_to_num(shift)) > REFERENCING_PPM
    off &= ~np.asarray(figures.empty, dtype=bool).reshape(n)
    off &= ~looks_like_water(np.asarray(figures.water_ratio).reshape(n))
    return np.where(off, -np.nan_to_num(shift), 0.0)


def unmeasurable(flags: list[list[str]]) -> np.ndarray:
    """``(N,)`` True for the spectra whose flags say there is nothing to quantify
    (:data:`UNMEASURABLE_FLAGS`): their estimates must be NaN."""
    return np.array([any(f in UNMEASURABLE_FLAGS for f in fl) for fl in flags], dtype=bool)
