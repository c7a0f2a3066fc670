"""The fit's result, and the spectra it describes, rebuilt for plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal, NamedTuple

import numpy as np

from ..errors import InvalidDataError, UnknownMetaboliteError
from ..metabolites import COMBINATIONS, REFERENCE_SINGLETS, indices_of
from .config import FitConfig


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
        bound of sums and ratios (:meth:`crlb_sd_of_sum`).
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
    """

    names: tuple[str, ...]
    amplitudes: np.ndarray
    crlb_sd: np.ndarray
    crlb_pct: np.ndarray
    amplitude_covariance: np.ndarray
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
        so the (often negative) covariance of overlapping metabolites counts."""
        return sd_of_sum(self.amplitude_covariance, [self.index(n) for n in names])

    def pair_correlations(self, names: Sequence[str] | None = None) -> np.ndarray:
        """The correlation coefficients of the amplitudes' estimates, ``(..., P)``: of each pair
        ``(i, j)``, ``i < j``, of ``names`` (default :attr:`names`) in
        :func:`numpy.triu_indices` order (:func:`pair_names`), from
        :attr:`amplitude_covariance` (:func:`covariance_pairs`); NaN for a name the fit does not
        have."""
        names = self.names if names is None else tuple(names)
        take = np.array([self.names.index(n) if n in self.names else -1 for n in names])
        return covariance_pairs(self.amplitude_covariance, take)


def covariance_pairs(covariance: np.ndarray, take: np.ndarray | None = None) -> np.ndarray:
    """The correlation coefficients ``(..., P)`` of estimates of covariance ``covariance``
    ``(..., M, M)``: of each pair ``(i, j)``, ``i < j``, of the components ``take`` (indices
    into ``M``, ``-1`` for one absent: NaN; default all ``M``) in :func:`numpy.triu_indices`
    order, ``C_ij / sqrt(C_ii C_jj)`` (LCModel's table of correlation coefficients) clipped to
    ``[-1, 1]``; NaN where a variance is 0. The fit's (:meth:`FitResult.pair_correlations`) and
    a physics-head model's polish's
    (:meth:`scaloquant.models.physics.PhysicsQuantifier.predict_estimates`)."""
    cov = np.asarray(covariance, dtype=np.float64)
    m = cov.shape[-1]
    take = np.arange(m) if take is None else np.asarray(take)
    missing, at = take < 0, np.maximum(take, 0)
    # each pair a column of the flat (B, M * M) covariance: 0.2 s at 4096 spectra x 28
    # components (378 pairs; load 9 on 2 cores), against minutes for their fit
    flat = cov.reshape(-1, m * m)
    i, j = np.triu_indices(len(take), 1)
    var = np.take(flat, at * (m + 1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.take(flat, at[i] * m + at[j], axis=1) / np.sqrt(var[:, i] * var[:, j])
    r[:, missing[i] | missing[j]] = np.nan
    r = np.where(np.isfinite(r), np.clip(r, -1.0, 1.0), np.nan)
    return r.reshape(*cov.shape[:-2], len(i))


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


def sd_of_sum(covariance: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """The SD ``(...)`` of the sum of the estimates ``indices`` of covariance ``covariance``
    ``(..., M, M)``: ``sqrt(w^T C w)`` with ``w`` their indicator, so the (often negative)
    covariance of overlapping metabolites counts (LCModel's combined rows)."""
    w = np.zeros(covariance.shape[-1])
    w[list(indices)] = 1.0
    return np.sqrt(np.einsum("i,...ij,j->...", w, covariance, w))


def combined_parts(names: Sequence[str]) -> dict[str, list[int]]:
    """LCModel's combined rows (:data:`scaloquant.metabolites.COMBINATIONS`) that ``names`` (a
    basis' own spellings) have a part of: name -> the positions of its parts in ``names``."""
    return {
        name: idx for name, wanted in COMBINATIONS.items() if (idx := indices_of(wanted, names))
    }


def combined_columns(
    amplitudes: np.ndarray, covariance: np.ndarray, names: Sequence[str]
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """LCModel's combined rows (:data:`scaloquant.metabolites.COMBINATIONS`, under any
    spelling of ``names``) of estimates ``amplitudes`` ``(..., M)`` of covariance
    ``covariance`` ``(..., M, M)``: their names, their amplitudes ``(..., C)`` (the sums of
    their parts) and SDs ``(..., C)`` (:func:`sd_of_sum`); parts missing from ``names`` are
    left out, a combination with none present is skipped (``C = 0``: empty columns). The
    columns of ``fit`` (:func:`combined`) and of a physics-head model's polish
    (:meth:`scaloquant.models.physics.PhysicsQuantifier.predict_estimates`)."""
    amplitudes = np.asarray(amplitudes)
    parts = combined_parts(names)
    if not parts:
        # a basis holding none of the parts (a .BASIS cut after its first block, Mac alone)
        none = np.empty((*amplitudes.shape[:-1], 0))
        return (), none, none
    total = np.stack([amplitudes[..., idx].sum(axis=-1) for idx in parts.values()], axis=-1)
    sd = np.stack([sd_of_sum(covariance, idx) for idx in parts.values()], axis=-1)
    return tuple(parts), total, sd


def with_combined(result: FitResult) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``result``'s components, then its combined rows (:func:`combined_columns` of its CRLB
    covariance): their names, amplitudes ``(..., M + C)`` and CRLB SDs ``(..., M + C)``, the
    columns of ``fit`` and of a spectrum ``quantify`` fitted again."""
    sums, total, sd = combined_columns(result.amplitudes, result.amplitude_covariance, result.names)
    amplitudes = np.concatenate([result.amplitudes, total], axis=-1)
    return (*result.names, *sums), amplitudes, np.concatenate([result.crlb_sd, sd], axis=-1)


def combined(result: FitResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`combined_columns` of ``result`` (its CRLB covariance,
    :attr:`FitResult.amplitude_covariance`) by name: ``(amplitude (...), CRLB SD (...))``."""
    names, total, sd = combined_columns(
        result.amplitudes, result.amplitude_covariance, result.names
    )
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
)
