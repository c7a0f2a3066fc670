"""The batch API: fit every spectrum of a :class:`~scaloquant.types.FID` with a basis set."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, InvalidDataError
from ..types import FID, BasisSet
from .config import FitConfig, FitStart
from .crlb import covariance_bound, full_jacobian, region_noise_sd, residual_noise_sd
from .model import Design, NonlinearParameters, check_compatible
from .result import FitResult
from .start import phase0_given_amplitudes_rad, starting_parameters
from .varpro import SingleFit, fit_one, fit_one_given_amplitudes, stage_designs


def _fit_and_bound(
    stages: list[Design],
    fid: np.ndarray,
    start: NonlinearParameters,
    region_sd: float | None,
    noise_hint: float | None,
) -> tuple[SingleFit, np.ndarray, float]:
    """Fit one FID ``(n_points,)`` and bound its amplitudes:
    ``(fit, covariance (M, M), noise_sd)``."""
    fit = fit_one(stages, fid, start, noise_hint)
    design = stages[-1]
    jac, identifiable = full_jacobian(design, fit)
    if region_sd is None:
        n_free = (
            np.count_nonzero(fit.amplitudes)
            + np.count_nonzero(identifiable)
            + design.baseline.shape[1]
        )
        noise_sd = residual_noise_sd(fit, n_free)
    else:
        noise_sd = region_sd
    m = len(design.names)
    return fit, covariance_bound(jac, noise_sd)[:m, :m], noise_sd


def _fit_chunk(
    stages, fids, starts, region_sd, noise_hint
) -> list[tuple[SingleFit, np.ndarray, float]]:
    # One BLAS thread: the matrices are small (about 500 x 44), and threaded BLAS made each
    # decomposition up to 100 times slower on a busy 2-core machine (measured with OpenBLAS).
    with threadpool_limits(limits=1, user_api="blas"):
        return [
            _fit_and_bound(stages, *args)
            for args in zip(fids, starts, region_sd, noise_hint, strict=True)
        ]


def fit_spectra(
    fid: FID,
    basis: BasisSet,
    config: FitConfig | None = None,
    *,
    start: FitStart | None = None,
    n_workers: int = 1,
) -> FitResult:
    """Fit every spectrum of ``fid`` as a linear combination of ``basis``.

    See :mod:`scaloquant.fit.model` for the model, :mod:`scaloquant.fit.varpro` for the method
    and :mod:`scaloquant.fit.crlb` for the bounds.

    Parameters
    ----------
    fid : samples ``(..., n_points)`` on the basis set's grid (same points, dwell time,
        spectrometer frequency within 0.1%, ppm reference and nucleus).
    basis : the metabolites to fit (use ``basis.subset(...)`` to fit fewer).
    config : options; default :class:`FitConfig()`.
    start : optional starting values (e.g. from a network), see :class:`FitStart`.
    n_workers : processes to fit spectra in parallel (1: in this process).

    Returns
    -------
    FitResult
        Arrays of the batch shape ``(...)`` of ``fid``.

    Raises
    ------
    IncompatibleDataError
        The data's grid differs from the basis set's.
    ConfigError
        The ppm window or noise region lies off the data's axis, holds too few points, or a
        grouping names an unknown metabolite.
    InvalidDataError
        A starting value has the wrong shape or is not finite.
    """
    config = config or FitConfig()
    if not (isinstance(n_workers, int) and n_workers >= 1):
        raise ConfigError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    check_compatible(fid, basis)
    stages = stage_designs(basis, config)
    design = stages[-1]
    batch_shape = fid.batch_shape
    fids = fid.samples.reshape(-1, fid.n_points)
    data = design.data_window(fids)
    n = data.shape[0]
    try:
        noise_hint = region_noise_sd(
            fid.spectrum().reshape(n, -1), fid.ppm_axis(), config.noise_ppm_range
        )
    except ConfigError:
        if config.noise_estimate == "region":
            raise
        noise_hint = [None] * n
    region_sd = noise_hint if config.noise_estimate == "region" else [None] * n
    with threadpool_limits(limits=1, user_api="blas"):  # see _fit_chunk
        starts = starting_parameters(design, data, start, batch_shape)
    if n_workers == 1 or n == 1:
        fits = _fit_chunk(stages, fids, starts, region_sd, noise_hint)
    else:
        bounds = np.linspace(0, n, min(n, 4 * n_workers) + 1).astype(int)
        chunks = [
            (stages, fids[a:b], starts[a:b], region_sd[a:b], noise_hint[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            fits = [f for part in pool.map(_fit_chunk, *zip(*chunks, strict=True)) for f in part]
    return _assemble(design, fits, batch_shape)


def fit_given_amplitudes(
    fid: FID, basis: BasisSet, amplitudes: np.ndarray, config: FitConfig | None = None
) -> FitResult:
    """Fit only the nonlinear parameters of the model, with every amplitude held fixed.

    For a network's estimate: the result draws its fit figure (:func:`fitted_spectra`) and
    starts a full fit (``fit_spectra(..., start=FitStart.from_result(result))``). The model is
    that of :func:`fit_spectra` (:mod:`scaloquant.fit.model`) with ``a_m`` given. Each spectrum
    is fitted in small bounded least-squares problems: first one damping and shift for all
    metabolites with the phases (and Gaussian, if configured), started from the
    cross-correlation shift, ``config.initial_damping_per_s`` and the zero-order phase that
    aligns the model with the data (:func:`~scaloquant.fit.start.phase0_given_amplitudes_rad`);
    then, unless ``config.grouping`` is ``"global"``, a damping and shift per group started
    from those, with the restarts and twin swaps of :mod:`scaloquant.fit.varpro`. A baseline,
    if configured, is projected out and solved last.

    The default grouping here is ``"global"``: a network's amplitudes come without lineshapes
    of their own, and a damping and shift per metabolite would partly absorb the amplitudes'
    errors (a flattering figure) at twenty times the cost (100-120 evaluations per spectrum
    instead of 7 for estimates with a MAE of 0.07, default simulator: about 4.5 instead of 100
    spectra per CPU-second). Started from the global result, a full fit without continuation
    stages reaches about the same amplitudes as one from scratch (``benchmarks/bench_fit.py``).

    Parameters
    ----------
    fid : samples ``(..., n_points)`` on the basis set's grid.
    basis : the metabolites of ``amplitudes``, in their order.
    amplitudes : ``(..., M)`` amplitudes on the basis scale, finite (any sign: a network's
        estimate is drawn as it is).
    config : options; default ``FitConfig(grouping="global")``.

    Returns
    -------
    FitResult
        ``amplitudes`` as given; ``crlb_sd``, ``crlb_pct`` and ``amplitude_covariance`` NaN
        (bounds of amplitudes that were not estimated would mean nothing); ``noise_sd`` from
        the residual, counting only the nonlinear and baseline parameters as fitted.

    Raises
    ------
    IncompatibleDataError
        The data's grid differs from the basis set's.
    InvalidDataError
        ``amplitudes`` has the wrong shape or is not finite.
    ConfigError
        As for :func:`fit_spectra`.
    """
    config = config or FitConfig(grouping="global")
    check_compatible(fid, basis)
    batch_shape, m = fid.batch_shape, basis.n_metabolites
    values = np.asarray(amplitudes, dtype=np.float64)
    if values.shape != (*batch_shape, m):
        raise InvalidDataError(
            f"amplitudes have shape {values.shape}; give one per metabolite of the basis set for "
            f"each spectrum: {(*batch_shape, m)}"
        )
    if not np.all(np.isfinite(values)):
        raise InvalidDataError("amplitudes contain NaN or Inf; give finite values")
    final = Design(basis, config)
    common = Design(basis, replace(config, grouping="global"))
    designs = [common] if final.layout.n_groups == 1 else [common, final]
    fids = fid.samples.reshape(-1, fid.n_points)
    values = values.reshape(-1, m)
    data = common.data_window(fids)
    n = data.shape[0]
    # The general start, with the zero-order phase left at 0 and then aligned to the model.
    starts = starting_parameters(common, data, FitStart(phase0_rad=0.0), batch_shape)
    starts = [
        replace(p, phase0_rad=phase0_given_amplitudes_rad(common, d, p, a))
        for p, d, a in zip(starts, data, values, strict=True)
    ]
    n_free = final.layout.size + final.baseline.shape[1]
    unbounded = np.full((m, m), np.nan)
    with threadpool_limits(limits=1, user_api="blas"):  # see _fit_chunk
        fits = []
        for i in range(n):
            fit = fit_one_given_amplitudes(designs, fids[i], starts[i], values[i])
            fits.append((fit, unbounded, residual_noise_sd(fit, n_free)))
    return _assemble(final, fits, batch_shape)


def _assemble(
    design: Design, fits: list[tuple[SingleFit, np.ndarray, float]], shape: tuple[int, ...]
) -> FitResult:
    group_of = design.layout.group_of
    single = [f for f, _, _ in fits]
    amplitudes = np.array([f.amplitudes for f in single])
    cov = np.array([c for _, c, _ in fits])
    sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(amplitudes > 0, 100.0 * sd / amplitudes, np.inf)
    pct[np.isnan(sd)] = np.nan

    def batch(values, *tail: int) -> np.ndarray:
        return np.asarray(values).reshape((*shape, *tail))

    m = len(design.names)
    return FitResult(
        names=design.names,
        amplitudes=batch(amplitudes, m),
        crlb_sd=batch(sd, m),
        crlb_pct=batch(pct, m),
        amplitude_covariance=batch(cov, m, m),
        damping_per_s=batch([f.parameters.damping_per_s[group_of] for f in single], m),
        shift_hz=batch([f.parameters.shift_hz[group_of] for f in single], m),
        phase0_rad=batch([f.parameters.phase0_rad for f in single]),
        phase1_rad_per_ppm=batch([f.parameters.phase1_rad_per_ppm for f in single]),
        phase1_pivot_ppm=float(design.pivot_ppm),
        gauss_per_s2=batch([f.parameters.gauss_per_s2 for f in single]),
        baseline=batch([f.baseline for f in single], design.baseline_design.shape[1]),
        noise_sd=batch([s for _, _, s in fits]),
        noise_estimate=design.config.noise_estimate,
        residual_norm=batch([np.linalg.norm(f.residual) for f in single]),
        n_evaluations=batch([f.n_evaluations for f in single]),
        success=batch([f.success for f in single]),
        messages=batch([f.message for f in single]),
        ppm=design.ppm,
        config=design.config,
    )
