"""The fit's result, and the spectra it describes, rebuilt for plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal, NamedTuple

import numpy as np

from ..errors import InvalidDataError, UnknownMetaboliteError
from ..metabolites import REFERENCE_SINGLETS, indices_of
from .config import FitConfig
from .covariance import (
    combined_columns,
    combined_parts,
    combined_sums,
    covariance_pairs,
    pairs_among,
    sd_of_sum,
)


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters and Cramér–Rao bounds of a batch of spectra.

    Shapes use the data's batch shape ``...`` (``()`` for one FID) and ``M`` metabolites, in the
    order of ``names``. Arrays are read-only.

    Attributes
    ----------
    names : metabolite names.
    amplitudes : ``(..., M)`` amplitudes on the basis scale (data ~ sum of amplitude x basis FID).
    crlb_sd : ``(..., M)`` Cramér–Rao lower bound of each amplitude, as a standard deviation in
        amplitude units, from the Fisher information of all fitted parameters (see
        :func:`scaloquant.fit.crlb.crlb`). For an amplitude at its bound 0 it is still the unconstrained
        bound at the fitted lineshape (that metabolite's damping and shift are then taken as
        known, being unidentifiable).
    crlb_pct : ``(..., M)`` ``100 crlb_sd / amplitude``, LCModel's %SD; ``inf`` for an amplitude
        of 0.
    amplitude_covariance : ``(..., M, M)`` the amplitude block of the covariance bound, for the
        bound of any sum (:meth:`crlb_sd_of_sum`); ``None`` unless asked for
        (``fit_spectra(..., covariance=True)``): what the outputs read of it is kept instead,
        ``combined_crlb_sd`` and ``amplitude_correlations``, read chunk by chunk as the fit
        solves (the bound of 65,536 spectra of 24 components is 302 MB, those 147 MB).
    damping_per_s, shift_hz : ``(..., M)`` fitted extra damping (1/s) and shift (Hz) of each
        metabolite (equal within a group).
    phase0_rad : ``(...)`` zero-order phase; ``phase1_rad_per_ppm`` ``(...)`` first-order phase
        about ``phase1_pivot_ppm``; ``gauss_per_s2`` ``(...)`` Gaussian ``beta``.
    baseline : ``(..., order + 1)`` complex Legendre coefficients of the baseline (no columns
        without one), in spectrum units, over the window's ppm scaled to [-1, 1].
    noise_sd : ``(...)`` noise SD of each real part of the spectrum (unnormalised FFT) used by
        the bounds, estimated as ``noise_estimate`` says.
    residual_norm : ``(...)`` ``|data - model|`` over the window (complex 2-norm).
    n_evaluations : ``(...)`` Levenberg–Marquardt iterations of the optimiser.
    success : ``(...)`` whether the optimiser met a convergence test; ``messages`` ``(...)`` its
        reason.
    ppm : ``(K,)`` chemical shifts of the fitted window's spectral points.
    config : the options of the fit.
    gauss_by_metabolite_per_s2 : ``(..., M)`` Gaussian ``beta`` of each metabolite's group
        (``None`` in results of the retired scipy solver, whose ``beta`` was global).
    linewidth_hz : ``(...)`` FWHM of the fitted NAA singlet at 2.01 ppm (Cr's at 3.03 ppm
        without NAA), Hz: the tissue linewidth LCModel reports as FWHM; ``None`` when not
        computed. ``linewidth_ppm`` divides it by the spectrometer frequency.
    snr : ``(...)`` LCModel's S/N: the largest value of the real, phase-corrected metabolite
        model over the window (baseline excluded) over twice the RMS of the residual's real
        part; ``None`` when not computed.
    conversions : what was done to the basis to put it on the data's grid
        (:func:`scaloquant.fit.basis_grid.basis_on_grid`).
    lineshape_kernel : ``(..., 2 J + 1)`` the free-form lineshape's kernel (``lineshape=
        "freeform"``) on bin offsets ``0, -J..-1, 1..J`` (centre first; the offsets of
        :func:`scaloquant.fit.problem.make_problem`); ``None`` otherwise.
    baseline_ed_per_ppm : ``(...)`` effective dimensions per ppm of the spline baseline each
        spectrum was fitted with (chosen per spectrum with ``baseline_stiffness="ftest"``); NaN
        without a spline baseline (``None`` in results of the retired scipy solver).
    removed_water : ``(..., N)`` complex, the residual water subtracted from each FID before
        the fit (``water_removal="hlsvd"``: its HLSVD components in the water band), in the
        data's orientation; ``None`` when nothing was removed. Kept so that the fitted
        spectra are rebuilt from the data the fit saw without decomposing them again.
    relative_residual : ``(...)`` ``|data - model| / |data|`` over the window (Euclidean
        norms, the model with its baseline; NaN for an empty spectrum): the ``fit_residual``
        quality column; ``None`` when not computed.
    metabolite_fraction : ``(...)`` ``|metabolite model| / |data|`` over the window (the
        model without its baseline; NaN for an empty spectrum), the check that the baseline
        did not take the signal; ``None`` when not computed.
    residual_over_noise : ``(...)`` the residual's SD over the window over the data's noise SD
        (:func:`scaloquant.signal.noise.residual_over_noise`; NaN without a noise region or
        for other nuclei than 1H): the ``residual_over_noise`` quality column; ``None`` when
        not computed.
    window_ppm : ``(..., 2)`` the ppm window each spectrum was fitted over, when any differs
        from ``config.ppm_range`` (``baseline_stiffness="adaptive"``: ``config.baseline_flexible_ppm_range`` for the
        spectra refitted with a flexible baseline, ``config.ppm_range`` for the others; the
        result's ``ppm`` is the widest, ``baseline`` holds NaN past a spectrum's own
        design); ``None`` when every spectrum was fitted over ``config.ppm_range``.
    combined_crlb_sd : ``(..., C)`` the CRLB SDs of LCModel's combined rows of ``names``
        (:func:`~scaloquant.fit.covariance.combined_parts`, in its order) from the covariance
        of their parts (:func:`~scaloquant.fit.covariance.combined_sds`); ``None`` in results
        built without them (then read from ``amplitude_covariance``).
    amplitude_correlations : ``(..., M (M - 1) / 2)`` the correlation coefficients of the
        amplitudes' estimates, each pair ``(i, j)``, ``i < j``, of ``names`` in
        :func:`numpy.triu_indices` order (:func:`~scaloquant.fit.covariance.covariance_pairs`;
        :meth:`pair_correlations` reads them by name); ``None`` as ``combined_crlb_sd``.
    """

    names: tuple[str, ...]
    amplitudes: np.ndarray
    crlb_sd: np.ndarray
    crlb_pct: np.ndarray
    amplitude_covariance: np.ndarray | None
    damping_per_s: np.ndarray
    shift_hz: np.ndarray
    phase0_rad: np.ndarray
    phase1_rad_per_ppm: np.ndarray
    phase1_pivot_ppm: float
    gauss_per_s2: np.ndarray
    baseline: np.ndarray
    noise_sd: np.ndarray
    noise_estimate: Literal["residual", "region"]
    residual_norm: np.ndarray
    n_evaluations: np.ndarray
    success: np.ndarray
    messages: np.ndarray
    ppm: np.ndarray
    config: FitConfig
    gauss_by_metabolite_per_s2: np.ndarray | None = None
    linewidth_hz: np.ndarray | None = None
    linewidth_ppm: np.ndarray | None = None
    snr: np.ndarray | None = None
    conversions: tuple[str, ...] = ()
    baseline_ed_per_ppm: np.ndarray | None = None
    lineshape_kernel: np.ndarray | None = None
    removed_water: np.ndarray | None = None
    relative_residual: np.ndarray | None = None
    metabolite_fraction: np.ndarray | None = None
    window_ppm: np.ndarray | None = None
    residual_over_noise: np.ndarray | None = None
    combined_crlb_sd: np.ndarray | None = None
    amplitude_correlations: np.ndarray | None = None

    def __post_init__(self) -> None:
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.amplitudes.shape[:-1])

    def flat(self) -> FitResult:
        """The result with its spectra in one batch axis ``(B,)`` (C order): every field of
        :data:`BATCH_FIELDS` reshaped, the rest as they are."""
        n = int(np.prod(self.batch_shape, dtype=int))
        nd = len(self.batch_shape)
        return replace(
            self,
            **{
                name: value.reshape(n, *value.shape[nd:])
                for name in BATCH_FIELDS
                if (value := getattr(self, name)) is not None
            },
        )

    def take(self, index: Sequence[int]) -> FitResult:
        """The spectra ``index`` (flat C-order indices) as a batch ``(k,)``."""
        flat = self.flat()
        return replace(
            flat,
            **{
                name: value[list(index)]
                for name in BATCH_FIELDS
                if (value := getattr(flat, name)) is not None
            },
        )

    @property
    def singlet_shift_hz(self) -> np.ndarray:
        """Where the fit put the singlets a 1H spectrum is referenced by
        (:data:`~scaloquant.metabolites.REFERENCE_SINGLETS`: NAA, Cr, PCr, GPC, PCho), as the
        median of their fitted shifts, Hz (positive: downfield of the basis), ``(...)``; NaN
        when the basis has none of them. With the metabolites sharing a shift (the invivo
        preset) it is that shift within the small per-metabolite deviations: how far the
        data's ppm reference is from the basis' (LCModel prints it as its data shift)."""
        idx = indices_of(tuple(REFERENCE_SINGLETS), self.names)
        if not idx:
            return np.full(self.batch_shape, np.nan)
        return np.median(self.shift_hz[..., idx], axis=-1)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownMetaboliteError(
                f"unknown metabolite {name!r}; the fit has: {', '.join(self.names)}"
            ) from None

    def amplitude_of_sum(self, names: Sequence[str]) -> np.ndarray:
        """Sum of the amplitudes of ``names`` (e.g. ``("GPC", "PCho")``), ``(...)``."""
        return self.amplitudes[..., [self.index(n) for n in names]].sum(axis=-1)

    def crlb_sd_of_sum(self, names: Sequence[str]) -> np.ndarray:
        """Cramér–Rao bound (SD) of the sum of the amplitudes of ``names``, ``(...)``:
        ``sqrt(w^T C w)`` with ``w`` the indicator of ``names`` and ``C`` the covariance bound,
        so the (often negative) covariance of overlapping metabolites counts.

        Raises
        ------
        InvalidDataError
            The result keeps no covariance (:attr:`amplitude_covariance`) and ``names`` are
            not the parts of one of its combined rows (:attr:`combined_crlb_sd`) nor one name.
        """
        indices = [self.index(n) for n in names]
        if self.amplitude_covariance is not None:
            return sd_of_sum(self.amplitude_covariance, indices)
        if len(set(indices)) == 1:
            return self.crlb_sd[..., indices[0]]
        for c, parts in enumerate(combined_parts(self.names).values()):
            if self.combined_crlb_sd is not None and sorted(parts) == sorted(set(indices)):
                return self.combined_crlb_sd[..., c]
        raise InvalidDataError(
            f"the CRLB of the sum of {', '.join(names)} needs the fit's covariance, which it "
            "keeps only where asked: fit with fit_spectra(..., covariance=True)"
        )

    def pair_correlations(self, names: Sequence[str] | None = None) -> np.ndarray:
        """The correlation coefficients of the amplitudes' estimates, ``(..., P)``: of each pair
        ``(i, j)``, ``i < j``, of ``names`` (default :attr:`names`) in
        :func:`numpy.triu_indices` order (:func:`pair_names`), from
        :attr:`amplitude_correlations` (:func:`~scaloquant.fit.covariance.pairs_among`), else
        :attr:`amplitude_covariance` (:func:`~scaloquant.fit.covariance.covariance_pairs`);
        NaN for a name the fit does not have."""
        names = self.names if names is None else tuple(names)
        take = np.array([self.names.index(n) if n in self.names else -1 for n in names])
        if self.amplitude_correlations is None:
            return covariance_pairs(self.amplitude_covariance, take)
        if names == self.names:
            return self.amplitude_correlations
        return pairs_among(self.amplitude_correlations, len(self.names), take)


