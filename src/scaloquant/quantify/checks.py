"""The per-spectrum checks and facts a run reports beside its estimates: a fit's relative
residual and metabolites over the data, its facts (FWHM, shift, window, lineshape kernel, water
near the window) spread over an input's rows and blanked where nothing was measurable, and the
quality columns (SNR, FWHM, fit residual)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, InvalidDataError
from ..fit import FitResult
from ..signal.noise import misfit_beyond_noise
from ..signal.peaks import main_peak_ppm
from ..signal.quality import POLISH_MISFIT_MAX
from ..types import FID, BasisSet
from .matching import Prepared
from .results import total_creatine
from .rows import spread_rows


def fit_checks(result: FitResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(|data - model| / |data|, |metabolites| / |data|, residual SD / noise SD)`` over the
    fit window of each spectrum of a fit, ``(N,)`` each (NaN for an empty spectrum;
    ``metabolites`` the model without its baseline; the last NaN without a noise region):
    :attr:`FitResult.relative_residual`, :attr:`~FitResult.metabolite_fraction` and
    :attr:`~FitResult.residual_over_noise`, which the fit measures on the model it rebuilds for
    its SNR (rebuilding every spectrum's model again here: 1.7 of the 61 s of a 16 x 16
    slice)."""
    n = int(np.prod(result.batch_shape, dtype=int))
    checks = (result.relative_residual, result.metabolite_fraction, result.residual_over_noise)
    if any(v is None for v in checks):
        raise InvalidDataError("the fit result has no residual checks (not a batched fit)")
    return tuple(np.asarray(v).reshape(n) for v in checks)


def polish_stopped(
    relative_residual: np.ndarray,
    over_noise: np.ndarray,
    fid: FID,
    ppm_range: tuple[float, float],
) -> np.ndarray:
    """``(N,)`` True where a physics-head model's polish may have stopped in a worse minimum
    than the fit reaches (the ``polish_minimum`` check): its final model's misfit beyond the
    noise (:func:`scaloquant.signal.noise.misfit_beyond_noise` of its relative residual and
    residual over the noise, ``(N,)`` each, over the fit window ``ppm_range`` of ``fid``'s grid)
    above :data:`~scaloquant.signal.quality.POLISH_MISFIT_MAX`; False where either is NaN. Two
    figures quantify has already: nothing more is computed (docs/history/physics-models-log.md
    "A polish in a worse minimum than the fit's (session 35, `polishqc35`)")."""
    ppm = fid.ppm_axis()
    points = int(np.count_nonzero((ppm >= ppm_range[0]) & (ppm <= ppm_range[1])))
    share = misfit_beyond_noise(relative_residual, over_noise, points)
    return np.nan_to_num(share) > POLISH_MISFIT_MAX


