"""What ``quantify`` and ``fit`` report per spectrum: estimates, ratios to total creatine,
concentrations, and the description of every column (pure; no file IO)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..fit import FitSpectra
from ..fit.result import ANTICORRELATION_MAX, anticorrelated, correlated_names
from ..metabolites import canonical, indices_of
from ..signal.quality import (
    LIPID_WINDOW_PPM,
    LIPIDS_RATIO,
    METABOLITES_OVER_DATA,
    METABOLITES_OVER_DATA_MIN,
    NO_SIGNAL_SNR,
    POLISH_MISFIT_MAX,
    REFERENCE_OFF_PPM,
    REFERENCE_OFF_UNFITTED_PPM,
    REFERENCING_PPM,
    RESIDUAL_LARGE,
    RESIDUAL_OVER_NOISE_MAX,
    TOO_BROAD_PPM,
    WATER_SCALED_MM_MAX,
    WATER_SCALED_MM_MIN,
)
from ..signal.water_peak import NEAR_WINDOW_PPM, WATER_NEAR_WINDOW_RATIO, WATER_RATIO
from ..types import FID
from .inputs import SpectraInput
from .water import WaterScaling

#: Total creatine, the denominator of the ratios (as LCModel's "/Cr+PCr").
TOTAL_CREATINE = ("Cr", "PCr")

#: Description of each per-metabolite column, by suffix (the column is ``<name><suffix>``).
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "": "amplitude on the basis scale (the data are modelled as the sum of amplitude x basis "
    "FID; it scales with the data)",
    "_sd": "standard deviation of the amplitude from the network's calibrated uncertainty "
    "(NaN for a model trained without uncertainty; for a physics-head model the Cramér-Rao "
    "bound at the network's parameters times factors calibrated on its validation set)",
    "_refined": "amplitude of the full linear-combination fit started from the network's "
    "estimate (--refine)",
    "_crlb_sd": "Cramér-Rao lower bound of the fitted amplitude (of a physics-head model: at its "
    "polished parameters, or at the network's without a polish, K = 0), as a standard deviation "
    "(amplitude units)",
    "_crlb_pct": "Cramér-Rao lower bound as % of the fitted amplitude (LCModel's %SD)",
    "_ratio_tcr": "amplitude / (Cr + PCr amplitudes) of the same spectrum",
    "_mM": "concentration in mM from the water reference (ISMRM 2016 challenge formula, see "
    "results.json 'water_scaling')",
}

#: Every quality flag of :mod:`scaloquant.signal.quality`, with its meaning for users (the
#: ``qc`` column holds them separated by ``;``; ``results.json`` lists them).
QC_FLAGS: dict[str, str] = {
    "empty": "the FID is all zeros: nothing to measure (estimates NaN)",
    "no_signal": f"SNR below {NO_SIGNAL_SNR:g}: noise only, nothing to measure (estimates NaN)",
    "water": "the spectrum looks like an unsuppressed water reference (its water peak is more "
    f"than {WATER_RATIO:g}x the tallest metabolite peak): not quantified (estimates NaN)",
    "mirrored": "the spectrum looks mirrored about the reference (stored conjugated?): check it, "
    "and read it with --conjugate if so",
    "too_broad": f"NAA FWHM (Cr's where taller; of the spectrum or of the fitted lines) above "
    f"{TOO_BROAD_PPM:g} ppm: "
    "lines too broad for a reliable fit",
    "lipids": f"a line at {LIPID_WINDOW_PPM[0]:g}-{LIPID_WINDOW_PPM[1]:g} ppm (lipids' 1.3 ppm, "
    f"lactate's 1.31) taller than NAA's and creatine's peaks (over {LIPIDS_RATIO:g}x the taller): scalp "
    "lipids let in by the voxel's placement or its outer-volume suppression, or a lesion's lipids "
    "and lactate; the lipid, macromolecule and lactate estimates and the metabolites under those "
    "lines carry them: check the voxel's position and the spectrum",
    "residual_large": f"relative fit residual above {RESIDUAL_LARGE:g}: the fit does not explain "
    "the spectrum",
    "misfit": f"the fit residual's SD is more than {RESIDUAL_OVER_NOISE_MAX:g}x the noise SD "
    f"(residual_over_noise; spant's FQN above {RESIDUAL_OVER_NOISE_MAX**2:g}): the model does "
    "not describe the spectrum down to its noise (a line, lineshape or baseline it lacks), and "
    "the estimates may carry a bias beyond their CRLB; check the fit figure's residual, and the "
    "basis set and fit model against the data (after quantify --model, also scaloquant fit's "
    "row of the spectrum)",
    "polish_minimum": f"a physics-head model's polish left more than {POLISH_MISFIT_MAX:g} of "
    "the data's norm over the fit window unexplained beyond the noise (fit_residual less the "
    "noise's share given by residual_over_noise), more than the fit's own model leaves on "
    "spectra it describes: the polish may have stopped in a worse minimum than scaloquant fit "
    "reaches, with other estimates; quantify's default fits such a spectrum again as fit fits "
    "it (this flag stays only where the polish was kept: --baseline-stiffness fixed, or a model "
    "without a spline baseline): run scaloquant fit on it, or quantify without "
    "--baseline-stiffness fixed",
    "baseline_cancels": f"the fitted metabolites are more than {METABOLITES_OVER_DATA:g}x the data "
    "over the fit window, cancelled by a baseline of the opposite sign: the estimates mean "
    "nothing",
    "no_metabolites": f"the fitted metabolites (macromolecules included) are less than "
    f"{METABOLITES_OVER_DATA_MIN:g}x the data over the fit window: the baseline or an artefact "
    "took the signal, and the estimates (near 0) mean nothing; check the spectrum",
    "water_near_window": f"the data the fit saw (after its water removal; a physics-head model's: "
    f"the data as read, less the fit's water removal where it was applied: every spectrum with "
    f"a polish, the spectra with water this tall without one) hold a line more than "
    f"{WATER_NEAR_WINDOW_RATIO:g}x the tallest metabolite singlet within {NEAR_WINDOW_PPM:g} ppm above "
    "the fit window: residual water whose wings reach into the window, where the fit may turn "
    "its phase to follow them and give wrong-but-plausible estimates; check the phase of the "
    "fit figure, and fit with a window that ends lower (--ppm-range 0.2 4.0) or the water removed",
    "reference_off": "the spectrum's own NAA, creatine and choline singlets stand clearly "
    f"elsewhere than the fit put them (not within {REFERENCE_OFF_PPM:g} ppm; without a fit, more "
    f"than {REFERENCE_OFF_UNFITTED_PPM:g} ppm from 2.01/3.03/3.21 ppm), or the fit has no "
    "creatine beside them: the data's ppm reference is off (a header's reference or offset, a "
    "scanner frequency set on the wrong peak) by more than the referencing, the fit or the "
    "model reaches, and the estimates mean nothing; check the spectrum's reference (results.json "
    "spectra[].fit.shift_ppm: where the fit put the singlets; spectra[].ppm_reference_correction: "
    "what the referencing corrected) and give the right one with --ppm-reference",
    "water_scale_off": "the water-scaled concentrations add up to less than "
    f"{WATER_SCALED_MM_MIN:g} mM or more than {WATER_SCALED_MM_MAX:g} mM (the sum of the _mM "
    "columns; brain spectra give about 45-85 mM, a 10 mM phantom 10.8): no tissue holds that, so "
    "the water reference is not this spectrum's (scaled wrong, another voxel's or another "
    "acquisition's, or not a water file) and the _mM columns mean nothing; check the water "
    "reference given (--water) and its scale (a phantom of less than 1 mM in all is flagged "
    "too); the ratios to tCr are unaffected",
}


#: The per-spectrum quality columns, after the metabolite columns of results.csv (see
#: :mod:`scaloquant.signal.quality` for each definition and threshold).
QUALITY_COLUMNS: dict[str, str] = {
    "snr": "NAA peak height (tallest peak of 1.8-2.2 ppm above its local baseline) over the "
    "noise SD of the real spectrum in -2..0 and 9..10 ppm (FSL-MRS/Osprey style; about twice "
    "LCModel's S/N, which divides by 2x the fit residual's RMS); NaN where the spectral width "
    "covers neither noise region",
    "fwhm_hz": "full width at half maximum of the NAA peak (of the Cr peak where taller, of the "
    "water peak for a spectrum flagged water), Hz (phased, baseline removed, interpolated on "
    "the spectrum zero-filled 4x)",
    "fwhm_ppm": "the same FWHM in ppm",
    "fit_residual": "|data - model| / |data| over the fit window (the model with its baseline; "
    "a physics-head model's final model; NaN without a fit: a regression CNN without --refine, "
    "or a spectrum with nothing to quantify (qc empty, no_signal or water), which fit leaves "
    "out)",
    "residual_over_noise": "SD of the fit residual over the fit window (its complex power "
    "halved) over the noise SD of the real spectrum in -2..0 and 9..10 ppm (as snr's), of the "
    "spectrum as fitted: about 1 where the model describes the spectrum down to its noise, "
    "above where it leaves signal unexplained (its square is the fit quality number, FQN, of "
    "spant and the MRS consensus, and Osprey's relative residual); unlike fit_residual it does "
    "not shrink as the SNR grows; NaN where fit_residual is, where the spectral width "
    "covers no noise region, and for other nuclei than 1H",
    "qc": "quality flags separated by ';' (empty: none); see results.json 'qc_flags'",
}


#: Per-spectrum facts of a batched fit that ``results.json`` lists under ``spectra[].fit``
#: (:attr:`SpectraResult.fit`); of a physics-head model's, ``baseline_ed_per_ppm``,
#: ``window_ppm`` (both by ``fit``'s rules) and ``water_near_window``.
FIT_FACTS: dict[str, str] = {
    "fwhm_hz": "FWHM of the fitted NAA singlet (Cr's without NAA), Hz: its Voigt line convolved "
    "with the free-form kernel when there is one (LCModel's FWHM); the fit's own, beside the "
    "fwhm_hz column measured on the data",
    "baseline_ed_per_ppm": "effective dimensions per ppm of the spline baseline the spectrum was "
    "fitted with (chosen per spectrum with --baseline-stiffness ftest, and adaptive where it "
    "fitted a spectrum again; a physics-head model's: its polish's, or fit's for a spectrum "
    "whose polish asked for a more flexible baseline); null without a spline",
    "shift_ppm": "where the fit put the data's NAA, creatine and choline singlets, ppm from "
    "their own shifts (positive: downfield), on the axis it fitted the spectrum on (the file's, "
    "plus ppm_reference_correction where the spectrum was referenced): the error of that ppm "
    "reference that the fit took up (LCModel's data shift, of the opposite sign); its "
    "metabolites share it, so within +-0.35 ppm at 3 T (the invivo preset's +-45 Hz search) a "
    "reference error is fitted",
    "window_ppm": "the ppm window the spectrum was fitted over, low and high, with "
    "--baseline-stiffness adaptive when it refitted any spectrum with LCModel's F-test over "
    "0.2-4.0 ppm; a physics-head model's likewise: when fit's default, run on the spectra whose "
    "polish asked for a more flexible baseline, refitted any of them so, the others' window "
    "the polish's; absent otherwise",
    "lineshape_kernel": "the free-form lineshape's kernel (--lineshape freeform): weights "
    "(summing to 1) on frequency offsets in Hz, ascending; absent otherwise",
    "anticorrelated": "the pairs of metabolites whose estimates the fit cannot tell apart: "
    f"those whose correlation coefficient is {ANTICORRELATION_MAX:g} or below (from the fit's "
    'Cramér-Rao covariance, as the coefficients of LCModel\'s table), as "A+B": coefficient, '
    "most negative first ({} where none is); the parts of such a pair trade signal, so read "
    "their sum, determined better than either part (tCr, tCho, tNAA and Glx are columns; "
    "another pair's from results.csv); of fit and quantify --refine for every spectrum fitted, of a "
    "physics-head model with a polish (K > 0) for every spectrum (its polished model's "
    "covariance; a spectrum fitted again as fit fits it, that fit's), null elsewhere (the "
    "network alone, K = 0, forms no covariance)",
    "water_near_window": "the tallest point of the magnitude spectrum the fit saw (after its "
    "water removal; a physics-head model's: the spectrum as read, less the fit's water removal "
    "where it was applied, as for the qc flag) within "
    f"{NEAR_WINDOW_PPM:g} ppm above the fit window, over the tallest of the NAA, creatine and "
    f"choline singlets, each less its local baseline: above {WATER_NEAR_WINDOW_RATIO:g} the qc "
    "flag water_near_window",
}


#: What results.json's ``spectra[].ppm_reference_correction`` is (listed where referenced).
REFERENCE_CORRECTION = (
    "ppm added to the spectrum's ppm reference before it was fitted or quantified, from its "
    "own NAA, creatine and choline singlets (LCModel's referencing): made where they stand "
    f"clearly more than {REFERENCING_PPM:g} ppm from 2.01/3.03/3.21 ppm (and not there too), 0 "
    "otherwise; the quality figures, the fit window and fit.shift_ppm are on the corrected "
    "axis (--referencing off keeps the file's; --ppm-reference given turns it off)"
)


@dataclass(frozen=True)
class SpectraResult:
    """The estimates of one input file's spectra.

    Attributes
    ----------
    input : the input, as read.
    matched : its spectra on the model's (or basis') grid, samples ``(..., n_points)``.
    conversions, warnings : what matching did and noticed (one sentence each).
    columns : suffix -> ``(N, M)`` values for the ``N`` spectra (C order of the batch shape) and
        ``M`` metabolites; suffix ``""`` is the amplitude.
    figures : the fit figures' spectra, by spectrum index (a few spectra only).
    water_scaling : the assumptions its mM columns were computed with (None: no mM).
    quality : name -> ``(N,)`` quality figures (:data:`QUALITY_COLUMNS`).
    qc : per spectrum, its quality flags separated by ``;`` (``""``: none; see
        :data:`QC_FLAGS`).
    water_quality : figures of its water reference's peak (``fwhm_hz``, ``fwhm_ppm``,
        ``water_ratio``; empty without one).
    fit : per spectrum, what the fit chose or measured beyond the columns
        (:data:`FIT_FACTS`; empty without a batched fit or a physics-head model, whose are
        ``water_near_window`` and its baseline's): name -> ``(N, ...)``.
    reference_correction_ppm : per spectrum, ``(N,)``, what the referencing added to its ppm
        reference before it was estimated (:data:`REFERENCE_CORRECTION`; 0: nothing); None
        where it was not referenced (``--referencing off``, ``--ppm-reference``, not 1H).
    anticorrelated : per spectrum, its pairs of metabolites at or below
        :data:`~scaloquant.fit.result.ANTICORRELATION_MAX` (:func:`anticorrelated_pairs` of
        :attr:`fit`, taken once where the result is gathered): what results.json lists and the
        run's note counts; None where the input has no coefficients.
    """

    input: SpectraInput
    matched: FID
    conversions: tuple[str, ...]
    warnings: tuple[str, ...]
    columns: Mapping[str, np.ndarray]
    figures: Mapping[int, FitSpectra] = field(default_factory=dict)
    water_scaling: WaterScaling | None = None
    quality: Mapping[str, np.ndarray] = field(default_factory=dict)
    qc: tuple[str, ...] = ()
    water_quality: Mapping[str, float] = field(default_factory=dict)
    fit: Mapping[str, np.ndarray] = field(default_factory=dict)
    reference_correction_ppm: np.ndarray | None = None
    anticorrelated: tuple[dict[str, float] | None, ...] | None = None


def anticorrelated_pairs(
    fit: Mapping[str, np.ndarray], names: Sequence[str]
) -> tuple[dict[str, float] | None, ...] | None:
    """Each spectrum's pairs at or below :data:`~scaloquant.fit.result.ANTICORRELATION_MAX`
    (:func:`scaloquant.fit.result.anticorrelated` of ``fit``'s ``"anticorrelated"``
    coefficients, :attr:`SpectraResult.fit`, which are of the first of the run's columns
    ``names``: the fit's components, or the model's); None where ``fit`` has no coefficients."""
    values = fit.get("anticorrelated")
    if values is None:
        return None
    return tuple(anticorrelated(values, names[: correlated_names(values.shape[1])]))


def total_creatine(names: Sequence[str], amplitudes: np.ndarray) -> np.ndarray | None:
    """Cr + PCr (or whichever of them ``names`` has) of ``amplitudes`` ``(..., M)``, ``(...)``
    float64; None where the basis has neither."""
    idx = indices_of(TOTAL_CREATINE, names)
    if not idx:
        return None
    return np.asarray(amplitudes, dtype=np.float64)[..., idx].sum(axis=-1)


def tcr_ratios(names: Sequence[str], amplitudes: np.ndarray) -> tuple[np.ndarray, str]:
    """Ratios of ``amplitudes`` ``(..., M)`` to total creatine, and a sentence saying what the
    denominator was (Cr + PCr, or whichever of them the basis has; all NaN without either).

    A non-positive denominator gives NaN (a ratio to no creatine means nothing).
    """
    present = [canonical(names[i]) for i in indices_of(TOTAL_CREATINE, names)]
    amplitudes = np.asarray(amplitudes, dtype=np.float64)
    total = total_creatine(names, amplitudes)
    if total is None:
        return (
            np.full(amplitudes.shape, np.nan),
            "the basis has neither Cr nor PCr: the _ratio_tcr columns are empty (NaN)",
        )
    total = total[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(total > 0, amplitudes / total, np.nan)
    if set(present) == set(TOTAL_CREATINE):
        note = "ratios are to total creatine, Cr + PCr"
    else:
        missing = next(n for n in TOTAL_CREATINE if n not in present)
        note = (
            f"the basis has no {missing}: the _ratio_tcr columns are ratios to {present[0]} alone"
        )
    return ratios, note


def percent_sd(amplitudes: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``100 sd / |amplitude|`` (inf for a zero amplitude with a finite SD; NaN SD stays NaN)."""
    amplitudes = np.abs(np.asarray(amplitudes, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            amplitudes > 0, 100.0 * sd / amplitudes, np.where(np.isnan(sd), np.nan, np.inf)
        )