@dataclass(frozen=True)
class FitStart:
    """Optional starting values, each of the batch shape of the data (``(...)``) or with a last
    axis of metabolites (``(..., n_metabolites)``); ``None`` keeps the default start.

    Amplitudes have no starting value: variable projection solves them exactly for any damping,
    shift and phase, so a network's amplitude estimate is not needed here; its damping, shift
    and phase estimates (when it makes them) are. A per-metabolite start is averaged within a
    group when metabolites share a damping and shift.

    ``names`` (optional) names the components of that last axis. With it, the start may come
    from a fit on other components than the one it starts (a network's amplitudes on the
    training basis starting the ``invivo`` fit, which adds parametric lipids and
    macromolecules): each fitted component takes its own column, and one the start does not
    name starts at the mean of the named ones of its spectrum. Without it, the last axis must
    follow the fitted basis' order.
    """

    damping_per_s: np.ndarray | None = None
    shift_hz: np.ndarray | None = None
    phase0_rad: np.ndarray | None = None
    phase1_rad_per_ppm: np.ndarray | None = None
    gauss_per_s2: np.ndarray | None = None
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.names is not None:
            object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "names":
                continue
            arr = np.array(value, dtype=np.float64, copy=True)
            if not np.all(np.isfinite(arr)):
                raise InvalidDataError(f"starting value {f.name} contains NaN or Inf")
            arr.setflags(write=False)
            object.__setattr__(self, f.name, arr)

    @classmethod
    def from_result(cls, result: FitResult) -> FitStart:
        """Start from the nonlinear parameters of an earlier fit (for example
        :func:`~scaloquant.fit.fit_given_amplitudes` around a network's amplitudes): its
        per-metabolite damping and shift, phases and Gaussian, of its batch shape.

        The phases are about ``result.phase1_pivot_ppm``; start a fit with that pivot. The
        start carries ``result.names``, so it may start a fit with more components.
        """
        return cls(
            damping_per_s=result.damping_per_s,
            shift_hz=result.shift_hz,
            phase0_rad=result.phase0_rad,
            phase1_rad_per_ppm=result.phase1_rad_per_ppm,
            gauss_per_s2=result.gauss_per_s2,
            names=result.names,
        )