def water_near_window_seen(
    samples: np.ndarray,
    fid: FID,
    window_high_ppm: float,
    removed_water: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`scaloquant.signal.water_peak.water_near_window` ``(N,)`` of the FIDs ``samples``
    ``(N, n_points)`` on ``fid``'s grid as the fit or model saw them (less the water the fit
    removed, ``removed_water``), above a window that ends at ``window_high_ppm``; NaN for other
    nuclei than 1H (the ppm windows are those of brain 1H spectra). The fit's
    (:func:`_fit_facts`) and a physics-head model's
    (:func:`scaloquant.quantify.run._physics_estimates`; its rows as they are: an ``FID`` of
    them would copy them, 0.8 s at 8192 spectra)."""
    from ..signal.water_peak import water_near_window

    n = samples.size // samples.shape[-1]
    if fid.nucleus != "1H":
        return np.full(n, np.nan)
    seen = samples.reshape(n, -1)
    if removed_water is not None:
        seen = seen - removed_water.reshape(n, -1)
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    return water_near_window(seen, *grid, window_high_ppm)


def _fit_facts(
    result: FitResult, fid: FID, names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The :data:`~scaloquant.quantify.results.FIT_FACTS` of a fit of the flat ``fid`` that
    it has, ``(N, ...)`` each: ``lineshape_kernel`` ``(N, 2, 2 J + 1)``, offsets (Hz, on
    ``fid``'s grid, where the batched fit convolves) and weights, ascending;
    ``anticorrelated`` ``(N, P)``, every pair's correlation coefficient
    (:meth:`FitResult.pair_correlations` over ``names``, default the fit's own: the run's
    first columns; results.json lists those at or below
    :data:`~scaloquant.fit.result.ANTICORRELATION_MAX`; half the covariance's size);
    ``water_near_window``
    (:func:`water_near_window_seen`, which the qc flag reads in
    :func:`scaloquant.quantify.gather.finish_run`)."""
    n = int(np.prod(result.batch_shape, dtype=int))
    out = {}
    for name, value in (
        ("fwhm_hz", result.linewidth_hz),
        ("baseline_ed_per_ppm", result.baseline_ed_per_ppm),
    ):
        if value is not None:
            out[name] = np.asarray(value, dtype=np.float64).reshape(n)
    shift_hz = np.asarray(result.singlet_shift_hz, dtype=np.float64).reshape(n)
    out["shift_ppm"] = shift_hz / fid.spectrometer_freq_mhz
    if result.window_ppm is not None:
        out["window_ppm"] = np.asarray(result.window_ppm, dtype=np.float64).reshape(n, 2)
    if result.lineshape_kernel is not None:
        from ..fit.problem import kernel_offsets

        kernel = result.lineshape_kernel.reshape(n, -1)
        offsets = np.asarray(kernel_offsets((kernel.shape[1] - 1) // 2))
        order = np.argsort(offsets)
        bin_hz = 1.0 / (fid.n_points * fid.dwell_time_s)
        hz = np.broadcast_to(offsets[order] * bin_hz, kernel.shape)
        out["lineshape_kernel"] = np.stack([hz, kernel[:, order]], axis=1)
    out["anticorrelated"] = result.pair_correlations(names).reshape(n, -1)
    # last, as results.json lists it
    out["water_near_window"] = water_near_window_seen(
        fid.samples, fid, result.config.ppm_range[1], result.removed_water
    )
    return out


def blank_fit_facts(
    facts: dict[str, np.ndarray] | None, unusable: np.ndarray
) -> dict[str, np.ndarray] | None:
    """``facts`` (:func:`_fit_facts`) with NaN for the ``unusable`` ``(N,)`` spectra: a fitted
    FWHM, stiffness or kernel of a spectrum with nothing to measure means nothing either (the
    kernel's offsets, a property of the grid, are kept)."""
    if not facts or not unusable.any():
        return facts
    out = {}
    for name, value in facts.items():
        value = np.array(value, dtype=np.float64, copy=True)
        if name == "lineshape_kernel":
            value[unusable, 1] = np.nan
        else:
            value[unusable] = np.nan
        out[name] = value
    return out


def spread_fit_facts(
    result: FitResult,
    fitted: FID,
    rows: np.ndarray,
    n: int,
    names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`_fit_facts` of a fit of the flat FIDs ``fitted``, the spectra ``rows`` of ``n``,
    as ``(n, ...)`` arrays, NaN for the other rows (the kernel's offsets, a property of the
    grid, on every row); the pairs' correlations over ``names`` (a model's columns; default
    the fit's components). ``fit`` and ``quantify --refine`` alike."""
    facts = {name: spread_rows(v, rows, n) for name, v in _fit_facts(result, fitted, names).items()}
    if "lineshape_kernel" in facts:
        facts["lineshape_kernel"][:, 0] = facts["lineshape_kernel"][rows[0], 0]
    return facts


def quality_columns(
    prep: Prepared, fit_residual: np.ndarray | None, residual_over_noise: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The quality columns (:data:`~scaloquant.quantify.results.QUALITY_COLUMNS` but ``qc``)
    of ``prep``'s spectra, ``(N,)`` each: its quality figures and a fit's residual checks
    (``None``: no fit, NaN)."""
    q = prep.quality
    n = prep.input.n_spectra

    def fitted(values: np.ndarray | None) -> np.ndarray:
        return np.full(n, np.nan) if values is None else values

    return {
        "snr": q.snr.reshape(n),
        "fwhm_hz": q.fwhm_hz.reshape(n),
        "fwhm_ppm": q.fwhm_ppm.reshape(n),
        "fit_residual": fitted(fit_residual),
        "residual_over_noise": fitted(residual_over_noise),
    }


def no_creatine(amplitudes: np.ndarray, names: Sequence[str]) -> np.ndarray | None:
    """``(N,)`` True where the estimate of ``amplitudes`` ``(N, M)`` has no total creatine
    (Cr + PCr not above 0; NaN, a spectrum not estimated: False); None without either."""
    total = total_creatine(names, amplitudes)
    return None if total is None else total <= 0


def window_holds_lines(basis: BasisSet, ppm_range: tuple[float, float]) -> None:
    """Refuse a fit window ``ppm_range`` (ppm) that holds none of ``basis``' main peaks (each
    spectrum's tallest point, :func:`scaloquant.signal.peaks.main_peak_ppm` over its whole
    axis): such a fit has nothing to fit (``--ppm-range 10 12`` ended in a traceback drawing
    the figure of an empty window).

    Raises
    ------
    ConfigError
        No main peak of the basis lies in ``ppm_range``; the message names the config key
        ``ppm_range``, as the config's own checks do (the CLI words it as ``--ppm-range`` where
        that flag gave the window: :func:`scaloquant.cli._common.flag_worded`).
    """
    ppm = basis.ppm_axis()
    peaks = main_peak_ppm(
        basis.fids,
        basis.dwell_time_s,
        basis.spectrometer_freq_mhz,
        basis.ppm_reference,
        ppm_range=(float(ppm.min()), float(ppm.max())),
        zero_fill=1,
    )
    lo, hi = ppm_range
    if not np.any((peaks >= lo) & (peaks <= hi)):
        raise ConfigError(
            f"ppm_range {lo:g} {hi:g} holds none of the basis' lines (their main peaks lie at "
            f"{peaks.min():.2f}-{peaks.max():.2f} ppm): nothing to fit there; give a window "
            "over them (the default is 0.2 4.2)"
        )
