"""``quantify`` as a library call: match every input to the model's grid, estimate (the
network, a physics-head model's own polish, ``--refine``'s fit), and gather what the outputs
need (:mod:`.gather`). ``fit``'s driver is :mod:`.fit_run`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._words import counted
from ..errors import ConfigError, NeedsOption, Option
from ..fit import (
    FitResult,
    FitStart,
    fit_given_amplitudes,
    fit_spectra,
    fitted_spectra,
    phase_corrected,
)
from ..fit.result import with_combined
from ..models.physics_config import PHYSICS_KINDS
from ..signal.noise import residual_over_noise
from ..signal.water_peak import WATER_NEAR_WINDOW_RATIO
from ..threads import blas_threads
from ..types import FID, Acquisition, BasisSet
from .checks import fit_checks, polish_stopped, spread_fit_facts, water_near_window_seen
from .figures import fitted_spectrum, spectra_subset
from .gather import FitChecks, Options, Run, figure_rows, finish_run, flags_and_checks
from .inputs import SpectraInput
from .matching import Prepared, estimated_rows, matched_inputs
from .notes import (
    adaptation_note,
    adapted_checkpoint_note,
    baseline_note,
    minimum_note,
    polish_note,
)
from .rows import fitted_windows, flat_samples, spread_rows

if TYPE_CHECKING:  # torch loads only with a model: ``fit`` needs none
    from ..models.adapt import AdaptConfig, AdaptResult
    from ..models.checkpoint import LoadedModel


def model_basis(
    basis_meta: Mapping[str, Any],
    basis: BasisSet | None,
    basis_name: str | None,
    *,
    carried: bool = False,
) -> tuple[BasisSet | None, str]:
    """The basis a model was trained on: ``basis`` (checked against the checkpoint's hash) or,
    when None, the embedded default if it is that basis. Returns it (or None) and a sentence.

    ``carried``: the model keeps its basis in its checkpoint (a physics-head model), so without
    either it still draws its figures and has mM; the sentence says so."""
    want = basis_meta.get("content_hash")
    if basis is not None:
        if basis.content_hash() != want:
            trained = (basis_meta.get("provenance") or {}).get("source")
            given = basis.provenance.get("source")
            if trained and given and Path(trained).name == Path(given).name:
                # the same file read otherwise by the version that trained the model: since
                # session 36 a .BASIS is scaled by TRAMP / (VOLUME * CONC), as LCModel scales it
                raise NeedsOption(
                    Option("basis"),
                    f" {basis_name} is the file the model was trained on, but it reads otherwise "
                    "now (its content hash differs: an LCModel .BASIS stating CONC, TRAMP or "
                    "VOLUME other than 1 is scaled as LCModel scales it since session 36); "
                    "retrain the model with it, or leave ",
                    Option("basis"),
                    " out",
                )
            raise NeedsOption(
                Option("basis"),
                f" {basis_name} is not the basis the model was trained on (its content hash "
                "differs); give that basis, or leave ",
                Option("basis"),
                " out",
            )
        return basis, f"basis: {basis_name} (the model's, hash checked)"
    from ..io.default import DEFAULT_BASIS_NAME, default_basis

    default = default_basis()
    if default.content_hash() == want:
        return default, f"basis: {DEFAULT_BASIS_NAME} (the model's, hash checked)"
    if carried:
        source = (basis_meta.get("provenance") or {}).get("source")
        trained = f" (trained with {Path(source).name})" if source else ""
        return None, f"basis: the model's own, kept in its checkpoint{trained}"
    return None, (
        "the model was not trained on the embedded basis and no --basis was given: no fit "
        "figures, no --refine and no mM (give --basis with the training basis)"
    )


def _named_columns(
    values: np.ndarray, given: tuple[str, ...], names: tuple[str, ...]
) -> np.ndarray:
    """The columns ``(N, len(names))`` of ``values`` ``(N, len(given))`` (a fit's, over its
    components ``given``) for ``names`` (the model's), by name: NaN for a name the fit did
    not fit (the measured macromolecules its preset replaced by parametric ones)."""
    out = np.full((values.shape[0], len(names)), np.nan)
    for j, name in enumerate(names):
        if name in given:
            out[:, j] = values[:, given.index(name)]
    return out


@dataclass(frozen=True)
class PhysicsRows:
    """What :func:`_physics_estimates` gives for ``N`` spectra: ``columns`` (amplitudes, CRLB
    SDs, the model's own SDs, each ``(N, M)``, the relative fit residual, the metabolites
    over the data and the residual over the noise, each ``(N,)``), ``facts`` (per-spectrum
    facts for results.json, ``(N, ...)`` each: ``baseline_ed_per_ppm`` (NaN without a spline
    baseline, as ``fit``'s), ``window_ppm`` where a spectrum fitted again had another window
    than ``ppm_range`` (:func:`~scaloquant.quantify.rows.fitted_windows`, ``fit``'s rule),
    ``anticorrelated`` with a polish (every pair's correlation coefficient, the polish's or,
    where a spectrum was fitted again, that fit's: :func:`_physics_estimates`) and
    ``water_near_window``), ``dried``: the spectra quantified less their residual water,
    ``refitted``: those whose polish asked for a more flexible baseline, fitted again as
    ``fit`` fits them; for the figures (:func:`_physics_figures`): ``seen`` ``(N, n_points)``
    the FIDs the model saw, ``theta`` ``(N, P)`` its final parameters, and ``refit``, the fit
    of the spectra fitted again (``refit_rows``, indices into the ``N``, their FIDs
    ``refit_fid``; None: none). ``names``: the columns' names, the model's components and,
    with a polish, LCModel's combined rows (tNAA, tCr, tCho, Glx: ``fit``'s columns, their CRLB
    SD from the polish's covariance or, where a spectrum was fitted again, that fit's; their
    own SD NaN where polished, the network's SD being a component's alone). ``stopped``
    ``(N,)``: the spectra whose polish may have stopped in a worse minimum than the fit's
    (:func:`~scaloquant.quantify.checks.polish_stopped`) and that kept their polish (flagged
    ``polish_minimum``); ``restarted``: how many such spectra were fitted again as ``fit`` fits
    them instead (those the baseline screen did not flag as well)."""

    names: tuple[str, ...]
    columns: list[np.ndarray]
    facts: dict[str, np.ndarray]
    dried: int
    refitted: int
    seen: np.ndarray
    theta: np.ndarray
    stopped: np.ndarray
    refit: FitResult | None = None
    refit_rows: np.ndarray | None = None
    refit_fid: FID | None = None
    restarted: int = 0


def _physics_estimates(
    quantifier,
    samples: np.ndarray,
    fid: FID,
    batch_size: int | None,
    polish: int | None,
    baseline_stiffness: str | None = None,
) -> PhysicsRows:
    """A physics-head model's :class:`PhysicsRows` of the FIDs ``samples`` ``(N, n_points)``
    on ``fid``'s grid (:meth:`~scaloquant.models.physics.PhysicsQuantifier.predict_estimates`);
    ``polish``: the polish's ``K`` (None: the model's); ``baseline_stiffness``:
    :attr:`Options.baseline_stiffness`.

    The model removes no water itself, and its error grows with the water just above its
    window as the fit's would without its water removal (docs/history/physics-models-log.md
    "Residual water near the window and the physics-head models (session 19, `water19`)").
    Where the model's fit settings remove water (``water_removal="hlsvd"``, the ``invivo``
    preset's), the spectra are quantified less the water the fit's HLSVD removes
    (:func:`scaloquant.signal.water.remove_water`, as the fit does before its fit), their
    ratio that of the spectrum the model saw: with a polish (``K`` > 0) every spectrum, as the
    fit; the network alone (``K`` = 0) only those whose ratio exceeds
    :data:`~scaloquant.signal.water_peak.WATER_NEAR_WINDOW_RATIO`, the others as they are (the
    HLSVD would cost about the network's own time). Each spectrum goes through the model once.
    Measured: docs/history/physics-models-log.md "The fit's water removal before the
    physics-head models (session 20)" and "The water of every spectrum removed before a
    polish (session 28)".

    The polish keeps its fit model's fixed baseline stiffness. With a spline baseline, a polish
    (``K`` > 0) and ``baseline_stiffness`` not ``"fixed"``, the fit's default is followed
    (``baseline_stiffness="adaptive"``): each spectrum's polish is screened with LCModel's
    F-test against the most flexible baseline
    (:meth:`~scaloquant.models.physics.PhysicsQuantifier.asks_for_flexible_baseline`), and the
    spectra that ask for a more flexible one are fitted as ``fit`` fits them: the fit's
    ``"adaptive"`` rule with the model's fit settings (its fixed stiffness over ``ppm_range``,
    its own screen at that fit, and LCModel's F-test stiffness over the window of
    :func:`~scaloquant.fit.spectra.flexible_baseline_config` for the spectra that screen
    flags), on the model's own basis, from the spectra as matched to the model, with the fit's
    own water removal; their columns are that fit's (the model's own SD replaced by its CRLB)
    and so are their facts, window and stiffness included: each such row is ``fit``'s row of
    that spectrum, also where the polish's screen flags a spectrum that the fit's own keeps at
    the fixed stiffness (docs/history/physics-models-log.md "The polish follows the fit's
    adaptive baseline (session 27)" and "quantify's refit is fit's row (session 31,
    `refit31`)").

    With a polish, every spectrum's pair correlations (results.json ``anticorrelated``, the
    run's note) are the polish's covariance bound's, read as the fit reads its own
    (:attr:`~scaloquant.models.physics.PhysicsPrediction.pair_correlations`), those of a
    spectrum fitted again that fit's; the network alone (``K = 0``) forms no covariance, and
    gives none. With a polish, LCModel's combined rows follow the components
    (:attr:`PhysicsRows.names`), as ``fit``'s columns: their SD from the polish's covariance
    (:attr:`~scaloquant.models.physics.PhysicsPrediction.combined_sd`), taken per batch by the
    thread that polished it, or from the covariance of a spectrum's fit again; ``K = 0``
    gives none (the report then sums the parts, their SDs in quadrature).

    With a polish, a spectrum whose polish may have stopped in a worse minimum than the fit's
    (:func:`~scaloquant.quantify.checks.polish_stopped`: its misfit beyond the noise above
    :data:`~scaloquant.signal.quality.POLISH_MISFIT_MAX`) joins the spectra the screen sends to
    the fit, where the screen runs; elsewhere (``baseline_stiffness="fixed"``, no spline) it
    keeps its polish and is listed in :attr:`PhysicsRows.stopped` (the ``polish_minimum``
    flag): docs/history/physics-models-log.md "A polish in a worse minimum than the fit's
    (session 35, `polishqc35`)"."""
    fit_config = quantifier.config.fit_config
    top = fit_config.ppm_range[1]
    k = quantifier.config.polish_iterations if polish is None else polish
    near = water_near_window_seen(samples, fid, top)
    # with a polish, every spectrum less its water, as the fit (the HLSVD costs ~0.7 ms a
    # spectrum, the polish tens); the network alone (K = 0) only where the water is tall
    wet = np.flatnonzero(near > WATER_NEAR_WINDOW_RATIO) if k == 0 else np.arange(len(samples))
    if fit_config.water_removal != "hlsvd":
        wet = wet[:0]
    seen = samples  # what the model sees: each spectrum once, less its water where wet
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    if wet.size:
        import torch

        from ..signal.water import remove_water

        # every spectrum (a polish): the FIDs less their water are what the model sees, not
        # a copy of them, nor of the FIDs before (32 kB a spectrum of 2048 points each, at
        # quantify's peak: docs/history/benchmarks-log.md "Memory of fit and quantify
        # (session 33, `mem33`)"); each FID's water is its own in any batch (remove_water)
        every = wet.size == len(samples)
        dry = remove_water(samples if every else samples[wet], *grid,
                           threads=torch.get_num_threads())  # fmt: skip
        near[wet] = water_near_window_seen(dry, fid, top)
        if every:
            seen = dry
        else:
            seen = np.array(samples)
            seen[wet] = dry
    spline = fit_config.baseline_kind == "spline"
    # the screen by the polish's own threads, each batch's after its polish
    screen = spline and baseline_stiffness != "fixed" and k > 0
    # the pairs the polish cannot tell apart from its covariance, as the fit's (K = 0: none)
    p = quantifier.predict_estimates(
        seen, batch_size=batch_size, polish_iterations=polish, screen=screen, correlations=True
    )
    names = tuple(quantifier.metabolites)
    columns = [p.amplitudes, p.sd, p.network_sd, p.fit_residual, p.metabolite_fraction]
    if p.combined_names:
        # the network's own SD is a component's (its calibration factors): none for a sum
        none = np.full(p.combined_sd.shape, np.nan)
        for c, extra in enumerate((p.combined_amplitudes, p.combined_sd, none)):
            columns[c] = np.concatenate([columns[c], extra], axis=-1)
    column_names = (*names, *p.combined_names)
    proton = fid.nucleus == "1H"
    columns.append(residual_over_noise(p.residual_sd, seen, *grid, proton=proton))
    theta = p.theta
    dried = int(wet.size)
    n = len(samples)
    # a polish that may have stopped in a worse minimum than the fit's: fitted again as fit
    # fits it where the screen's refit runs, flagged where the polish is kept (K = 0: none)
    stopped = np.zeros(n, dtype=bool)
    if k > 0:
        stopped = polish_stopped(p.fit_residual, columns[-1], fid, fit_config.ppm_range)
    # in the fit's order (_fit_facts), water_near_window last; NaN without a spline, as fit's
    stiffness = fit_config.baseline_ed_per_ppm if spline else np.nan
    facts = {"baseline_ed_per_ppm": np.full(n, stiffness)}
    flagged = np.flatnonzero(p.flexible | stopped) if screen and n else np.zeros(0, dtype=np.intp)
    if not flagged.size:
        pairs = {} if p.pair_correlations is None else {"anticorrelated": p.pair_correlations}
        facts |= pairs | {"water_near_window": near}
        return PhysicsRows(column_names, columns, facts, dried, 0, seen, theta, stopped)
    # the fit's own adaptive rule, not its flexible refit alone: each row is then fit's row
    # of that spectrum also where the fit's screen keeps it at the fixed stiffness over
    # ppm_range (the polish's screen flags more where it ends away from the fit's minimum)
    adaptive = replace(
        fit_config, baseline_stiffness="adaptive", device=quantifier.basis_fids.device.type
    )
    again = fid.with_samples(samples[flagged])
    with blas_threads(1):
        refit = fit_spectra(again, quantifier.basis(), adaptive)
    # its combined rows as fit's (its own covariance), taken where the polish gives them
    given, refit_amplitudes, refit_sd = with_combined(refit)
    sd = _named_columns(refit_sd, given, column_names)
    replaced = (
        _named_columns(refit_amplitudes, given, column_names), sd, sd, *fit_checks(refit),
    )  # fmt: skip
    for column, values in zip(columns, replaced, strict=True):
        column[flagged] = values
    refit_facts = spread_fit_facts(refit, again, flagged, n, names)
    facts["baseline_ed_per_ppm"][flagged] = refit_facts["baseline_ed_per_ppm"][flagged]
    # as fit lists it: only where the refit's own screen gave some spectrum another window
    polished = np.setdiff1d(np.arange(n), flagged)
    window = fitted_windows(
        [(polished, {}, fit_config.ppm_range), (flagged, refit_facts, adaptive.ppm_range)], n
    )
    if window is not None:
        facts["window_ppm"] = window
    # the pairs of the spectra fitted again are that fit's, the others the polish's (a screen
    # is of a polish, K > 0, which gives its pairs: predict_estimates(correlations=True))
    facts["anticorrelated"] = p.pair_correlations
    facts["anticorrelated"][flagged] = refit_facts["anticorrelated"][flagged]
    near[flagged] = refit_facts["water_near_window"][flagged]
    facts["water_near_window"] = near
    flexible = int(np.count_nonzero(p.flexible))
    return PhysicsRows(
        column_names, columns, facts, dried, flexible, seen, theta, np.zeros(n, dtype=bool),
        refit, flagged, again, int(flagged.size) - flexible,
    )  # fmt: skip


def _model_figures(
    quantifier,
    basis: BasisSet | None,
    fid: FID,
    rows: np.ndarray,
    amplitudes: np.ndarray,
    estimates: PhysicsRows | None,
    drawn: list[int],
) -> dict[int, Any]:
    """``quantify``'s fit figures of an input's spectra ``drawn``: a physics-head model's own
    (``estimates`` of its ``rows``, :func:`_physics_figures`), or for a regression CNN one
    global damping/shift/phase with the network's ``amplitudes`` ``(N, M)`` held fixed."""
    if not drawn:
        return {}
    if estimates is not None:
        position = {int(r): k for k, r in enumerate(rows)}  # input row -> estimated row
        at = [position[j] for j in drawn]
        with blas_threads(1):  # small matrices; see scaloquant.threads
            own = _physics_figures(quantifier, estimates, fid, at)
        return {j: own[k] for j, k in zip(drawn, at, strict=True)}
    # a per-metabolite lineshape would absorb the network's errors and flatter the figure
    with blas_threads(1):  # small matrices; see scaloquant.threads
        given = fit_given_amplitudes(spectra_subset(fid, drawn), basis, amplitudes[drawn])
    spectra = phase_corrected(fitted_spectra(given, spectra_subset(fid, drawn), basis), given)
    return {j: fitted_spectrum(spectra, k) for k, j in enumerate(drawn)}


def _physics_figures(
    quantifier, estimates: PhysicsRows, fid: FID, drawn: list[int]
) -> dict[int, Any]:
    """The fit figures of a physics-head model's spectra ``drawn`` (indices into the ``N`` FIDs
    of ``estimates``, on ``fid``'s grid): its final model as the fit draws its
    own (:func:`~scaloquant.fit.spectra.fit_result_at` at the polished parameters, on the
    spectra the model saw, with its baseline and components), and for a spectrum fitted
    again with a flexible baseline that fit's."""
    from ..fit.spectra import fit_result_at

    basis = quantifier.basis()
    figures: dict[int, Any] = {}
    again = [] if estimates.refit_rows is None else list(estimates.refit_rows)
    polished = [j for j in drawn if j not in again]
    if polished:
        subset = fid.with_samples(estimates.seen[polished])
        # the spectra as the model saw them (less their water where it was removed): no
        # water removal again; on the model's device
        config = replace(
            quantifier.config.fit_config,
            water_removal="none",
            device=quantifier.basis_fids.device.type,
        )
        result = fit_result_at(subset, basis, config, estimates.theta[polished], deviations=True)
        spectra = phase_corrected(fitted_spectra(result, subset, basis), result)
        figures |= {j: fitted_spectrum(spectra, k) for k, j in enumerate(polished)}
    redrawn = [j for j in drawn if j in again]
    if redrawn:
        refit = estimates.refit
        spectra = phase_corrected(fitted_spectra(refit, estimates.refit_fid, basis), refit)
        figures |= {j: fitted_spectrum(spectra, again.index(j)) for j in redrawn}
    return figures


def quantify_inputs(
    inputs: Sequence[SpectraInput],
    model: LoadedModel,
    *,
    basis: BasisSet | None = None,
    basis_name: str | None = None,
    options: Options | None = None,
) -> Run:
    """Quantify every spectrum of ``inputs`` with a trained :class:`~scaloquant.models.Quantifier`.

    Parameters
    ----------
    inputs : from :func:`~scaloquant.quantify.inputs.read_inputs`.
    model : the trained network and its checkpoint's metadata, from
        :func:`scaloquant.models.load_model`.
    basis : the training basis, when not the embedded default (checked against the
        checkpoint's hash); needed for the fit figures, ``refine`` and mM.
    basis_name : how to call ``basis`` in messages.
    options : see :class:`Options`.

    Raises
    ------
    IncompatibleDataError
        An input does not match the model's acquisition and ``force`` was not given (or no
        conversion exists), or ``basis`` is not the model's.
    ConfigError
        ``refine`` without a known basis.
    """
    options = options or Options()
    quantifier, meta = model.quantifier, model.metadata
    names = tuple(quantifier.metabolites)
    target = Acquisition(**meta.acquisition)
    physics = quantifier.config.model in PHYSICS_KINDS
    basis, basis_note = model_basis(meta.basis, basis, basis_name, carried=physics)
    if options.refine and physics:
        raise ConfigError(
            "--refine is for the regression CNNs; a physics-head model already ends with the "
            "fit's polish iterations (its amplitudes are least-squares ones)"
        )
    if options.refine and basis is None:
        raise NeedsOption(
            Option("refine"), " needs the basis the model was trained on; give it with ",
            Option("basis"),
        )  # fmt: skip
    if options.polish_iterations is not None and not physics:
        raise ConfigError(
            "--polish-iterations is for the physics-head models (spectrum_physics, "
            f"scalogram_physics); {quantifier.config.model} is a regression CNN, which has no "
            "polish"
        )
    if options.baseline_stiffness is not None and not (
        physics and quantifier.config.fit_config.baseline_kind == "spline"
    ):
        raise ConfigError(
            "--baseline-stiffness is for the physics-head models with a spline baseline (the "
            f"invivo simulation's); {quantifier.config.model} "
            + ("has no baseline" if physics else "is a regression CNN, which has no polish")
        )
    if options.adapt is not None and not physics:
        raise ConfigError(
            f"--adapt needs a physics-head model (spectrum_physics, scalogram_physics); "
            f"{quantifier.config.model} is a regression CNN, which has no reconstruction to "
            "adapt to"
        )
    prepared = matched_inputs(
        inputs,
        target,
        meta.basis_metadata,
        options.force,
        "the model",
        referencing=options.referencing,
        ecc=options.ecc,
    )
    adaptation = None
    if options.adapt is not None:
        adaptation = _adapted(quantifier, prepared, options.adapt)
        quantifier = adaptation.model
    # a regression CNN's figures need the basis it was trained on; a physics-head model's
    # are its own final model's (_physics_figures)
    drawing = basis is not None or physics
    # MRSI inputs with --refine or a physics-head model: voxels representative of the fit's
    # residual, as ``fit`` draws them (below); without one, as the other inputs, the flagged
    # spectra first, then the highest SNRs of all inputs
    by_fit = options.refine or physics
    representative = [by_fit and p.input.is_mrsi for p in prepared]
    estimated_inputs = []
    water_removed = 0  # spectra a physics-head model saw less their residual water
    refitted = 0  # spectra of a physics-head model fitted again for a more flexible baseline
    restarted = 0  # and fitted again for a polish that may have stopped in a worse minimum
    unreported: set[str] = set()  # components the refined fit adds to the model's
    columns_named = names  # a physics-head model's polish adds the combined rows
    for prep in prepared:
        fid = prep.fid
        estimates = None
        # as ``fit``: the spectra with nothing to quantify are not run through the model (their
        # estimates are NaN all the same, finish_run)
        rows = estimated_rows(prep)
        spread = functools.partial(spread_rows, rows=rows, n=prep.input.n_spectra)
        estimated = (
            flat_samples(fid) if rows.size == prep.input.n_spectra else flat_samples(fid)[rows]
        )
        fit_residual = fit_linewidth = fit_metabolites = fit_noise = None
        fit_facts: dict[str, np.ndarray] = {}
        if physics:
            # the CRLB of the polished fit, and the network's own calibrated SD
            # fit_residual and the metabolites over the data: the final model's, as the fit's
            # column and checks (fit_residual_checks, metabolite_fraction)
            estimates = _physics_estimates(
                quantifier,
                estimated,
                fid,
                options.batch_size,
                options.polish_iterations,
                options.baseline_stiffness,
            )
            amplitudes, crlb_sd, sd, fit_residual, fit_metabolites, fit_noise = map(
                spread, estimates.columns
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = np.where(amplitudes > 0, 100 * crlb_sd / amplitudes, np.inf)
            columns = {"": amplitudes, "_sd": sd, "_crlb_sd": crlb_sd, "_crlb_pct": pct}
            fit_facts = {name: spread(value) for name, value in estimates.facts.items()}
            columns_named = estimates.names
            water_removed += estimates.dried
            refitted += estimates.refitted
            restarted += estimates.restarted
        else:
            # SDs are NaN for a model trained without uncertainty (Quantifier.predict_with_sd)
            amplitudes, sd = map(
                spread, quantifier.predict_with_sd(estimated, batch_size=options.batch_size)
            )
            columns = {"": amplitudes, "_sd": sd}
        if options.refine:
            flat = fid.with_samples(estimated)
            with blas_threads(1):
                start = fit_given_amplitudes(flat, basis, amplitudes[rows])
            refined = fit_spectra(
                flat,
                basis,
                replace(options.fit_config, phase1_pivot_ppm=start.phase1_pivot_ppm),
                start=FitStart.from_result(start),
            )
            columns |= {
                suffix: spread(_named_columns(values, refined.names, names))
                for suffix, values in (
                    ("_refined", refined.amplitudes),
                    ("_crlb_sd", refined.crlb_sd),
                    ("_crlb_pct", refined.crlb_pct),
                )
            }
            unreported |= set(refined.names) - set(names)
            fit_residual, fit_metabolites, fit_noise = (spread(v) for v in fit_checks(refined))
            fit_linewidth = spread(refined.linewidth_ppm)
            fit_facts = spread_fit_facts(refined, flat, rows, prep.input.n_spectra, names)
        checks = FitChecks(fit_residual, fit_linewidth, fit_metabolites, fit_noise, fit_facts)
        stopped = None
        if estimates is not None:
            stopped = np.zeros(prep.input.n_spectra, dtype=bool)
            stopped[rows] = estimates.stopped
        flags, checks = flags_and_checks(prep, columns[""], columns_named, checks, stopped)
        drawn_at = functools.partial(
            _model_figures, quantifier, basis, fid, rows, amplitudes, estimates
        )
        estimated_inputs.append((prep, columns, checks, flags, drawn_at))
    # MRSI inputs with --refine or a physics-head model: voxels representative of the fit's
    # residual, as ``fit`` draws them
    chosen = (
        figure_rows(
            prepared,
            [e[3] for e in estimated_inputs],
            [e[2] for e in estimated_inputs],
            representative,
            options,
        )
        if drawing
        else [[] for _ in prepared]
    )
    partial = [
        (prep, columns, drawn_at(drawn), checks, flags)
        for (prep, columns, checks, flags, drawn_at), drawn in zip(
            estimated_inputs, chosen, strict=True
        )
    ]
    base = ("", "_sd", *(("_refined", "_crlb_sd", "_crlb_pct") if options.refine else ()))
    if physics:
        base = ("", "_sd", "_crlb_sd", "_crlb_pct")
    notes = [basis_note]
    earlier = meta.raw.get("adaptation")
    if earlier:
        notes.append(adapted_checkpoint_note(earlier))
    if not quantifier.has_uncertainty:
        notes.append("the model was trained without uncertainty: the _sd columns are empty (NaN)")
    if physics and quantifier.config.network_sd_factors is None:
        notes.append(
            "the model's own SD was not calibrated at training time: the _sd columns are the "
            "Cramér-Rao bound at the network's parameters, unscaled"
        )
    # the polish's K of this run (a physics-head model's; _physics_estimates reads it alike)
    own_k = quantifier.config.polish_iterations if physics else 0
    k = own_k if options.polish_iterations is None else options.polish_iterations
    if physics:
        notes.append(polish_note(own_k, options.polish_iterations))
        baseline = baseline_note(
            quantifier.config.fit_config, options.baseline_stiffness, k, refitted
        )
        if baseline is not None:
            notes.append(baseline)
        if restarted:
            notes.append(minimum_note(restarted))
    # the adaptation's note, in the run's notes and, from there, on the terminal (the CLI
    # worded it once more: print_run prints the run's terminal_notes)
    adapted = () if adaptation is None else (adaptation_note(adaptation),)
    notes += adapted
    if water_removed:
        which = counted(water_removed, "spectrum", "spectra")
        why = (
            "as the fit, before the polish"
            if k > 0
            else f"a water_near_window above {WATER_NEAR_WINDOW_RATIO:g}"
        )
        notes.append(
            f"residual water: {which} quantified less the water that the fit's HLSVD removes "
            f"({why}; the model's fit settings remove water); the water_near_window listed "
            "is that of the spectra the model saw"
        )
    if unreported:
        notes.append(
            f"the refined fit also fitted {', '.join(sorted(unreported))} (its preset's "
            "components beyond the model's); their amplitudes are not in this table: run "
            "`scaloquant fit` for them"
        )
    facts = {
        "adaptation": None if adaptation is None else adaptation.facts(),
        "model": {
            "kind": quantifier.config.model,
            "acquisition": dict(meta.acquisition),
            "basis": {k: meta.basis.get(k) for k in ("content_hash", "metadata")},
            "has_uncertainty": quantifier.has_uncertainty,
        },
        "basis_note": basis_note,
        "fit_config": options.fit_config.to_dict() if (options.refine or basis) else None,
    }
    run = finish_run(
        "quantify",
        columns_named,
        partial,
        # a physics-head model's own prepared basis names its macromolecules and lipids
        basis=quantifier.basis() if physics else basis,
        base_suffixes=base,
        # a physics-head model's summary reads the CRLB of its polished fit, as the fit's
        sd_suffix="_crlb_sd" if physics else "_sd",
        notes=notes,
        facts=facts,
        options=options,
        representative=by_fit,
    )
    label = None
    if physics:
        label = (
            "model (the network's parameters, polished by the fit; a spectrum fitted again: "
            "that fit)"
        )
    return replace(
        run,
        adaptation=adaptation,
        model_label=label,
        terminal_notes=(*adapted, *run.terminal_notes),
    )


def _adapted(quantifier, prepared: Sequence[Prepared], config: AdaptConfig) -> AdaptResult:
    """``quantify --adapt``: a copy of the physics-head ``quantifier`` whose encoder is
    fine-tuned on the usable spectra of every input (on the model's grid, as they are
    quantified) by the reconstruction loss (:func:`scaloquant.models.adapt.adapt_encoder`)."""
    from ..models.adapt import adapt_encoder

    spectra = [flat_samples(p.fid)[p.usable] for p in prepared]
    fids = np.concatenate(spectra) if spectra else np.zeros((0, 0), np.complex128)
    if len(fids) == 0:
        raise ConfigError("--adapt: no usable spectrum to adapt the model to (all are flagged)")
    return adapt_encoder(quantifier, fids, config)