#: The correlation coefficient of two amplitudes' estimates at or below which a run names the
#: pair (results.json ``spectra[].fit.anticorrelated``, and a note: read their sum). LCModel
#: computes every coefficient and prints them all, with no threshold, in its .PRINT file
#: ("Correlation coefficients": the lower triangle over its concentrations and their sums;
#: nothing of them on its .PS page); its users report the sum of a strongly anticorrelated pair
#: (tCr, tCho, tNAA, Glx). At -0.5 a pair's parts are unreliable and its sum is not: on 1024
#: tissue-like ``invivo`` spectra the parts of the nine metabolite pairs among the twelve
#: commonest at or below it are a median 22-60 % of the truth off, their sums 8-35 %
#: (GPC+PCho 50 -> 10 %, Cr+PCr 22 -> 8 %). It does not point at the rows far off in CRLB SDs (those are no more often in
#: such a pair than their metabolites are: the CRLB already widens with the correlation):
#: docs/history/fit-log.md "Which metabolites the fit cannot tell apart (session 33,
#: `corr33`)".
ANTICORRELATION_MAX = -0.5


def pair_names(names: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs of ``names`` in the order of :meth:`FitResult.pair_correlations`."""
    i, j = np.triu_indices(len(names), 1)
    return [(names[a], names[b]) for a, b in zip(i.tolist(), j.tolist(), strict=True)]


def correlated_names(n_pairs: int) -> int:
    """How many names have ``n_pairs`` pairs (``M (M - 1) / 2``).

    Raises
    ------
    InvalidDataError
        ``n_pairs`` is no such number."""
    m = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if m * (m - 1) // 2 != n_pairs:
        raise InvalidDataError(f"{n_pairs} correlation coefficients are not those of pairs")
    return m


def anticorrelated(
    correlations: np.ndarray, names: Sequence[str], threshold: float = ANTICORRELATION_MAX
) -> list[dict[str, float] | None]:
    """The pairs of each spectrum's ``correlations`` ``(N, P)`` (:meth:`FitResult.
    pair_correlations` over ``names``) at or below ``threshold``, per spectrum, most negative
    first: ``"A+B"`` (the sum to read) -> the coefficient; None for a spectrum whose
    coefficients are all NaN (not fitted)."""
    r = np.asarray(correlations, dtype=np.float64)
    pairs = [f"{a}+{b}" for a, b in pair_names(names)]
    if r.ndim != 2 or r.shape[1] != len(pairs):
        raise InvalidDataError(
            f"correlation coefficients of shape {r.shape} for the {len(pairs)} pairs of "
            f"{len(names)} names"
        )
    fitted = ~np.isnan(r).all(axis=1)
    out: list[dict[str, float] | None] = [{} if f else None for f in fitted.tolist()]
    rows, cols = np.nonzero(r <= threshold)
    order = np.lexsort((r[rows, cols], rows))
    for k, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        out[k][pairs[c]] = float(r[k, c])
    return out


def with_combined(result: FitResult) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``result``'s components, then its combined rows (:func:`combined_of`): their names,
    amplitudes ``(..., M + C)`` and CRLB SDs ``(..., M + C)``, the columns of ``fit`` and of a
    spectrum ``quantify`` fitted again."""
    sums, total, sd = combined_of(result)
    amplitudes = np.concatenate([result.amplitudes, total], axis=-1)
    return (*result.names, *sums), amplitudes, np.concatenate([result.crlb_sd, sd], axis=-1)


def combined_of(result: FitResult) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """LCModel's combined rows of ``result``
    (:func:`~scaloquant.fit.covariance.combined_columns`): their names, amplitudes ``(..., C)``
    and CRLB SDs ``(..., C)``, these :attr:`FitResult.combined_crlb_sd` where kept, else read
    from :attr:`FitResult.amplitude_covariance`."""
    if result.combined_crlb_sd is None:
        return combined_columns(result.amplitudes, result.amplitude_covariance, result.names)
    total = combined_sums(result.amplitudes, result.names)
    return tuple(combined_parts(result.names)), total, result.combined_crlb_sd


def combined(result: FitResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`combined_of` of ``result`` by name: ``(amplitude (...), CRLB SD (...))``."""
    names, total, sd = combined_of(result)
    return {name: (total[..., c], sd[..., c]) for c, name in enumerate(names)}


class FitSpectra(NamedTuple):
    """Spectra over the fitted window for one batch, for plots and checks.

    ``ppm`` ``(K,)``; ``data``, ``model``, ``baseline`` and ``residual`` ``(..., K)`` complex
    (``model`` includes the baseline; ``residual = data - model``); ``metabolites``
    ``(..., M, K)``, each metabolite's contribution (amplitude x its phased column).
    """

    ppm: np.ndarray
    data: np.ndarray
    model: np.ndarray
    baseline: np.ndarray
    residual: np.ndarray
    metabolites: np.ndarray


def phase_corrected(spectra: FitSpectra, result: FitResult) -> FitSpectra:
    """``spectra`` of ``result`` with its fitted phases removed: every array times
    ``exp(-i (phi0 + phi1 (ppm - pivot)))``, so that lines are in absorption mode, as LCModel
    and FSL-MRS draw them (the data as the scanner stored them may be in any phase)."""
    phi0 = np.asarray(result.phase0_rad, dtype=np.float64)[..., None]
    phi1 = np.asarray(result.phase1_rad_per_ppm, dtype=np.float64)[..., None]
    undo = np.exp(-1j * (phi0 + phi1 * (spectra.ppm - result.phase1_pivot_ppm)))
    return FitSpectra(
        ppm=spectra.ppm,
        data=spectra.data * undo,
        model=spectra.model * undo,
        baseline=spectra.baseline * undo,
        residual=spectra.residual * undo,
        metabolites=spectra.metabolites * undo[..., None, :],
    )


#: The fields of :class:`FitResult` with one entry per spectrum (the batch shape in front); the
#: others (``names``, ``ppm``, ``config``...) describe the whole fit.
BATCH_FIELDS = (
    "amplitudes",
    "crlb_sd",
    "crlb_pct",
    "amplitude_covariance",
    "damping_per_s",
    "shift_hz",
    "phase0_rad",
    "phase1_rad_per_ppm",
    "gauss_per_s2",
    "baseline",
    "noise_sd",
    "residual_norm",
    "n_evaluations",
    "success",
    "messages",
    "gauss_by_metabolite_per_s2",
    "linewidth_hz",
    "linewidth_ppm",
    "snr",
    "baseline_ed_per_ppm",
    "lineshape_kernel",
    "removed_water",
    "relative_residual",
    "metabolite_fraction",
    "window_ppm",
    "residual_over_noise",
    "combined_crlb_sd",
    "amplitude_correlations",
)
